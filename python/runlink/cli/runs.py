"""`runlink runs list|show`: DAG runs and their trees, read from the tracker's HTTP API (it may be remote)."""

from __future__ import annotations

import argparse
import json
import sys

from runlink import units
from runlink.cli.options import add_group, add_url_option, positive_int, tracker_client
from runlink.cli.tables import print_json_or_empty, print_table
from runlink.instants import seconds_between
from runlink.terminal import printable

#: Airflow's DAG run states (what `--state` filters on)
DAG_RUN_STATES = ("queued", "running", "success", "failed")


def register(subparsers: argparse._SubParsersAction) -> None:
    runs_sub = add_group(subparsers, "runs", "DAG runs known to the tracker")
    listing = runs_sub.add_parser("list", help="list DAG runs, newest first")
    listing.add_argument("--dag-id", help="only this DAG's runs")
    listing.add_argument("--state", choices=DAG_RUN_STATES, help="only runs in this state")
    listing.add_argument("--instance", help="only runs of this Airflow instance")
    listing.add_argument("--limit", type=positive_int, default=20, help="at most this many runs (default 20, "
                                                                        "500 at most)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_url_option(listing)
    listing.set_defaults(handler=_runs_list)
    show = runs_sub.add_parser("show", help="the tree of one DAG run (latest when RUN_ID is left out)")
    show.add_argument("dag_id", metavar="DAG_ID", help="the DAG's id")
    show.add_argument("run_id", metavar="RUN_ID", nargs="?", help="Airflow's run id, or the tracker's id of the run")
    show.add_argument("--json", action="store_true", help="the tree as JSON")
    show.add_argument("--full", action="store_true", help="errors in full, every line (default: the first "
                                                          "100 characters, cut at a word)")
    add_url_option(show)
    show.set_defaults(handler=_runs_show)


def _runs_list(args: argparse.Namespace) -> int:
    with tracker_client(args.url) as api:
        page = api.get("/api/v1/dag-runs", dag_id=args.dag_id, state=args.state, instance=args.instance,
                       limit=min(args.limit, 500))
    items = page["items"]
    if print_json_or_empty(items, args.json, "no DAG runs"):
        return 0
    rows = [("DAG", "RUN", "LOGICAL DATE", "STATE", "START", "END", "DURATION", "ID")]
    for run in items:
        took = seconds_between(run["start_date"], run["end_date"])
        rows.append((run["dag_id"], run["run_id"] or "-", units.instant(run["logical_date"]), run["state"] or "-",
                     units.instant(run["start_date"]), units.instant(run["end_date"]),
                     units.duration(took) if took is not None else ("running" if run["end_date"] is None
                                                                   and run["start_date"] else "-"),
                     run["id"]))
    print_table(rows)
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    with tracker_client(args.url) as api:
        page = api.get("/api/v1/dag-runs", dag_id=args.dag_id, run_id=args.run_id, limit=1)
        if not page["items"] and args.run_id:
            tree = api.get(f"/api/v1/dag-runs/{args.run_id}", allow_404=True)  # a tracker id works too
        elif page["items"]:
            tree = api.get(f"/api/v1/dag-runs/{page['items'][0]['id']}", allow_404=True)
        else:
            tree = None
        diagnoses = (api.get(f"/api/v1/dag-runs/{tree['id']}/diagnosis", allow_404=True)
                     if tree is not None and not args.json else None)
    if tree is None:
        print(printable(f"runlink: no DAG run of {args.dag_id}" + (f" with run id {args.run_id}" if args.run_id
                                                                    else "")), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        from runlink.cli.render import render_tree

        print(render_tree(tree, full=args.full, diagnoses=(diagnoses or {}).get("items", [])))
    return 0
