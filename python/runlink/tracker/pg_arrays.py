"""PostgreSQL array literals (`{1,NULL,3}`, `{"a","b\\"c"}`) of one column's values, for the set-based bulk writes
of `sqlutil` (`INSERT ... SELECT FROM unnest($1::bigint[], ...)`).

Built here as text rather than handed to psycopg as lists: psycopg's list adaptation walks every element in Python
to pick the array's type, and that cost twice the server's time for the statement. The usual column (ints, floats
or strings, with NULLs) is one orjson call in C: JSON's numbers, `null` and quoted strings read the same in an
array literal, except for JSON's escapes of control characters and its nulls for non-finite floats, which take
the per-value path. A value with no form in the column's type raises TypeError or ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

_NONE = type(None)
_INT_TYPES = frozenset((int, _NONE))
_FLOAT_TYPES = frozenset((float, int, _NONE))
_TEXT_TYPES = frozenset((str, _NONE))
#: a JSON escape that means something else in an array literal (`\n` there is the letter n)
_JSON_ONLY_ESCAPE = re.compile(rb"\\[bfnrtu]")


def _to_int(value: Any) -> int:
    if isinstance(value, float):  # PostgreSQL's float -> integer cast rounds half away from zero
        return int(value + (0.5 if value >= 0 else -0.5))
    return int(value)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(type(value).__name__)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json_array(values: Sequence[Any]) -> str:
    return "{" + orjson.dumps(values)[1:-1].decode() + "}"


def ints(values: Sequence[Any]) -> str:
    if set(map(type, values)) <= _INT_TYPES:  # an int past 64 bits raises (a TypeError) and takes the slow path
        return _json_array(values)
    return "{" + ",".join(["NULL" if v is None else str(_to_int(v)) for v in values]) + "}"


def floats(values: Sequence[Any]) -> str:
    if set(map(type, values)) <= _FLOAT_TYPES:
        text = orjson.dumps(values)
        if text.count(b"null") == values.count(None):  # orjson writes NaN and infinities as null
            return "{" + text[1:-1].decode() + "}"
    return "{" + ",".join(["NULL" if v is None else repr(float(v)) for v in values]) + "}"


def bools(values: Sequence[Any]) -> str:
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, (bool, int)):
            out.append("t" if v else "f")
        else:
            raise TypeError(type(v).__name__)
    return "{" + ",".join(out) + "}"


def texts(values: Sequence[Any]) -> str:
    if set(map(type, values)) <= _TEXT_TYPES:
        text = orjson.dumps(values)
        if not _JSON_ONLY_ESCAPE.search(text):
            return "{" + text[1:-1].decode() + "}"
    return "{" + ",".join(["NULL" if v is None else _quote(_to_text(v)) for v in values]) + "}"


#: a column's PostgreSQL type (as SQLAlchemy compiles it, without length) -> its array literal builder
BUILDERS: dict[str, Callable[[Sequence[Any]], str]] = {"BIGINT": ints, "INTEGER": ints, "SMALLINT": ints,
                                                      "FLOAT": floats, "BOOLEAN": bools, "TEXT": texts,
                                                      "VARCHAR": texts}
