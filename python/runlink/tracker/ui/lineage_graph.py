"""The lineage graph page's data: datasets and the tasks that read and write them, across DAGs. An edge runs
task -> dataset for a write and dataset -> task for a read; from a focus (a dataset or a task) the graph follows
edges `depth` steps upstream, downstream or both. The browser lays it out (static/vendor/dagre)."""

from __future__ import annotations

from collections import deque
from typing import Any

from sqlalchemy import Connection, func, select

from runlink.tracker.models import contexts, dataset_ops, datasets, spark_apps

DIRECTIONS = ("both", "upstream", "downstream")
MAX_DEPTH = 12
MAX_NODES = 400


def task_node(dag_id: str, task_id: str) -> str:
    return f"task:{dag_id}\x1f{task_id}"


def dataset_node(pk: str) -> str:
    return f"dataset:{pk}"


def _label(row: dict[str, Any]) -> str:
    return row.get("table_name") or row.get("path") or row.get("uri") or row.get("identity") or row["id"]


def _edges(conn: Connection) -> list[dict[str, Any]]:
    """Every (dataset, operation, DAG, task) pair with its count and the latest attempt: the task is the op's own
    context, else its Spark application's."""
    context_id = func.coalesce(dataset_ops.c.context_id, spark_apps.c.context_id)
    stmt = (select(dataset_ops.c.dataset_pk, dataset_ops.c.operation, contexts.c.dag_id, contexts.c.task_id,
                   func.count().label("ops"), func.max(contexts.c.attempt_pk).label("attempt_pk"),
                   func.max(dataset_ops.c.time).label("last_time"))
            .select_from(dataset_ops)
            .outerjoin(spark_apps, spark_apps.c.id == dataset_ops.c.spark_app_pk)
            .join(contexts, contexts.c.id == context_id)
            .where(contexts.c.task_id.is_not(None), dataset_ops.c.operation.in_(("read", "write")))
            .group_by(dataset_ops.c.dataset_pk, dataset_ops.c.operation, contexts.c.dag_id, contexts.c.task_id))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def lineage_view(conn: Connection, *, dataset: str | None = None, dag_id: str | None = None,
                 task_id: str | None = None, depth: int = 4, direction: str = "both") -> dict[str, Any]:
    """Nodes and edges around the focus (all of it, capped, without one), ready for layout and for a table."""
    depth = max(1, min(int(depth), MAX_DEPTH))
    direction = direction if direction in DIRECTIONS else "both"
    rows = _edges(conn)
    forward: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    backward: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for r in rows:
        task, ds = task_node(r["dag_id"], r["task_id"]), dataset_node(r["dataset_pk"])
        source, target = (task, ds) if r["operation"] == "write" else (ds, task)
        forward.setdefault(source, []).append((target, r))
        backward.setdefault(target, []).append((source, r))
    focus = dataset_node(dataset) if dataset else (task_node(dag_id, task_id) if dag_id and task_id else None)
    if focus is not None:
        seen = {focus: 0}
        queue = deque([focus])
        while queue and len(seen) < MAX_NODES:
            node = queue.popleft()
            if seen[node] >= depth:
                continue
            steps = (forward.get(node, []) if direction != "upstream" else []) + \
                (backward.get(node, []) if direction != "downstream" else [])
            for other, _ in steps:
                if other not in seen:
                    seen[other] = seen[node] + 1
                    queue.append(other)
        keep = set(seen)
    else:
        keep = set(list(forward) + list(backward))
        keep = set(sorted(keep)[:MAX_NODES])
    edges = []
    for source, targets in forward.items():
        for target, r in targets:
            if source in keep and target in keep:
                edges.append({"source": source, "target": target, "operation": r["operation"], "ops": r["ops"],
                              "last_time": r["last_time"]})
    ds_pks = [n.split(":", 1)[1] for n in keep if n.startswith("dataset:")]
    ds_rows = {r["id"]: r for r in (dict(m._mapping) for m in conn.execute(
        select(datasets).where(datasets.c.id.in_(ds_pks[:MAX_NODES]))))} if ds_pks else {}
    latest_attempt = {task_node(r["dag_id"], r["task_id"]): r["attempt_pk"] for r in rows}
    nodes = []
    for node in sorted(keep):
        kind, key = node.split(":", 1)
        if kind == "dataset":
            row = ds_rows.get(key, {"id": key})
            nodes.append({"id": node, "kind": "dataset", "label": _label(row), "href": f"/ui/datasets/{key}",
                          "focus": node == focus})
        else:
            dag, task = key.split("\x1f", 1)
            attempt = latest_attempt.get(node)
            nodes.append({"id": node, "kind": "task", "label": task, "dag_id": dag, "focus": node == focus,
                          "href": f"/ui/task-attempts/{attempt}" if attempt else f"/ui/dags/{dag}"})
    labels = {n["id"]: n for n in nodes}
    return {"nodes": nodes, "edges": edges, "depth": depth, "direction": direction,
            "focus": labels.get(focus) if focus else None, "truncated": len(keep) >= MAX_NODES,
            "dags": sorted({n["dag_id"] for n in nodes if n["kind"] == "task"}),
            "filters": {"dataset": dataset, "dag_id": dag_id, "task_id": task_id}}
