"""Layered configuration: explicit argument > Spark conf / environment > $RUNLINK_HOME files > defaults.

An alias (the `DBND__*` names Databand users already have) is read only when the primary name is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8686"

#: primary environment name -> aliases, read in order when the primary is unset: the `DBND__*` names that mean
#: something here (README "Coming from Databand" lists them; the others are not read)
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "RUNLINK_URL": ("DBND__CORE__DATABAND_URL",),
    "RUNLINK_TOKEN": ("DBND__CORE__DATABAND_ACCESS_TOKEN",),
    "RUNLINK_TRACKING": ("DBND__TRACKING",),
    # dataset operations (runlink.dataset_op / log_dataset_op / log_dataframe): what is measured by default
    "RUNLINK_DATASET_PREVIEW": ("DBND__TRACKING__LOG_VALUE_PREVIEW",),
    "RUNLINK_DATASET_SCHEMA": ("DBND__TRACKING__LOG_VALUE_SCHEMA",),
    "RUNLINK_DATASET_STATS": ("DBND__TRACKING__LOG_VALUE_STATS",),
    # the Airflow plugin (runlink.airflow.settings)
    "RUNLINK_AIRFLOW_CAPTURE_SOURCE": ("DBND__TRACKING__TRACK_SOURCE_CODE",),
    "RUNLINK_AIRFLOW_CAPTURE_LOGS": ("DBND__TRACKING__CAPTURE_TRACKING_LOG",),
    "RUNLINK_AIRFLOW_LOG_BYTES": ("DBND__LOG__PREVIEW_TAIL_BYTES",),
    # the monitor DAG (runlink.airflow.get_monitor_dag)
    "RUNLINK_MONITOR_INTERVAL": ("DBND__AIRFLOW_MONITOR__INTERVAL",),
    "RUNLINK_MONITOR_LOGS": ("DBND__AIRFLOW_MONITOR__INCLUDE_LOGS",),
}

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def parse_bool(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use true or false)")


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of a primary name, or of its first set alias."""
    environ = os.environ if environ is None else environ
    for candidate in (name, *ENV_ALIASES.get(name, ())):
        value = environ.get(candidate)
        if value is not None and value.strip():
            return value.strip()
    return None


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    home = environ.get("RUNLINK_HOME")
    return Path(home).expanduser() if home else Path("~/.runlink").expanduser()


@dataclass(frozen=True)
class Config:
    """What an agent needs to report: where, with which token, whether at all, and its limits."""

    url: str = DEFAULT_URL
    token: str | None = field(default=None, repr=False)
    tracking: bool = True
    home: Path = field(default_factory=default_home)
    queue_size: int = 10000
    batch_size: int = 500
    batch_bytes: int = 2 * 1024 * 1024
    batch_interval_s: float = 0.5
    flush_timeout_s: float = 5.0
    request_timeout_s: float = 5.0
    max_retries: int = 5
    spool_max_bytes: int = 256 * 1024 * 1024

    @property
    def events_url(self) -> str:
        return self.url.rstrip("/") + "/api/v1/events"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    def with_(self, **changes: object) -> Config:
        return replace(self, **changes)

    def __repr__(self) -> str:  # the token never shows
        return f"Config(url={self.url!r}, tracking={self.tracking}, home={str(self.home)!r})"


def read_token_file(home: Path) -> str | None:
    try:
        text = (home / "token").read_text("utf-8").strip()
    except OSError:
        return None
    return text or None


def load(
    environ: Mapping[str, str] | None = None,
    spark_conf: Mapping[str, str] | None = None,
    **explicit: object,
) -> Config:
    """Resolve the configuration by the documented precedence."""
    environ = os.environ if environ is None else environ
    spark_conf = spark_conf or {}

    def pick(explicit_key: str, spark_key: str, env_name: str) -> str | None:
        if explicit.get(explicit_key) is not None:
            return str(explicit[explicit_key])
        value = spark_conf.get(spark_key)
        if value is not None and str(value).strip():
            return str(value).strip()
        return env_value(env_name, environ)

    home = Path(str(explicit["home"])) if explicit.get("home") else default_home(environ)
    url = pick("url", "spark.runlink.url", "RUNLINK_URL") or DEFAULT_URL
    token = pick("token", "spark.runlink.token", "RUNLINK_TOKEN") or read_token_file(home)
    tracking = parse_bool(pick("tracking", "spark.runlink.tracking", "RUNLINK_TRACKING"), True)
    numeric = {
        k: v for k, v in explicit.items() if k not in ("url", "token", "tracking", "home") and v is not None
    }
    flush = env_value("RUNLINK_FLUSH_TIMEOUT", environ)
    if flush and "flush_timeout_s" not in numeric:
        numeric["flush_timeout_s"] = float(flush)
    return Config(url=url, token=token, tracking=tracking, home=home, **numeric)
