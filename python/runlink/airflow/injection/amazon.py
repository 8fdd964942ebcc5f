"""apache-airflow-providers-amazon: EMR steps, EMR Serverless, EMR on EKS, Glue.

What is added everywhere: the context (`spark.env.*`), the tracker settings and, when `[runlink] remote_jar`
names an s3:// copy of the listener jar, the jar and the listeners. User values are kept, list keys appended to.

- EmrAddStepsOperator: every step whose `HadoopJarStep.Args` runs `spark-submit` (the `command-runner.jar` idiom)
  gets `--conf` arguments right after the `spark-submit` word.
- EmrServerlessStartJobOperator (`jobDriver.sparkSubmit`) and EmrContainerOperator (EMR on EKS,
  `jobDriver.sparkSubmitJobDriver`): new keys go to the `spark-defaults` classification of
  `configurationOverrides.applicationConfiguration`; a list key the user set in `sparkSubmitParameters` (which
  wins over spark-defaults) is rewritten there with ours appended, and so is a `--jars` there.
- GlueJobOperator: the `--conf` script argument (`k=v --conf k2=v2`, Glue's own idiom) and `--extra-jars`; a run
  argument replaces the job's default argument of the same name, so the job's `DefaultArguments` (in
  `create_job_kwargs`) are the starting point when the run has none.
"""

from __future__ import annotations

import ast
import json
import logging
import shlex
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import inject_submit_args, parse_conf_args, remote_spark_conf
from runlink.spark.conf import LIST_KEYS, append_list

log = logging.getLogger("runlink.airflow")


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


# ------------------------------------------------------------------ EMR Serverless / EMR on EKS

def _spark_defaults(overrides: dict[str, Any]) -> dict[str, Any]:
    """The `spark-defaults` classification of configurationOverrides (created when missing)."""
    configs = overrides.get("applicationConfiguration")
    if not isinstance(configs, list):
        configs = overrides["applicationConfiguration"] = []
    for config in configs:
        if isinstance(config, dict) and config.get("classification") == "spark-defaults":
            if not isinstance(config.get("properties"), dict):
                config["properties"] = {}
            return config
    config = {"classification": "spark-defaults", "properties": {}}
    configs.append(config)
    return config


def _rewrite_submit_parameters(text: str, conf: dict[str, str], remote_jar: str | None) -> str:
    """`sparkSubmitParameters` with the user's list keys (and `--jars`) appended to; nothing else changes."""
    words = shlex.split(text)
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--conf" and i + 1 < len(words) and "=" in words[i + 1]:
            key = words[i + 1].partition("=")[0].strip()
            out += [word, f"{key}={conf[key]}" if key in LIST_KEYS and key in conf else words[i + 1]]
            i += 2
            continue
        if word == "--jars" and i + 1 < len(words) and remote_jar:
            out += [word, append_list(words[i + 1], remote_jar)]
            i += 2
            continue
        out.append(word)
        i += 1
    return shlex.join(out)


def inject_emr_job(driver: Any, overrides: Any, raw: dict[str, str], remote_jar: str | None,
                   driver_key: str) -> tuple[Any, Any]:
    """(jobDriver, configurationOverrides) of an EMR Serverless / on EKS Spark job, both already copied."""
    submit = driver.get(driver_key) if isinstance(driver, dict) else None
    if not isinstance(submit, dict):
        return driver, overrides  # a Hive job, or a driver given in another form
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        return driver, overrides
    params = submit.get("sparkSubmitParameters")
    params = params if isinstance(params, str) else ""
    in_params = parse_conf_args(shlex.split(params))
    defaults = _spark_defaults(overrides)
    user = {**defaults["properties"], **in_params}
    conf = remote_spark_conf(raw, user, remote_jar)
    for key, value in conf.items():
        if key in in_params:
            continue
        if key in LIST_KEYS and not value:
            continue
        if key not in defaults["properties"] or key in LIST_KEYS:
            defaults["properties"][key] = value
    if params:
        submit["sparkSubmitParameters"] = _rewrite_submit_parameters(params, conf, remote_jar)
    return driver, overrides


def _inject_emr_task(task: Any, raw: dict[str, str], remote_jar: str | None, undo: Undo, driver_key: str) -> None:
    """An EMR job operator's `job_driver` and `configuration_overrides` (copies) injected, set with undo."""
    driver, overrides = inject_emr_job(copied(getattr(task, "job_driver", None)),
                                       copied(getattr(task, "configuration_overrides", None)),
                                       raw, remote_jar, driver_key)
    undo.set_attr(task, "job_driver", driver)
    undo.set_attr(task, "configuration_overrides", overrides)


def inject_emr_serverless(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    _inject_emr_task(task, raw, settings.remote_jar, undo, "sparkSubmit")


def inject_emr_containers(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    _inject_emr_task(task, raw, settings.remote_jar, undo, "sparkSubmitJobDriver")


# ------------------------------------------------------------------ Glue

def _glue_conf(text: str) -> dict[str, str]:
    """`k=v --conf k2=v2` (the value of Glue's `--conf` argument) as a dict."""
    return parse_conf_args(["--conf", *shlex.split(text)]) if text.strip() else {}


def inject_glue_arguments(args: dict[str, Any], defaults: dict[str, Any], raw: dict[str, str],
                          remote_jar: str | None) -> dict[str, Any]:
    """Run arguments (already copied) with `--conf` and `--extra-jars`; `defaults` are the job's DefaultArguments."""
    text = args.get("--conf", defaults.get("--conf", ""))
    text = text if isinstance(text, str) else ""
    user = _glue_conf(text)
    conf = remote_spark_conf(raw, user, remote_jar)
    if remote_jar:
        conf.pop("spark.jars", None) if "spark.jars" not in user else None  # --extra-jars ships it
        jars = args.get("--extra-jars", defaults.get("--extra-jars", ""))
        args["--extra-jars"] = append_list(jars if isinstance(jars, str) else "", remote_jar)
    parts = [f"{k}={conf[k] if k in LIST_KEYS and k in conf else v}" for k, v in user.items()]
    parts += [f"{k}={v}" for k, v in sorted(conf.items()) if k not in user and (k not in LIST_KEYS or v)]
    args["--conf"] = " --conf ".join(parts)
    return args


def inject_glue(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    args = getattr(task, "script_args", None)
    if args is not None and not isinstance(args, dict):
        log.debug("runlink: %s.script_args is a %s, left alone", task.task_id, type(args).__name__)
        return
    create = getattr(task, "create_job_kwargs", None)
    defaults = create.get("DefaultArguments") if isinstance(create, dict) else None
    undo.set_attr(task, "script_args",
                  inject_glue_arguments(copied(args or {}), dict(defaults or {}), raw, settings.remote_jar))
