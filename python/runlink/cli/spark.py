"""`runlink spark-conf`: the Spark conf for spark-submit, JSON or a properties file.

The token is a secret and is not printed unless `--with-token` is given: a driver started from this machine
(spark-submit in client mode, local mode) reads RUNLINK_TOKEN or $RUNLINK_HOME/token itself; a remote driver
needs `--with-token` (Spark redacts `spark.runlink.token` in its UI and event log by its default
`spark.redaction.regex`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from runlink.cli.options import add_url_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spark-conf",
        help="print the Spark conf that tracks a Spark application (for spark-submit)",
        description=(
            "Print the Spark conf (listener jar, listeners, Airflow context from AIRFLOW_CTX_*, tracker URL) "
            "as spark-submit arguments, JSON or a properties file. The token is left out unless --with-token: "
            "a local driver reads RUNLINK_TOKEN itself."
        ),
    )
    parser.add_argument("--format", choices=("args", "json", "properties"), default="args",
                        help="spark-submit --conf arguments (default), a JSON object, or spark-defaults.conf lines")
    add_url_option(parser)
    parser.add_argument("--jar-uri", help="where the driver finds the jar (s3://..., gs://..., dbfs:/...)")
    parser.add_argument(
        "--conf", dest="existing", action="append", default=[], metavar="KEY=VALUE",
        help="a conf entry the application already has (appended to / kept, never overwritten); repeatable",
    )
    parser.add_argument(
        "--with-token", action="store_true",
        help="include spark.runlink.token (a secret: only for drivers that cannot read RUNLINK_TOKEN)",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from runlink import config as config_mod
    from runlink.spark.conf import ListenerJarMissing, conf

    existing = {}
    for item in args.existing:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"runlink spark-conf: --conf needs KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        existing[key.strip()] = value
    token = None
    if args.with_token:
        token = config_mod.load(url=args.url).token
        if not token:
            print("runlink spark-conf: --with-token, but no token is configured (RUNLINK_TOKEN)", file=sys.stderr)
            return 2
    try:
        entries = conf(existing=existing, url=args.url, token=token, jar_uri=args.jar_uri)
    except ListenerJarMissing as exc:
        print(f"runlink spark-conf: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(entries, indent=2, sort_keys=True))
    elif args.format == "properties":
        for key, value in sorted(entries.items()):
            print(f"{key} {_properties_escape(value)}")
    else:
        print(" ".join(f"--conf {shlex.quote(f'{k}={v}')}" for k, v in entries.items()))
    return 0


def _properties_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
