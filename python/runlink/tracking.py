"""Tracking Python inside operators: function spans (`@runlink.track`, `runlink.span`) and dataset operations
(`runlink.dataset_op`, `runlink.log_dataset_op`).

A span is one event (`span`), sent when the call ends: its time is the end, `duration_ms` gives the start. In the
caller's thread a span costs a ContextVar set/reset, two clock reads, a small dict and an O(1) append to the
delivery queue; capturing arguments or a result (opt-in), and formatting a traceback (on failure only), cost more.
The current span lives in a ContextVar, so threads and asyncio tasks each keep their own stack; metrics and
datasets logged inside a span carry its id. Under Airflow a span belongs to the current task attempt
(`AIRFLOW_CTX_*`, as `log_metric`); elsewhere to a run of the process's own (`python:<script>`, one run id per
process), so a plain script's spans form a run tree too. Nothing here raises into the user's code: a tracking
failure is swallowed and the function's own outcome (result or exception) is what the caller sees.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from runlink import delivery, sdk
from runlink.config import env_value, parse_bool
from runlink.masking import MASK, is_secret_key, mask_text, mask_value
from runlink.span_context import OpenSpan, current_span

log = logging.getLogger("runlink")

F = TypeVar("F", bound=Callable[..., Any])

#: bounds of what a span carries (the protocol's maxLengths are larger; these keep events small)
MAX_NAME_CHARS = 1000
MAX_VALUE_CHARS = 1000
MAX_ARGS = 50
MAX_TRACEBACK_CHARS = 64 * 1024
MAX_MESSAGE_CHARS = 8192
MAX_PREVIEW_ROWS = 20


_id_prefix = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)
_own_context: dict[str, str] | None = None


def _reset_after_fork() -> None:
    """A forked child is another process: new span ids and, outside Airflow, a run of its own."""
    global _id_prefix, _id_counter, _own_context
    _id_prefix = uuid.uuid4().hex[:16]
    _id_counter = itertools.count(1)
    _own_context = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def process_context() -> Mapping[str, str]:
    """The context spans report under: the Airflow task attempt, else this process's own run."""
    context = sdk.current_context()
    if context is not None:
        return context
    global _own_context
    if _own_context is None:
        script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "python"
        script = script or "python"
        _own_context = {"dag_id": f"python:{script}"[:250], "dag_run_id": uuid.uuid4().hex,
                        "task_id": script[:250], "try_number": "1"}
    return _own_context


def _open(name: str) -> tuple[OpenSpan, Any]:
    parent = current_span.get()
    context = parent.context if parent is not None else process_context()
    span = OpenSpan(f"{_id_prefix}{next(_id_counter):x}", parent.span_id if parent is not None else None, name,
                 context)
    return span, current_span.set(span)


def _close(client: Any, span: OpenSpan, token: Any, started: float, error: BaseException | None,
           args: dict[str, Any] | None = None, result: Any = None, capture_result: bool = False) -> None:
    duration_ms = (time.perf_counter() - started) * 1000.0
    try:
        current_span.reset(token)
    except ValueError:  # reset from another context (a generator closed elsewhere): leave the stack as it is
        pass
    payload: dict[str, Any] = {"span_id": span.span_id, "parent_span_id": span.parent_id, "name": span.name,
                               "duration_ms": duration_ms, "state": "success" if error is None else "failed"}
    if error is not None:
        payload["error"] = error_of(error)
    if args is not None:
        payload["args"] = args
    if capture_result and error is None:
        payload["result"] = _bounded_repr(result)
    client.emit_lazy("span", payload, time.time(), span.context)


def error_of(error: BaseException) -> dict[str, str]:
    """An exception as the protocol's `error` (type, message, traceback): bounded and masked."""
    try:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:  # a broken __str__ must not break the report
        text = ""
    if len(text) > MAX_TRACEBACK_CHARS:
        text = text[:1024] + "\n...\n" + text[-(MAX_TRACEBACK_CHARS - 1100):]
    try:
        message = str(error)
    except Exception:
        message = "<unprintable>"
    kind = type(error)
    return {"type": f"{kind.__module__}.{kind.__qualname__}"[:500], "message": mask_text(message[:MAX_MESSAGE_CHARS]),
            "traceback": mask_text(text)}


def _bounded_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}: unprintable>"
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return mask_text(text)


def _captured_args(signature: inspect.Signature | None, args: tuple, kwargs: dict[str, Any]) -> dict[str, str]:
    """Arguments by parameter name as bounded reprs; a secret-named parameter (`password`, `token`...) is `***`
    whatever its value, and every other value is masked as text."""
    named: dict[str, Any]
    try:
        named = dict(signature.bind_partial(*args, **kwargs).arguments) if signature is not None else {}
    except TypeError:
        named = {}
    if not named:
        named = {**{f"arg{i}": v for i, v in enumerate(args)}, **kwargs}
    out: dict[str, str] = {}
    for key, value in itertools.islice(named.items(), MAX_ARGS):
        key = str(key)[:200]
        out[key] = MASK if is_secret_key(key) else _bounded_repr(value)
    return out


