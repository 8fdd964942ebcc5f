"""`runlink server`, `runlink token create`, `runlink runs list|show`. Heavy imports stay inside handlers
so `runlink --help` is fast and works without the `server` extra."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runlink.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    server = subparsers.add_parser("server", help="run the tracker (HTTP API)")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8686)
    server.add_argument("--db", help="database URL (default: SQLite at $RUNLINK_HOME/runlink.db); "
                                     "PostgreSQL: postgresql+psycopg://user@host/db")
    server.add_argument("--home", help="state folder (default $RUNLINK_HOME or ~/.runlink)")
    server.add_argument("--open", action="store_true",
                        help="local single-user: reads need no token; binds to loopback only and answers only "
                             "to local Host names (127.0.0.1, localhost, [::1])")
    server.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="also answer to this Host name (repeatable; with --open, besides the local names)")
    server.add_argument("--workers", type=int, default=1,
                        help="worker processes (parsing and validation run in parallel; writes stay serialized)")
    server.add_argument("--log-level", default="warning")
    server.add_argument("--rate-limit", type=float, default=None,
                        help="requests/s per token (token bucket; 0 = off; env RUNLINK_RATE_LIMIT; default 200)")
    server.add_argument("--rate-burst", type=int, default=None,
                        help="burst per token (env RUNLINK_RATE_BURST; default 1000)")
    server.add_argument("--openlineage-export", default=None,
                        help="also export stored events as OpenLineage: file:///path.jsonl or an http(s) URL "
                             "(env RUNLINK_OPENLINEAGE_EXPORT; RUNLINK_OPENLINEAGE_API_KEY for its bearer token)")
    server.set_defaults(handler=_server)

    token = subparsers.add_parser("token", help="manage access tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token and print it (stored hashed)")
    create.add_argument("--scope", choices=("ingest", "read", "admin"), required=True)
    create.add_argument("name", metavar="NAME", nargs="?", help="unique among live tokens (used to revoke it)")
    create.add_argument("--name", dest="name_option", help=argparse.SUPPRESS)
    create.add_argument("--expires", help="a duration (30d, 12h, 90m, 2w) or an ISO-8601 instant; default: never")
    create.add_argument("--db")
    create.add_argument("--home")
    create.set_defaults(handler=_token_create)
    listing = token_sub.add_parser("list", help="tokens: name, id, scope, state, created, last used, expires "
                                                "(never the secret)")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--db")
    listing.add_argument("--home")
    listing.set_defaults(handler=_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by name (or id): a running tracker refuses it "
                                                 "within a second and ends its UI sessions")
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("--db")
    revoke.add_argument("--home")
    revoke.set_defaults(handler=_token_revoke)

    runs = subparsers.add_parser("runs", help="DAG runs known to the tracker")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    listing = runs_sub.add_parser("list", help="list DAG runs, newest first")
    listing.add_argument("--dag-id")
    listing.add_argument("--state")
    listing.add_argument("--instance")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--url", help="tracker URL (default RUNLINK_URL)")
    listing.set_defaults(handler=_runs_list)
    show = runs_sub.add_parser("show", help="the tree of one DAG run (latest when RUN_ID is left out)")
    show.add_argument("dag_id", metavar="DAG_ID")
    show.add_argument("run_id", metavar="RUN_ID", nargs="?")
    show.add_argument("--json", action="store_true")
    show.add_argument("--url", help="tracker URL (default RUNLINK_URL)")
    show.set_defaults(handler=_runs_show)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _settings(args: argparse.Namespace, **extra: Any):  # noqa: ANN202
    from runlink.config import default_home
    from runlink.tracker.settings import TrackerSettings

    home = Path(args.home).expanduser() if getattr(args, "home", None) else default_home()
    return TrackerSettings(home=home, db_url=getattr(args, "db", None), **extra)


def _server(args: argparse.Namespace) -> int:
    import os
    from dataclasses import asdict, replace

    import uvicorn

    from runlink.tracker.app import SETTINGS_ENV, create_app, prepare_database

    limits: dict[str, Any] = {}
    rate = args.rate_limit if args.rate_limit is not None else os.environ.get("RUNLINK_RATE_LIMIT")
    burst = args.rate_burst if args.rate_burst is not None else os.environ.get("RUNLINK_RATE_BURST")
    if rate not in (None, ""):
        limits["rate_limit_per_s"] = float(rate)
    if burst not in (None, ""):
        limits["rate_limit_burst"] = int(burst)
    export = args.openlineage_export or os.environ.get("RUNLINK_OPENLINEAGE_EXPORT") or None
    if args.open and args.host not in _LOOPBACK:
        print(f"runlink: --open serves every read without a token, so it binds to loopback only "
              f"(--host {printable(args.host)} refused; use tokens to serve other machines)", file=sys.stderr)
        return 2
    allowed = tuple(dict.fromkeys(h.strip().lower() for h in args.allowed_host if h.strip()))
    settings = _settings(args, open_reads=args.open, openlineage_export=export, allowed_hosts=allowed, **limits)
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
    from runlink.tracker import workers

    if workers.reuseport_supported():
        return workers.serve("runlink.tracker.app:app_from_env", args.host, args.port, args.workers, args.log_level)
    uvicorn.run("runlink.tracker.app:app_from_env", factory=True, workers=args.workers, host=args.host,
                port=args.port, log_level=args.log_level, access_log=False)
    return 0


def _token_db(args: argparse.Namespace):  # noqa: ANN202
    """The tracker's database, migrated (the token commands work on it directly, like the server)."""
    from runlink.tracker.db import Database, upgrade
    from runlink.tracker.security import restrict_database_files

    settings = _settings(args)
    restrict_database_files(settings.database_url)
    db = Database(settings.database_url)
    upgrade(db.engine)
    restrict_database_files(settings.database_url)
    return db


