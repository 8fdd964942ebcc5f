"""The PySpark QueryExecutionListener: SQL queries run from Python, with the Python call site.

Each query is reported once. With the listener jar on the driver, the JVM's RunlinkQueryListener reports it, in
process and without a py4j round trip; this module then only supplies the Python line. Without the jar (or when
the JVM listener cannot be registered), the PySpark listener here reports it. Two pieces:

* The call site is captured on the calling thread, by thin wrappers around the DataFrame actions and writer
  methods (`install_callsite_capture`). They set Spark's `callSite.short`/`callSite.long` local properties, so
  Spark names the Python line in its jobs (Spark UI, `spark_job.start.callsite`) and in the SQL execution, where
  the JVM query listener reads it; and they note the action in a small registry of recent actions for the
  PySpark listener. That one cannot read the stack itself: Spark calls QueryExecutionListener callbacks
  *asynchronously*, from its listener bus, which py4j hands to a thread of the callback server, when the user's
  thread has moved on (tests/spark/test_pyspark_listener.py shows it). It matches its execution to the action
  whose time span contains it.
* The callback does O(1) work: it puts (qe, timing) on a bounded queue and returns. A worker thread reads
  inputs/outputs off the plan through py4j and emits `sql_query` events through `runlink.delivery`. Nothing
  here ever raises into Spark.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("runlink.spark")

_MAX_PLAN_CHARS = 16384
_MAX_ACTIONS = 512
#: the jar's class that sets a call site in one py4j call
BRIDGE = "dev.runlink.spark.PythonBridge"

# -- call-site capture on the calling thread -----------------------------------------------------------


class _Action:
    __slots__ = ("callsite", "long", "action", "start", "end", "thread")

    def __init__(self, callsite: str, long: str, action: str, start: float, thread: int) -> None:
        self.callsite = callsite
        self.long = long
        self.action = action
        self.start = start
        self.end: float | None = None
        self.thread = thread


_actions: deque[_Action] = deque(maxlen=_MAX_ACTIONS)
_local = threading.local()
_installed = False
_install_lock = threading.Lock()
#: the jar's dev.runlink.spark.PythonBridge when loadable: sets or clears the call site in one py4j call
_bridge: Any = None


def _internal_dirs() -> tuple[str, ...]:
    dirs = [os.path.dirname(os.path.abspath(__file__))]
    for name in ("pyspark", "py4j"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    dirs.append(os.path.dirname(functools.__file__))  # the standard library (contextlib, functools ...)
    return tuple(d + os.sep for d in dirs)


_INTERNAL: tuple[str, ...] | None = None


def _is_library(filename: str) -> bool:
    return f"{os.sep}site-packages{os.sep}" in filename or f"{os.sep}dist-packages{os.sep}" in filename


def user_frame(skip: int = 1) -> tuple[str, str] | None:
    """(short "file:line", long "file:line in function" x 5) of the user's frame that triggered an action.

    That is the first frame outside pyspark, py4j, runlink and the standard library, and outside installed
    libraries too (chispa, Airflow's operator code) when there is such a frame: an action run through a
    library is reported at the user's line that called the library.
    """
    global _INTERNAL
    if _INTERNAL is None:
        _INTERNAL = _internal_dirs()
    frame = sys._getframe(skip)
    first = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_INTERNAL) and not filename.startswith("<frozen"):
            if first is None:
                first = frame
            if not _is_library(filename):
                break
        frame = frame.f_back
    frame = frame or first
    if frame is None:
        return None
    short = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    lines = []
    walk = frame
    while walk is not None and len(lines) < 5:
        lines.append(f"{walk.f_code.co_filename}:{walk.f_lineno} in {walk.f_code.co_name}")
        walk = walk.f_back
    return short, "\n".join(lines)


def callsite_of(long: str) -> str:
    """`file:line function` of a long form's first frame: the call site every runlink agent reports (the JVM's
    CallSites reads the same long form off Spark's job properties)."""
    first = long.split("\n", 1)[0]
    where, sep, function = first.partition(" in ")
    return f"{where} {function}" if sep else where


def _pyspark_callsite_sync() -> Any:
    try:
        from pyspark.traceback_utils import SCCallSiteSync

        return SCCallSiteSync
    except Exception:
        return None


def _wrap(method: Callable[..., Any], action: str) -> Callable[..., Any]:
    if getattr(method, "__runlink_wrapped__", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "depth", 0):  # an action inside an action (toPandas -> collect): the outer one counts
            return method(self, *args, **kwargs)
        record = None
        jsc = None
        try:
            where = user_frame(2)
            if where is not None:
                record = _Action(callsite_of(where[1]), where[1], action, time.time(), threading.get_ident())
                _actions.append(record)
                jsc = _jsc_of(self)
                if jsc is not None:
                    _set_callsite(jsc, f"{action} at {where[0]}", where[1])
        except Exception:  # never hurt the user's action
            jsc = None
        _local.depth = 1
        # PySpark's own call-site helper would replace ours with this wrapper's line: make it see a nested call
        sync = _pyspark_callsite_sync() if jsc is not None else None
        if sync is not None:
            sync._spark_stack_depth += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            _local.depth = 0
            if sync is not None:
                sync._spark_stack_depth -= 1
            if record is not None:
                record.end = time.time()
            if jsc is not None:
                try:
                    _set_callsite(jsc, None, None)
                except Exception:
                    pass

    wrapper.__runlink_wrapped__ = True  # type: ignore[attr-defined]
    return wrapper


#: whether the bridge was looked up on the driver (a capture installed before any SparkContext existed, as the
#: spark-submit hook does, finds it at the first action)
_bridge_looked_up = False


def bridge_class(jvm: Any) -> Any:
    """The jar's PythonBridge class through py4j, None when the driver cannot load it (each package step is a
    py4j round trip: look it up once)."""
    try:
        if not jvm.org.apache.spark.util.Utils.classIsLoadable(BRIDGE):
            return None
        bridge = jvm
        for part in BRIDGE.split("."):
            bridge = getattr(bridge, part)
        return bridge
    except Exception:
        return None


def _lookup_bridge() -> Any:
    """The bridge of the active SparkContext's driver, looked up at the first action (once per process)."""
    global _bridge, _bridge_looked_up
    _bridge_looked_up = True
    try:
        from pyspark import SparkContext

        sc = SparkContext._active_spark_context
        if sc is not None and sc._jsc is not None:
            _bridge = bridge_class(sc._jvm)
    except Exception:
        _bridge = None
    return _bridge


def _set_callsite(jsc: Any, short: str | None, long: str | None) -> None:
    """Spark's call site for the calling thread: one py4j call through the jar's bridge, else two."""
    global _bridge
    bridge = _bridge if _bridge is not None or _bridge_looked_up else _lookup_bridge()
    if bridge is not None:
        try:
            if bridge.setCallSite(jsc, short, long):
                return
        except Exception:  # a jar without the bridge method (an older runlink on the classpath)
            _bridge = None
    jsc.setLocalProperty("callSite.short", short)
    jsc.setLocalProperty("callSite.long", long)


def _jsc_of(obj: Any) -> Any:
    """The JavaSparkContext behind a DataFrame / writer / session (None for Spark Connect)."""
    session = getattr(obj, "sparkSession", None) or getattr(obj, "_spark", None)
    if session is None and hasattr(obj, "_df"):
        session = getattr(obj._df, "sparkSession", None)
    if session is None and hasattr(obj, "_jsparkSession"):
        session = obj
    sc = getattr(session, "_sc", None) if session is not None else None
    return getattr(sc, "_jsc", None)


_DATAFRAME_ACTIONS = (
    "collect", "count", "toPandas", "show", "take", "head", "first", "tail", "toLocalIterator",
    "foreach", "foreachPartition", "isEmpty", "checkpoint", "localCheckpoint", "toArrow",
)
#: reading runs jobs too (file listing, schema inference): their jobs get the Python line, no query is reported
_READER_ACTIONS = ("load", "parquet", "json", "csv", "orc", "text", "table")
_WRITER_ACTIONS = ("save", "saveAsTable", "insertInto", "parquet", "json", "csv", "orc", "text", "jdbc")
_WRITER_V2_ACTIONS = ("create", "replace", "createOrReplace", "append", "overwrite", "overwritePartitions")


def _classic_classes() -> list[tuple[type, tuple[str, ...]]]:
    try:
        from pyspark.sql.classic.dataframe import DataFrame  # pyspark 4.x: the classic (py4j) DataFrame
    except ImportError:
        from pyspark.sql.dataframe import DataFrame  # pyspark 3.5
    from pyspark.sql.readwriter import DataFrameReader, DataFrameWriter, DataFrameWriterV2
    from pyspark.sql.session import SparkSession

    return [
        (DataFrame, _DATAFRAME_ACTIONS),
        (DataFrameReader, _READER_ACTIONS),
        (DataFrameWriter, _WRITER_ACTIONS),
        (DataFrameWriterV2, _WRITER_V2_ACTIONS),
        (SparkSession, ("sql",)),  # DDL/DML in spark.sql() runs eagerly
    ]


def _wrap_actions(classes: list[tuple[type, tuple[str, ...]]],
                  wrap: Callable[[Callable[..., Any], str], Callable[..., Any]]) -> None:
    """Replace each named action of each class by `wrap(method, name)`; inherited ones too (3.5: toPandas comes
    from a mixin)."""
    for cls, names in classes:
        for name in names:
            method = getattr(cls, name, None)
            if callable(method):
                setattr(cls, name, wrap(method, name))


def install_callsite_capture(bridge: Any = None) -> bool:
    """Wrap PySpark's DataFrame actions and writers once per process so queries know their Python line.

    `bridge`: the jar's PythonBridge class through py4j, when the driver can load it."""
    global _installed, _bridge
    with _install_lock:
        if bridge is not None:
            _bridge = bridge
        if _installed:
            return True
        try:
            _wrap_actions(_classic_classes(), _wrap)
            _installed = True
        except Exception as exc:
            log.warning("runlink: cannot capture Python call sites (%s); queries are tracked without them", exc)
        return _installed


#: a Spark Connect operation's tag naming its Python line: the server makes each tag a job tag
#: (`spark.job.tags`), where the JVM listener reads it (CallSites.fromTags)
CONNECT_TAG = "runlink-callsite="
_connect_installed = False


def _connect_session_of(obj: Any) -> Any:
    """The Spark Connect session behind a DataFrame, a writer or the session itself. Read from the instance's
    own attributes: a Connect DataFrame answers any other name through `__getattr__` (a column lookup that asks
    the server for the schema)."""
    own = getattr(obj, "__dict__", {})
    session = own.get("_session") or own.get("_spark")
    if session is not None:
        return session
    return obj if "addTag" in dir(type(obj)) else None


def _wrap_connect(method: Callable[..., Any], action: str) -> Callable[..., Any]:
    """A Spark Connect action with its Python line as an operation tag: local to the client (no round trip), sent
    with the operation's request, gone after it."""
    if getattr(method, "__runlink_wrapped__", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "depth", 0):
            return method(self, *args, **kwargs)
        session = tag = None
        try:
            where = user_frame(2)
            session = _connect_session_of(self) if where is not None else None
            if session is not None and where is not None:
                tag = CONNECT_TAG + callsite_of(where[1]).replace(",", ";")[:2000]
                session.addTag(tag)
        except Exception:  # never hurt the user's action
            session = None
        _local.depth = 1
        try:
            return method(self, *args, **kwargs)
        finally:
            _local.depth = 0
            if session is not None:
                try:
                    session.removeTag(tag)
                except Exception:
                    pass

    wrapper.__runlink_wrapped__ = True  # type: ignore[attr-defined]
    return wrapper


def install_connect_capture() -> bool:
    """Wrap the Spark Connect client's DataFrame actions and writers once per process (track_session on a
    Spark Connect session), so the server's jobs, stages and queries know the client's Python line."""
    global _connect_installed
    with _install_lock:
        if _connect_installed:
            return True
        try:
            from pyspark.sql.connect.dataframe import DataFrame
            from pyspark.sql.connect.readwriter import DataFrameWriter, DataFrameWriterV2
            from pyspark.sql.connect.session import SparkSession

            _wrap_actions([(DataFrame, _DATAFRAME_ACTIONS), (DataFrameWriter, _WRITER_ACTIONS),
                           (DataFrameWriterV2, _WRITER_V2_ACTIONS), (SparkSession, ("sql",))], _wrap_connect)
            _connect_installed = True
        except Exception as exc:
            log.warning("runlink: cannot capture Python call sites on Spark Connect (%s)", exc)
        return _connect_installed


def _planning_time(qe: Any) -> float | None:
    """When Spark planned this query (epoch s): inside the action for every fresh query, an exact anchor."""
    try:
        phases = qe.tracker().phases()
        if phases.contains("planning"):
            return int(phases.apply("planning").endTimeMs()) / 1000.0
    except Exception:
        return None
    return None


def callsite_for(exec_start: float, exec_end: float, anchor: float | None = None) -> _Action | None:
    """The recorded Python action an execution belongs to.

    With `anchor` (the query's planning time) it is the action whose span contains it: exact even when the
    listener bus runs late. Without (a DataFrame planned by an earlier action), the action whose span
    contains the execution's estimated start; the latest one when several do.
    """
    records = list(_actions)
    if anchor is not None:
        inside = [r for r in records if r.start - 0.002 <= anchor <= (r.end if r.end is not None else 1e18) + 0.002]
        if inside:
            return max(inside, key=lambda r: r.start)
    best = None
    for record in records:
        if record.start > exec_start + 0.005:
            continue
        if record.end is not None and record.end < exec_start:
            continue
        if best is None or record.start >= best.start:
            best = record
    return best


# -- the listener -------------------------------------------------------------------------------------


class PySparkQueryListener:
    """py4j callback object implementing org.apache.spark.sql.util.QueryExecutionListener."""

    def __init__(
        self,
        spark_ref: Mapping[str, Any],
        context: Mapping[str, Any] | None,
        client: Any,
        queue_size: int = 1000,
    ) -> None:
        self.spark_ref = dict(spark_ref)
        self.context = dict(context) if context else None
        self.client = client
        self.dropped = 0
        self.emitted = 0
        self.callback_threads: deque[str] = deque(maxlen=16)  # where Spark called us (see the module doc)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="runlink-pyspark-listener", daemon=True)
        self._thread.start()
        atexit.register(self.drain, 5.0)

    # QueryExecutionListener: called on a py4j callback-server thread; O(1) and never raises.
    def onSuccess(self, funcName: str, qe: Any, durationNs: int) -> None:  # noqa: N802,N803
        self._enqueue(funcName, qe, durationNs / 1e6 if durationNs is not None else None, None)

    def onFailure(self, funcName: str, qe: Any, exception: Any) -> None:  # noqa: N802,N803
        self._enqueue(funcName, qe, None, exception)

    def _enqueue(self, func_name: str, qe: Any, duration_ms: float | None, exception: Any) -> None:
        try:
            thread_name = threading.current_thread().name
            self.callback_threads.append(thread_name)
            item = (func_name, qe, duration_ms, exception, time.time(), thread_name)
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
        except Exception:
            self.dropped += 1

    class Java:
        implements = ["org.apache.spark.sql.util.QueryExecutionListener"]

    # -- worker side ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self.client.emit(self.build_event(*item))
                self.emitted += 1
            except Exception as exc:  # a plan we cannot read must not stop the worker
                self.dropped += 1
                log.debug("runlink: cannot report a query: %r", exc)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until queued callbacks are turned into events: used at exit and by tests."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def build_event(
        self,
        func_name: str,
        qe: Any,
        duration_ms: float | None,
        exception: Any,
        when: float,
        thread_name: str,
    ) -> dict[str, Any]:
        from datetime import datetime, timezone

        from runlink.instants import format_instant
        from runlink.protocol.events import make_event

        payload: dict[str, Any] = {
            "action": func_name,
            "success": exception is None,
            "listener": "python",
            "duration_ms": duration_ms,
        }
        duration_s = (duration_ms or 0.0) / 1000.0
        inputs, outputs, _execution_id, plan = read_plan(qe)
        truncated = plan is not None and len(plan) > _MAX_PLAN_CHARS
        action = callsite_for(when - duration_s, when, _planning_time(qe))
        if action is not None:
            payload["callsite"] = action.callsite
            if duration_ms is None and action.start:
                payload["duration_ms"] = round((when - action.start) * 1000.0, 3)
        if exception is not None:
            payload["error"] = _error(exception)
        payload["inputs"] = inputs
        payload["outputs"] = outputs
        if plan:
            payload["plan_truncated"] = truncated
            payload["plan_summary"] = plan[:_MAX_PLAN_CHARS]
        moment = format_instant(datetime.fromtimestamp(when, timezone.utc))
        return make_event(
            "sql_query", payload, context=self.context, spark=self.spark_ref, agent="pyspark", time=moment
        )


