"""The bulk writes of the ingest path (`tracker/sqlutil.py`) on both backends: the same rows give the same table
whatever their order and split, values of mixed Python types land in their column's type, and on PostgreSQL a bulk
write is one set-based statement (not a statement per row)."""

from __future__ import annotations

import random

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlink.tracker import pg_arrays
from runlink.tracker.sqlutil import delete_in, insert_ignore, run, select_in, select_many, upsert_lww
from support.postgres import BACKENDS, create_database, drop_database, postgres_admin_url

metadata = sa.MetaData()
things = sa.Table(
    "bulk_things", metadata,
    sa.Column("app", sa.String(32), primary_key=True),
    sa.Column("n", sa.BigInteger, primary_key=True),
    sa.Column("ratio", sa.Float),
    sa.Column("count", sa.Integer),
    sa.Column("label", sa.Text),
    sa.Column("flag", sa.Boolean),
    sa.Column("stamp", sa.Text),
)
COLUMNS = ("app", "n", "ratio", "count", "label", "flag", "stamp")
UPDATED = ("ratio", "count", "label", "flag")


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
        url = None
    else:
        url = create_database()
        eng = sa.create_engine(url)
    metadata.create_all(eng)
    yield eng
    eng.dispose()
    if url:
        drop_database(url)


def _statements(engine: sa.Engine) -> list[tuple[str, bool]]:
    """(statement, executemany) of every statement sent, as the driver saw it: on PostgreSQL the bulk writes
    bypass SQLAlchemy, so its cursors are recorded (whoever asks for them)."""
    seen: list[tuple[str, bool]] = []
    if engine.dialect.name != "postgresql":
        @sa.event.listens_for(engine, "before_cursor_execute")
        def record(conn, cursor, statement, parameters, context, executemany):
            seen.append((statement, executemany))

        return seen

    class Recording(psycopg.Cursor):
        def execute(self, query, *args, **kwargs):
            seen.append((str(query), False))
            return super().execute(query, *args, **kwargs)

        def executemany(self, query, *args, **kwargs):
            seen.append((str(query), True))
            return super().executemany(query, *args, **kwargs)

    @sa.event.listens_for(engine, "checkout")
    def use_recording(dbapi_conn, record, proxy):
        dbapi_conn.cursor_factory = Recording

    return seen


def _table(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(things).order_by(things.c.app, things.c.n))]


def test_mixed_python_types_land_in_the_column_type(engine):
    rows = [("a", 1, 2, 3.0, "x", 1, "s1"), ("a", 2, 1.5, 4, 7, True, "s1"), ("a", 3, None, None, None, None, None),
            ("a", 1, 9.9, 9, "dup", 0, "s1")]  # a duplicate key in one batch: the first one stays
    statements = _statements(engine)
    with engine.begin() as conn:
        insert_ignore(conn, things, rows, COLUMNS)
    assert _table(engine) == [("a", 1, 2.0, 3, "x", True, "s1"), ("a", 2, 1.5, 4, "7", True, "s1"),
                              ("a", 3, None, None, None, None, None)]
    if engine.dialect.name == "postgresql":
        writes = [(s, many) for s, many in statements if s.startswith("INSERT")]
        assert len(writes) == 1 and "unnest" in writes[0][0] and not writes[0][1]


def test_last_writer_wins_whatever_the_order_and_split(engine):
    rng = random.Random(3)
    rows = [(f"app{k % 3}", k % 17, rng.random(), rng.randrange(100), f"v{i}", bool(i % 2),
             f"{rng.randrange(10**6):07d}")
            for i, k in enumerate(rng.randrange(60) for _ in range(400))]
    best: dict[tuple, tuple] = {}
    for row in rows:
        if row[:2] not in best or row[6] > best[row[:2]][6]:
            best[row[:2]] = row
    expected = sorted(best.values())
    for attempt in range(3):
        with engine.begin() as conn:
            conn.execute(things.delete())
        shuffled = rows[:]
        rng.shuffle(shuffled)
        statements = _statements(engine)
        cut = rng.randrange(1, len(rows))
        for part in (shuffled[:cut], shuffled[cut:]):
            with engine.begin() as conn:
                upsert_lww(conn, things, part, ("app", "n"), "stamp", UPDATED, COLUMNS)
        got = _table(engine)
        assert [row[:2] for row in got] == [row[:2] for row in expected]
        assert [(row[4], row[6]) for row in got] == [(row[4], row[6]) for row in expected], attempt
        if engine.dialect.name == "postgresql":
            writes = [s for s, _many in statements if s.startswith("INSERT")]
            assert len(writes) == 2 and all("unnest" in s for s in writes)


def test_a_value_that_fits_no_column_type_is_refused_by_the_database(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores any value in any column")
    statements = _statements(engine)
    with pytest.raises(psycopg.errors.DataError), engine.begin() as conn:
        insert_ignore(conn, things, [("a", 1, 1.0, "not a number", "x", True, "s")], COLUMNS)
    assert statements and "VALUES" in statements[-1][0], "the rows went one by one, so the database names the bad value"
    assert _table(engine) == []


@pytest.mark.postgres
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ints=st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=20),
       floats=st.lists(st.none() | st.floats() | st.integers(-(2**53), 2**53), max_size=20),
       texts=st.lists(st.none() | st.text(st.characters(blacklist_characters="\x00"), max_size=12), max_size=20))
