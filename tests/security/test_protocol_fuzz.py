"""Protocol fuzz against a real tracker, SQLite and PostgreSQL: events generated from the protocol schema
(events-v1.json, one generator per event type), then mutated at the edges: huge and negative integers, extreme
instants, deep nesting, control characters and NUL, wrong types. The rule: never a 5xx; a batch answered 202 is
readable back (its Spark app and DAG runs through the API, and a replay of it is all duplicates).

RUNLINK_PROTOCOL_FUZZ_EXAMPLES sets the cases per backend (default 200). The counts are printed (`FUZZ ...`)
and added to $RUNLINK_FUZZ_REPORT when set, so they can be quoted."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_paths import json_paths, replace_at

from runlink import ids
from runlink.context import ContextError, normalize
from runlink.protocol import load_schema

EXAMPLES = int(os.environ.get("RUNLINK_PROTOCOL_FUZZ_EXAMPLES", "200"))
SCHEMA = load_schema()
DEFINITIONS = SCHEMA["definitions"]

# ------------------------------------------------------------------ generation from the schema

_INSTANT_TEXT = st.datetimes().map(lambda d: d.isoformat() + "Z") | st.sampled_from(
    ["2026-11-21T00:00:00Z", "2026-11-21", "2026-11-21T10:00:00+02:00", "20261121T000000"])
_FREE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        node = DEFINITIONS[node["$ref"].rsplit("/", 1)[1]]
    return node


def from_schema(node: Mapping[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """A strategy for the subset of JSON Schema the protocol uses (type lists, const, enum, anyOf, $ref, objects
    with closed or free properties, arrays, string lengths). Instant fields get instant spellings."""
    node = _resolve(node)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        return st.one_of([from_schema(option, name) for option in node["anyOf"]])
    kinds = node.get("type", "object")
    if isinstance(kinds, list):
        return st.one_of([from_schema({**node, "type": kind}, name) for kind in kinds])
    if kinds == "null":
        return st.none()
    if kinds == "boolean":
        return st.booleans()
    if kinds == "integer":
        return st.integers(-5, 10**6)
    if kinds == "number":
        return st.floats(-1e9, 1e9, allow_nan=False)
    if kinds == "string":
        if "instant" in (node.get("description") or "").lower() or name == "time":
            return _INSTANT_TEXT
        return st.text(min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 30), 30))
    if kinds == "array":
        items = node.get("items")
        return st.lists(from_schema(items, name) if items else _FREE_JSON, max_size=min(node.get("maxItems", 3), 3))
    properties = node.get("properties")
    if not properties:
        extra = node.get("additionalProperties")
        values = from_schema(extra) if isinstance(extra, Mapping) else _FREE_JSON
        return st.dictionaries(st.text(max_size=8), values, max_size=3)
    required = set(node.get("required", ()))
    return st.fixed_dictionaries(
        {key: from_schema(sub, key) for key, sub in properties.items() if key in required},
        optional={key: from_schema(sub, key) for key, sub in properties.items() if key not in required},
    )


def _payload_schemas() -> dict[str, Mapping[str, Any]]:
    out = {}
    for rule in DEFINITIONS["event"]["allOf"]:
        const = rule["if"]["properties"]["type"].get("const")
        if const is not None:
            out[const] = rule["then"]["properties"]["payload"]
    return out


PAYLOADS = _payload_schemas()
_CONTEXT = st.fixed_dictionaries({"dag_id": st.sampled_from(["fz-a", "fz-b"])}, optional={
    "execution_date": _INSTANT_TEXT, "dag_run_id": st.sampled_from(["r1", "r2"]), "task_id": st.sampled_from(["t"]),
    "try_number": st.sampled_from(["1", "2", 1]), "map_index": st.sampled_from([-1, 0, "3"]),
    "uid": st.sampled_from(["u1"])})


@st.composite
def schema_event(draw: Any) -> dict[str, Any]:
    type_ = draw(st.sampled_from(sorted(PAYLOADS)))
    event: dict[str, Any] = {
        "v": 1, "id": "", "type": type_, "time": draw(_INSTANT_TEXT),
        "source": draw(from_schema(DEFINITIONS["source"])), "payload": draw(from_schema(PAYLOADS[type_])),
    }
    if draw(st.booleans()):
        event["context"] = draw(_CONTEXT)
    if type_.startswith("spark_") or type_ == "sql_query" or draw(st.booleans()):
        event["spark"] = {"app_id": draw(st.sampled_from(["app-fz-1", "app-fz-2"])), "attempt_id": None}
    return event


# ------------------------------------------------------------------ mutations at the edges

EDGE_INTEGERS = [2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1,
                 2**64, 10**30, -(10**30), -1, 0, 1.0, 1e300, -1e300]
EDGE_INSTANTS = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
                 "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "+10000-01-01T00:00:00Z",
                 "0000-01-01", "1970-01-01T00:00:00.0000000001Z", "2026-01-01T00:00:00+23:59"]
CONTROL_TEXT = ["\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\r\n", "\u202e", "\ud800", "\udfff", "\x7f\x01", "\ufeff",
                "'; DROP TABLE events; --", "<script>x</script>", "x" * 70000]


def _nest(depth: int, as_list: bool) -> Any:
    node: Any = 1
    for _ in range(depth):
        node = [node] if as_list else {"n": node}
    return node


DEPTHS = [60, 62, 63, 64, 65, 200, 254, 256, 600]


INSTANT_KEYS = frozenset({"time", "execution_date", "logical_date", "start_date", "end_date", "data_interval_start",
                          "data_interval_end", "start_time", "end_time", "submission_time", "completion_time",
                          "next_run_date"})
#: where each type holds free JSON (any depth): the place for deep nesting
FREE_JSON_AT = {"task_attempt.start": ("params",), "task_attempt.end": ("params",), "task_attempt.state": ("params",),
                "dag_run.start": ("conf",), "dag_run.end": ("conf",), "dag_run.state": ("conf",),
                "spark_app.start": ("conf",), "dataset": ("column_stats", "c"), "dag.definition": ("tasks", 0, "x")}


def _leaves(event: dict[str, Any], kind: str) -> list[tuple]:
    """Paths of the values a mutation of `kind` aims at (never the envelope's id or version)."""
    out = []
    for path in json_paths(event):
        if not path or path[0] in ("id", "v"):
            continue
        value = _get(event, path)
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            out.append(path)
        elif kind == "instant" and path[-1] in INSTANT_KEYS:
            out.append(path)
        elif kind == "text" and isinstance(value, str):
            out.append(path)
        elif kind == "any":
            out.append(path)
    return out


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


def _put_free(event: dict[str, Any], value: Any) -> dict[str, Any]:
    """`value` at the type's free-JSON place (params, conf, column stats, a task's extra key)."""
    type_ = event.get("type")
    where = FREE_JSON_AT.get(type_) if isinstance(type_, str) else None  # a mutation may have replaced the type
    if where is None or not isinstance(event.get("payload"), dict):
        return event
    payload = dict(event["payload"])
    if where[0] == "tasks":
        payload["tasks"] = [{"task_id": "t", "x": value}]
    elif where[0] == "column_stats":
        payload["column_stats"] = {"c": {"x": value}}
    else:
        payload[where[0]] = {"k": value}
    return {**event, "payload": payload}


@st.composite
def mutated_event(draw: Any) -> dict[str, Any]:
    """A schema event with 0-3 mutations aimed at the edges: an edge integer in an integer field, an extreme
    instant in an instant field, control characters or NUL in a string, deep nesting (or an edge integer) in
    free JSON (params, conf...), or a value of the wrong type anywhere."""
    event = draw(schema_event())
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["int", "int", "instant", "text", "deep", "free-int", "wrong"]))
        if kind == "deep":
            event = _put_free(event, draw(st.builds(_nest, st.sampled_from(DEPTHS), st.booleans())))
            continue
        if kind == "free-int":
            event = _put_free(event, draw(st.sampled_from(EDGE_INTEGERS)))
            continue
        paths = _leaves(event, {"wrong": "any"}.get(kind, kind)) or _leaves(event, "any")
        path = draw(st.sampled_from(paths))
        value = {"int": st.sampled_from(EDGE_INTEGERS), "instant": st.sampled_from(EDGE_INSTANTS),
                 "text": st.sampled_from(CONTROL_TEXT), "wrong": _FREE_JSON}[kind]
        event = replace_at(event, path, draw(value))
    return event


