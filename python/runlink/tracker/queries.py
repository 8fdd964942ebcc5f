"""Read side: run list, run tree, task attempt, Spark app. Core selects turned into plain dicts
(JSON text columns decoded) ready for orjson."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Table, or_, select
from sqlalchemy.sql.elements import ColumnElement

from runlink.tracker import keyset
from runlink.tracker.models import (
    STAGE_METRICS,
    contexts,
    dag_runs,
    dataset_ops,
    datasets,
    log_chunks,
    metrics,
    spans,
    spark_app_contexts,
    spark_apps,
    spark_executors,
    spark_jobs,
    spark_stages,
    sql_queries,
    sql_statements,
    streaming_queries,
    task_attempts,
)
from runlink.tracker.openlineage.children import child_runs

LOG_TAIL_BYTES = 64 * 1024
_loads = orjson.loads


def _rows(conn: Connection, stmt) -> list[dict[str, Any]]:  # noqa: ANN001
    result = conn.execute(stmt)
    keys = [str(k) for k in result.keys()]
    return [dict(zip(keys, row, strict=False)) for row in result.fetchall()]


def _decode(row: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        value = row.get(name)
        if value is not None:
            row[name] = _loads(value)
    return row


def _chunks(items: Sequence, size: int = 900) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _in(conn: Connection, table: Table, column: str, values: Sequence[str], *order: str,
        where: ColumnElement | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in _chunks(list(values)):
        stmt = select(table).where(table.c[column].in_(chunk))
        if where is not None:
            stmt = stmt.where(where)
        if order:
            stmt = stmt.order_by(*(table.c[o] for o in order))
        out.extend(_rows(conn, stmt))
    return out


# ---------------------------------------------------------------- run list

_RUN_SUMMARY = ("id", "uid", "dag_id", "run_id", "logical_date", "state", "start_date", "end_date", "run_type",
                "placeholder", "ambiguous", "synthetic", "sort_key")


#: newest first (logical date, else start), the id breaking ties: the index dag_runs (sort_key, id)
RUNS_ORDER = (keyset.Order(dag_runs.c.sort_key, "sort_key", descending=True),
              keyset.Order(dag_runs.c.id, "id", descending=True))


def list_runs(
    conn: Connection,
    *,
    instance: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    state: str | None = None,
    since: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first (logical date, else start), keyset-paginated: `next` (also `next_cursor`, its older name) and
    `previous` continue the listing; a cursor this server did not make raises ValueError."""
    stmt = select(*(dag_runs.c[c] for c in _RUN_SUMMARY))
    if instance is not None:
        stmt = stmt.where(dag_runs.c.uid == instance)
    if dag_id is not None:
        stmt = stmt.where(dag_runs.c.dag_id == dag_id)
    if run_id is not None:
        stmt = stmt.where(dag_runs.c.run_id == run_id)
    if state is not None:
        stmt = stmt.where(dag_runs.c.state == state)
    if since is not None:
        stmt = stmt.where(dag_runs.c.sort_key >= since)
    page = keyset.page(conn, stmt, RUNS_ORDER, cursor, limit, _run_summary)
    return {**page, "next_cursor": page["next"]}