def _error(exception: Any) -> dict[str, Any]:
    try:
        message = str(exception.getMessage())
        type_ = str(exception.getClass().getName())
    except Exception:
        message, type_ = str(exception), None
    return {"type": type_, "message": message[:65536]}


# -- plan reading (worker thread, through py4j) -------------------------------------------------------


def _seq(scala_seq: Any) -> list[Any]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _simple(obj: Any) -> str:
    return str(obj.getClass().getSimpleName())


def _metric(node: Any, name: str) -> int | None:
    try:
        metrics = node.metrics()
        if metrics.contains(name):
            return int(metrics.apply(name).value())
    except Exception:
        return None
    return None


def _schema(struct: Any) -> dict[str, Any]:
    """`schema` (first 500 fields; names and types cut to the protocol's 1000/4000 chars, so a huge nested type
    cannot make the event invalid) and `schema_truncated` when anything was cut."""
    try:
        fields = json.loads(struct.json())["fields"]
    except Exception:
        return {"schema": None}
    schema, truncated = [], len(fields) > 500
    for f in fields[:500]:
        name, type_ = str(f["name"]), f["type"] if isinstance(f["type"], str) else json.dumps(f["type"])
        truncated = truncated or len(name) > 1000 or len(type_) > 4000
        schema.append({"name": name[:1000], "type": type_[:4000], "nullable": f.get("nullable")})
    return {"schema": schema, "schema_truncated": truncated}


