"""What the listener records about a task attempt: params (masked), error, source, return value, log head/tail.

Everything here is bounded in size and guarded: a value that cannot be serialized becomes its truncated repr.
"""

from __future__ import annotations

import inspect
import io
import logging
import sys
import threading
import traceback
from collections import deque
from collections.abc import Mapping
from typing import Any

from runlink.masking import MASK, is_secret_key, mask_token, mask_value

MAX_PARAM_CHARS = 4096
MAX_PARAMS_CHARS = 256 * 1024
MAX_RETURN_CHARS = 16384
MAX_SOURCE_CHARS = 512 * 1024
MAX_TRACEBACK_CHARS = 200_000
MAX_MESSAGE_CHARS = 60_000


def _redactor() -> Any:
    """Airflow's secrets masker `redact(value, name)`, from wherever this Airflow version keeps it."""
    for module in (
        "airflow.sdk._shared.secrets_masker",
        "airflow.sdk.execution_time.secrets_masker",
        "airflow.utils.log.secrets_masker",
    ):
        try:
            return __import__(module, fromlist=["redact"]).redact
        except Exception:  # noqa: BLE001
            continue
    return lambda value, name=None: value


_redact: Any = None


def redact(value: Any, name: str | None = None) -> Any:
    """Airflow's secrets masker (it knows the connections' and variables' secrets), then runlink's own
    (runlink.masking: secret-named keys, tokens, URL passwords, key-like query parameters)."""
    global _redact
    if _redact is None:
        _redact = _redactor()
    try:
        value = _redact(value, name)
        if name and isinstance(value, str) and value and is_secret_key(name):
            return MASK
        return mask_value(value)
    except Exception:  # noqa: BLE001
        return MASK


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 20] + f"... [{len(text) - limit + 20} more]"


