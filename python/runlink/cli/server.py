"""`runlink server`: the tracker's HTTP API and UI. FastAPI, SQLAlchemy and uvicorn are imported inside the
handler only: the CLI also runs on Spark drivers and Airflow workers, where the `server` extra is not installed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runlink.terminal import printable

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    server = subparsers.add_parser("server", help="run the tracker (HTTP API)")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8686, help="port to listen on (default 8686)")
    add_database_options(server)
    server.add_argument("--open", action="store_true",
                        help="local single-user: reads need no token; binds to loopback only and answers only "
                             "to local Host names (127.0.0.1, localhost, [::1])")
    server.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="also answer to this Host name (repeatable; with --open, besides the local names)")
    server.add_argument("--workers", type=int, default=1,
                        help="worker processes (parsing and validation run in parallel; writes stay serialized)")
    server.add_argument("--log-level", default="warning",
                        help="uvicorn's log level: critical, error, warning, info, debug, trace (default warning)")
    server.add_argument("--rate-limit", type=float, default=None,
                        help="requests/s per token (token bucket; 0 = off; env RUNLINK_RATE_LIMIT; default 200)")
    server.add_argument("--rate-burst", type=int, default=None,
                        help="burst per token (env RUNLINK_RATE_BURST; default 1000)")
    server.add_argument("--openlineage-export", default=None,
                        help="also export stored events as OpenLineage: file:///path.jsonl or an http(s) URL "
                             "(env RUNLINK_OPENLINEAGE_EXPORT; RUNLINK_OPENLINEAGE_API_KEY for its bearer token)")
    server.add_argument("--durability", default=None, metavar="LEVEL",
                        help="normal: an answered batch survives a crash of the tracker; the database server's or "
                             "the machine's crash may lose the last fraction of a second (SQLite synchronous=NORMAL, "
                             "PostgreSQL synchronous_commit=off). full: on disk before the answer (env "
                             "RUNLINK_DB_DURABILITY; default normal)")
    server.add_argument("--retention-days", type=float, default=None, metavar="N",
                        help="every hour, delete runs older than N days with everything under them (one replica "
                             "at a time; env RUNLINK_RETENTION_DAYS; default: keep everything)")
    server.add_argument("--retention-dag", default=None, metavar="GLOB",
                        help="retention only for DAG ids matching this glob (env RUNLINK_RETENTION_DAG)")
    server.set_defaults(handler=_server)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """`--db` and `--home`: which tracker database (the server's and the token commands' alike)."""
    parser.add_argument("--db", help="database URL (default: SQLite at $RUNLINK_HOME/runlink.db); "
                                     "PostgreSQL: postgresql+psycopg://user@host/db")
    parser.add_argument("--home", help="state folder (default $RUNLINK_HOME or ~/.runlink)")


def _bind_error(host: str, port: int) -> str | None:
    """Why the address cannot be listened on (taken, not ours, unknown host), else None: checked before the
    banner and the database work, so a taken port is the first and only thing the user reads."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return exc.strerror or str(exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def tracker_settings(args: argparse.Namespace, **extra: Any):  # noqa: ANN201
    """TrackerSettings from `--home` / `--db` (and the server's own options in `extra`)."""
    from runlink.config import default_home
    from runlink.tracker.settings import TrackerSettings

    home = Path(args.home).expanduser() if getattr(args, "home", None) else default_home()
    return TrackerSettings(home=home, db_url=getattr(args, "db", None), **extra)


def _server(args: argparse.Namespace) -> int:
    import os
    from dataclasses import asdict, replace

    import uvicorn

    from runlink.tracker.app import SETTINGS_ENV, create_app, prepare_database
    from runlink.tracker.settings import DURABILITY

    limits: dict[str, Any] = {}
    rate = args.rate_limit if args.rate_limit is not None else os.environ.get("RUNLINK_RATE_LIMIT")
    burst = args.rate_burst if args.rate_burst is not None else os.environ.get("RUNLINK_RATE_BURST")
    if rate not in (None, ""):
        limits["rate_limit_per_s"] = float(rate)
    if burst not in (None, ""):
        limits["rate_limit_burst"] = int(burst)
    export = args.openlineage_export or os.environ.get("RUNLINK_OPENLINEAGE_EXPORT") or None
    durability = args.durability or os.environ.get("RUNLINK_DB_DURABILITY") or "normal"
    if durability not in DURABILITY:
        source = "--durability" if args.durability else "RUNLINK_DB_DURABILITY"
        print(f"runlink: {source} must be one of {', '.join(DURABILITY)} (got {printable(durability)})",
              file=sys.stderr)
        return 2
    limits["durability"] = durability
    if args.retention_days is not None:
        limits["retention_days"] = args.retention_days if args.retention_days > 0 else None
    if args.retention_dag:
        limits["retention_dag_glob"] = args.retention_dag
    if args.open and args.host not in _LOOPBACK:
        print(f"runlink: --open serves every read without a token, so it binds to loopback only "
              f"(--host {printable(args.host)} refused; use tokens to serve other machines)", file=sys.stderr)
        return 2
    taken = _bind_error(args.host, args.port)
    if taken is not None:
        print(f"runlink: cannot listen on {printable(args.host)}:{args.port}: {taken}", file=sys.stderr)
        return 1
    allowed = tuple(dict.fromkeys(h.strip().lower() for h in args.allowed_host if h.strip()))
    settings = tracker_settings(args, open_reads=args.open, openlineage_export=export, allowed_hosts=allowed,
                                **limits)
    backend = settings.database_url.split(":", 1)[0].split("+", 1)[0]
    if args.workers <= 1:
        app = create_app(settings)
        print(f"runlink tracker on http://{args.host}:{args.port} (db: {backend}, token file: {settings.token_path})",
              flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
        return 0
    settings = replace(settings, ingest_slots=1)  # see TrackerSettings.ingest_slots
    prepare_database(settings)
    os.environ[SETTINGS_ENV] = json.dumps({**asdict(settings), "home": str(settings.home)})
    print(f"runlink tracker on http://{args.host}:{args.port} (db: {backend}, {args.workers} workers, "
          f"token file: {settings.token_path})", flush=True)
    from runlink.tracker import supervisor

    if supervisor.reuseport_supported():
        return supervisor.serve("runlink.tracker.app:app_from_env", args.host, args.port, args.workers, args.log_level)
    uvicorn.run("runlink.tracker.app:app_from_env", factory=True, workers=args.workers, host=args.host,
                port=args.port, log_level=args.log_level, access_log=False)
    return 0
