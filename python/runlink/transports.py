"""Where a batch goes: one small interface, an HTTP transport for the tracker and a file transport.

The interface is deliberately tiny (OpenLineage-client style) so the delivery loop does not care where
events end up: `send(body, timeout)` takes a ready-to-send, gzip-compressed `{"events": [...]}` body and
says what happened, without raising. The delivery loop decides about retries and spooling from the outcome.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class Outcome(Enum):
    OK = "ok"  #: the tracker accepted the batch (2xx)
    RETRY = "retry"  #: connection error, timeout, 429 or 5xx: worth trying again later
    REJECTED = "rejected"  #: any other 4xx: the batch will never be accepted as it is


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    status: int | None = None
    message: str = ""
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@runtime_checkable
class Transport(Protocol):
    """Sends one gzip-compressed batch body. Implementations never raise from `send`."""

    def send(self, body: bytes, timeout: float) -> SendResult: ...

    def close(self) -> None: ...


def classify_status(status: int) -> Outcome:
    """The delivery contract: retry only 429 and 5xx; any other 4xx is final."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 429 or status >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HttpTransport:
    """POSTs batches to the tracker's `/api/v1/events` with a bearer token, over one keep-alive session."""

    def __init__(self, events_url: str, token: str | None, user_agent: str = "runlink-python") -> None:
        import requests  # imported here: `import runlink` must stay cheap; the sender thread pays this

        self._requests = requests
        self.url = events_url
        self._session = requests.Session()
        self._session.trust_env = True
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": user_agent,
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers

    def __repr__(self) -> str:  # never shows the token
        return f"HttpTransport(url={self.url!r})"

    def send(self, body: bytes, timeout: float) -> SendResult:
        timeout = max(0.05, timeout)
        try:
            response = self._session.post(
                self.url, data=body, headers=self._headers, timeout=(min(timeout, 3.0), timeout)
            )
        except self._requests.exceptions.Timeout as exc:
            return SendResult(Outcome.RETRY, None, f"timeout after {timeout:.2f}s ({type(exc).__name__})")
        except self._requests.exceptions.RequestException as exc:
            return SendResult(Outcome.RETRY, None, f"{type(exc).__name__}: {_short(exc)}")
        except Exception as exc:  # a transport must never raise into the delivery loop
            return SendResult(Outcome.RETRY, None, f"{type(exc).__name__}: {_short(exc)}")
        status = response.status_code
        outcome = classify_status(status)
        message = "" if outcome is Outcome.OK else _short(response.text)
        retry_after = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
        response.close()
        return SendResult(outcome, status, message, retry_after)

    def close(self) -> None:
        try:
            self._session.close()
        except Exception:
            pass


class FileTransport:
    """Appends every event as one JSON line to a file: for tests, and to export events without a tracker."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileTransport(path={str(self.path)!r})"

    def send(self, body: bytes, timeout: float) -> SendResult:
        try:
            events = json.loads(gzip.decompress(body))["events"]
            lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as out:
                    out.write(lines)
        except OSError as exc:
            return SendResult(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            return SendResult(Outcome.REJECTED, None, f"{type(exc).__name__}: {exc}")
        return SendResult(Outcome.OK, 200)

    def close(self) -> None:
        pass

    def read_events(self) -> list[dict[str, Any]]:
        """Every event written so far (tests use this)."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _short(value: object, limit: int = 300) -> str:
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
