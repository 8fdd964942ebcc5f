"""Export runlink's events as OpenLineage RunEvents to a file (JSON lines) or an HTTP endpoint (Marquez, DataHub).

Tracker-side, not agent-side, on purpose: the tracker sees every agent's events (Airflow listener, syncer, JVM and
PySpark listeners) after validation, so one setting exports everything, agents keep their small dependency set and
no job pays a second network hop. It runs as an ingest hook: after a commit the stored batch is queued (bounded,
never blocking ingest) and a daemon thread translates and writes it.

Setting: `runlink server --openlineage-export TARGET` or `RUNLINK_OPENLINEAGE_EXPORT=TARGET`, where TARGET is
`file:///path/events.jsonl` (or a plain path) or an `http(s)://` URL (a URL without a path gets OpenLineage's
default `/api/v1/lineage`). `RUNLINK_OPENLINEAGE_API_KEY` is sent as `Authorization: Bearer`.
`RUNLINK_OPENLINEAGE_NAMESPACE` (default `runlink`) is the job namespace. Events that came in through
/api/v1/lineage are not exported again (no echo between two OpenLineage consumers).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from runlink import __version__, ids

log = logging.getLogger(__name__)

PRODUCER = f"https://runlink.dev/runlink/{__version__}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
ENV_TARGET = "RUNLINK_OPENLINEAGE_EXPORT"
ENV_API_KEY = "RUNLINK_OPENLINEAGE_API_KEY"
ENV_NAMESPACE = "RUNLINK_OPENLINEAGE_NAMESPACE"
_FAIL_STATES = {"failed", "upstream_failed", "error"}
_DONE_STATES = {"success", "succeeded", "finished", "skipped", "removed"}


def _facet(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/facets/{name}.json", **body}


def _run_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(ids.NAMESPACE, f"openlineage-export:{kind}:{key}"))


def _event_type(type_: str, state: str | None) -> str | None:
    if type_.endswith(".start"):
        return "START"
    state = (state or "").lower()
    if state in _FAIL_STATES:
        return "FAIL"
    if state in _DONE_STATES:
        return "COMPLETE"
    if type_.endswith(".end"):
        return "COMPLETE" if not state else "OTHER"
    return None  # *.state snapshots of a running attempt: nothing to say


def _dataset(ds: dict[str, Any], namespace: str) -> dict[str, Any]:
    if ds.get("path"):
        ns, name = "file", ds["path"]
    elif ds.get("uri") and "://" in ds["uri"]:
        parsed = urlparse(ds["uri"])
        ns, name = f"{parsed.scheme}://{parsed.netloc}", parsed.path or "/"
    else:
        ns, name = namespace, ds.get("table") or ds.get("uri") or ds.get("name") or "unknown"
    facets: dict[str, Any] = {}
    if ds.get("schema"):
        facets["schema"] = _facet("1-1-1/SchemaDatasetFacet", {"fields": [
            {"name": f.get("name"), "type": f.get("type")} for f in ds["schema"]]})
    if ds.get("table"):
        facets["symlinks"] = _facet("1-0-1/SymlinksDatasetFacet", {"identifiers": [
            {"namespace": namespace, "name": ds["table"], "type": "TABLE"}]})
    out: dict[str, Any] = {"namespace": ns, "name": name, "facets": facets}
    stats = {k2: ds[k1] for k1, k2 in (("rows", "rowCount"), ("bytes", "size"), ("files", "fileCount"))
             if ds.get(k1) is not None}
    if stats:
        if ds.get("operation") == "write":
            out["outputFacets"] = {"outputStatistics": _facet("1-0-2/OutputStatisticsOutputDatasetFacet", stats)}
        else:
            out["inputFacets"] = {"inputStatistics": _facet("1-0-0/InputStatisticsInputDatasetFacet", stats)}
    return out


class Translator:
    """runlink protocol events (with their normalized contexts) -> OpenLineage RunEvents."""

    def __init__(self, namespace: str = "runlink") -> None:
        self.namespace = namespace
        self.app_names: OrderedDict[str, str] = OrderedDict()
        self.app_parents: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _remember(self, cache: OrderedDict, key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > 10000:
            cache.popitem(last=False)

    def _task_run(self, ctx: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if ctx is None or ctx.task_id is None:
            return None
        job = {"namespace": self.namespace, "name": f"{ctx.dag_id}.{ctx.task_id}"}
        return job, {"runId": _run_id("task", ctx.key())}

    def _dag_parent(self, ctx: Any) -> dict[str, Any]:
        key = f"{ctx.uid or ''}|{ctx.dag_id}|{ctx.dag_run_id or ctx.logical_date or ctx.logical_day}"
        return {"job": {"namespace": self.namespace, "name": ctx.dag_id}, "run": {"runId": _run_id("dag", key)}}

    def _base(self, event: dict[str, Any], event_type: str, job: dict, run: dict, facets: dict | None = None,
              inputs: list | None = None, outputs: list | None = None) -> dict[str, Any]:
        return {"eventType": event_type, "eventTime": event["time"], "producer": PRODUCER, "schemaURL": SCHEMA_URL,
                "run": {**run, "facets": facets or {}}, "job": job, "inputs": inputs or [], "outputs": outputs or []}

    def translate(self, event: dict[str, Any], ctx: Any) -> dict[str, Any] | None:
        if (event.get("source") or {}).get("agent") == "openlineage":
            return None
        type_ = event["type"]
        payload = event.get("payload") or {}
        if type_.startswith("task_attempt."):
            task = self._task_run(ctx)
            kind = _event_type(type_, payload.get("state"))
            if task is None or kind is None:
                return None
            facets: dict[str, Any] = {"parent": _facet("1-1-0/ParentRunFacet", self._dag_parent(ctx)),
                                      "airflow": _facet("AirflowRunFacet", {  # the provider's shape: consumers
                                          "dag": {"dag_id": ctx.dag_id},  # (and runlink) read the context from it
                                          "dagRun": {"dag_id": ctx.dag_id, "run_id": ctx.dag_run_id,
                                                     "logical_date": ctx.logical_date},
                                          "task": {"task_id": ctx.task_id, "operator_class": payload.get("operator")},
                                          "taskInstance": {"try_number": ctx.try_number,
                                                           "map_index": ctx.map_index}})}
            if ctx.logical_date:
                facets["nominalTime"] = _facet("1-0-1/NominalTimeRunFacet", {"nominalStartTime": ctx.logical_date})
            error = payload.get("error") or {}
            if kind == "FAIL" and error.get("message"):
                facets["errorMessage"] = _facet("1-0-1/ErrorMessageRunFacet", {
                    "message": error["message"], "programmingLanguage": "python",
                    "stackTrace": error.get("traceback")})
            job = {**task[0], "facets": {"jobType": _facet("2-0-3/JobTypeJobFacet", {
                "integration": "AIRFLOW", "jobType": "TASK", "processingType": "BATCH"})}}
            return self._base(event, kind, job, task[1], facets)
        if type_.startswith("dag_run."):
            kind = _event_type(type_, payload.get("state"))
            if ctx is None or kind is None:
                return None
            parent = self._dag_parent(ctx)
            facets = {"airflowDagRun": _facet("AirflowDagRunFacet", {
                "dag": {"dag_id": ctx.dag_id},
                "dagRun": {"dag_id": ctx.dag_id, "run_id": ctx.dag_run_id, "logical_date": ctx.logical_date}})}
            return self._base(event, kind, parent["job"], parent["run"], facets)
        spark = event.get("spark") or {}
        if type_ in ("spark_app.start", "spark_app.end"):
            app_pk = ids.spark_app_id(spark["app_id"], spark.get("attempt_id"))
            if payload.get("name"):
                self._remember(self.app_names, app_pk, payload["name"])
            name = self.app_names.get(app_pk) or spark["app_id"]
            facets = {"spark_applicationDetails": _facet("SparkApplicationDetailsFacet", {
                "applicationId": spark["app_id"], "appName": name, "master": payload.get("master"),
                "deployMode": payload.get("deploy_mode"), "userName": payload.get("user"),
                "uiWebUrl": payload.get("ui_url")})} if type_ == "spark_app.start" else {}
            task = self._task_run(ctx)
            if task is not None:
                parent = {"job": task[0], "run": task[1], "root": self._dag_parent(ctx)}
                self._remember(self.app_parents, app_pk, parent)
                facets["parent"] = _facet("1-1-0/ParentRunFacet", parent)
            kind = "START" if type_ == "spark_app.start" else (
                "FAIL" if (payload.get("state") or "") == "failed" else "COMPLETE")
            return self._base(event, kind, {"namespace": self.namespace, "name": name},
                              {"runId": _run_id("spark-app", app_pk)}, facets)
        if type_ == "sql_query":
            app_pk = ids.spark_app_id(spark["app_id"], spark.get("attempt_id"))
            app_name = self.app_names.get(app_pk) or spark["app_id"]
            facets = {"parent": _facet("1-1-0/ParentRunFacet", {
                "job": {"namespace": self.namespace, "name": app_name},
                "run": {"runId": _run_id("spark-app", app_pk)}})}
            if payload.get("error"):
                facets["errorMessage"] = _facet("1-0-1/ErrorMessageRunFacet", {
                    "message": payload["error"].get("message") or "failed", "programmingLanguage": "scala"})
            action = str(payload.get("action") or "query").lower()
            return self._base(event, "COMPLETE" if payload.get("success") else "FAIL",
                              {"namespace": self.namespace, "name": f"{app_name}.{action}"},
                              {"runId": _run_id("sql", event["id"])}, facets,
                              [_dataset(d, self.namespace) for d in payload.get("inputs") or []],
                              [_dataset(d, self.namespace) for d in payload.get("outputs") or []])
        if type_ == "dataset":
            task = self._task_run(ctx)
            if task is None:
                return None
            ds = _dataset(payload, self.namespace)
            write = payload.get("operation") == "write"
            return self._base(event, "RUNNING", task[0], task[1], {},
                              [] if write else [ds], [ds] if write else [])
        return None


class Exporter:
    """The ingest hook: queue stored batches (bounded, never blocking), translate and write them off-thread."""

    def __init__(self, target: str, *, api_key: str | None = None, namespace: str = "runlink",
                 queue_size: int = 1000, timeout_s: float = 10.0) -> None:
        self.target = target
        self.api_key = api_key
        self.translator = Translator(namespace)
        self.timeout_s = timeout_s
        self.sent = self.failed = self.dropped = 0
        self._queue: deque[Any] = deque()
        self._max = queue_size
        self._wake = threading.Condition()
        self._stop = False
        self._busy = False
        parsed = urlparse(target)
        self.http = parsed.scheme in ("http", "https")
        if self.http:
            self.url = target if parsed.path not in ("", "/") else target.rstrip("/") + "/api/v1/lineage"
            import requests

            self._session = requests.Session()
        else:
            self.path = Path(parsed.path if parsed.scheme == "file" else target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="runlink-openlineage-export", daemon=True)
        self._thread.start()

    @classmethod
    def from_env(cls, target: str | None = None) -> Exporter | None:
        target = target or os.environ.get(ENV_TARGET)
        if not target:
            return None
        return cls(target, api_key=os.environ.get(ENV_API_KEY),
                   namespace=os.environ.get(ENV_NAMESPACE) or "runlink")

    def after_ingest(self, prepared: Any) -> None:
        """Called after each committed batch: O(1), never raises into ingest."""
        with self._wake:
            if len(self._queue) >= self._max:
                self.dropped += len(prepared.events)
                return
            self._queue.append(prepared)
            self._wake.notify()

    def wait_idle(self, timeout: float) -> bool:
        """For tests and shutdown: wait (bounded) until the queue is drained."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._wake.wait(0.05)
            return not self._queue and not self._busy

    def stop(self, timeout: float = 5.0) -> None:
        self.wait_idle(timeout)
        with self._wake:
            self._stop = True
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stop:
                    self._wake.wait()
                if self._stop and not self._queue:
                    return
                prepared = self._queue.popleft()
                self._busy = True
            try:
                out = []
                for event, ctx in zip(prepared.events, prepared.contexts, strict=False):
                    try:
                        ol = self.translator.translate(event, ctx)
                    except Exception:  # noqa: BLE001 - one odd event must not stop the export
                        log.exception("openlineage export: cannot translate a %s event", event.get("type"))
                        continue
                    if ol is not None:
                        out.append(ol)
                if out:
                    self._write(out)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _write(self, events: list[dict[str, Any]]) -> None:
        if not self.http:
            try:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
                self.sent += len(events)
            except OSError as exc:
                self.failed += len(events)
                log.warning("openlineage export to %s failed: %s", self.path, exc)
            return
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for event in events:  # one event per request: what every OpenLineage consumer accepts
            for attempt in range(3):
                try:
                    response = self._session.post(self.url, data=json.dumps(event), headers=headers,
                                                  timeout=self.timeout_s)
                    if response.status_code < 300:
                        self.sent += 1
                        break
                    if response.status_code < 500 and response.status_code != 429:
                        self.failed += 1
                        log.warning("openlineage export: %s answered %s", self.url, response.status_code)
                        break
                except Exception as exc:  # noqa: BLE001
                    log.debug("openlineage export: %s", type(exc).__name__)
                time.sleep(min(2.0, 0.2 * 2**attempt))  # retry backoff, not synchronisation
            else:
                self.failed += 1
