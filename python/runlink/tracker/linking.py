"""PURE linking: cluster the distinct normalized contexts of one dag_id into DAG runs and task attempts.

The output is a function of the *set* of contexts (inputs are sorted before anything depends on
order), so any arrival order of the same events gives the same links. The rules are those of
docs/architecture.md "Linking":

1. instance: a context's `uid` (an alias uid counts as the instance it names), else the only uid known for the
   dag_id, else the one instance that has a run matching it (same dag_run_id or logical date; for a date-only
   context, a run on that day); when several instances do, it is flagged ambiguous and stays apart (uid None),
   never re-homed into one of them; with none it stays apart until an instance's run arrives;
2. DAG runs: union-find over strong contexts (dag_run_id or full logical_date) of one
   (instance, dag_id); equal dag_run_id or equal logical_date join, unless the union would hold two
   different dag_run_ids or two different logical_dates;
3. weak contexts (date only): the one strong run on that UTC day; several -> the earliest, flagged
   ambiguous; none -> a placeholder run keyed by the day;
4. run identity: logical_date, else dag_run_id, else `day:<date>` (when two runs share a logical date,
   which rule 2 keeps apart, the key is `logical_date|dag_run_id` so their ids differ);
5. attempts: (task_id, map_index, try_number); without try -> the highest try seen in the run,
   else a placeholder "latest" attempt; without task_id -> the run only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from runlink.context import NormalizedContext
from runlink.ids import NAMESPACE

NO_DATE_KEY = "unknown"


def _uuid5(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def dag_run_pk(uid: str | None, dag_id: str, canonical_key: str) -> str:
    return _uuid5("dag-run:" + (uid or "") + "|" + dag_id + "|" + canonical_key)


def task_attempt_pk(run_pk: str, task_id: str, map_index: int, try_number: int | None) -> str:
    try_part = "latest" if try_number is None else str(try_number)
    return _uuid5("task-attempt:" + run_pk + "|" + task_id + "|" + str(map_index) + "|" + try_part)


@dataclass(frozen=True)
class RunIdentity:
    """A resolved DAG run: its tracker id and what is known of its Airflow identity."""

    id: str
    uid: str | None
    dag_id: str
    canonical_key: str
    run_id: str | None
    logical_date: str | None
    logical_day: str | None
    placeholder: bool


@dataclass(frozen=True)
class AttemptIdentity:
    id: str
    run_pk: str
    task_id: str
    map_index: int
    try_number: int | None  # None: the placeholder "latest" attempt

    @property
    def placeholder(self) -> bool:
        return self.try_number is None


@dataclass(frozen=True)
class Link:
    """Where one context belongs."""

    run: RunIdentity
    attempt: AttemptIdentity | None
    ambiguous: bool


@dataclass
class _Cluster:
    run_ids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    members: list[NormalizedContext] = field(default_factory=list)

    def matches(self, ctx: NormalizedContext) -> bool:
        return (ctx.dag_run_id is not None and ctx.dag_run_id in self.run_ids) or (
            ctx.logical_date is not None and ctx.logical_date in self.dates
        )

    def compatible(self, run_ids: set[str], dates: set[str]) -> bool:
        return len(self.run_ids | run_ids) <= 1 and len(self.dates | dates) <= 1


def _strong(ctx: NormalizedContext) -> bool:
    return ctx.dag_run_id is not None or ctx.logical_date is not None


def _sort_key(ctx: NormalizedContext) -> tuple:
    # contexts that carry both identities first, so they anchor the clusters; then the canonical key
    return (-(ctx.dag_run_id is not None) - (ctx.logical_date is not None), ctx.key())


@dataclass
class _InstanceRuns:
    """What one instance's contexts say about its runs: their dag_run_ids, logical dates and days."""

    run_ids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    days: set[str] = field(default_factory=set)

    def add(self, ctx: NormalizedContext) -> None:
        if ctx.dag_run_id is not None:
            self.run_ids.add(ctx.dag_run_id)
        if ctx.logical_date is not None:
            self.dates.add(ctx.logical_date)
            self.days.add(ctx.logical_date[:10])

    def matches(self, ctx: NormalizedContext) -> bool:
        if _strong(ctx):
            return ctx.dag_run_id in self.run_ids or ctx.logical_date in self.dates
        return ctx.logical_day is not None and ctx.logical_day in self.days


def place_uidless(ctx: NormalizedContext, known_uids: frozenset[str], runs: Mapping[str, _InstanceRuns]
                  ) -> tuple[str | None, bool]:
    """(instance, ambiguous) of a context without uid: the only instance of the dag_id, else the only instance
    with a matching run; several matching instances -> (None, True); none -> (None, False)."""
    if len(known_uids) == 1:
        return next(iter(known_uids)), False
    candidates = [uid for uid in sorted(runs) if runs[uid].matches(ctx)]
    if len(candidates) == 1:
        return candidates[0], False
    return None, len(candidates) > 1


