"""Attach runlink to a SparkSession that is already running (notebooks, tests, tasks that build their own)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runlink.spark.conf import QUERY_LISTENER, SPARK_LISTENER, STREAMING_LISTENER, split_list

log = logging.getLogger("runlink.spark")

JAR_NOT_ON_CLASSPATH = (
    "runlink: the listener jar is not on this Spark driver's classpath, so Spark jobs and stages are not "
    "tracked (SQL queries run from Python still are). A running driver cannot reliably load a jar: "
    "spark.jars and SparkContext.addJar only reach executors and classloaders created later. Create the "
    "session with runlink's conf instead, e.g. "
    "SparkSession.builder.config(map=runlink.spark.conf()).getOrCreate() (pyspark >= 3.4; or .config(k, v) "
    "for each entry), or `spark-submit $(runlink spark-conf) app.py`."
)


@dataclass
class Tracking:
    """What `track_session` attached; returned again (unchanged) on repeated calls.

    SQL queries are reported once: by the JVM query listener (`jvm_query_listener`) when the driver can load the
    jar, else by the PySpark listener (`pyspark_listener`, then in `listener`)."""

    app_id: str
    #: the `spark.runlink.context` value set by the last call (Spark Connect: on the session; classic: on the
    #: calling thread), None when none was set
    work_context: str | None = None
    jvm_listener: bool = False
    jvm_query_listener: bool = False
    #: RunlinkStreamingListener is on the session's StreamingQueryManager (from the conf, or added by track_session)
    jvm_streaming_listener: bool = False
    pyspark_listener: bool = False
    messages: list[str] = field(default_factory=list)
    listener: Any = field(default=None, repr=False)


_tracked: dict[str, Tracking] = {}
_lock = threading.Lock()


def _class_loadable(jvm: Any, name: str) -> bool:
    try:
        return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(name))
    except Exception:
        return False


def session_context(spark_conf: dict[str, str]) -> dict[str, str] | None:
    """The raw Airflow context of this application: `spark.env.AIRFLOW_CTX_*`, then the driver's environment."""
    from runlink.context import ENV_KEYS, from_env

    raw = from_env()
    for env_name, key in ENV_KEYS.items():
        value = spark_conf.get(f"spark.env.{env_name}")
        if value and value.strip():
            raw[key] = value.strip()
    return raw or None


_dedicated: dict[tuple, Any] = {}  # (url, token, tracking) -> the client of a tracker other than the process's
_dedicated_lock = threading.Lock()


def client_for(spark_conf: dict[str, str]) -> Any:
    """The process's delivery client, or a dedicated one (one per tracker, kept) when the Spark conf names
    another tracker: what Python reports about a Spark application goes where its JVM listeners report.

    Precedence (DESIGN.md): spark.runlink.* conf / environment over $RUNLINK_HOME files and defaults.
    """
    from runlink import config as config_mod
    from runlink import delivery

    shared = delivery._client or delivery.get_client()
    if not any(k.startswith("spark.runlink.") for k in spark_conf):
        return shared
    cfg = config_mod.load(spark_conf=spark_conf)
    key = (cfg.url, cfg.token, cfg.tracking)
    current = getattr(shared, "config", None)
    if current is not None and (current.url, current.token, current.tracking) == key:
        return shared
    with _dedicated_lock:
        client = _dedicated.get(key)
        if client is None:
            if not cfg.tracking:
                client = delivery.NoopClient(cfg)
            else:
                import atexit

                client = delivery.Client(cfg)
                atexit.register(client.close, cfg.flush_timeout_s)
            _dedicated[key] = client
        return client


def track_session(spark: Any, context: Mapping[str, object] | None = None) -> Tracking:
    """Attach tracking to a running SparkSession, and link the work it runs from here on to this Airflow task.

    - JVM listeners: nothing to do when the session was created with `runlink.spark.conf()`; otherwise they
      are registered through py4j if the jar is on the driver's classpath, and a clear warning says what to
      do when it is not (once per application: later calls return the first result).
    - Python call sites: DataFrame actions are wrapped so that Spark, and so the query listener, knows the
      user's line.
    - The PySpark QueryExecutionListener reports the queries when no JVM query listener can (it needs only
      py4j's callback server).
    - On a shared application (a Spark Connect server, a cluster other tasks use too), each job, stage and query
      is linked to the task that caused it: the task's raw context (`context`, else this process's AIRFLOW_CTX_*)
      is set as `spark.runlink.context` on a Spark Connect session's conf, or on the calling thread of a classic
      session (a local property: other threads keep theirs). Call it in each task.
    - Structured Streaming: RunlinkStreamingListener is added to the session's streams when its conf did not
      register it (once per session).
    Never raises: tracking problems are logged, the user's session is untouched.
    """
    from runlink.context import from_env

    raw = dict(context) if context is not None else from_env()
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        return _track_connect(spark, raw)
    try:
        sc = spark.sparkContext
        app_id = str(sc.applicationId)
    except Exception as exc:  # no driver in this process to attach to
        result = Tracking(app_id="", messages=[
            f"runlink: cannot attach to this session ({type(exc).__name__}: {exc}); with Spark Connect, start "
            "the Spark Connect server with runlink.spark.conf() instead"])
        log.warning(result.messages[0])
        return result
    with _lock:
        result = _tracked.get(app_id)
        if result is None:
            result = Tracking(app_id=app_id)
            try:
                _attach(spark, sc, result)
            except Exception as exc:  # never hurt the user's session
                result.messages.append(f"runlink: tracking could not be attached: {exc!r}")
                log.warning(result.messages[-1])
            _tracked[app_id] = result
        _add_streaming_listener(spark, sc, result)
    _scope_thread(sc, raw, result)
    return result


