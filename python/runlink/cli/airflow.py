"""`runlink airflow add|alias|list`: the tracker's registry of Airflow instances.

Secrets never go on the command line: `--password-env VAR` / `--token-env VAR` read them from this process's
environment and send them once to the tracker, which stores them encrypted; `--password-ref env:VAR` /
`--password-ref airflow-conn:ID` store only a reference the monitor resolves where it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from runlink.cli.options import URL_HELP, add_group, add_url_option, tracker_client
from runlink.terminal import one_line, printable


def register(subparsers: argparse._SubParsersAction) -> None:
    airflow_sub = add_group(subparsers, "airflow", "Airflow instances the tracker knows")

    add = airflow_sub.add_parser("add", help="register an Airflow instance (admin token)")
    add.add_argument("name", metavar="NAME", help="a name for the instance (unique in this tracker)")
    add.add_argument("--url", required=True, help="Airflow's API/web server, e.g. http://localhost:8080")
    add.add_argument("--uid", help="pin the instance uid (default: learned from the instance's /runlink/instance "
                                   "endpoint, which runlink[airflow] on the API server adds; NAME if it cannot)")
    add.add_argument("--api-version", choices=("auto", "v1", "v2"), default="auto",
                     help="v2 = Airflow 3, v1 = Airflow 2.11 (default: detect now)")
    add.add_argument("--username", help="the Airflow user the monitor logs in as")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR", help="read the password from $VAR (stored encrypted)")
    secret.add_argument("--token-env", metavar="VAR", help="read an API token from $VAR (stored encrypted)")
    secret.add_argument("--password-ref", metavar="REF",
                        help="store a reference instead: env:VAR or airflow-conn:CONN_ID (resolved by the monitor)")
    secret.add_argument("--token-ref", metavar="REF", help="like --password-ref, for a token")
    secret.add_argument("--no-auth", action="store_true", help="the API needs no credentials")
    # --url is Airflow's here, so the tracker's URL keeps its own name
    add.add_argument("--tracker", dest="tracker_url", help=URL_HELP)
    add.set_defaults(handler=_add)

    alias = airflow_sub.add_parser(
        "alias", help="add another uid under which this instance's events arrive (a migrated deployment, "
                      "Databand's instance UUID); what was stored under it is relinked (admin token)")
    alias.add_argument("name", metavar="NAME", help="the registered instance's name")
    alias.add_argument("uid", metavar="UID", help="the other uid")
    alias.add_argument("--remove", action="store_true", help="remove the alias instead (relinks back)")
    add_url_option(alias, legacy_tracker=True)
    alias.set_defaults(handler=_alias)

    listing = airflow_sub.add_parser("list", help="registered instances and their syncer health")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_url_option(listing, legacy_tracker=True)
    listing.set_defaults(handler=_list)


def _env_secret(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"runlink: ${var} is not set (it should hold the secret)")
    return value


def _add(args: argparse.Namespace) -> int:
    from runlink.airflow.identity import ENDPOINT_PATH, ask_endpoint
    from runlink.airflow.syncer.rest import detect_version
    body: dict = {"name": args.name, "url": args.url, "uid": args.uid, "username": args.username}
    if args.no_auth:
        body["auth_kind"] = "none"
    elif args.token_env or args.token_ref:
        body["auth_kind"] = "token"
        body["secret"] = _env_secret(args.token_env) if args.token_env else None
        body["secret_ref"] = args.token_ref
    else:
        body["auth_kind"] = "password"
        body["secret"] = _env_secret(args.password_env) if args.password_env else None
        body["secret_ref"] = args.password_ref
    body["api_version"] = args.api_version if args.api_version != "auto" else detect_version(args.url)
    learned = None
    if not args.uid:
        learned = ask_endpoint(args.url)
        if learned:
            body["uid"] = learned
        else:
            print(f"runlink: warning: {args.url.rstrip('/')}{ENDPOINT_PATH} did not answer a uid (is runlink[airflow] "
                  f"installed on the API server?); registering uid {args.name!r}: pin the real one with --uid, or "
                  f"add it later with `runlink airflow alias {args.name} UID`", file=sys.stderr)
    with tracker_client(args.tracker_url) as api:
        view = api.create_instance({k: v for k, v in body.items() if v is not None})
    origin = "learned from the instance" if learned else ("pinned" if args.uid else "the name")
    print(f"registered {view['name']} (uid {view['uid']}: {origin}; API {view['api_version']}, "
          f"credentials {view['credentials']})")
    return 0


def _alias(args: argparse.Namespace) -> int:
    with tracker_client(args.url) as api:
        view = api.remove_alias(args.name, args.uid) if args.remove else api.add_alias(args.name, args.uid)
    aliases = ", ".join(view["aliases"]) or "none"
    print(printable(f"{view['name']}: uid {view['uid']}, aliases {aliases}"))
    return 0


def _list(args: argparse.Namespace) -> int:
    with tracker_client(args.url) as api:
        items = api.instances()
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    print(f"{'NAME':<20} {'UID':<24} {'API':<4} {'CREDS':<10} {'LAST SUCCESS':<28} {'LAG S':>8}  ERROR / URL")
    for item in items:
        s = item["sync_state"]
        lag = "" if s["lag_s"] is None else f"{s['lag_s']:.0f}"
        print(one_line(f"{item['name']:<20} {item['uid']:<24} {item['api_version']:<4} {item['credentials']:<10} "
                       f"{s['last_success_at'] or '-':<28} {lag:>8}  {s['last_error'] or item['url']}"))
    return 0