def test_array_literals_read_back_as_the_values(pg_cursor, ints, floats, texts):
    """Every value the bulk writes may send reads back from PostgreSQL's array parser as itself."""
    pg_cursor.execute("SELECT %s::bigint[], %s::float8[], %s::text[]",
                      (pg_arrays.ints(ints), pg_arrays.floats(floats), pg_arrays.texts(texts)))
    got_ints, got_floats, got_texts = pg_cursor.fetchone()
    assert got_ints == ints and got_texts == texts
    assert [None if v is None else repr(v) for v in got_floats] == [None if v is None else repr(float(v))
                                                                     for v in floats]


@pytest.mark.postgres
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(big=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40),
       small=st.lists(st.integers(-(2**15), 2**15 - 1), max_size=40),
       floats=st.lists(st.floats() | st.integers(-(2**53), 2**53), max_size=40),
       with_null=st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=10))
def test_numbers_go_binary_and_read_back_as_the_values(pg_cursor, big, small, floats, with_null):
    """A numeric column without NULLs goes in the binary array form (per its width), and reads back as itself."""
    built = {t: pg_arrays.BUILDERS[t] for t in ("BIGINT", "INTEGER", "SMALLINT", "FLOAT")}
    arrays = (built["BIGINT"](big), built["INTEGER"](small), built["SMALLINT"](small), built["FLOAT"](floats))
    assert [type(a) for a in arrays] == [pg_arrays.Int8Array, pg_arrays.Int4Array, pg_arrays.Int2Array,
                                         pg_arrays.Float8Array]
    pg_cursor.execute("SELECT %s::bigint[], %s::integer[], %s::smallint[], %s::float8[]", arrays)
    got_big, got_int, got_small, got_floats = pg_cursor.fetchone()
    assert got_big == big and got_int == small and got_small == small
    assert [repr(v) for v in got_floats] == [repr(float(v)) for v in floats]
    literal = built["INTEGER"](with_null)  # a NULL beside a number: the literal; NULLs only: binary
    if None in with_null:
        assert isinstance(literal, pg_arrays.Int4Array if set(with_null) == {None} else str)
    pg_cursor.execute("SELECT %s::integer[]", (literal,))
    assert pg_cursor.fetchone()[0] == with_null


@pytest.mark.postgres
@pytest.mark.parametrize("n", [0, 1, 310])
def test_a_column_of_nulls_only_goes_binary_in_every_type(pg_cursor, n):
    """So the server parses nothing for a batch's absent values; each reads back as n NULLs of its type."""
    types = {"BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "FLOAT": "float8",
             "BOOLEAN": "boolean", "TEXT": "text", "VARCHAR": "varchar"}
    arrays = [pg_arrays.BUILDERS[name]([None] * n) for name in types]
    assert all(isinstance(array, pg_arrays.BinaryArray) for array in arrays)
    pg_cursor.execute("SELECT " + ", ".join(f"%s::{t}[], pg_typeof(%s::{t}[])::text" for t in types.values()),
                      [value for array in arrays for value in (array, array)])
    got = pg_cursor.fetchone()
    assert list(got[0::2]) == [[None] * n] * len(types)
    assert list(got[1::2]) == [f"{t}[]" if t != "float8" else "double precision[]"
                               for t in ("bigint", "integer", "smallint", "float8", "boolean", "text",
                                         "character varying")]


def test_a_number_past_the_column_width_takes_the_literal():
    """So the database, not struct, says which value does not fit (the rows then go one by one)."""
    assert isinstance(pg_arrays.BUILDERS["INTEGER"]([1, 2**31]), str)
    assert isinstance(pg_arrays.BUILDERS["SMALLINT"]([2**15]), str)
    assert isinstance(pg_arrays.BUILDERS["BIGINT"]([True, 2]), str)  # a bool: the literal, as before
    with pytest.raises(TypeError):
        pg_arrays.BUILDERS["BIGINT"]([2**64])


@pytest.fixture(scope="module")
def pg_cursor():
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL server")
    with psycopg.connect(admin, autocommit=True) as conn:
        yield conn.cursor()


def test_select_many_reads_what_each_read_alone_reads_and_delete_in_deletes(engine):
    rows = [(f"app{k % 2}", k, k / 2, k, f"l{k}", True, "s") for k in range(40)]
    with engine.begin() as conn:
        insert_ignore(conn, things, rows, COLUMNS)
    reads = [("SELECT n FROM bulk_things WHERE app = ? AND n IN ({}) ORDER BY n", [1, 3, 4, 39, 99], ("app1",)),
             ("SELECT count(*) FROM bulk_things WHERE app = ?", None, ("app0",)),
             ("SELECT n FROM bulk_things WHERE label IN ({})", [], ()),  # an empty IN list reads nothing
             ("SELECT label FROM bulk_things WHERE n IN ({}) ORDER BY label", [7, 8], ())]
    with engine.connect() as conn:
        many = select_many(conn, reads)
        alone = [run(conn, sql, before).fetchall() if values is None else select_in(conn, sql, values, before)
                 for sql, values, before in reads]
    assert [[tuple(row) for row in rows] for rows in many] == [[tuple(row) for row in rows] for rows in alone]
    assert [[tuple(row) for row in rows] for rows in many] == [[(1,), (3,), (39,)], [(20,)], [], [("l7",), ("l8",)]]

    statements = _statements(engine)
    with engine.begin() as conn:
        delete_in(conn, "bulk_things", "n", list(range(0, 40, 2)))
    assert [row[1] for row in _table(engine)] == list(range(1, 40, 2))
    if engine.dialect.name == "postgresql":
        assert [s for s, _many in statements if s.startswith("DELETE")] == [
            'DELETE FROM "bulk_things" WHERE "n" = ANY(%s::bigint[])']