def _client() -> Any:
    return delivery._client or delivery.get_client()


# -- @track ----------------------------------------------------------------------------------------------


@overload
def track(func: F) -> F: ...


@overload
def track(*, name: str | None = None, capture_args: bool = False,
          capture_result: bool = False) -> Callable[[F], F]: ...


def track(func: Callable[..., Any] | None = None, *, name: str | None = None, capture_args: bool = False,
          capture_result: bool = False) -> Any:
    """Record each call of a function as a span: `@runlink.track` or `@runlink.track(name=..., capture_args=True,
    capture_result=True)`. Sync and async functions; a generator function is returned as it is (not tracked)."""
    if func is None:
        return lambda f: _wrap(f, name, capture_args, capture_result)
    return _wrap(func, name, capture_args, capture_result)


def _wrap(func: Callable[..., Any], name: str | None, capture_args: bool, capture_result: bool) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        log.debug("runlink.track: %r is a generator function; it is not tracked", func)
        return func
    qualname = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))
    span_name = str(name or qualname.rsplit("<locals>.", 1)[-1])[:MAX_NAME_CHARS] or "function"
    signature: inspect.Signature | None = None
    if capture_args:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def tracked_async(*args: Any, **kwargs: Any) -> Any:
            client = _client()
            if not client.tracking:
                return await func(*args, **kwargs)
            try:
                span, token = _open(span_name)
                captured = _captured_args(signature, args, kwargs) if capture_args else None
            except Exception:
                return await func(*args, **kwargs)
            started = time.perf_counter()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                _safe_close(client, span, token, started, exc, captured)
                raise
            _safe_close(client, span, token, started, None, captured, result, capture_result)
            return result

        return tracked_async

    @functools.wraps(func)
    def tracked(*args: Any, **kwargs: Any) -> Any:
        client = delivery._client or delivery.get_client()
        if not client.tracking:
            return func(*args, **kwargs)
        try:
            span, token = _open(span_name)
            captured = _captured_args(signature, args, kwargs) if capture_args else None
        except Exception:
            return func(*args, **kwargs)
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _safe_close(client, span, token, started, exc, captured)
            raise
        _safe_close(client, span, token, started, None, captured, result, capture_result)
        return result

    return tracked


def _safe_close(client: Any, span: OpenSpan, token: Any, started: float, error: BaseException | None,
                args: dict[str, Any] | None, result: Any = None, capture_result: bool = False) -> None:
    try:
        _close(client, span, token, started, error, args, result, capture_result)
    except Exception:  # never hurt the job
        pass


# -- with runlink.span(...) -----------------------------------------------------------------------------


class span:  # noqa: N801 - used as `with runlink.span("name"):`, like a function
    """`with runlink.span("load"):` records the block as a span (nested in the enclosing one, if any)."""

    __slots__ = ("name", "_client", "_span", "_token", "_started")

    def __init__(self, name: str) -> None:
        self.name = str(name)[:MAX_NAME_CHARS] or "span"
        self._client: Any = None
        self._span: OpenSpan | None = None

    def __enter__(self) -> span:
        try:
            client = _client()
            if client.tracking:
                self._span, self._token = _open(self.name)
                self._client = client
        except Exception:
            self._span = None
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        if self._span is not None:
            _safe_close(self._client, self._span, self._token, self._started, error, None)
            self._span = None

    async def __aenter__(self) -> span:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        self.__exit__(kind, error, tb)

    @property
    def span_id(self) -> str | None:
        return self._span.span_id if self._span is not None else None


# -- dataset operations -----------------------------------------------------------------------------------


def dataset_location(path_or_table: str) -> dict[str, str]:
    """`{"path": ...}` spelled as the Spark listener spells it (Hadoop's Path: `file:/abs/path`, other schemes
    as they are, no trailing slash), or `{"table": ...}` for a table name: one dataset, not two, when Python and
    Spark both see it."""
    text = str(path_or_table).strip()
    if "://" in text or text.startswith(("/", ".", "~", "file:")) or os.sep in text:
        if text.startswith("file://"):
            text = "file:" + text[len("file://"):]
        elif "://" not in text and not text.startswith("file:"):
            text = "file:" + os.path.abspath(os.path.expanduser(text))
        if len(text) > 1 and text.endswith("/") and not text.endswith("://"):
            text = text.rstrip("/")
        return {"path": text[:4096]}
    return {"table": text[:1000]}


