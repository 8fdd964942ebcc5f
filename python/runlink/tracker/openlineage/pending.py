"""OpenLineage events waiting for their parent run: listed, retried when runlink learns of runs, expired.

Why: a child whose parent is not known yet must neither vanish nor wait silently. It is listed as `pending`; once
older than the TTL (tracker setting `openlineage_pending_ttl_s`, env RUNLINK_OPENLINEAGE_PENDING_TTL_S) it is
listed as `unlinked`. Rows are never dropped: one that becomes linkable, pending or unlinked, is linked and leaves
the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select, update

from runlink.instants import format_instant
from runlink.tracker.openlineage.tables import ol_pending

STATUSES = ("pending", "unlinked")
#: rows retried per sweep (oldest first): a listing never turns into an unbounded job
RETRY_LIMIT = 500
_LISTED = (ol_pending.c.id, ol_pending.c.status, ol_pending.c.run_id, ol_pending.c.event_type,
           ol_pending.c.event_time, ol_pending.c.job_namespace, ol_pending.c.job_name, ol_pending.c.waiting_on,
           ol_pending.c.parent_job_namespace, ol_pending.c.parent_job_name, ol_pending.c.root_run_id,
           ol_pending.c.root_job_name, ol_pending.c.received_at, ol_pending.c.unlinked_at)


def default_ttl_s() -> float:
    """The TTL as this process's settings read it (env RUNLINK_OPENLINEAGE_PENDING_TTL_S), for pages without
    the app's settings at hand."""
    from runlink.tracker.settings import TrackerSettings

    return TrackerSettings().openlineage_pending_ttl_s


def _cutoff(ttl_s: float, now: datetime | None = None) -> str:
    return format_instant((now or datetime.now(timezone.utc)) - timedelta(seconds=ttl_s))


def expire(conn: Connection, ttl_s: float) -> int:
    """Move pending rows older than the TTL to `unlinked`; returns how many moved."""
    moved = conn.execute(update(ol_pending)
                         .where(ol_pending.c.status == "pending", ol_pending.c.received_at < _cutoff(ttl_s))
                         .values(status="unlinked", unlinked_at=format_instant(datetime.now(timezone.utc))))
    return int(moved.rowcount or 0)


def counts(conn: Connection, ttl_s: float) -> dict[str, int]:
    """Pending and unlinked counts, read-only (a pending row past the TTL counts as unlinked already)."""
    cutoff = _cutoff(ttl_s)
    fresh = and_(ol_pending.c.status == "pending", ol_pending.c.received_at >= cutoff)
    total, pending = conn.execute(select(func.count(), func.count(case((fresh, 1)))).select_from(ol_pending)).one()
    return {"pending": int(pending), "unlinked": int(total) - int(pending)}


def listing(conn: Connection, status: str, limit: int) -> list[dict[str, Any]]:
    """The waiting events of one status, oldest first (their metadata: the raw event is not shown)."""
    rows = conn.execute(select(*_LISTED).where(ol_pending.c.status == status)
                        .order_by(ol_pending.c.received_at, ol_pending.c.id).limit(limit)).mappings().all()
    return [{**{str(k): v for k, v in row.items()}, "parent_run_id": row["waiting_on"]} for row in rows]


def _naming(dag_ids: Iterable[str]) -> Any | None:
    """The condition on rows naming one of `dag_ids` (parent job "<dag_id>" or "<dag_id>.<task>", root job
    "<dag_id>"); None for no dag_id, which no row names."""
    names = sorted(set(dag_ids))
    if not names:
        return None
    return or_(ol_pending.c.parent_job_name.in_(names), ol_pending.c.root_job_name.in_(names),
               *(ol_pending.c.parent_job_name.startswith(n + ".", autoescape=True) for n in names))


def waiting_rows(conn: Connection, dag_ids: Iterable[str] | None = None, status: str | None = None) -> list[Any]:
    """Rows whose parent may now be linkable: those naming one of `dag_ids` (see `_naming`), or all rows of
    `status`; oldest first, at most RETRY_LIMIT."""
    stmt = select(ol_pending.c.id, ol_pending.c.waiting_on, ol_pending.c.raw)
    if dag_ids is not None:
        naming = _naming(dag_ids)
        if naming is None:
            return []
        stmt = stmt.where(naming)
    if status is not None:
        stmt = stmt.where(ol_pending.c.status == status)
    return list(conn.execute(stmt.order_by(ol_pending.c.received_at, ol_pending.c.id).limit(RETRY_LIMIT)).all())


def any_waiting(conn: Connection, dag_ids: Iterable[str] | None = None) -> bool:
    """Whether a row waits at all, or one naming one of `dag_ids`: a read, so that the usual answer (none)
    costs no write lock."""
    stmt = select(ol_pending.c.id)
    if dag_ids is not None:
        naming = _naming(dag_ids)
        if naming is None:
            return False
        stmt = stmt.where(naming)
    return conn.execute(stmt.limit(1)).first() is not None