def _cluster_runs(strong: list[NormalizedContext]) -> list[_Cluster]:
    clusters: list[_Cluster] = []
    for ctx in sorted(strong, key=_sort_key):
        own = _Cluster(
            run_ids={ctx.dag_run_id} if ctx.dag_run_id else set(),
            dates={ctx.logical_date} if ctx.logical_date else set(),
            members=[ctx],
        )
        kept: list[_Cluster] = []
        for cluster in clusters:
            if cluster.matches(ctx) and cluster.compatible(own.run_ids, own.dates):
                own.run_ids |= cluster.run_ids
                own.dates |= cluster.dates
                own.members = cluster.members + own.members
            else:
                kept.append(cluster)
        clusters = kept + [own]
    return clusters


def link_dag(
    dag_id: str, contexts: Iterable[NormalizedContext], known_uids: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> dict[NormalizedContext, Link]:
    """Links of every context of one dag_id (contexts of other dag_ids are ignored). `aliases` maps an alias
    uid to the uid of the instance it names: a context under an alias links as one under that instance."""
    aliases = aliases or {}
    items = sorted({c for c in contexts if c.dag_id == dag_id}, key=lambda c: c.key())
    canonical = {c: replace(c, uid=aliases[c.uid]) if c.uid in aliases else c for c in items}
    uids = frozenset({*(aliases.get(u, u) for u in known_uids), *(c.uid for c in canonical.values() if c.uid)})
    runs: dict[str, _InstanceRuns] = {}
    for ctx in canonical.values():
        if ctx.uid is not None:
            runs.setdefault(ctx.uid, _InstanceRuns()).add(ctx)
    by_instance: dict[str | None, list[NormalizedContext]] = {}
    apart: set[NormalizedContext] = set()
    for ctx in sorted(set(canonical.values()), key=lambda c: c.key()):
        uid, ambiguous = (ctx.uid, False) if ctx.uid is not None else place_uidless(ctx, uids, runs)
        if ambiguous:
            apart.add(ctx)
        by_instance.setdefault(uid, []).append(ctx)
    links: dict[NormalizedContext, Link] = {}
    for uid, group in sorted(by_instance.items(), key=lambda kv: kv[0] or ""):
        links.update(_link_instance(uid, dag_id, group))
    for ctx in apart:
        links[ctx] = replace(links[ctx], ambiguous=True)
    return {original: links[ctx] for original, ctx in canonical.items()}


def _link_instance(uid: str | None, dag_id: str, group: list[NormalizedContext]) -> dict[NormalizedContext, Link]:
    run_of: dict[NormalizedContext, tuple[RunIdentity, bool]] = {}
    runs: list[RunIdentity] = []
    clusters = _cluster_runs([c for c in group if _strong(c)])
    date_count: dict[str, int] = {}
    for cluster in clusters:
        for date in cluster.dates:
            date_count[date] = date_count.get(date, 0) + 1
    for cluster in clusters:
        logical_date = min(cluster.dates) if cluster.dates else None
        run_id = min(cluster.run_ids) if cluster.run_ids else None
        key = logical_date or run_id or NO_DATE_KEY
        if logical_date and date_count[logical_date] > 1 and run_id:
            # two runs share a logical date (different dag_run_ids): the date alone cannot name either
            key = f"{logical_date}|{run_id}"
        days = {c.logical_day for c in cluster.members if c.logical_day}
        run = RunIdentity(
            id=dag_run_pk(uid, dag_id, key),
            uid=uid,
            dag_id=dag_id,
            canonical_key=key,
            run_id=run_id,
            logical_date=logical_date,
            logical_day=logical_date[:10] if logical_date else (min(days) if days else None),
            placeholder=False,
        )
        runs.append(run)
        for ctx in cluster.members:
            run_of[ctx] = (run, False)
    for ctx in group:
        if _strong(ctx):
            continue
        day = ctx.logical_day
        candidates = sorted(
            (r for r in runs if r.logical_date is not None and r.logical_date[:10] == day),
            key=lambda r: (r.logical_date, r.id),
        )
        if candidates:
            run_of[ctx] = (candidates[0], len(candidates) > 1)
            continue
        key = f"day:{day}" if day else NO_DATE_KEY
        run_of[ctx] = (
            RunIdentity(
                id=dag_run_pk(uid, dag_id, key),
                uid=uid,
                dag_id=dag_id,
                canonical_key=key,
                run_id=None,
                logical_date=None,
                logical_day=day,
                placeholder=True,
            ),
            False,
        )
    # attempts: the highest try seen per (run, task, map_index)
    highest: dict[tuple[str, str, int], int] = {}
    for ctx, (run, _) in run_of.items():
        if ctx.task_id is not None and ctx.try_number is not None:
            slot = (run.id, ctx.task_id, ctx.map_index)
            highest[slot] = max(highest.get(slot, ctx.try_number), ctx.try_number)
    links: dict[NormalizedContext, Link] = {}
    for ctx, (run, ambiguous) in run_of.items():
        attempt = None
        if ctx.task_id is not None:
            try_number = ctx.try_number
            if try_number is None:
                try_number = highest.get((run.id, ctx.task_id, ctx.map_index))
            attempt = AttemptIdentity(
                id=task_attempt_pk(run.id, ctx.task_id, ctx.map_index, try_number),
                run_pk=run.id,
                task_id=ctx.task_id,
                map_index=ctx.map_index,
                try_number=try_number,
            )
        links[ctx] = Link(run=run, attempt=attempt, ambiguous=ambiguous)
    return links