def _physical_nodes(plan: Any, limit: int = 400) -> list[Any]:
    """Every physical node, AQE and query stages unwrapped (breadth first, bounded)."""
    out: list[Any] = []
    todo = [plan]
    while todo and len(out) < limit:
        node = todo.pop(0)
        name = _simple(node)
        if name == "AdaptiveSparkPlanExec":
            todo.append(node.executedPlan())
            continue
        if name.endswith("QueryStageExec"):
            todo.append(node.plan())
            continue
        if name in ("ReusedExchangeExec",):
            continue  # its scan was already counted where the exchange was first used
        out.append(node)
        todo.extend(_seq(node.children()))
    return out


def read_plan(qe: Any) -> tuple[list[dict], list[dict], int | None, str | None]:
    """Inputs (file scans with rows/bytes/files), outputs (file and table writes with rows), execution id."""
    inputs: dict[tuple, dict] = {}
    outputs: list[dict] = []
    execution_id = None
    plan_text = None
    try:
        plan = qe.executedPlan()
    except Exception:
        return [], [], None, None
    try:
        plan_text = str(plan.toString())
    except Exception:
        plan_text = None
    for node in _physical_nodes(plan):
        name = _simple(node)
        try:
            if name == "FileSourceScanExec":
                relation = node.relation()
                paths = [str(p.toString()) for p in _seq(relation.location().rootPaths())]
                fmt = str(relation.fileFormat().toString()).lower()
                key = (tuple(paths), fmt)
                entry = inputs.setdefault(
                    key,
                    {"operation": "read", "path": ",".join(paths)[:4096], "format": fmt, "rows": 0,
                     **_schema(relation.dataSchema())},
                )
                for field, metric in (("rows", "numOutputRows"), ("files", "numFiles"), ("bytes", "filesSize")):
                    value = _metric(node, metric)
                    if value is not None:
                        entry[field] = (entry.get(field) or 0) + value if field == "rows" else value
            elif name in ("DataWritingCommandExec", "ExecutedCommandExec"):
                out = _write_of(node.cmd())
                if out is not None:
                    out["rows"] = _metric(node.cmd(), "numOutputRows") if name == "DataWritingCommandExec" else None
                    out["files"] = _metric(node.cmd(), "numFiles")
                    out["bytes"] = _metric(node.cmd(), "numOutputBytes")
                    outputs.append(out)
        except Exception as exc:  # one odd node must not lose the others
            log.debug("runlink: cannot read %s: %r", name, exc)
    return list(inputs.values()), outputs, execution_id, plan_text


def _write_of(cmd: Any) -> dict[str, Any] | None:
    name = _simple(cmd)
    if name == "InsertIntoHadoopFsRelationCommand":
        table = None
        try:
            if cmd.catalogTable().isDefined():
                table = str(cmd.catalogTable().get().identifier().unquotedString())
        except Exception:
            table = None
        return {
            "operation": "write",
            "path": str(cmd.outputPath().toString()),
            "table": table,
            "format": str(cmd.fileFormat().toString()).lower(),
            "mode": str(cmd.mode().toString()).lower(),
            **_schema(cmd.query().schema()),
        }
    if name in ("CreateDataSourceTableAsSelectCommand", "CreateHiveTableAsSelectCommand"):
        table = cmd.table() if name.startswith("CreateDataSource") else cmd.tableDesc()
        return {
            "operation": "write",
            "table": str(table.identifier().unquotedString()),
            "format": str(table.provider().get()) if table.provider().isDefined() else None,
            "mode": str(cmd.mode().toString()).lower(),
        }
    return None
