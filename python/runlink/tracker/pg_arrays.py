"""PostgreSQL arrays of one column's values, for the set-based bulk writes of `sqlutil`
(`INSERT ... SELECT unnest($1::bigint[]), ...`): array literals (`{1,NULL,3}`, `{"a","b\\"c"}`), and for a
numeric column without NULLs, or any column of NULLs only, the binary form (`BinaryArray`).

Built here as text rather than handed to psycopg as lists: psycopg's list adaptation walks every element in Python
to pick the array's type, and that cost twice the server's time for the statement. The usual column (ints, floats
or strings, with NULLs) is one orjson call in C: JSON's numbers, `null` and quoted strings read the same in an
array literal, except for JSON's escapes of control characters and its nulls for non-finite floats, which take
the per-value path. A value with no form in the column's type raises TypeError or ValueError.

Numbers without NULLs go in PostgreSQL's binary array form, packed in C (`_binary`): parsing the text of a
number (`array_in`, `pg_strtoint64`) cost the server a quarter more than reading its 8 bytes (40 columns of 310
stages: 0.63 ms against 0.85 ms a batch). A number that does not fit the column's width takes the literal, and the
database then names it.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

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


class BinaryArray(bytes):
    """A one-dimensional array in PostgreSQL's binary form, sent as a binary parameter of type OID, its elements
    of type ELEMENT packed by `array` type CODE."""

    __slots__ = ()
    OID: int
    ELEMENT: int
    CODE: str


def _kind(name: str, oid: int, element: int, code: str) -> type[BinaryArray]:
    """A BinaryArray type, with the psycopg dumper that sends it as it is."""
    kind = type(name, (BinaryArray,), {"__slots__": (), "OID": oid, "ELEMENT": element, "CODE": code})

    class ArrayDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: bytes) -> bytes:
            return obj

    ArrayDumper.oid = oid
    psycopg.adapters.register_dumper(kind, ArrayDumper)
    return kind


Int8Array = _kind("Int8Array", oid=1016, element=20, code="q")
Int4Array = _kind("Int4Array", oid=1007, element=23, code="i")
Int2Array = _kind("Int2Array", oid=1005, element=21, code="h")
Float8Array = _kind("Float8Array", oid=1022, element=701, code="d")
#: arrays of NULLs only, in these types (`_nulls`): no element is packed
BoolArray = _kind("BoolArray", oid=1000, element=16, code="")
TextArray = _kind("TextArray", oid=1009, element=25, code="")
VarcharArray = _kind("VarcharArray", oid=1015, element=1043, code="")


def _binary(kind: type[BinaryArray], values: Sequence[Any]) -> BinaryArray:
    """array_send's form of values without NULLs: (dimensions, has-nulls, element type), (length, lower bound),
    then each element's byte length and big-endian bytes. The values are packed by `array` and interleaved with
    their lengths by strided slice copies, all in C (a `struct` format of 2n fields cost twice the text).
    Raises OverflowError past the type's range."""
    if not values:
        return kind(struct.pack(">iiI", 0, 0, kind.ELEMENT))
    packed = array(kind.CODE, values)
    if sys.byteorder == "little":
        packed.byteswap()
    raw, size, n = packed.tobytes(), packed.itemsize, len(values)
    width = 4 + size
    out = bytearray(width * n)
    out[3::width] = bytes((size,)) * n  # each length is a 4-byte big-endian `size`
    for byte in range(size):
        out[4 + byte::width] = raw[byte::size]
    return kind(struct.pack(">iiIii", 1, 0, kind.ELEMENT, n, 1) + out)


def _nulls(kind: type[BinaryArray], n: int) -> BinaryArray:
    """array_send's form of `n` NULLs: each element is only its length, -1."""
    if not n:
        return kind(struct.pack(">iiI", 0, 0, kind.ELEMENT))
    return kind(struct.pack(">iiIii", 1, 1, kind.ELEMENT, n, 1) + b"\xff\xff\xff\xff" * n)


def _or_nulls(kind: type[BinaryArray],
              build: Callable[[Sequence[Any]], str | BinaryArray]) -> Callable[[Sequence[Any]], str | BinaryArray]:
    """`build`, except for a column of NULLs only (a batch's absent stage metrics, failure reasons), which goes in
    binary: the server then parses nothing, where the literal's every `NULL` was read (11 of the stage insert's 39
    columns in `bench_ingest`'s batches: 4% of that statement's server time)."""
    def with_nulls(values: Sequence[Any]) -> str | BinaryArray:
        if values.count(None) == len(values):
            return _nulls(kind, len(values))
        return build(values)

    return with_nulls


def _binary_or_literal(kind: type[BinaryArray], types: frozenset,
                       literal: Callable[[Sequence[Any]], str]) -> Callable[[Sequence[Any]], str | BinaryArray]:
    """The builder of a numeric column: values all of `types` (no NULL) in `kind`'s binary form, else (a NULL, a
    value past the width) the `literal`."""
    def build(values: Sequence[Any]) -> str | BinaryArray:
        if set(map(type, values)) <= types:
            try:
                return _binary(kind, values)
            except OverflowError:
                pass
        return literal(values)

    return build


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


_INT_VALUES = frozenset((int,))
_FLOAT_VALUES = frozenset((float, int))

#: a bigint[] parameter (`= ANY(...)` lists, advisory lock keys)
bigints = _binary_or_literal(Int8Array, _INT_VALUES, ints)

#: a column's PostgreSQL type (as SQLAlchemy compiles it, without length) -> its array builder
BUILDERS: dict[str, Callable[[Sequence[Any]], str | BinaryArray]] = {
    "BIGINT": _or_nulls(Int8Array, bigints),
    "INTEGER": _or_nulls(Int4Array, _binary_or_literal(Int4Array, _INT_VALUES, ints)),
    "SMALLINT": _or_nulls(Int2Array, _binary_or_literal(Int2Array, _INT_VALUES, ints)),
    "FLOAT": _or_nulls(Float8Array, _binary_or_literal(Float8Array, _FLOAT_VALUES, floats)),
    "BOOLEAN": _or_nulls(BoolArray, bools), "TEXT": _or_nulls(TextArray, texts),
    "VARCHAR": _or_nulls(VarcharArray, texts)}
