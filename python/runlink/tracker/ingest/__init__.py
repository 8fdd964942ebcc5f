"""Ingest: a request body -> stored events, through one pipeline for both event routes.

`pipeline` (the entry the routes call: decode, sanitize, validate, prepare, collect, store, hooks), `prepare`
(everything that can refuse a batch, before any write; with `storable`, the values a column cannot hold),
`rows` (one handler per event type -> rows, no database), `store` (one transaction, relink), `audit` (the
compressed copy of every batch). Re-exported here: the names the rest of the tracker and the tests use. So
`ingest.prepare` and `ingest.store` are the functions; to patch their modules, import them with importlib.
"""

from runlink.tracker.ingest.prepare import Prepared, prepare, spark_app_pk
from runlink.tracker.ingest.rows import collect
from runlink.tracker.ingest.store import raw_events, store

__all__ = ["Prepared", "collect", "prepare", "raw_events", "spark_app_pk", "store"]
