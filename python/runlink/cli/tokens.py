"""`runlink token create|list|revoke`: access tokens, straight in the tracker's database (like the server, so
an admin token can be made before anything answers over HTTP). The database must exist (the server made it) unless
`token create --create` is asked to make it. Tracker imports stay in the handlers."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

from runlink.cli.options import add_group
from runlink.cli.server import add_database_options, tracker_settings
from runlink.cli.tables import print_table
from runlink.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    token_sub = add_group(subparsers, "token", "manage access tokens")
    create = token_sub.add_parser("create", help="create a token and print it (stored hashed)")
    create.add_argument("--scope", choices=("ingest", "read", "admin"), required=True,
                        help="ingest: send events; read: the API and the UI; admin: everything, alert rules "
                             "and Airflow instances included")
    create.add_argument("name", metavar="NAME", nargs="?", help="unique among live tokens (used to revoke it)")
    create.add_argument("--name", dest="name_option", help=argparse.SUPPRESS)
    create.add_argument("--expires", help="a duration (30d, 12h, 90m, 2w) or an ISO-8601 instant; default: never")
    add_database_options(create)
    create.add_argument("--create", action="store_true",
                        help="make the database if it does not exist yet (a first token before the first "
                             "`runlink server`); without it, a --home or --db that holds no runlink database is "
                             "refused, so a typo does not start an empty tracker")
    create.set_defaults(handler=_token_create)
    listing = token_sub.add_parser("list", help="tokens: name, id, scope, state, created, last used, expires "
                                                "(never the secret)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_database_options(listing)
    listing.set_defaults(handler=_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by name (or id): a running tracker refuses it "
                                                 "within a second and ends its UI sessions")
    revoke.add_argument("name", metavar="NAME", help="the token's name or id")
    add_database_options(revoke)
    revoke.set_defaults(handler=_token_revoke)


class NoDatabase(Exception):
    """The --home / --db named holds no runlink database (and --create was not given)."""


def _has_runlink_database(url: str) -> bool:
    """A SQLite file that exists, or any database with Alembic's version table (the server migrated it once).
    A missing SQLite file is not opened: opening it would create it."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:" or not Path(path).expanduser().is_file():
            return False
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table("alembic_version")
    finally:
        engine.dispose()


def _database_required(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A token command whose database is missing says so on one line and exits 1."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except NoDatabase as exc:
            print(f"runlink: {printable(str(exc))}", file=sys.stderr)
            return 1
    return run


def _token_db(args: argparse.Namespace):  # noqa: ANN202
    """The tracker's database, migrated (the token commands work on it directly, like the server). It must exist
    already unless `--create` says to make it: `--home ~/.runlnk` is a typo, not a wish for a new tracker."""
    from runlink.tracker.db import Database, upgrade
    from runlink.tracker.security import restrict_database_files

    settings = tracker_settings(args)
    if not getattr(args, "create", False) and not _has_runlink_database(settings.database_url):
        where = f"--db {args.db}" if getattr(args, "db", None) else f"home {settings.home}"
        raise NoDatabase(f"no runlink database at {where}: check --home / --db (or RUNLINK_HOME), start "
                         "`runlink server` there once, or pass `token create --create` to make a new one")
    restrict_database_files(settings.database_url)
    db = Database(settings.database_url)
    upgrade(db.engine)
    restrict_database_files(settings.database_url)
    return db


@_database_required
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


@_database_required
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
    print_table(rows)
    return 0


@_database_required
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
