"""TrackerSettings: where the tracker keeps its state and the limits it enforces on requests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runlink.config import default_home


def normalize_db_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` for PostgreSQL and use psycopg 3 (the driver we ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _env_seconds(name: str, default: float) -> float:
    """A duration from the environment; an unset, empty or unreadable value gives the default."""
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def _env_days(name: str) -> float | None:
    """A positive number of days from the environment; unset, empty, unreadable or not positive: None."""
    days = _env_seconds(name, 0.0)
    return days if days > 0 else None


#: how far an acknowledged write survives, on either backend (`runlink server --durability`,
#: RUNLINK_DB_DURABILITY).
#: "normal": through a crash of the tracker, not always of the database server or the machine (the last fraction
#: of a second of commits can be lost; the database stays consistent): SQLite synchronous=NORMAL in WAL,
#: PostgreSQL synchronous_commit=off in the tracker's write transactions. "full": on disk before the answer:
#: SQLite synchronous=FULL, PostgreSQL the server's own synchronous_commit (on by default, or what replication asks).
DURABILITY = ("normal", "full")


def check_durability(value: str) -> str:
    """`value` if it names a durability level, else a ValueError that lists them."""
    if value not in DURABILITY:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY)} (got {value!r})")
    return value


@dataclass(frozen=True)
class TrackerSettings:
    """Everything `create_app` needs; built by `runlink server` from its flags."""

    home: Path = field(default_factory=default_home)
    db_url: str | None = None
    open_reads: bool = False
    #: Host header names served besides the loopback ones when `open_reads` (DNS rebinding); non-empty also
    #: restricts a tracker without --open to these names (security.HostGuardMiddleware)
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_events: int = 10000
    #: per-token rate limit (token bucket): sustained requests/s and burst; 0 turns it off
    rate_limit_per_s: float = 200.0
    rate_limit_burst: int = 1000
    #: body cap of every route but the bulk ones (events, lineage), which use max_body_bytes
    max_api_body_bytes: int = 1024 * 1024
    #: export stored events as OpenLineage: file:///path.jsonl, a path, or an http(s) URL (openlineage/export.py)
    openlineage_export: str | None = None
    #: seconds an OpenLineage event waits for its parent run before it is listed as unlinked (never dropped)
    openlineage_pending_ttl_s: float = field(default_factory=lambda: _env_seconds(
        "RUNLINK_OPENLINEAGE_PENDING_TTL_S", 6 * 3600.0))
    #: batches one worker process handles at once (0 = no limit). With several workers, 1: a batch that holds
    #: the database write lock then never waits for the GIL behind another batch's parsing in its process,
    #: which kept the lock held ~2.5x its CPU time; the other workers parse meanwhile.
    ingest_slots: int = 0
    #: how far an acknowledged batch survives: one of DURABILITY
    durability: str = field(default_factory=lambda: os.environ.get("RUNLINK_DB_DURABILITY") or "normal")
    #: delete DAG runs older than this many days (with everything under them) on a schedule; None keeps all
    retention_days: float | None = field(default_factory=lambda: _env_days("RUNLINK_RETENTION_DAYS"))
    #: only the runs of DAG ids matching this glob (fnmatch); None = every DAG
    retention_dag_glob: str | None = field(default_factory=lambda: os.environ.get("RUNLINK_RETENTION_DAG") or None)
    #: seconds between two scheduled retention passes (one replica at a time runs each)
    retention_interval_s: float = field(default_factory=lambda: _env_seconds("RUNLINK_RETENTION_INTERVAL_S",
                                                                             3600.0))

    @property
    def database_url(self) -> str:
        if self.db_url:
            return normalize_db_url(self.db_url)
        return f"sqlite:///{self.home / 'runlink.db'}"

    @property
    def token_path(self) -> Path:
        return self.home / "token"