# ------------------------------------------------------------------ the test

def _report(key: str, value: Any) -> None:
    print(f"FUZZ {key}: {value}")
    path = os.environ.get("RUNLINK_FUZZ_REPORT")
    if path:
        report = Path(path)
        figures = json.loads(report.read_text()) if report.exists() else {}
        figures[key] = value
        report.write_text(json.dumps(figures, indent=1))


def _read_back(tracker: Any, events: list[dict[str, Any]]) -> None:
    """What a 202 stored answers through the API: each Spark app, each DAG run of each dag_id (tree and all)."""
    apps = {(e["spark"]["app_id"], e["spark"].get("attempt_id")) for e in events if e.get("spark")}
    for app_id, attempt in apps:
        response = tracker.get(f"/api/v1/spark-apps/{ids.spark_app_id(app_id, attempt)}")
        assert response.status_code == 200, (response.status_code, response.text[:500])
    dag_ids = set()
    for event in events:
        try:
            ctx = normalize({k: v for k, v in (event.get("context") or {}).items() if v is not None})
        except (ContextError, OverflowError, ValueError):
            continue
        if ctx.dag_id:
            dag_ids.add(ctx.dag_id)
    for dag_id in dag_ids:
        listing = tracker.get("/api/v1/dag-runs", dag_id=dag_id, limit=5)
        assert listing.status_code == 200, (listing.status_code, listing.text[:500])
        for run in listing.json()["items"][:2]:
            tree = tracker.get(f"/api/v1/dag-runs/{run['id']}")
            assert tree.status_code == 200, (tree.status_code, tree.text[:500])


