"""The one HTTP client of the tracker's API, used by the CLI, the Airflow syncer and the tests.

Agent side: it imports only `requests` and `runlink.config`, never the tracker. Connection failures, 429 and 5xx
are retried with exponential backoff (a syncer may wait; the CLI passes `retries=0`); every other failure raises
`TrackerError` with the HTTP status and one line a person can act on. The token is sent, never logged or shown.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests

from runlink.config import Config, load


class TrackerError(RuntimeError):
    """The tracker refused, answered something that is not its API, or could not be reached (after retries).

    `status` is the HTTP status (None when there was no HTTP answer); str(error) is one human line."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class TrackerClient:
    """HTTP calls to one tracker with one token; `request` decodes the JSON answer."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0, retries: int = 5) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> TrackerClient:
        """The tracker and token of a loaded configuration (URL, RUNLINK_TOKEN, token file)."""
        return cls(config.url, config.token, **options)

    @classmethod
    def configured(cls, url: str | None = None, **options: Any) -> TrackerClient:
        """The tracker the environment names (RUNLINK_URL, RUNLINK_TOKEN, ...), `url` overriding."""
        return cls.from_config(load(url=url), **options)

    def __repr__(self) -> str:  # the token never shows
        return f"TrackerClient(url={self.url!r})"

    def __enter__(self) -> TrackerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                data: bytes | None = None, headers: dict[str, str] | None = None, allow_404: bool = False) -> Any:
        """The decoded JSON answer (None for an empty body, or for a 404 when `allow_404`)."""
        delay = 0.2
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(method, self.url + path, params=params, json=json, data=data,
                                                headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                if last:
                    raise self._unreachable(method, path, exc) from None
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    if last:
                        raise self._refused(method, path, response)
                else:
                    return self._answer(method, path, response, allow_404)
            time.sleep(delay)  # backoff before retrying a request that failed
            delay = min(delay * 2, 10.0)
        raise TrackerError(f"{method} {path}: no answer")

    def get(self, path: str, allow_404: bool = False, **params: Any) -> Any:
        """GET with query parameters; those that are None are left out."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None},
                            allow_404=allow_404)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    # -- answers ---------------------------------------------------------------------------------------
    def _answer(self, method: str, path: str, response: requests.Response, allow_404: bool) -> Any:
        status = response.status_code
        if not _is_json(response) and ((status < 300 and response.content) or status == 404):
            raise self._not_api(method, path, response)
        if status == 404 and allow_404:
            return None
        if status >= 400:
            raise self._refused(method, path, response)
        return response.json() if response.content else None

    def _unreachable(self, method: str, path: str, exc: requests.RequestException) -> TrackerError:
        if isinstance(exc, requests.Timeout):
            why = f"the tracker at {self.url} did not answer within {self.timeout_s:g}s"
        elif isinstance(exc, requests.ConnectionError):
            why = f"the tracker is not reachable at {self.url} (is it running? is RUNLINK_URL right?)"
        else:
            why = f"the request to {self.url} failed ({type(exc).__name__})"
        return TrackerError(f"{method} {path}: {why}")

    def _not_api(self, method: str, path: str, response: requests.Response) -> TrackerError:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        return TrackerError(f"{method} {path}: HTTP {response.status_code} ({kind}): {self.url} is not a runlink "
                            f"tracker's API root (set RUNLINK_URL to the tracker's base URL)", response.status_code)

    def _refused(self, method: str, path: str, response: requests.Response) -> TrackerError:
        status = response.status_code
        detail = _detail(response)
        if status == 401:
            detail = f"the tracker at {self.url} needs a valid token: set RUNLINK_TOKEN ({detail})"
        return TrackerError(f"{method} {path}: HTTP {status}: {detail}", status)

    # -- the Airflow instance registry (the syncer, `runlink airflow ...`) ---------------------------------
    def instance(self, name: str) -> dict[str, Any] | None:
        return self.request("GET", f"/api/v1/airflow-instances/{name}", allow_404=True)

    def syncer_config(self, name: str) -> dict[str, Any] | None:
        """Public view + reference + sealed secret (admin tokens only; an ingest token gets 403)."""
        return self.request("GET", f"/api/v1/airflow-instances/{name}/syncer-config", allow_404=True)

    def instances(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v1/airflow-instances")["items"]

    def create_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/airflow-instances", json=body)

    def add_alias(self, name: str, uid: str) -> dict[str, Any]:
        """Another uid of the instance `name`; returns the instance's public view (with its aliases)."""
        return self.request("POST", f"/api/v1/airflow-instances/{name}/aliases", json={"uid": uid})

    def remove_alias(self, name: str, uid: str) -> dict[str, Any]:
        return self.request("DELETE", f"/api/v1/airflow-instances/{name}/aliases/{quote(uid, safe='')}")

    def sync_state(self, name: str) -> dict[str, Any] | None:
        return self.request("GET", f"/api/v1/airflow-instances/{name}/sync-state", allow_404=True)

    def put_sync_state(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", f"/api/v1/airflow-instances/{name}/sync-state", json=body)


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


def _detail(response: requests.Response) -> str:
    """FastAPI's `detail` (a string or a list of validation errors), else the start of the body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return _one_line(response.text) or response.reason or "no detail"
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg')}" if isinstance(d, dict)
                           else str(d) for d in detail)
    elif isinstance(detail, dict):
        # the tracker's own refusals: {"message": ..., "field": ..., "event": ..., "index": ...}
        where = ", ".join(f"{key} {detail[key]}" for key in ("event", "index", "field") if detail.get(key) is not None)
        detail = f"{detail.get('message') or 'refused'}" + (f" ({where})" if where else "")
    return _one_line(str(detail if detail is not None else response.text))