def _track_connect(spark: Any, raw: dict[str, Any]) -> Tracking:
    """Spark Connect: the server's listeners (started with runlink's conf) report; this session's SQL conf names
    the task, and every SQL execution propagates it to its jobs."""
    from runlink.spark.job_context import PROPERTY, encode

    try:
        app_id = str(spark.conf.get("spark.app.id", "") or "")
    except Exception:
        app_id = ""
    result = Tracking(app_id=app_id)
    from runlink.spark.pyspark_listener import install_connect_capture

    install_connect_capture()
    value = encode(raw)
    if value is None:
        result.messages.append("runlink: no Airflow context to set on this Spark Connect session (outside an "
                               "Airflow task, pass context=...): its work stays with the server's application")
        log.info(result.messages[-1])
        return result
    try:
        spark.conf.set(PROPERTY, value)
        result.work_context = value
    except Exception as exc:  # an old server, a closed session: never hurt the user's code
        result.messages.append(f"runlink: cannot set {PROPERTY} on this Spark Connect session: {exc!r}")
        log.warning(result.messages[-1])
    return result


def _scope_thread(sc: Any, raw: dict[str, Any], result: Tracking) -> None:
    """Classic session: the task's context as a local property of the calling thread, which Spark copies into
    each job it starts (PySpark pins a JVM thread to each Python thread). Skipped when the application already
    belongs to this task (its conf names the same context): its events say so already."""
    from runlink.context import ENV_KEYS, normalize
    from runlink.spark.job_context import PROPERTY, encode

    value = encode(raw)
    if value is None:
        return
    try:
        conf_map = dict(sc.getConf().getAll())
        own = {key: conf_map[f"spark.env.{name}"] for name, key in ENV_KEYS.items() if f"spark.env.{name}" in conf_map}
        if own and normalize(own) == normalize(raw):
            return
        sc.setLocalProperty(PROPERTY, value)
        result.work_context = value
    except Exception as exc:  # a stopped context, a bad date in the context: never hurt the user's code
        log.warning("runlink: cannot set %s on this thread: %r", PROPERTY, exc)


def _attach(spark: Any, sc: Any, result: Tracking) -> None:
    conf_map = dict(sc.getConf().getAll())
    jvm = sc._jvm
    jsession = spark._jsparkSession

    extra = split_list(conf_map.get("spark.extraListeners"))
    query = split_list(conf_map.get("spark.sql.queryExecutionListeners"))
    loadable = _class_loadable(jvm, SPARK_LISTENER)
    if SPARK_LISTENER in extra:
        result.jvm_listener = True
    elif loadable:
        try:
            listener = jvm.dev.runlink.spark.RunlinkSparkListener(sc._jsc.sc().conf())
            sc._jsc.sc().addSparkListener(listener)
            result.jvm_listener = True
            result.messages.append(
                "runlink: JVM listener attached to a running session: events before this point "
                "(application start, earlier jobs) were not seen by it"
            )
        except Exception as exc:
            result.messages.append(f"runlink: cannot register {SPARK_LISTENER}: {exc!r}")
    if QUERY_LISTENER in query:
        result.jvm_query_listener = True
    elif _class_loadable(jvm, QUERY_LISTENER):
        try:
            try:
                qlistener = jvm.dev.runlink.spark.RunlinkQueryListener(sc._jsc.sc().conf())
            except Exception:
                qlistener = jvm.dev.runlink.spark.RunlinkQueryListener()
            jsession.listenerManager().register(qlistener)
            result.jvm_query_listener = True
        except Exception as exc:
            result.messages.append(f"runlink: cannot register {QUERY_LISTENER}: {exc!r}")
    if not loadable and not result.jvm_listener:
        result.messages.append(JAR_NOT_ON_CLASSPATH)

    from runlink.spark.pyspark_listener import bridge_class, install_callsite_capture

    install_callsite_capture(bridge_class(jvm) if loadable else None)
    report_app = SPARK_LISTENER not in extra  # no JVM listener saw the application start: report it from here
    if not result.jvm_query_listener or report_app:
        spark_ref = {"app_id": result.app_id, "attempt_id": _attempt_id(sc)}
        context, client = session_context(conf_map), client_for(conf_map)
        if not result.jvm_query_listener:
            _register_pyspark_listener(spark, sc, spark_ref, context, client, result)
        if report_app:
            _report_app(sc, conf_map, spark_ref, context, client, result)
    for message in result.messages:
        log.warning(message) if message is JAR_NOT_ON_CLASSPATH or "cannot" in message else log.info(message)


