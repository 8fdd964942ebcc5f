"""apache-airflow-providers-amazon: EmrAddStepsOperator.

Every step whose `HadoopJarStep.Args` runs `spark-submit` (the `command-runner.jar` idiom) gets `--conf` arguments
right after the `spark-submit` word: context (`spark.env.*`), tracker settings, and, when `[runlink] remote_jar`
names an s3:// copy of the listener jar, the jar and the listeners. User `--conf` values are kept.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import inject_submit_args, parse_conf_args, remote_spark_conf


def _is_spark_submit(word: Any) -> bool:
    return isinstance(word, str) and (word == "spark-submit" or word.endswith("/spark-submit"))


def inject_steps(steps: list[dict[str, Any]], raw: dict[str, str], remote_jar: str | None) -> list[dict[str, Any]]:
    for step in steps:
        jar_step = step.get("HadoopJarStep") if isinstance(step, dict) else None
        args = jar_step.get("Args") if isinstance(jar_step, dict) else None
        if not isinstance(args, list):
            continue
        for index, word in enumerate(args):
            if _is_spark_submit(word):
                rest = [str(a) for a in args[index + 1:]]
                conf = remote_spark_conf(raw, parse_conf_args(rest), remote_jar)
                jar_step["Args"] = args[: index + 1] + inject_submit_args(rest, conf, remote_jar)
                break
    return steps


def inject_emr_add_steps(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    steps = getattr(task, "steps", None)
    if isinstance(steps, str):  # a rendered template: the operator itself reads it with ast.literal_eval
        try:
            steps = ast.literal_eval(steps)
        except (ValueError, SyntaxError):
            try:
                steps = json.loads(steps)
            except ValueError:
                return
    if isinstance(steps, dict):
        steps = [steps]
    if not isinstance(steps, list):
        return
    undo.set_attr(task, "steps", inject_steps(copied(steps), raw, settings.remote_jar))
