"""Values the store can hold: the checks between "the schema accepts it" and "a column can take it".

Why a separate pass: the protocol schema says `integer`, `string`, `object`; the database says int32 or int64,
no NUL byte in text (PostgreSQL refuses it), and the JSON writer (orjson) stops at 255 levels and at 64-bit
integers. Without this pass such events reached the write and failed with a 500, which agents retry and spool:
one hostile or unlucky event wedged a client's spool. `check_event` runs in `ingest.prepare`, before anything
is written, for every route that stores events (`/api/v1/events` and the OpenLineage translation), and raises
`ProtocolError` (-> 422) naming the event index and the field. It refuses rather than repairs, on SQLite and
PostgreSQL alike, so a batch is stored the same way on either backend or not at all:

- integers outside the column's range: int64 for the schema's integer fields, int32 for those that land in
  32-bit columns (`INT32_FIELDS`, and the context's try number and map index); an integral float in an integer
  field (JSON Schema allows `1.0` there) is range-checked and stored as an int. Free JSON (params, conf, a
  metric's value) is stored as JSON text or a float: there only orjson's own range (int64 to uint64) applies;
- a NUL character (U+0000) in any string or object key;
- JSON nested deeper than `MAX_DEPTH` levels (params, conf, column stats, tasks...).

Instants outside years 1-9999 once in UTC are refused by `ingest.prepare` itself (the parse raises).
Lone surrogates never get this far: the tracker's JSON parser (orjson) refuses them with a 400.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from runlink.protocol import ProtocolError

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
#: what orjson writes into the JSON blobs (params, conf, the batch's audit copy): int64 below, uint64 above
JSON_INTS = (-(2**63), 2**64 - 1)
#: deepest nesting of objects and arrays accepted inside one event (the event itself is level 1)
MAX_DEPTH = 64

_TASK = ("pid", "max_tries")
#: payload fields stored in 32-bit (`Integer`) columns of models.py, per event type; every other integer is int64
INT32_FIELDS: dict[str, tuple[str, ...]] = {
    "task_attempt.start": _TASK,
    "task_attempt.end": _TASK,
    "task_attempt.state": _TASK,
    "spark_app.end": ("exit_code",),
    "spark_job.start": ("job_id",),
    "spark_job.end": ("job_id",),
    "spark_stage.completed": ("stage_id", "attempt_id", "num_tasks", "failed_tasks", "killed_tasks"),
    "spark_executor": ("cores",),
}
#: envelope fields stored in 32-bit columns (agent_health.pid; contexts/task_attempts try_number and map_index)
INT32_ENVELOPE = (("source", "pid"),)
INT32_CONTEXT = ("try_number", "map_index")


def _refuse(index: int | None, field: str, why: str) -> ProtocolError:
    where = f"event {index}" if index is not None else "event"
    return ProtocolError(f"{where}: {field}: {why}", index, field)


def _is_integer_type(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


@functools.cache
def integer_paths() -> dict[str, tuple[tuple[tuple[str, ...], tuple[int, int]], ...]]:
    """Per event type, the payload paths the schema declares `integer` ("*" = every item of an array), each
    with the range its column holds. Read from the schema so that a new integer field is bounded too."""
    from runlink.protocol import load_schema

    schema = load_schema()
    definitions = schema["definitions"]

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[1]]
        return node

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...], out: list[tuple[str, ...]], depth: int) -> None:
        node = resolve(node)
        if depth > 4:
            return
        for name, sub in (node.get("properties") or {}).items():
            sub = resolve(sub)
            if _is_integer_type(sub):
                out.append((*prefix, name))
            elif "properties" in sub:
                walk(sub, (*prefix, name), out, depth + 1)
            elif isinstance(sub.get("items"), Mapping):
                items = resolve(sub["items"])
                if _is_integer_type(items):
                    out.append((*prefix, name, "*"))
                elif "properties" in items:
                    walk(items, (*prefix, name, "*"), out, depth + 1)
            for option in sub.get("anyOf") or ():
                if "properties" in resolve(option):
                    walk(option, (*prefix, name), out, depth + 1)

    result = {}
    for rule in definitions["event"]["allOf"]:
        type_ = rule["if"]["properties"]["type"].get("const")
        body = rule["then"].get("properties", {}).get("payload")
        if type_ is None or body is None:
            continue
        paths: list[tuple[str, ...]] = []
        walk(body, (), paths, 0)
        narrow = set(INT32_FIELDS.get(type_, ()))
        result[type_] = tuple((path, INT32 if len(path) == 1 and path[0] in narrow else INT64) for path in paths)
    return result


#: a precompiled check tree: a dict maps a key (or "*", every item of an array) to its subtree, and a leaf is the
#: (low, high) range of an integer field
Tree = dict[str, Any]


def _tree(paths: tuple[tuple[tuple[str, ...], tuple[int, int]], ...]) -> Tree:
    root: Tree = {}
    for path, bounds in paths:
        node = root
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = bounds
    return root


@functools.cache
def event_tree(event_type: Any) -> Tree:
    """The integer fields of one event type, envelope included, as one tree (see `Tree`)."""
    paths = integer_paths().get(event_type, ()) if isinstance(event_type, str) else ()
    return {"payload": _tree(paths), "source": {name: INT32 for _, name in INT32_ENVELOPE},
            "context": dict.fromkeys(INT32_CONTEXT, INT32)}


def _check_integer(container: Any, key: Any, bounds: tuple[int, int], index: int | None, field: str) -> None:
    """Range-check one integer field in place; an integral float becomes an int (the schema allows `1.0`)."""
    value = container[key]
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # absent or null; anything else is the schema's business
    low, high = bounds
    if not low <= value <= high:
        width = "32" if bounds == INT32 else "64"
        raise _refuse(index, field, f"{value!r} is outside the {width}-bit integer range [{low}, {high}]")
    if isinstance(value, float):
        if not value.is_integer():
            raise _refuse(index, field, f"{value!r} is not an integer")
        container[key] = int(value)


def _field(path: tuple[Any, ...], key: Any) -> str:
    return ".".join(str(p) for p in (*path, key))


def check_event(event: dict[str, Any], index: int | None = None) -> None:
    """Raise ProtocolError when a schema-valid event holds a value the store cannot; may turn integral floats
    of integer fields into ints (in place).

    One pass over every value (ints orjson can write, no NUL in strings or keys, depth at most MAX_DEPTH), which
    follows the event type's integer tree alongside and range-checks the fields it reaches: the per-path walk it
    replaced was half of a batch's ingest CPU."""
    stack: list[tuple[Any, tuple[Any, ...], Tree | None]] = [(event, (), event_tree(event.get("type")))]
    low, high = JSON_INTS
    while stack:
        node, path, tree = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise _refuse(index, ".".join(str(p) for p in path[:4]), f"nested deeper than {MAX_DEPTH} levels")
        keyed = isinstance(node, dict)
        items = node.items() if keyed else enumerate(node)
        item_tree = None if keyed or not tree else tree.get("*")
        for key, value in items:
            sub = (tree.get(key) if key != "*" else None) if keyed and tree else item_tree
            if isinstance(key, str) and "\x00" in key:
                raise _refuse(index, _field(path, key.replace("\x00", "\\u0000")),
                              "a NUL character (\\u0000) cannot be stored")
            if isinstance(value, str):
                if "\x00" in value:
                    raise _refuse(index, _field(path, key), "a NUL character (\\u0000) cannot be stored")
            elif isinstance(value, (dict, list)):
                if value:
                    stack.append((value, (*path, key), sub if isinstance(sub, dict) else None))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                if isinstance(value, int) and not low <= value <= high:
                    raise _refuse(index, _field(path, key),
                                  f"{value} is outside the range JSON is stored with [{low}, {high}]")
                if isinstance(sub, tuple) and (isinstance(value, float) or not sub[0] <= value <= sub[1]):
                    _check_integer(node, key, sub, index, _field(path, key))  # refuses, or makes 1.0 an int


def check_context(try_number: int | None, map_index: int | None, index: int | None) -> None:
    """The normalized context's numbers (they may come as strings) fit the 32-bit columns."""
    low, high = INT32
    for name, value in (("try_number", try_number), ("map_index", map_index)):
        if value is not None and not low <= value <= high:
            raise _refuse(index, f"context.{name}", f"{value} is outside the 32-bit integer range [{low}, {high}]")
