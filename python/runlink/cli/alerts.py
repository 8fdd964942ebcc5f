"""`runlink alerts ...`: alert rules and alert events through the tracker's HTTP API (the tracker may be remote).

    runlink alerts kinds
    runlink alerts rules [--json]
    runlink alerts add NAME --kind task_failed --dag-id 'etl_*' [--task-id T] [--param k=v ...]
                       [--webhook URL] [--email a@b,c@d] [--instance UID] [--disabled]
    runlink alerts enable|disable|delete RULE_ID
    runlink alerts list [--state open|resolved] [--dag-id D] [--json]
    runlink alerts resolve ALERT_ID [--note TEXT]
    runlink alerts evaluate
"""

from __future__ import annotations

import argparse
from typing import Any

from runlink.cli.options import add_group, add_url_option, tracker_client
from runlink.cli.tables import print_json_or_empty
from runlink.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_group(subparsers, "alerts", "alert rules and alerts (tracker API)")

    def add(name: str, help_: str, handler) -> argparse.ArgumentParser:  # noqa: ANN001
        parser = sub.add_parser(name, help=help_)
        add_url_option(parser)
        parser.set_defaults(handler=handler)
        return parser

    add("kinds", "rule kinds and their parameters", _kinds)
    rules = add("rules", "list rules", _rules)
    rules.add_argument("--json", action="store_true", help="machine-readable output")
    create = add("add", "create a rule (evaluated at once)", _add)
    create.add_argument("name", help="the rule's name (shown in alerts and notifications)")
    create.add_argument("--kind", required=True,
                        choices=("task_failed", "spark_failed", "duration", "metric", "dataset_rows", "dag_missing",
                                 "slower", "skew", "spill"),
                        help="what the rule watches (`runlink alerts kinds` lists them with their parameters)")
    create.add_argument("--dag-id", help="DAG id or glob (etl_*); default: every DAG")
    create.add_argument("--task-id", help="only this task (default: every task)")
    create.add_argument("--instance", help="only this Airflow instance's uid (default: every instance)")
    create.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="e.g. max_s=600, k=2, n=10, key=rows, min=1, change_pct=50, dataset=db.t, grace_s=900, "
                             "ratio=5 (skew), min_bytes=1073741824 (spill)")
    create.add_argument("--webhook", help="Slack-compatible incoming webhook URL")
    create.add_argument("--email", help="comma-separated addresses (the tracker needs RUNLINK_SMTP_HOST)")
    create.add_argument("--disabled", action="store_true", help="create the rule switched off")
    for action in ("enable", "disable", "delete"):
        parser = add(action, f"{action} a rule", _change)
        parser.add_argument("rule_id", help="the rule's id (`runlink alerts rules`)")
        parser.set_defaults(action=action)
    listing = add("list", "list alerts, newest first", _list)
    listing.add_argument("--state", choices=("open", "resolved"), help="only open or only resolved alerts")
    listing.add_argument("--dag-id", help="only this DAG's alerts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    resolve = add("resolve", "resolve an alert by hand", _resolve)
    resolve.add_argument("alert_id", help="the alert's id (`runlink alerts list`)")
    resolve.add_argument("--note", help="why it is resolved (kept with the alert)")
    add("evaluate", "re-check every rule now (and missing runs)", _evaluate)


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    with tracker_client(args.url) as api:
        return api.request(method, path, **kwargs)


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _kinds(args: argparse.Namespace) -> int:
    for kind, spec in _call(args, "GET", "/api/v1/alert-rules/kinds").items():
        print(f"{kind:14} {spec['label']}" + (f"  params: {', '.join(spec['params'])}" if spec["params"] else ""))
    return 0


def _rules(args: argparse.Namespace) -> int:
    items = _call(args, "GET", "/api/v1/alert-rules")["items"]
    if print_json_or_empty(items, args.json, "no rules"):
        return 0
    for r in items:
        scope = f"{r['instance'] or '*'}/{r['dag_id'] or '*'}" + (f"/{r['task_id']}" if r["task_id"] else "")
        params = " ".join(f"{k}={v}" for k, v in sorted(r["params"].items()))
        state = "on " if r["enabled"] else "off"
        print(printable(f"{r['id']}  {state} {r['kind']:13} {scope:30} {params:30} {r['name']}"))
    return 0


def _add(args: argparse.Namespace) -> int:
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"runlink: --param {item!r}: expected KEY=VALUE")
        params[key.strip()] = _value(value.strip())
    body = {"name": args.name, "kind": args.kind, "dag_id": args.dag_id, "task_id": args.task_id,
            "instance": args.instance, "params": params, "webhook_url": args.webhook, "email_to": args.email,
            "enabled": not args.disabled}
    rule = _call(args, "POST", "/api/v1/alert-rules", json=body)
    print(rule["id"])
    return 0


def _change(args: argparse.Namespace) -> int:
    if args.action == "delete":
        _call(args, "DELETE", f"/api/v1/alert-rules/{args.rule_id}")
    else:
        _call(args, "PATCH", f"/api/v1/alert-rules/{args.rule_id}", json={"enabled": args.action == "enable"})
    print(f"{args.action}d {args.rule_id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("state", args.state), ("dag_id", args.dag_id)) if v}
    items = _call(args, "GET", "/api/v1/alerts", params=params)["items"]
    if print_json_or_empty(items, args.json, "no alerts"):
        return 0
    for a in items:
        sent = ",".join(f"{d['channel']}:{d['status']}" for d in a["deliveries"]) or "-"
        when = a["resolved_at"] if a["state"] == "resolved" else a["opened_at"]
        print(printable(f"{a['id']}  {a['state']:8} {when[:19]}  {a['title']}  [{a['rule_name'] or '?'}; {sent}]"))
    return 0


def _resolve(args: argparse.Namespace) -> int:
    alert = _call(args, "POST", f"/api/v1/alerts/{args.alert_id}/resolve", json={"note": args.note})
    print(f"{alert['id']} {alert['state']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    counts = _call(args, "POST", "/api/v1/alerts/evaluate")
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing changed")
    return 0