def _add_streaming_listener(spark: Any, sc: Any, result: Tracking) -> None:
    """RunlinkStreamingListener on this session's StreamingQueryManager, once: Spark adds the conf's
    `spark.sql.streaming.streamingQueryListeners` only when it creates a session, so a session started without
    runlink's conf reports no streaming query. Each session (`newSession()` too) has its own manager, so the check
    is the manager's own listener list, not this application's first call."""
    try:
        streams = spark._jsparkSession.streams()
        if any(str(each.getClass().getName()) == STREAMING_LISTENER for each in streams.listListeners()):
            result.jvm_streaming_listener = True
            return
        jvm = sc._jvm
        if not _class_loadable(jvm, STREAMING_LISTENER):
            return
        streams.addListener(jvm.dev.runlink.spark.RunlinkStreamingListener(sc._jsc.sc().conf()))
        result.jvm_streaming_listener = True
    except Exception as exc:  # an old Spark, a stopped session: never hurt the user's code
        result.messages.append(f"runlink: cannot register {STREAMING_LISTENER}: {exc!r}")
        log.warning(result.messages[-1])


def _attempt_id(sc: Any) -> str | None:
    try:
        opt = sc._jsc.sc().applicationAttemptId()
        return str(opt.get()) if opt.isDefined() else None
    except Exception:
        return None


def _register_pyspark_listener(spark: Any, sc: Any, spark_ref: dict[str, Any], context: dict[str, str] | None,
                               client: Any, result: Tracking) -> None:
    from runlink.spark.pyspark_listener import PySparkQueryListener

    try:
        from pyspark.java_gateway import ensure_callback_server_started
    except ImportError:  # very old pyspark
        ensure_callback_server_started = None
    gateway = sc._gateway
    if ensure_callback_server_started is not None:
        ensure_callback_server_started(gateway)
    else:
        gateway.start_callback_server()
    listener = PySparkQueryListener(spark_ref, context, client)
    spark._jsparkSession.listenerManager().register(listener)
    result.listener = listener
    result.pyspark_listener = True


def _report_app(sc: Any, conf_map: dict[str, str], spark_ref: dict[str, Any], context: dict[str, str] | None,
                client: Any, result: Tracking) -> None:
    """`spark_app.start` (and, without any JVM listener, `spark_app.end` at exit) from Python.

    The tracker names and links an application from its start event; a listener attached late never gets one.
    The event id is derived from the app id, so calling this again changes nothing.
    """
    import atexit
    from datetime import datetime, timezone

    from runlink import ids
    from runlink.instants import format_instant
    from runlink.protocol.events import make_event

    listener = result.listener
    source_id = ids.spark_app_id(spark_ref["app_id"], spark_ref.get("attempt_id"))
    try:
        user = str(sc.sparkUser())
    except Exception:
        user = None
    payload = {
        "name": sc.appName,
        "spark_version": sc.version,
        "master": sc.master,
        "deploy_mode": conf_map.get("spark.submit.deployMode"),
        "user": user,
        "start_time": format_instant(datetime.fromtimestamp(sc.startTime / 1000.0, timezone.utc)),
        "ui_url": sc.uiWebUrl,
    }
    client.emit(make_event(
        "spark_app.start", payload, context=context, spark=spark_ref, agent="pyspark",
        event_id=ids.event_id(source_id, "spark_app.start", "pyspark"),
    ))
    if result.jvm_listener:
        return  # the JVM listener reports the end

    def _end() -> None:
        if listener is not None:
            listener.drain(5.0)
        client.emit(make_event(
            "spark_app.end", {"end_time": format_instant(datetime.now(timezone.utc))},
            context=context, spark=spark_ref, agent="pyspark",
            event_id=ids.event_id(source_id, "spark_app.end", "pyspark"),
        ))

    atexit.register(_end)


def tracked(app_id: str) -> Tracking | None:
    """The tracking attached to an application in this process, if any (tests, diagnostics)."""
    return _tracked.get(app_id)