def log_dataset_op(
    op_path: str,
    op: str = "read",
    success: bool = True,
    data: Any = None,
    error: BaseException | str | None = None,
    *,
    rows: int | None = None,
    name: str | None = None,
    with_schema: bool | None = None,
    with_preview: bool | None = None,
    with_stats: bool | None = None,
    op_type: str | None = None,
    **databand_options: Any,
) -> None:
    """Report one dataset operation: where (a path or a table), read or write, success or failure, and, from a
    pandas or Spark DataFrame in `data`, rows and schema (a preview of the first rows only with `with_preview`).
    Databand's signature: `op_type` is its name for `op`; its other options (`with_histograms`, `with_partition`,
    ...) are accepted and ignored (logged once). The `with_*` defaults: RUNLINK_DATASET_SCHEMA (true),
    RUNLINK_DATASET_PREVIEW (false), RUNLINK_DATASET_STATS (false), or their DBND__TRACKING__LOG_VALUE_* aliases.
    Never raises."""
    if databand_options:
        _ignored_once(databand_options)
    try:
        _emit_dataset_op(op_path, op_type or op, data, success, error, rows, name,
                         _default(with_schema, "RUNLINK_DATASET_SCHEMA", True),
                         _default(with_preview, "RUNLINK_DATASET_PREVIEW", False),
                         _default(with_stats, "RUNLINK_DATASET_STATS", False))
    except Exception as exc:
        log.warning("runlink.log_dataset_op(%r) failed: %s", op_path, exc)


_IGNORED_LOGGED: set[str] = set()


def _ignored_once(options: Mapping[str, Any]) -> None:
    new = sorted(set(options) - _IGNORED_LOGGED)
    if new:
        _IGNORED_LOGGED.update(new)
        log.warning("runlink dataset operations ignore %s (Databand options with no meaning here)", ", ".join(new))


def _default(value: bool | None, env_name: str, fallback: bool) -> bool:
    if value is not None:
        return bool(value)
    try:
        return parse_bool(env_value(env_name), fallback)
    except ValueError:
        return fallback


def _operation_name(op: Any) -> str:
    """The operation as the tracker counts it (read, write or unknown) from the spellings callers use: "READ",
    or Databand's DbndDatasetOperationType.read (an Enum whose value is "read"), which were stored as unknown
    and left the dataset list's Reads at 0."""
    text = str(getattr(op, "value", op)).strip().lower()
    return text if text in ("read", "write") else "unknown"


def _emit_dataset_op(op_path: str, op: str, data: Any, success: bool, error: BaseException | str | None,
                     rows: int | None, name: str | None, with_schema: bool, with_preview: bool,
                     with_stats: bool) -> None:
    operation = _operation_name(op)
    measured: dict[str, Any] = {}
    spark_ref = None
    client = None
    if data is not None:
        client, measured, spark_ref = sdk.measure_dataframe(data, with_stats, with_schema)
        if measured and with_preview:
            measured["preview"] = _preview(data)
    client = client or _client()
    if not client.tracking:
        return
    payload: dict[str, Any] = {**measured, **dataset_location(op_path), "operation": operation,
                               "name": str(name or op_path)[:1000], "success": bool(success)}
    if rows is not None:
        payload["rows"] = int(rows)
    if error is not None:
        payload["success"] = False
        payload["error"] = error_of(error) if isinstance(error, BaseException) else {
            "type": None, "message": mask_text(str(error)[:MAX_MESSAGE_CHARS])}
    active = current_span.get()
    if active is not None:
        payload["span_id"] = active.span_id
        context: Mapping[str, str] | None = active.context
    else:
        context = process_context()
    client.emit_lazy("dataset", mask_value(payload), time.time(), context, spark_ref)


def _preview(data: Any) -> list[dict[str, Any]] | None:
    """The first rows as JSON-ready dicts, masked (only when asked for: rows can hold personal data)."""
    try:
        if sdk.is_spark_dataframe(data):
            records = [row.asDict() for row in data.limit(MAX_PREVIEW_ROWS).collect()]
        else:
            records = data.head(MAX_PREVIEW_ROWS).to_dict("records")
        return [{str(k): (v if isinstance(v, (int, float, bool)) or v is None else _bounded_repr(v))
                 for k, v in record.items()} for record in records]
    except Exception:
        return None


class dataset_op:  # noqa: N801 - used as `with runlink.dataset_op(path, op="write") as op:`
    """`with runlink.dataset_op("s3://bucket/out", op="write") as op: ...; op.set(df)`: the operation fails when
    the block raises (the exception goes on to the caller), succeeds otherwise; `op.set(data=df, rows=n)` says
    what was read or written."""

    def __init__(self, op_path: str, op: str = "read", *, name: str | None = None, with_schema: bool | None = None,
                 with_preview: bool | None = None, with_stats: bool | None = None,
                 op_type: str | None = None, **databand_options: Any) -> None:
        if databand_options:
            _ignored_once(databand_options)
        self.op_path = op_path
        self.op = op_type or op
        self.name = name
        self.with_schema = with_schema
        self.with_preview = with_preview
        self.with_stats = with_stats
        self.data: Any = None
        self.rows: int | None = None

    def set(self, data: Any = None, *, rows: int | None = None) -> None:
        if data is not None:
            self.data = data
        if rows is not None:
            self.rows = rows

    def __enter__(self) -> dataset_op:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        log_dataset_op(self.op_path, self.op, error is None, self.data, error, rows=self.rows,
                       name=self.name, with_schema=self.with_schema, with_preview=self.with_preview,
                       with_stats=self.with_stats)
