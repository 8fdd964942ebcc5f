"""`runlink lineage pending|unlinked`: the OpenLineage events still waiting for their parent run.

Why a CLI: a child job (openlineage-spark, dbt, a script) whose parent never reached runlink is otherwise silent;
this lists what waits (pending) and what gave up waiting (unlinked, after the tracker's TTL), from any machine."""

from __future__ import annotations

import argparse
import json
import sys

from runlink.cli.options import add_group, add_url_option, positive_int, tracker_client
from runlink.cli.tables import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_group(subparsers, "lineage", "OpenLineage events waiting for their parent run")
    for status, help_text in (("pending", "events whose parent run is not known yet (younger than the TTL)"),
                              ("unlinked", "events whose parent stayed unknown past the TTL (kept, never dropped)")):
        parser = sub.add_parser(status, help=help_text)
        parser.add_argument("--limit", type=positive_int, default=100,
                            help="at most this many events (default 100, 1000 at most)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        add_url_option(parser)
        parser.set_defaults(handler=_list, status=status)


def _list(args: argparse.Namespace) -> int:
    with tracker_client(args.url) as api:
        body = api.get(f"/api/v1/lineage/{args.status}", allow_404=True, limit=min(args.limit, 1000))
    if body is None:
        print("runlink: this tracker has no OpenLineage waiting list (older version)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    counts = body["counts"]
    print(f"{counts['pending']} pending, {counts['unlinked']} unlinked (unlinked after {body['ttl_s']:g} s)")
    items = body["items"]
    if not items:
        return 0
    rows = [("RECEIVED", "EVENT", "JOB", "PARENT JOB", "PARENT RUN ID")]
    for item in items:
        job = f"{item['job_namespace'] or ''}/{item['job_name'] or ''}"
        parent = f"{item['parent_job_namespace'] or ''}/{item['parent_job_name'] or ''}"
        rows.append((item["received_at"], item["event_type"] or "-", job, parent, item["parent_run_id"]))
    print_table(rows)
    return 0
