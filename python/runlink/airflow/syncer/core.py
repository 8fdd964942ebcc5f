"""One sync cycle of one Airflow instance: DAG structure, DAG runs and every try of every task instance changed
since the tracker's watermark (minus an overlap), streamed to the tracker in bounded batches.

Order inside a cycle: DAGs (the list, plus the structure of the DAGs that changed: see `dag_cache`), then runs,
then task instances. Nothing is held beyond one API page and one event
batch, so memory does not grow with the history. The watermark moves only when the whole cycle was delivered;
a failed cycle reports its error and the next one starts from the old watermark (re-sends are duplicates).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from runlink.airflow.syncer import dag_cache, records, watermark
from runlink.airflow.syncer.dag_cache import DagCache
from runlink.airflow.syncer.rest import AirflowClient
from runlink.airflow.syncer.tracker_api import EventSink
from runlink.api_client import TrackerClient
from runlink.instants import now_instant

log = logging.getLogger("runlink.syncer")

FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed", "up_for_retry"})
LOG_TAIL_BYTES = 16 * 1024


@dataclass
class Instance:
    """What a cycle needs to know about the instance (no secrets: those live in the Airflow client)."""

    name: str
    uid: str


@dataclass
class CycleResult:
    name: str
    ok: bool
    window_start: str | None
    watermark: str | None
    dags: int = 0
    dag_details: int = 0
    dags_gone: int = 0
    dag_runs: int = 0
    task_instances: int = 0
    tries: int = 0
    logs: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    airflow_requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Progress:
    """tqdm on stderr when asked for (backfills); a no-op otherwise."""

    def __init__(self, enabled: bool, total: int | None, desc: str) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="rec", file=sys.stderr, dynamic_ncols=True)
            except ImportError:  # tqdm is optional: a plain line per 1000 records
                self.bar = None
                self._plain = (desc, total)
        self.enabled = enabled
        self.count = 0

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.count % 1000 == 0:
            desc, total = self._plain
            print(f"{desc}: {self.count}/{total if total is not None else '?'}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _total(client: AirflowClient, path: str, params: dict[str, Any]) -> int | None:
    try:
        return client.get_json(path, {**params, "limit": 1, "offset": 0}).get("total_entries")
    except Exception:  # noqa: BLE001 - only for the progress bar
        return None


def _attempts(client: AirflowClient, ti: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every try of a task instance. A TI on its first try is its only try (no extra request); a later try or a
    TI waiting for a retry has its earlier tries in Airflow's history."""
    if ti["try_number"] <= 1 and ti.get("state") != "up_for_retry":
        yield ti
        return
    tries = client.tries(ti)
    seen = set()
    for t in tries:
        seen.add(t["try_number"])
        yield t
    if ti["try_number"] not in seen and ti.get("state") != "up_for_retry":
        yield ti


