"""What the syncer last delivered about each DAG of one instance, so an unchanged DAG costs no request beyond the
DAG list: a fingerprint of its DAG-list record and the operator of each task (for the task attempts' events).

A DAG's structure (its tasks) is fetched again only when Airflow says something changed:

- its DAG-list record changed (description, schedule, tags, owners, file, paused, next run, stale ...).
  `last_parsed_time` is left out: Airflow rewrites it at every parse (every 30 s by default), changed or not;
  so is a paused DAG's next run date (recomputed from the clock at every parse);
- Airflow 3: a new DAG version (`/dags/~/dagVersions`, one request per cycle, newest first down to the last
  version id seen). Airflow makes a version only when the serialized DAG changed, so task edits are seen at once;
- a task instance of a task the cached structure does not have (a task was added);
- Airflow 2.11 has no signal for a task edit that leaves the DAG record alone: a few of the DAGs whose structure is
  oldest (older than `STRUCTURE_MAX_AGE_S`) are refreshed per cycle, so the cost stays flat and every structure is
  at most that old plus a few cycles.

The cache is a cache: a missing, unreadable or foreign file, a backfill (`since`), a tracker without watermark
(new or re-registered instance) or an age over `FULL_REFRESH_S` means "fetch everything" (one full cycle). It is
written only after a cycle the tracker acknowledged, so it never claims more than the tracker has. The monitor
process keeps it in memory across cycles and in `$RUNLINK_HOME/syncer/` (the monitor DAG: the worker's home).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("runlink.syncer")

FORMAT = 2
STRUCTURE_MAX_AGE_S = 3600.0
STRUCTURE_REFRESH_PER_CYCLE = 10
FULL_REFRESH_S = 24 * 3600.0
#: fields of the DAG record that change without the DAG changing
VOLATILE = ("last_parsed_time",)


def fingerprint(dag: dict[str, Any]) -> str:
    stable = {k: v for k, v in dag.items() if k not in VOLATILE}
    if stable.get("is_paused"):
        # a paused DAG's next run is recomputed from "now" at every parse (Airflow 3, interval schedules without
        # catchup) and means nothing while it is paused; unpausing changes the record, and it is fetched again
        stable.pop("next_run_date", None)
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class DagCache:
    def __init__(self, key: str, path: Path | None = None) -> None:
        self.key = key
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.version_mark: int | None = None
        self.full_at: float | None = None

    @classmethod
    def open(cls, home: Path, key: str, name: str) -> DagCache:
        """The cache file of this (tracker, instance, Airflow) in `home`; empty when missing or not ours."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
        cache = cls(key, home / "syncer" / f"dags-{safe}-{digest}.json")
        try:
            data = json.loads(cache.path.read_text("utf-8"))
        except (OSError, ValueError):
            return cache
        if isinstance(data, dict) and data.get("format") == FORMAT and data.get("key") == key:
            cache.entries = data.get("dags") or {}
            cache.version_mark = data.get("version_mark")
            cache.full_at = data.get("full_at")
        return cache

    def valid(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.full_at is not None and now - self.full_at < FULL_REFRESH_S

    def reset(self) -> None:
        self.entries = {}
        self.version_mark = None
        self.full_at = None

    def stale_structures(self, dag_ids: set[str], now: float | None = None,
                         limit: int = STRUCTURE_REFRESH_PER_CYCLE) -> set[str]:
        """The `limit` listed DAGs whose structure is oldest, among those older than STRUCTURE_MAX_AGE_S."""
        now = time.time() if now is None else now
        old = [(e.get("at", 0.0), d) for d, e in self.entries.items()
               if d in dag_ids and now - e.get("at", 0.0) >= STRUCTURE_MAX_AGE_S]
        return {d for _, d in sorted(old)[:limit]}

    def save(self) -> None:
        if self.path is None:
            return
        data = {"format": FORMAT, "key": self.key, "full_at": self.full_at, "version_mark": self.version_mark,
                "dags": self.entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, separators=(",", ":")), "utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # the next process starts with a full cycle: slower, still right
            log.warning("runlink syncer: could not write %s: %s", self.path, exc)