def _token_create(args: argparse.Namespace) -> int:
    from runlink.tracker.auth import TokenError, create_token, parse_expiry

    try:
        expires_at = parse_expiry(args.expires) if args.expires else None
    except TokenError as exc:
        print(f"runlink: {exc}", file=sys.stderr)
        return 2
    db = _token_db(args)
    try:
        with db.write() as conn:
            token = create_token(conn, args.scope, args.name or args.name_option, expires_at=expires_at)
    except TokenError as exc:
        print(f"runlink: {printable(str(exc))}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(token)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    from runlink.tracker.auth import list_tokens

    db = _token_db(args)
    try:
        with db.read() as conn:
            items = list_tokens(conn)
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    rows = [("NAME", "ID", "SCOPE", "STATE", "CREATED", "LAST USED", "EXPIRES")]
    for t in items:
        rows.append((t["name"] or "-", t["id"], t["scope"], t["state"], (t["created_at"] or "-")[:19],
                     (t["last_used_at"] or "-")[:19], (t["expires_at"] or "never")[:19]))
    _print_table(rows)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from runlink.tracker.auth import TokenError, revoke_token

    db = _token_db(args)
    try:
        with db.write() as conn:
            revoked = revoke_token(conn, args.name)
    except TokenError as exc:
        print(f"runlink: {printable(str(exc))}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(f"revoked {printable(revoked['name'] or revoked['id'])} ({revoked['scope']}, id {revoked['id']})")
    return 0


def _print_table(rows: list[tuple[Any, ...]]) -> None:
    cells = [[printable(v).replace("\n", "\\n") for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


class _Api:
    """A tiny HTTP client for the read API (the CLI runs where the tracker may be remote)."""

    def __init__(self, url: str | None) -> None:
        from runlink import config

        cfg = config.load(url=url)
        self.base = cfg.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}

    def get(self, path: str, **params: Any) -> Any:
        import requests

        params = {k: v for k, v in params.items() if v is not None}
        try:
            response = requests.get(self.base + path, params=params, headers=self.headers, timeout=30)
        except requests.RequestException as exc:
            raise SystemExit(printable(f"runlink: cannot reach the tracker at {self.base}: {exc}")) from None
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise SystemExit(printable(f"runlink: tracker answered {response.status_code}: {response.text[:500]}"))
        return response.json()


def _runs_list(args: argparse.Namespace) -> int:
    api = _Api(args.url)
    page = api.get("/api/v1/dag-runs", dag_id=args.dag_id, state=args.state, instance=args.instance,
                   limit=max(1, min(args.limit, 500)))
    items = page["items"]
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no DAG runs")
        return 0
    rows = [("DAG", "RUN", "LOGICAL DATE", "STATE", "START", "END", "ID")]
    for run in items:
        rows.append((run["dag_id"], run["run_id"] or "-", run["logical_date"] or "-", run["state"] or "-",
                     run["start_date"] or "-", run["end_date"] or "-", run["id"]))
    _print_table(rows)
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    api = _Api(args.url)
    page = api.get("/api/v1/dag-runs", dag_id=args.dag_id, run_id=args.run_id, limit=1)
    if not page["items"] and args.run_id:
        tree = api.get(f"/api/v1/dag-runs/{args.run_id}")  # a tracker id works too
    else:
        tree = api.get(f"/api/v1/dag-runs/{page['items'][0]['id']}") if page["items"] else None
    if tree is None:
        print(printable(f"runlink: no DAG run of {args.dag_id}" + (f" with run id {args.run_id}" if args.run_id
                                                                    else "")), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        from runlink.cli.render import render_tree

        print(render_tree(tree))
    return 0
