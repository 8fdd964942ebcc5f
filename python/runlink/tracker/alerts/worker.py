"""The alert worker of one tracker process: two daemon threads.

- evaluator: woken by `after_ingest()` (called by the ingest route after its transaction committed; it only
  does a non-blocking `put_nowait`), and by a timer for what time alone changes (missing DAG runs);
- sender: delivers the outbox with retries and backoff.

Ingest never waits for either: a full queue drops the notice and sets a flag that makes the next pass
re-check every rule (so nothing is lost, it is only evaluated later).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from runlink.tracker.alerts import engine, notify
from runlink.tracker.alerts import rules as rules_mod
from runlink.tracker.db import ALERTS_KEY

log = logging.getLogger("runlink.alerts")

#: event types that can change an alert's condition
RELEVANT = {"task_attempt.start", "task_attempt.end", "task_attempt.state", "dag_run.start", "dag_run.end",
            "dag_run.state", "metric", "spark_job.end", "sql_query", "spark_app.end", "dataset", "sql_statement"}
QUEUE_SIZE = 10000


def tick_seconds() -> float:
    return float(os.environ.get("RUNLINK_ALERTS_TICK_S", "30"))


class AlertWorker:
    def __init__(self, db: Any, base_url: str | None = None) -> None:
        self.db = db
        self.base_url = base_url or os.environ.get("RUNLINK_PUBLIC_URL")
        self.notices: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self.wake_sender = threading.Event()
        self.stopping = threading.Event()
        self.overflow = threading.Event()
        self.threads: list[threading.Thread] = []
        self.passes = 0
        self.errors = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------ called from request threads

    def after_ingest(self, prepared: Any) -> None:
        """O(1), never blocks, never raises: the ingest route calls this after its commit."""
        try:
            self.notices.put_nowait(prepared)
        except queue.Full:
            self.overflow.set()
        except Exception:  # noqa: BLE001 - ingest must not fail because of alerts
            pass

    def rules_changed(self, rule_pk: str | None = None) -> None:
        try:
            self.notices.put_nowait(("rule", rule_pk))
        except queue.Full:
            self.overflow.set()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.threads:
            return
        for name, target in (("runlink-alerts-eval", self._eval_loop), ("runlink-alerts-send", self._send_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.wake_sender.set()
        try:
            self.notices.put_nowait(None)
        except queue.Full:
            pass
        for thread in self.threads:
            thread.join(timeout)
        self.threads = []

    # ------------------------------------------------------------ evaluation

    def _any_rule_enabled(self) -> bool:
        with self.db.read() as conn:
            return rules_mod.any_enabled(conn)

    @staticmethod
    def _walk(batch: Any, enabled_now: Callable[[], bool]) -> bool:
        """Whether to walk `batch`: as it says, else as a read of the rules now says."""
        said = getattr(batch, "alert_rules_enabled", None)
        return enabled_now() if said is None else said

    def _drain(self, first: Any) -> tuple[set[str], set[str], bool, set[str | None], bool]:
        """Merge every notice waiting: touched contexts, Spark apps, datasets?, changed rules, stop?

        With no enabled rule the batches are not walked (a rule made later is evaluated everywhere anyway). A batch
        says whether one was when it was stored (`Prepared.alert_rules_enabled`); one that does not costs a read."""
        enabled_now = functools.cache(self._any_rule_enabled)  # one read per drain, for the batches that do not say
        from runlink import ids as ids_mod
        from runlink.tracker.ingest import spark_app_pk

        ctx_ids: set[str] = set()
        app_pks: set[str] = set()
        datasets = False
        changed_rules: set[str | None] = set()
        stop = False
        item = first
        while True:
            if item is None:
                stop = True
            elif isinstance(item, tuple) and item[0] == "rule":
                changed_rules.add(item[1])
            elif self._walk(item, enabled_now):
                # ingest already computed the context ids; the app ids come from its cache (no uuid5 per event)
                ctx_pks = getattr(item, "context_pks", None) or [
                    None if ctx is None else ids_mod.context_id(ctx) for ctx in item.contexts]
                for event, ctx_pk in zip(item.events, ctx_pks, strict=False):
                    type_ = event["type"]
                    if type_ not in RELEVANT:
                        continue
                    if ctx_pk is not None:
                        ctx_ids.add(ctx_pk)
                    spark = event.get("spark")
                    if spark:
                        app_pks.add(spark_app_pk(spark["app_id"], spark.get("attempt_id")))
                    if type_ in ("dataset", "sql_query", "sql_statement"):
                        datasets = True
            try:
                item = self.notices.get_nowait()
            except queue.Empty:
                break
        return ctx_ids, app_pks, datasets, changed_rules, stop

    def _eval_loop(self) -> None:
        next_tick = time.monotonic()
        while not self.stopping.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            try:
                first = self.notices.get(timeout=timeout)
            except queue.Empty:
                first = ()
            try:
                if first == ():
                    self.run_periodic()
                    next_tick = time.monotonic() + tick_seconds()
                    continue
                ctx_ids, app_pks, datasets, changed, stop = self._drain(first)
                if self.overflow.is_set():
                    self.overflow.clear()
                    changed.add(None)
                if ctx_ids or app_pks or datasets or changed:  # nothing touched with no rule enabled
                    self.run_touched(ctx_ids, app_pks, datasets, changed)
                if stop:
                    return
            except Exception as exc:  # noqa: BLE001 - keep the thread alive; the next pass retries
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("alert evaluation failed")

    def run_touched(self, ctx_ids: set[str], app_pks: set[str], datasets: bool,
                    changed_rules: set[str | None] | None = None) -> dict[str, int]:
        with self.db.read() as conn:
            rules = rules_mod.list_rules(conn, enabled_only=True)
            if not rules:
                return {}
            outcomes = engine.evaluate_touched(conn, rules, ctx_ids, app_pks, datasets)
            for rule in rules:
                if changed_rules and (None in changed_rules or rule["id"] in changed_rules):
                    outcomes.extend(engine.evaluate_rule_everywhere(conn, rule))
        return self._apply(outcomes)

    def run_periodic(self) -> dict[str, int]:
        with self.db.read() as conn:
            rules = [r for r in rules_mod.list_rules(conn, enabled_only=True) if r["kind"] == "dag_missing"]
            if not rules:
                return {}
            outcomes = engine.evaluate_periodic(conn, rules)
        return self._apply(outcomes)

    def _apply(self, outcomes: list[engine.Outcome]) -> dict[str, int]:
        decided = [o for o in outcomes if o.firing is not None]
        if not decided:
            return {}
        with self.db.write(keys=(ALERTS_KEY,)) as conn:
            # rules may have been disabled or deleted since the read: re-check inside the write
            live = {r["id"] for r in rules_mod.list_rules(conn, enabled_only=True)}
            counts = engine.apply(conn, [o for o in decided if o.rule["id"] in live], self.base_url)
        self.passes += 1
        if counts.get("queued"):
            self.wake_sender.set()
        return counts

    # ------------------------------------------------------------ delivery

    def _send_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sent_any = self.send_due()
            except Exception:  # noqa: BLE001
                log.exception("alert delivery pass failed")
                sent_any = False
            if sent_any:
                continue
            wait = self._seconds_to_next_due()
            self.wake_sender.wait(timeout=wait)
            self.wake_sender.clear()

    def _seconds_to_next_due(self) -> float:
        try:
            with self.db.read() as conn:
                due = notify.next_due(conn)
        except Exception:  # noqa: BLE001
            return 5.0
        if due is None:
            return 30.0
        from runlink.instants import parse_instant

        when = parse_instant(due)
        if when is None:
            return 5.0
        from datetime import datetime, timezone

        return min(30.0, max(0.05, (when - datetime.now(timezone.utc)).total_seconds()))

    def send_due(self) -> bool:
        with self.db.write(keys=(ALERTS_KEY,)) as conn:
            notify.release_stuck(conn)
            rows = notify.claim_due(conn)
        for row in rows:
            error = notify.deliver(row)
            with self.db.write(keys=(ALERTS_KEY,)) as conn:
                notify.record(conn, row, error)
        return bool(rows)