def _bools(row: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if row.get(name) is not None:
            row[name] = bool(row[name])
    return row


def _run_summary(row: dict[str, Any]) -> dict[str, Any]:
    return _bools(row, "placeholder", "ambiguous", "synthetic")


# ---------------------------------------------------------------- Spark

_STAGE_SELECT = ("spark_app_pk", "stage_id", "attempt_id", "name", "status", "num_tasks", "failed_tasks",
                 "killed_tasks", "submission_time", "completion_time", "failure_reason", "callsite", "task_skew",
                 "job_ids", "distribution", *STAGE_METRICS)
_STAGE_KEYS = _STAGE_SELECT[1:13]


def _stages(conn: Connection, app_pks: Sequence[str],
            where: ColumnElement | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(app pk, stage dict) for every stage of these apps (those `where` keeps), by stage id then attempt. Built
    straight from driver tuples: this is the bulk of a big run tree (10,000 stages), so no intermediate row dicts."""
    stmt = select(*(spark_stages.c[c] for c in _STAGE_SELECT)).where(spark_stages.c.spark_app_pk.in_(app_pks))
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.order_by(spark_stages.c.spark_app_pk, spark_stages.c.stage_id, spark_stages.c.attempt_id)
    rows = conn.execute(stmt).fetchall()  # primary-key order: the clustered order on SQLite
    loads, keys, metric_names = _loads, _STAGE_KEYS, STAGE_METRICS
    out = []
    for row in rows:
        stage = dict(zip(keys, row[1:13], strict=True))
        job_ids, distribution = row[13], row[14]
        stage["job_ids"] = loads(job_ids) if job_ids else []
        stage["distribution"] = loads(distribution) if distribution else None
        stage["metrics"] = dict(zip(metric_names, row[15:], strict=True))
        out.append((row[0], stage))
    return out


@functools.cache
def _stages_json_sql(dialect: str, n: int) -> str:
    """The same stage objects as `_stages`, built by the database as JSON text (one per row)."""
    if dialect == "sqlite":
        obj, job_ids, distribution, mark = "json_object", "json(coalesce(job_ids, '[]'))", "json(distribution)", "?"
    else:
        obj, job_ids, distribution, mark = ("json_build_object", "coalesce(job_ids::json, '[]'::json)",
                                            "distribution::json", "%s")
    fields = ", ".join(f"'{k}', {k}" for k in _STAGE_KEYS)
    metric_fields = ", ".join(f"'{k}', {k}" for k in STAGE_METRICS)
    cast = "" if dialect == "sqlite" else "::text"  # text, not a json value psycopg would parse
    return (f"SELECT spark_app_pk, {obj}({fields}, 'job_ids', {job_ids}, 'distribution', {distribution}, "
            f"'metrics', {obj}({metric_fields})){cast} "
            f"FROM spark_stages WHERE spark_app_pk IN ({', '.join([mark] * n)}) "
            f"ORDER BY spark_app_pk, stage_id, attempt_id")


def _stages_json(conn: Connection, app_pks: Sequence[str]) -> list[tuple[str, orjson.Fragment]]:
    """`_stages` for the JSON API: each stage is JSON text made by the database, spliced into the answer by
    orjson as a Fragment. A 10,000-stage tree spent most of its time building and encoding these dicts."""
    sql = _stages_json_sql(conn.dialect.name, len(app_pks))
    fragment = orjson.Fragment
    return [(pk, fragment(text)) for pk, text in conn.exec_driver_sql(sql, tuple(app_pks)).fetchall()]


def _dataset_ops(conn: Connection, column: str, values: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in _chunks(list(values)):
        stmt = (
            select(dataset_ops, datasets.c.uri, datasets.c.path, datasets.c.table_name, datasets.c.identity)
            .join(datasets, datasets.c.id == dataset_ops.c.dataset_pk)
            .where(dataset_ops.c[column].in_(chunk))
            .order_by(dataset_ops.c.time, dataset_ops.c.id)
        )
        for row in _rows(conn, stmt):
            _decode(row, "schema", "column_stats", "error", "preview")
            row["table"] = row.pop("table_name")
            out.append(row)
    return out


#: which work of a shared application a task's tree shows: (the task's context ids, whether the application is
#: the task's own, so that the work no task claimed is shown too)
Scope = tuple[Sequence[str], bool]


def _scoped(table: Table, scope: Scope | None) -> ColumnElement | None:
    if scope is None:
        return None
    ctx_pks, own = scope
    claimed = table.c.context_id.in_(list(ctx_pks))
    return or_(claimed, table.c.context_id.is_(None)) if own else claimed


def spark_apps_full(conn: Connection, apps: list[dict[str, Any]], *, raw_json: bool = False,
                    scope: Scope | None = None) -> list[dict[str, Any]]:
    """Attach jobs, stages (with metrics), SQL queries (with datasets), streaming queries and executors to app rows.
    `raw_json`: stages as orjson Fragments (for the JSON API only: Python callers get dicts). `scope`: only the
    jobs, stages and queries of these contexts (a shared application under one task)."""
    if not apps:
        return []
    pks = [a["id"] for a in apps]
    by_app = {a["id"]: a for a in apps}
    for app in apps:
        _decode(app, "conf")
        app.pop("start_stamp", None)
        app.pop("end_stamp", None)
        app.pop("context_rank", None)
        # shared: an application other tasks used too, shown here with only this task's work
        app.update(jobs=[], stages=[], queries=[], streaming=[], executors=[], metrics=[],
                   shared=scope is not None)
    for job in _in(conn, spark_jobs, "spark_app_pk", pks, "spark_app_pk", "job_id",
                   where=_scoped(spark_jobs, scope)):
        _decode(job, "stage_ids")
        job.pop("start_stamp")
        job.pop("end_stamp")
        by_app[job.pop("spark_app_pk")]["jobs"].append(job)
    for chunk in _chunks(pks):
        if scope is not None:
            stages = _stages(conn, chunk, _scoped(spark_stages, scope))
        else:
            stages = _stages_json(conn, chunk) if raw_json else _stages(conn, chunk)
        for app_pk, stage in stages:
            by_app[app_pk]["stages"].append(stage)
    queries = _in(conn, sql_queries, "spark_app_pk", pks, "time", "id", where=_scoped(sql_queries, scope))
    ops_by_query: dict[str, list[dict[str, Any]]] = {}
    if queries:
        for op in _dataset_ops(conn, "sql_query_pk", [q["id"] for q in queries]):
            ops_by_query.setdefault(op["sql_query_pk"], []).append(op)
    for query in queries:
        _decode(query, "error")
        _bools(query, "success", "plan_truncated")
        ops = ops_by_query.get(query["id"], [])
        query["inputs"] = [o for o in ops if o["id"].startswith(query["id"] + ":i")]
        query["outputs"] = [o for o in ops if o["id"].startswith(query["id"] + ":o")]
        by_app[query.pop("spark_app_pk")]["queries"].append(query)
    for stream in _in(conn, streaming_queries, "spark_app_pk", pks, "start_time", "run_id",
                      where=_scoped(streaming_queries, scope)):
        _decode(stream, "sources", "error")
        for stamp in ("start_stamp", "progress_stamp", "rates_stamp", "end_stamp"):
            stream.pop(stamp)
        by_app[stream.pop("spark_app_pk")]["streaming"].append(stream)
    for executor in _in(conn, spark_executors, "spark_app_pk", pks, "spark_app_pk", "executor_id"):
        executor.pop("add_stamp")
        executor.pop("remove_stamp")
        by_app[executor.pop("spark_app_pk")]["executors"].append(executor)
    for chunk in _chunks(pks):
        stmt = select(metrics).where(metrics.c.spark_app_pk.in_(chunk), metrics.c.context_id.is_(None))
        for metric in _rows(conn, stmt.order_by(metrics.c.time, metrics.c.id)):
            by_app[metric["spark_app_pk"]]["metrics"].append(_metric(metric))
    return apps


def _metric(row: dict[str, Any]) -> dict[str, Any]:
    kind = row["value_type"]
    if kind == "num":
        value: Any = row["value_num"]
        if value is not None and float(value).is_integer() and abs(value) < 2**53:  # 1e300 stays a float: as an
            value = int(value)  # int it has 301 digits, which no JSON writer (orjson) takes: a 500 on every read
    elif kind == "bool":
        value = bool(row["value_num"])
    elif kind == "str":
        value = row["value_text"]
    else:
        value = None
    return {"key": row["key"], "value": value, "origin": row["origin"], "time": row["time"], "id": row["id"],
            "span_id": row.get("span_id")}


def spark_app(conn: Connection, pk: str, *, raw_json: bool = False) -> dict[str, Any] | None:
    apps = _rows(conn, select(spark_apps).where(spark_apps.c.id == pk))
    if not apps:
        return None
    app = spark_apps_full(conn, apps, raw_json=raw_json)[0]
    link = conn.execute(
        select(contexts.c.run_pk, contexts.c.attempt_pk).where(contexts.c.id == app["context_id"])
    ).first()
    app["dag_run_pk"] = link.run_pk if link else None
    app["task_attempt_pk"] = link.attempt_pk if link else None
    app["used_by"] = _app_users(conn, pk)
    app["shared"] = bool(app["used_by"])
    return app


def _app_users(conn: Connection, app_pk: str) -> list[dict[str, Any]]:
    """The tasks whose work ran on a shared application: each context with the attempt and run it links to."""
    stmt = (
        select(contexts.c.id.label("context_id"), contexts.c.dag_id, contexts.c.task_id, contexts.c.map_index,
               contexts.c.try_number, contexts.c.run_pk.label("dag_run_pk"),
               contexts.c.attempt_pk.label("task_attempt_pk"))
        .join(spark_app_contexts, spark_app_contexts.c.context_id == contexts.c.id)
        .where(spark_app_contexts.c.spark_app_pk == app_pk)
        .order_by(contexts.c.dag_id, contexts.c.run_pk, contexts.c.task_id, contexts.c.map_index,
                  contexts.c.try_number)
    )
    return _rows(conn, stmt)


# ---------------------------------------------------------------- runs and attempts

def _log_tail(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not chunks:
        return None
    chunks.sort(key=lambda c: (c["seq"] if c["seq"] is not None else -1, c["time"] or "", c["id"]))
    text = "".join(c["text"] for c in chunks)
    truncated = any(c["truncated"] for c in chunks) or len(text) > LOG_TAIL_BYTES
    return {"text": text[-LOG_TAIL_BYTES:], "truncated": bool(truncated), "chunks": len(chunks)}


def _attempt_dict(row: dict[str, Any]) -> dict[str, Any]:
    _decode(row, "error", "params")
    _bools(row, "placeholder")
    row.update(metrics=[], datasets=[], spark_apps=[], log=None, openlineage_runs=[], spans=[])
    row["sql_statements"] = []
    return row


def _children(conn: Connection, ctx_rows: list[dict[str, Any]], owner_of_ctx: dict[str, dict[str, Any]],
              raw_json: bool = False) -> None:
    """Fill metrics, datasets, logs and Spark apps of the owners (attempt or run dicts) of these contexts."""
    ctx_pks = [c["id"] for c in ctx_rows]
    for metric in _in(conn, metrics, "context_id", ctx_pks):
        owner_of_ctx[metric["context_id"]]["metrics"].append(_metric(metric))
    for owner in {id(o): o for o in owner_of_ctx.values()}.values():
        owner["metrics"].sort(key=lambda m: (m["time"] or "", m["id"]))
    for op in _dataset_ops(conn, "context_id", ctx_pks):
        if op["sql_query_pk"] is None:
            owner_of_ctx[op["context_id"]]["datasets"].append(op)
    _spans(conn, ctx_pks, owner_of_ctx)
    logs: dict[int, list[dict[str, Any]]] = {}
    owners: dict[int, dict[str, Any]] = {}
    for chunk in _in(conn, log_chunks, "context_id", ctx_pks):
        owner = owner_of_ctx[chunk["context_id"]]
        logs.setdefault(id(owner), []).append(chunk)
        owners[id(owner)] = owner
    for key, chunks in logs.items():
        owners[key]["log"] = _log_tail(chunks)
    _spark_apps(conn, ctx_pks, owner_of_ctx, raw_json)
    for child in child_runs(conn, ctx_pks):  # OpenLineage-only children (dbt, Spark, scripts)
        owner_of_ctx[child["context_id"]].setdefault("openlineage_runs", []).append(child)
    for statement in _in(conn, sql_statements, "context_id", ctx_pks, "start_time", "seq", "id"):
        _bools(_decode(statement, "error", "tables_read", "tables_written"), "success", "statement_truncated")
        owner_of_ctx[statement.pop("context_id")].setdefault("sql_statements", []).append(statement)


def _spans(conn: Connection, ctx_pks: Sequence[str], owner_of_ctx: dict[str, dict[str, Any]]) -> None:
    """Each owner's tracked functions as a tree (`children` by parent id, earliest first), each span with the
    keys of the metrics and the ids of the dataset operations logged inside it. A span whose parent is not
    stored (lost, or not sent yet) is shown as a root."""
    by_owner: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for row in _in(conn, spans, "context_id", ctx_pks):
        _decode(row, "error", "args")
        row.update(children=[], metrics=[], datasets=[])
        owner = owner_of_ctx[row["context_id"]]
        by_owner.setdefault(id(owner), (owner, []))[1].append(row)
    for owner, rows in by_owner.values():
        by_id = {row["id"]: row for row in rows}
        for metric in owner["metrics"]:
            if metric.get("span_id") in by_id:
                by_id[metric["span_id"]]["metrics"].append(metric["key"])
        for op in owner["datasets"]:
            if op.get("span_id") in by_id:
                by_id[op["span_id"]]["datasets"].append(op["id"])
        order = sorted(rows, key=lambda r: (r["start_time"] or "", r["id"]))
        for row in order:
            parent = by_id.get(row["parent_id"]) if row["parent_id"] else None
            (parent["children"] if parent is not None and parent is not row else owner["spans"]).append(row)


def _spark_apps(conn: Connection, ctx_pks: Sequence[str], owner_of_ctx: dict[str, dict[str, Any]],
                raw_json: bool) -> None:
    """Each owner's Spark applications: its own (whole, unless other tasks' work ran there too) and the shared
    ones its tasks used, each showing only that owner's jobs, stages and queries."""
    owned = _in(conn, spark_apps, "context_id", ctx_pks, "start_time", "id")
    used = _in(conn, spark_app_contexts, "context_id", ctx_pks)
    owned_pks = [a["id"] for a in owned]
    users: dict[str, set[str]] = {}  # app pk -> every context that ran work there
    for row in _in(conn, spark_app_contexts, "spark_app_pk", owned_pks) if owned_pks else ():
        users.setdefault(row["spark_app_pk"], set()).add(row["context_id"])
    owners: dict[int, tuple[dict[str, Any], list[str]]] = {}  # id(owner) -> (owner, its context ids)
    for ctx_pk, owner in owner_of_ctx.items():
        owners.setdefault(id(owner), (owner, []))[1].append(ctx_pk)
    ctxs_of = {pk: owners[id(owner)][1] for pk, owner in owner_of_ctx.items()}
    whole: list[dict[str, Any]] = []
    scoped: list[tuple[dict[str, Any], dict[str, Any], Scope]] = []  # (owner, app row, scope)
    placed: set[tuple[int, str]] = set()
    for app in owned:
        owner = owner_of_ctx[app["context_id"]]
        placed.add((id(owner), app["id"]))
        mine = ctxs_of[app["context_id"]]
        if users.get(app["id"], set()) - set(mine):
            scoped.append((owner, app, (mine, True)))
        else:
            whole.append(app)
    shared: dict[str, list[dict[str, Any]]] = {}  # app pk -> owners that used it without owning it
    for row in used:
        owner = owner_of_ctx[row["context_id"]]
        if (id(owner), row["spark_app_pk"]) not in placed:
            placed.add((id(owner), row["spark_app_pk"]))
            shared.setdefault(row["spark_app_pk"], []).append(owner)
    if shared:
        for app in _in(conn, spark_apps, "id", list(shared), "start_time", "id"):
            for owner in shared[app["id"]]:
                scoped.append((owner, dict(app), (owners[id(owner)][1], False)))
    for app in spark_apps_full(conn, whole, raw_json=raw_json):
        owner_of_ctx[app["context_id"]]["spark_apps"].append(app)
    for owner, app, scope in scoped:
        owner["spark_apps"].extend(spark_apps_full(conn, [app], raw_json=raw_json, scope=scope))
    for owner, _ in owners.values():
        owner["spark_apps"].sort(key=lambda a: (a["start_time"] or "", a["id"]))


def run_tree(conn: Connection, pk: str, *, raw_json: bool = False) -> dict[str, Any] | None:
    """The whole tree of one DAG run: attempts with metrics, datasets, log tail, error, params and Spark apps
    (jobs, stages with metrics, SQL queries with datasets, executors). `raw_json`: see spark_apps_full."""
    runs = _rows(conn, select(dag_runs).where(dag_runs.c.id == pk))
    if not runs:
        return None
    run = _bools(_decode(runs[0], "conf"), "placeholder", "ambiguous", "synthetic")
    run.pop("sort_key", None)
    run.update(metrics=[], datasets=[], spark_apps=[], log=None, openlineage_runs=[], spans=[])
    attempts = [
        _attempt_dict(a)
        for a in _rows(
            conn,
            select(task_attempts)
            .where(task_attempts.c.run_pk == pk)
            .order_by(task_attempts.c.task_id, task_attempts.c.map_index, task_attempts.c.try_number),
        )
    ]
    by_attempt = {a["id"]: a for a in attempts}
    ctx_rows = _rows(conn, select(contexts.c.id, contexts.c.attempt_pk).where(contexts.c.run_pk == pk))
    owner_of_ctx = {c["id"]: by_attempt.get(c["attempt_pk"], run) for c in ctx_rows}
    _children(conn, ctx_rows, owner_of_ctx, raw_json)
    run["task_attempts"] = attempts
    return run


def task_attempt(conn: Connection, pk: str, *, raw_json: bool = False) -> dict[str, Any] | None:
    rows = _rows(conn, select(task_attempts).where(task_attempts.c.id == pk))
    if not rows:
        return None
    attempt = _attempt_dict(rows[0])
    ctx_rows = _rows(conn, select(contexts.c.id).where(contexts.c.attempt_pk == pk))
    _children(conn, ctx_rows, {c["id"]: attempt for c in ctx_rows}, raw_json)
    run = _rows(conn, select(*(dag_runs.c[c] for c in _RUN_SUMMARY)).where(dag_runs.c.id == attempt["run_pk"]))
    attempt["dag_run"] = _bools(run[0], "placeholder", "ambiguous", "synthetic") if run else None
    return attempt


def latest_run_pk(conn: Connection, dag_id: str, run_id: str | None = None) -> str | None:
    """The tracker id of a DAG run given Airflow's names (latest when run_id is None)."""
    stmt = select(dag_runs.c.id).where(dag_runs.c.dag_id == dag_id)
    if run_id is not None:
        stmt = stmt.where(or_(dag_runs.c.run_id == run_id, dag_runs.c.id == run_id))
    return conn.execute(stmt.order_by(dag_runs.c.sort_key.desc(), dag_runs.c.id.desc()).limit(1)).scalar()