def json_safe(value: Any, limit: int = MAX_PARAM_CHARS, depth: int = 0) -> Any:
    """A JSON-compatible, size-bounded copy of `value` (repr for anything exotic)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return truncate(value, limit)
    if depth > 5:
        return truncate(repr(value), limit)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, limit, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, limit, depth + 1) for v in list(value)[:200]]
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except Exception:  # noqa: BLE001
            pass
    try:
        return truncate(repr(value), limit)
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"


def _mask_token(value: Any, token: str | None) -> Any:
    """The runlink token itself, whatever its shape (masking.mask_text already cuts `rl_...` tokens)."""
    if not token:
        return value
    if isinstance(value, str):
        return mask_token(value, token)
    if isinstance(value, dict):
        return {k: _mask_token(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_token(v, token) for v in value]
    return value


def rendered_params(task: Any, token: str | None = None) -> dict[str, Any]:
    """The task's templated fields after rendering, masked by Airflow's secrets masker (and the runlink token)."""
    params: dict[str, Any] = {}
    for name in getattr(task, "template_fields", ()) or ():
        try:
            value = getattr(task, name, None)
        except Exception:  # noqa: BLE001
            continue
        if callable(value) and not isinstance(value, (str, Mapping)):
            continue
        params[name] = _mask_token(json_safe(redact(value, name)), token)
    text_size = len(repr(params))
    if text_size > MAX_PARAMS_CHARS:
        params = {k: truncate(repr(v), MAX_PARAMS_CHARS // max(1, len(params))) for k, v in params.items()}
    return params


def error_of(error: Any) -> dict[str, Any] | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return {
            "type": f"{type(error).__module__}.{type(error).__qualname__}",
            "message": truncate(str(redact(str(error))), MAX_MESSAGE_CHARS),
            "traceback": truncate(str(redact(text)), MAX_TRACEBACK_CHARS),
        }
    return {"type": None, "message": truncate(str(redact(str(error))), MAX_MESSAGE_CHARS), "traceback": None}


def source_of(task: Any) -> str | None:
    """The code the task runs: its python_callable, else the operator class."""
    target = getattr(task, "python_callable", None) or type(task)
    try:
        return truncate(inspect.getsource(target), MAX_SOURCE_CHARS)
    except (OSError, TypeError):
        return None


def return_value_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        import json

        text = json.dumps(json_safe(redact(value), MAX_RETURN_CHARS), default=repr)
    except Exception:  # noqa: BLE001
        text = repr(value)
    return truncate(text, MAX_RETURN_CHARS)


class LogCapture(logging.Handler):
    """A bounded head (first bytes) and tail (last bytes) of what the task logs and prints.

    Hooks into stdlib logging (root and `airflow.task`), structlog (Airflow 3 task loggers) and
    sys.stdout/stderr; everything is removed again by `close()`.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(logging.INFO)
        self.limit = max(1024, limit)
        self.head = io.StringIO()
        self.head_size = 0
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.total = 0
        self._lock_ = threading.Lock()
        self._loggers: list[logging.Logger] = []
        self._streams: list[tuple[str, Any]] = []
        self._structlog_processors: list | None = None
        self._seen: set[int] = set()
        self._recent: deque[str] = deque(maxlen=8)

    def add(self, text: str) -> None:
        if not text:
            return
        with self._lock_:
            self.total += len(text)
            room = self.limit - self.head_size
            if room > 0:
                part = text[:room]
                self.head.write(part)
                self.head_size += len(part)
                text = text[room:]
                if not text:
                    return
            self.tail.append(text)
            self.tail_size += len(text)
            while self.tail and self.tail_size - len(self.tail[0]) >= self.limit:
                self.tail_size -= len(self.tail.popleft())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if id(record) in self._seen:
                return
            self._seen.add(id(record))
            if len(self._seen) > 10000:
                self._seen.clear()
            self.add(f"[{record.levelname}] {record.name}: {record.getMessage()}\n")
        except Exception:  # noqa: BLE001
            pass

    def _structlog_processor(self, logger: Any, method: str, event_dict: Any) -> Any:
        try:
            message = event_dict.get("event") if isinstance(event_dict, Mapping) else event_dict
            if isinstance(message, str) and message:
                self._recent.append(message)
            name = event_dict.get("logger", "") if isinstance(event_dict, Mapping) else ""
            self.add(f"[{method.upper()}] {name}: {message}\n")
            exc_info = event_dict.get("exc_info") if isinstance(event_dict, Mapping) else None
            if exc_info:
                info = sys.exc_info() if exc_info is True else exc_info
                if isinstance(info, BaseException):
                    info = (type(info), info, info.__traceback__)
                if isinstance(info, tuple) and info[0] is not None:
                    self.add("".join(traceback.format_exception(*info)))
        except Exception:  # noqa: BLE001
            pass
        return event_dict

    def start(self) -> None:
        for name in ("", "airflow.task"):
            logger = logging.getLogger(name)
            logger.addHandler(self)
            self._loggers.append(logger)
        try:
            import structlog

            processors = structlog.get_config().get("processors")
            if isinstance(processors, list):
                processors.insert(0, self._structlog_processor)
                self._structlog_processors = processors
        except Exception:  # noqa: BLE001
            self._structlog_processors = None
        for stream_name in ("stdout", "stderr"):
            original = getattr(sys, stream_name)
            setattr(sys, stream_name, _Tee(original, self))
            self._streams.append((stream_name, original))

    def close(self) -> None:
        for logger in self._loggers:
            logger.removeHandler(self)
        self._loggers.clear()
        if self._structlog_processors is not None:
            try:
                self._structlog_processors.remove(self._structlog_processor)
            except ValueError:
                pass
            self._structlog_processors = None
        for stream_name, original in self._streams:
            current = getattr(sys, stream_name)
            if isinstance(current, _Tee) and current._capture is self:
                setattr(sys, stream_name, original)
        self._streams.clear()
        super().close()

    def parts(self) -> list[dict[str, Any]]:
        """Payloads of `log` events: the head, and the tail when there is more than the head."""
        with self._lock_:
            head = self.head.getvalue()
            tail = "".join(self.tail)
        payloads = [{"text": str(redact(head)), "position": "head", "truncated": bool(tail)}] if head else []
        if tail:
            if len(tail) > self.limit:
                tail = tail[-self.limit:]
            dropped = self.total - len(head) - len(tail)
            payloads.append({"text": str(redact(tail)), "position": "tail", "truncated": dropped > 0})
        return payloads


class _Tee:
    """sys.stdout/err replacement that also records what is written (print() in the task)."""

    def __init__(self, stream: Any, capture: LogCapture) -> None:
        self._stream = stream
        self._capture = capture

    def write(self, text: str) -> int:
        try:
            # structlog may render to stdout (dag.test()): its lines were recorded by the processor already
            if not any(message in text for message in self._capture._recent):
                self._capture.add(text)
        except Exception:  # noqa: BLE001
            pass
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
