"""The OpenLineage child runs the run tree shows under an attempt or DAG run (dbt, Spark, scripts)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, select

from runlink.tracker.openlineage.tables import ol_datasets, ol_runs


def child_runs(conn: Connection, context_pks: list[str]) -> list[dict[str, Any]]:
    """The OpenLineage child runs filed under these contexts (an attempt's or a DAG run's), with their merged
    datasets, ordered by start: what the run tree shows under the attempt."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(context_pks), 900):
        chunk = context_pks[start:start + 900]
        rows = conn.execute(select(ol_runs).where(ol_runs.c.context_id.in_(chunk),
                                                  ol_runs.c.kind.in_(("other", "spark_app")))).mappings().all()
        out += [dict(r) for r in rows]
    by_run: dict[str, list[dict[str, Any]]] = {}
    run_ids = [r["run_id"] for r in out]
    for start in range(0, len(run_ids), 900):
        for row in conn.execute(select(ol_datasets.c.run_id, ol_datasets.c.merged)
                                .where(ol_datasets.c.run_id.in_(run_ids[start:start + 900]))
                                .order_by(ol_datasets.c.direction, ol_datasets.c.op_id)):
            by_run.setdefault(row.run_id, []).append(orjson.loads(row.merged))
    children = []
    for row in sorted(out, key=lambda r: (r["started_at"] or r["ended_at"] or "", r["run_id"])):
        error = {"message": row["error_message"], "stack_trace": row["error_stack"]} \
            if row["error_message"] or row["error_stack"] else None
        children.append({"run_id": row["run_id"], "kind": row["kind"], "job_namespace": row["job_namespace"],
                         "job_name": row["job_name"], "state": row["state"], "start_time": row["started_at"],
                         "end_time": row["ended_at"], "error": error, "parent_run_id": row["parent_run_id"],
                         "root_run_id": row["root_run_id"], "context_id": row["context_id"],
                         "spark_app_id": row["spark_app_id"], "datasets": by_run.get(row["run_id"], [])})
    return children