def test_schema_events_mutated_at_the_edges_never_5xx(tracker: Any) -> None:
    seen: dict[str, Any] = {"cases": 0, "5xx": 0, "statuses": {}}
    backend = tracker.backend

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(mutated_event(), min_size=1, max_size=3))
    def one(batch: list[dict[str, Any]]) -> None:
        case = seen["cases"]
        seen["cases"] += 1
        batch = [{**event, "id": f"pf-{backend}-{case}-{n}"} for n, event in enumerate(batch)]
        body = json.dumps({"events": batch}).encode()  # ensure_ascii: lone surrogates travel as \ud800 escapes
        response = requests.post(tracker.url + "/api/v1/events", data=body, timeout=120,
                                 headers={**tracker.headers(), "Content-Type": "application/json"})
        status = response.status_code
        seen["statuses"][status] = seen["statuses"].get(status, 0) + 1
        if status >= 500:
            seen["5xx"] += 1
            raise AssertionError(f"{status} for {body[:2000]!r}\n{tracker.log()[-3000:]}")
        if status == 422:
            detail = response.json()["detail"]
            assert "message" in detail and "index" in detail and "field" in detail, detail
        if status == 202:
            assert response.json()["accepted"] == len(batch), response.text
            _read_back(tracker, batch)
            again = requests.post(tracker.url + "/api/v1/events", data=body, timeout=120,
                                  headers={**tracker.headers(), "Content-Type": "application/json"})
            assert again.status_code == 202 and again.json()["duplicates"] == len(batch), again.text[:500]

    try:
        one()
    finally:
        _report(f"protocol_fuzz_{backend}_cases", seen["cases"])
        _report(f"protocol_fuzz_{backend}_5xx", seen["5xx"])
        _report(f"protocol_fuzz_{backend}_statuses", {str(k): v for k, v in sorted(seen["statuses"].items())})
    assert requests.get(tracker.url + "/healthz", timeout=10).status_code == 200
    assert seen["statuses"].get(202, 0) >= EXAMPLES // 10, seen  # the generator makes valid events too
    assert seen["statuses"].get(422, 0) >= EXAMPLES // 10, seen  # and the mutations reach the checks