def sync_cycle(
    client: AirflowClient,
    api: TrackerClient,
    instance: Instance,
    *,
    since: str | None = None,
    overlap_s: float = watermark.DEFAULT_OVERLAP_S,
    progress: bool = False,
    logs: bool = False,
    batch_size: int = 500,
    dag_ids: Iterable[str] | None = None,
    cache: DagCache | None = None,
) -> CycleResult:
    """Run one cycle and report it to the tracker (watermark only on success). Never raises for an Airflow or
    tracker error: the result and the tracker's sync state carry it.

    `cache` (what earlier cycles delivered about each DAG) spares the structure requests of unchanged DAGs; it is
    updated (and saved) only when the cycle was delivered. Without one every DAG's structure is fetched."""
    started = time.monotonic()
    cycle_start = now_instant()
    state = api.sync_state(instance.name)
    if state is None:
        raise LookupError(f"no Airflow instance named {instance.name!r} in the tracker (runlink airflow add ...)")
    start = watermark.window_start(state.get("watermark"), since, overlap_s)
    result = CycleResult(name=instance.name, ok=False, window_start=start, watermark=state.get("watermark"))
    sink = EventSink(api, max_events=batch_size)
    only = set(dag_ids) if dag_ids else None
    requests_before = client.requests_made
    cache = cache if cache is not None else DagCache("")
    if since or not state.get("watermark") or not cache.valid():
        cache.reset()  # a backfill, a new (or re-registered) instance, or an old cache: every structure again
    full = cache.full_at is None
    entries = dict(cache.entries)  # this cycle's view; becomes the cache only once delivered
    try:
        versions = client.dag_versions_since(cache.version_mark)
        new_versions, version_mark = versions if versions is not None else (set(), None)
        listed: dict[str, dict[str, Any]] = {}
        for dag in client.dags():
            if only is None or dag["dag_id"] in only:
                listed[dag["dag_id"]] = dag
        # 2.11 cannot say when tasks changed: refresh a few of the oldest structures per cycle
        aged = cache.stale_structures(set(listed)) if versions is None and not full else set()

        def fetch_structure(dag: dict[str, Any]) -> None:
            if dag.get("is_stale"):  # its file is gone: Airflow may have no structure left; the tracker keeps its own
                sink.add(records.dag_definition(instance.uid, dag, None, time=cycle_start))
                old = entries.get(dag["dag_id"]) or {}
                entries[dag["dag_id"]] = {"fp": dag_cache.fingerprint(dag), "at": time.time(),
                                          "ops": old.get("ops", {}), "dag": dag}
                return
            tasks = client.tasks(dag["dag_id"])
            sink.add(records.dag_definition(instance.uid, dag, tasks))
            entries[dag["dag_id"]] = {"fp": dag_cache.fingerprint(dag), "at": time.time(), "dag": dag,
                                      "ops": {t["task_id"]: t["operator"] for t in tasks if t.get("operator")}}
            result.dag_details += 1

        for dag_id, dag in listed.items():
            entry = entries.get(dag_id)
            if (entry is None or entry.get("fp") != dag_cache.fingerprint(dag) or dag_id in new_versions
                    or dag_id in aged):
                fetch_structure(dag)
            result.dags += 1
        if only is None:  # DAGs deleted from Airflow (not even stale ones are listed): marked gone, then forgotten
            for dag_id in [d for d in entries if d not in listed]:
                gone = {**(entries.pop(dag_id).get("dag") or {"dag_id": dag_id}), "is_stale": True}
                sink.add(records.dag_definition(instance.uid, gone, None, time=cycle_start))
                result.dags_gone += 1

        params = {"updated_at_gte": start} if start else {}
        bar = _Progress(progress, _total(client, "/dags/~/dagRuns", params) if progress else None, "dag runs")
        for run in client.dag_runs(start):
            bar.update()
            if only is not None and run["dag_id"] not in only:
                continue
            sink.add(records.dag_run_state(instance.uid, run))
            result.dag_runs += 1
        bar.close()

        bar = _Progress(progress, _total(client, "/dags/~/dagRuns/~/taskInstances", params) if progress else None,
                        "task instances")
        refetched: set[str] = set()
        for ti in client.task_instances(start):
            bar.update()
            if only is not None and ti["dag_id"] not in only:
                continue
            result.task_instances += 1
            entry = entries.get(ti["dag_id"])
            if (entry is not None and ti["task_id"] not in entry["ops"] and ti["dag_id"] in listed
                    and ti["dag_id"] not in refetched):
                refetched.add(ti["dag_id"])  # a task the cached structure lacks: the DAG changed
                fetch_structure(listed[ti["dag_id"]])
                entry = entries[ti["dag_id"]]
            operator = (entry or {}).get("ops", {}).get(ti["task_id"])
            for attempt in _attempts(client, ti):
                sink.add(records.task_attempt_state(instance.uid, attempt, operator))
                result.tries += 1
                if logs and attempt.get("state") in FINISHED and attempt["try_number"] >= 1:
                    text = client.log_tail(attempt, LOG_TAIL_BYTES + 1)
                    if text:
                        truncated = len(text.encode("utf-8")) > LOG_TAIL_BYTES
                        if truncated:
                            text = text.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="ignore")
                        sink.add(records.log_tail(instance.uid, attempt, text, truncated))
                        result.logs += 1
        bar.close()
        sink.flush()
        result.ok = True
        result.watermark = cycle_start
        cache.entries = entries
        cache.version_mark = version_mark if version_mark is not None else cache.version_mark
        if full:
            cache.full_at = time.time()
        cache.save()
    except Exception as exc:  # noqa: BLE001 - reported to the tracker, the monitor goes on
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("runlink syncer: cycle of %s failed: %s", instance.name, result.error)
    finally:
        result.events = sink.counters.events
        result.accepted = sink.counters.accepted
        result.duplicates = sink.counters.duplicates
        result.airflow_requests = client.requests_made - requests_before
        result.seconds = round(time.monotonic() - started, 3)
    report = {
        "last_sync_at": now_instant(),
        "events_sent": result.accepted,
        "cycle": {k: v for k, v in result.as_dict().items() if k not in ("extra",)},
    }
    if result.ok:
        report.update(watermark=result.watermark, last_success_at=report["last_sync_at"], last_error=None,
                      lag_s=watermark.lag_seconds(result.watermark))
    else:
        report.update(last_error=result.error, lag_s=watermark.lag_seconds(state.get("watermark")))
    try:
        api.put_sync_state(instance.name, report)
    except Exception as exc:  # noqa: BLE001
        log.warning("runlink syncer: could not report the sync state of %s: %s", instance.name, exc)
        if result.ok:
            result.ok = False
            result.error = f"sync state not recorded: {exc}"
    return result
