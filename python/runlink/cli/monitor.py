"""`runlink airflow add|list` (the tracker's registry of Airflow instances) and `runlink monitor` (the syncer).

Secrets never go on the command line: `--password-env VAR` / `--token-env VAR` read them from this process's
environment and send them once to the tracker, which stores them encrypted; `--password-ref env:VAR` /
`--password-ref airflow-conn:ID` store only a reference the monitor resolves where it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from runlink.terminal import one_line, printable


def register(subparsers: argparse._SubParsersAction) -> None:
    existing = getattr(subparsers, "_name_parser_map", {})
    if "airflow" in existing:  # another part registered `airflow`: add our actions under it
        airflow_sub = _sub_of(existing["airflow"])
    else:
        airflow = subparsers.add_parser("airflow", help="Airflow instances the tracker knows")
        airflow_sub = airflow.add_subparsers(dest="airflow_command", metavar="ACTION")

    add = airflow_sub.add_parser("add", help="register an Airflow instance (admin token)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--url", required=True, help="Airflow's API/web server, e.g. http://localhost:8080")
    add.add_argument("--uid", help="pin the instance uid (default: learned from the instance's /runlink/instance "
                                   "endpoint, which runlink[airflow] on the API server adds; NAME if it cannot)")
    add.add_argument("--api-version", choices=("auto", "v1", "v2"), default="auto",
                     help="v2 = Airflow 3, v1 = Airflow 2.11 (default: detect now)")
    add.add_argument("--username")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR", help="read the password from $VAR (stored encrypted)")
    secret.add_argument("--token-env", metavar="VAR", help="read an API token from $VAR (stored encrypted)")
    secret.add_argument("--password-ref", metavar="REF",
                        help="store a reference instead: env:VAR or airflow-conn:CONN_ID (resolved by the monitor)")
    secret.add_argument("--token-ref", metavar="REF", help="like --password-ref, for a token")
    secret.add_argument("--no-auth", action="store_true", help="the API needs no credentials")
    add.add_argument("--tracker", help="tracker URL (default RUNLINK_URL)")
    add.set_defaults(handler=_add)

    alias = airflow_sub.add_parser(
        "alias", help="add another uid under which this instance's events arrive (a migrated deployment, "
                      "Databand's instance UUID); what was stored under it is relinked (admin token)")
    alias.add_argument("name", metavar="NAME")
    alias.add_argument("uid", metavar="UID")
    alias.add_argument("--remove", action="store_true", help="remove the alias instead (relinks back)")
    alias.add_argument("--tracker", help="tracker URL (default RUNLINK_URL)")
    alias.set_defaults(handler=_alias)

    listing = airflow_sub.add_parser("list", help="registered instances and their syncer health")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--tracker", help="tracker URL (default RUNLINK_URL)")
    listing.set_defaults(handler=_list)

    monitor = subparsers.add_parser("monitor", help="sync Airflow instances (DAGs, runs, task tries) into the tracker")
    monitor.add_argument("--instance", action="append", default=[], metavar="NAME",
                         help="an instance to serve (repeatable; default: every registered instance)")
    monitor.add_argument("--once", action="store_true", help="one cycle, then exit (status 1 if any failed)")
    monitor.add_argument("--interval", type=float, default=60.0, help="seconds between cycles (default 60)")
    monitor.add_argument("--since", help="backfill: sync everything updated since DATE (first cycle)")
    monitor.add_argument("--logs", action="store_true", help="also send log tails of finished tries")
    monitor.add_argument("--overlap", type=float, help="seconds re-read before the watermark (default 120)")
    monitor.add_argument("--no-progress", action="store_true", help="no progress bar during a backfill")
    monitor.add_argument("--json", action="store_true", help="print each cycle's result as a JSON line")
    monitor.add_argument("--tracker", help="tracker URL (default RUNLINK_URL)")
    monitor.set_defaults(handler=_monitor)


def _sub_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="airflow_command", metavar="ACTION")


def _config(args: argparse.Namespace):  # noqa: ANN202
    from runlink.config import load

    return load(url=getattr(args, "tracker", None))


def _env_secret(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"runlink: ${var} is not set (it should hold the secret)")
    return value


def _add(args: argparse.Namespace) -> int:
    from runlink.airflow.identity import ENDPOINT_PATH, ask_endpoint
    from runlink.airflow.syncer.rest import detect_version
    from runlink.airflow.syncer.tracker_api import TrackerApi, TrackerError

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
    api = TrackerApi(_config(args))
    try:
        view = api.create_instance({k: v for k, v in body.items() if v is not None})
    except TrackerError as exc:
        print(f"runlink: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    origin = "learned from the instance" if learned else ("pinned" if args.uid else "the name")
    print(f"registered {view['name']} (uid {view['uid']}: {origin}; API {view['api_version']}, "
          f"credentials {view['credentials']})")
    return 0


def _alias(args: argparse.Namespace) -> int:
    from runlink.airflow.syncer.tracker_api import TrackerApi, TrackerError

    api = TrackerApi(_config(args))
    try:
        view = api.remove_alias(args.name, args.uid) if args.remove else api.add_alias(args.name, args.uid)
    except TrackerError as exc:
        print(f"runlink: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    aliases = ", ".join(view["aliases"]) or "none"
    print(printable(f"{view['name']}: uid {view['uid']}, aliases {aliases}"))
    return 0


def _list(args: argparse.Namespace) -> int:
    from runlink.airflow.syncer.tracker_api import TrackerApi

    api = TrackerApi(_config(args))
    try:
        items = api.instances()
    finally:
        api.close()
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


def _monitor(args: argparse.Namespace) -> int:
    from runlink.airflow.monitor import Monitor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    monitor = Monitor(_config(args), args.instance, since=args.since, logs=args.logs,
                      progress=bool(args.since) and not args.no_progress,
                      overlap_s=args.overlap)
    try:
        if args.once:
            results = monitor.cycle()
            for result in results:
                if args.json:
                    print(json.dumps(result.as_dict()), flush=True)
                else:
                    from runlink.airflow.monitor import _summary

                    print(_summary(result), flush=True)
            return 0 if results and all(r.ok for r in results) else 1
        import signal

        signal.signal(signal.SIGTERM, lambda *_: monitor.stop())
        monitor.run(args.interval)
        return 0
    finally:
        monitor.close()
