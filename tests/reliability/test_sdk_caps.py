"""log_dataframe with oversized schemas, through the real client into a real tracker: a 10,000-column frame and a
column whose type string is longer than the protocol's 4,000 chars arrive capped and flagged (schema_truncated),
never as an invalid event that the client would drop or the tracker would reject with a 422."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sparkrun
from faults import killable_tracker

from runlink import delivery
from runlink.config import Config
from runlink.delivery import Client
from runlink.sdk import MAX_FIELD_NAME_CHARS, MAX_FIELD_TYPE_CHARS, MAX_SCHEMA_FIELDS


@pytest.fixture
def tracker(tmp_path: Path) -> Any:
    tracker = killable_tracker(tmp_path / "tracker")
    tracker.start()
    client = Client(Config(url=tracker.url, token=tracker.token, home=tmp_path / "client", batch_interval_s=0.05))
    delivery.set_client(client)
    yield tracker
    delivery.set_client(None)
    client.close(5.0)
    tracker.stop()


def _stored(db_url: str, names: set[str], deadline_s: float = 60) -> dict[str, dict[str, Any]]:
    from sqlalchemy import create_engine, text

    from runlink.tracker.settings import normalize_db_url

    engine = create_engine(normalize_db_url(db_url))
    deadline = time.monotonic() + deadline_s
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT name, rows, schema, schema_truncated, column_stats "
                                         "FROM dataset_ops")).all()
            found = {r.name: {"rows": r.rows, "schema": json.loads(r.schema or "null"),
                              "schema_truncated": bool(r.schema_truncated),
                              "column_stats": json.loads(r.column_stats or "null")} for r in rows}
            if names <= set(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)  # polling interval; the condition is the stored rows
    finally:
        engine.dispose()


def test_log_dataframe_caps_fields_names_and_types(tracker: Any) -> None:
    import pandas as pd
    import pyarrow as pa

    import runlink

    wide = pd.DataFrame({f"c{i}": [i, i + 1] for i in range(10_000)})
    long_name = "n" * 5000
    nested = pd.DataFrame({
        "s": pd.Series([{long_name: 1}], dtype=pd.ArrowDtype(pa.struct([pa.field(long_name, pa.int32())]))),
        long_name: [1],
    })
    assert len(str(nested.dtypes.iloc[0])) > MAX_FIELD_TYPE_CHARS
    runlink.log_dataframe("wide", wide, with_stats=True)
    runlink.log_dataframe("nested", nested)
    runlink.log_dataframe("small", pd.DataFrame({"a": [1]}))
    client = delivery.get_client()
    assert client.flush(30)
    stored = _stored(tracker.db_url, {"wide", "nested", "small"})

    assert stored["wide"]["rows"] == 2 and stored["wide"]["schema_truncated"]
    assert len(stored["wide"]["schema"]) == MAX_SCHEMA_FIELDS and len(stored["wide"]["column_stats"]) == 1000
    fields = stored["nested"]["schema"]
    assert stored["nested"]["schema_truncated"]
    assert len(fields[0]["type"]) == MAX_FIELD_TYPE_CHARS and len(fields[1]["name"]) == MAX_FIELD_NAME_CHARS
    assert stored["small"]["schema_truncated"] is False
    assert client.counters()["dropped"] == 0 and client.invalid == 0
    assert sparkrun.rejected(tracker.url) == {}
