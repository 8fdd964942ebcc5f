"""The monitor: runs sync cycles for one or more registered Airflow instances, as a process (`runlink monitor`) or
as a DAG inside Airflow (`get_monitor_dag()`).

Credentials are resolved here, in the monitor's process, never logged: a reference `env:VAR` from this process's
environment, `airflow-conn:ID` from an Airflow connection (login/password, or password alone as a token), or the
tracker's sealed secret decrypted with `$RUNLINK_HOME/secret.key` (a monitor that shares the tracker's home).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runlink.airflow.syncer.core import CycleResult, Instance, sync_cycle
from runlink.airflow.syncer.dag_cache import DagCache
from runlink.airflow.syncer.rest import AirflowClient, Credentials, make_client
from runlink.api_client import TrackerClient, TrackerError
from runlink.config import Config, load
from runlink.sealing import unseal

log = logging.getLogger("runlink.syncer")

MONITOR_DAG_ID = "runlink_monitor"
CONN_PREFIX = "runlink_airflow_"


def airflow_connection(conn_id: str) -> Any:
    """An Airflow connection (Airflow 3 task SDK or 2.x hooks): what the monitor DAG reads credentials from."""
    try:
        from airflow.sdk import BaseHook  # Airflow 3
    except ImportError:  # Airflow 2.x
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    return BaseHook.get_connection(conn_id)


def _from_reference(ref: str, auth_kind: str, username: str | None) -> tuple[Credentials, str | None]:
    """(credentials, url from the connection when it has one)."""
    kind, _, name = ref.partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            raise LookupError(f"the environment variable {name} (credentials reference) is not set")
        if auth_kind == "token":
            return Credentials(token=value), None
        return Credentials(username=username, password=value), None
    if kind == "airflow-conn":
        conn = airflow_connection(name)
        url = None
        if conn.host:
            scheme = conn.schema if conn.schema in ("http", "https") else "http"
            host = conn.host if "://" in conn.host else f"{scheme}://{conn.host}"
            url = host + (f":{conn.port}" if conn.port else "")
        if auth_kind == "token":
            return Credentials(token=conn.password), url
        return Credentials(username=conn.login or username, password=conn.password), url
    raise LookupError(f"unknown credentials reference kind {kind!r}")


def credentials_for(config: dict[str, Any], home: Path) -> tuple[Credentials, str]:
    """Credentials and URL of an instance from the tracker's syncer config."""
    url = config["url"]
    kind = config.get("auth_kind", "password")
    if kind == "none":
        return Credentials(), url
    if config.get("secret_ref"):
        creds, conn_url = _from_reference(config["secret_ref"], kind, config.get("username"))
        return creds, conn_url or url
    sealed = config.get("secret_sealed")
    if not sealed:
        raise LookupError(f"instance {config['name']!r} has no credentials")
    secret = unseal(home, sealed)
    if kind == "token":
        return Credentials(token=secret), url
    return Credentials(username=config.get("username"), password=secret), url


def client_for(api: TrackerClient, name: str, home: Path) -> tuple[AirflowClient, Instance]:
    config = api.syncer_config(name)
    if config is None:
        raise LookupError(f"no Airflow instance named {name!r} in the tracker (runlink airflow add {name} ...)")
    creds, url = credentials_for(config, home)
    api_version = config.get("api_version") or "auto"
    adopt_reported_uid(api, config, url)
    return make_client(url, creds, api_version), Instance(name=name, uid=config["uid"])


def adopt_reported_uid(api: TrackerClient, config: dict[str, Any], url: str) -> str | None:
    """When the instance reports (at /runlink/instance) a uid it was not registered under, as after a registration
    made before runlink[airflow] ran on its API server, add that uid as an alias of the instance, so the plugin's
    events and the syncer's join one run tree. Returns the alias added, if any."""
    from runlink.airflow.identity import ask_endpoint

    reported = ask_endpoint(url)
    if not reported or reported == config["uid"] or reported in (config.get("aliases") or ()):
        return None
    try:
        api.add_alias(config["name"], reported)
    except TrackerError as exc:
        log.warning("runlink monitor: %s reports uid %s, registered as %s; could not add it as an alias (%s): "
                    "run `runlink airflow alias %s %s`", config["name"], reported, config["uid"], exc,
                    config["name"], reported)
        return None
    log.info("runlink monitor: %s reports uid %s: added as an alias of %s", config["name"], reported, config["uid"])
    return reported


def open_cache(home: Path, api: TrackerClient, client: AirflowClient, instance: Instance) -> DagCache:
    """The DAG cache of this tracker + instance + Airflow (a cache of another one is not used)."""
    return DagCache.open(home, f"{api.url}|{instance.name}|{instance.uid}|{client.url}|{client.version}",
                         instance.name)


class Monitor:
    """Cycles over instances; one Airflow client per instance kept across cycles (sessions, tokens)."""

    def __init__(self, config: Config | None = None, names: Sequence[str] = (), *, since: str | None = None,
                 logs: bool = False, progress: bool = False, overlap_s: float | None = None) -> None:
        self.config = config or load()
        self.api = TrackerClient.from_config(self.config)
        self.names = list(names)
        self.since = since
        self.logs = logs
        self.progress = progress
        self.overlap_s = overlap_s
        self._clients: dict[str, tuple[AirflowClient, Instance]] = {}
        self._caches: dict[str, DagCache] = {}
        self.stop_event = threading.Event()

    def instance_names(self) -> list[str]:
        return self.names or [i["name"] for i in self.api.instances()]

    def cycle(self) -> list[CycleResult]:
        """One cycle over every instance; an instance that fails does not stop the others."""
        results = []
        for name in self.instance_names():
            try:
                if name not in self._clients:
                    self._clients[name] = client_for(self.api, name, self.config.home)
                client, instance = self._clients[name]
            except (LookupError, TrackerError, ValueError) as exc:
                log.warning("runlink monitor: %s: %s", name, exc)
                error = f"{type(exc).__name__}: {exc}"[:2000]
                try:
                    self.api.put_sync_state(name, {"last_error": error})
                except TrackerError:
                    pass
                results.append(CycleResult(name=name, ok=False, window_start=None, watermark=None, error=error))
                continue
            # the progress bar is for the backfill (first cycle with `since`), not for every incremental cycle
            kwargs: dict[str, Any] = {"since": self.since, "progress": self.progress and bool(self.since),
                                      "logs": self.logs}
            if self.overlap_s is not None:
                kwargs["overlap_s"] = self.overlap_s
            if name not in self._caches:
                self._caches[name] = open_cache(self.config.home, self.api, client, instance)
            kwargs["cache"] = self._caches[name]
            results.append(sync_cycle(client, self.api, instance, **kwargs))
        self.since = None  # a backfill is the first cycle only
        return results

    def run(self, interval_s: float, cycles: int | None = None) -> None:
        done = 0
        while not self.stop_event.is_set():
            for result in self.cycle():
                log.info("runlink monitor: %s", _summary(result))
            done += 1
            if cycles is not None and done >= cycles:
                return
            self.stop_event.wait(interval_s)  # the pause between cycles; a stop() ends it at once

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        for client, _ in self._clients.values():
            client.close()
        self.api.close()


def _summary(r: CycleResult) -> str:
    if not r.ok:
        return f"{r.name}: FAILED {r.error}"
    return (f"{r.name}: {r.dags} dags ({r.dag_details} structures fetched), {r.dag_runs} runs, "
            f"{r.task_instances} task instances ({r.tries} tries), "
            f"{r.events} events ({r.accepted} new, {r.duplicates} known) in {r.seconds:.2f}s")


# ---------------------------------------------------------------------------------------------- the DAG

def sync_from_airflow(name: str, uid: str | None = None, conn_id: str | None = None, api_version: str = "auto",
                      auth_kind: str = "password", logs: bool = False, url: str | None = None,
                      token: str | None = None) -> dict[str, Any]:
    """The monitor DAG's task: credentials from an Airflow connection (`runlink_airflow_<name>`: host = URL,
    login/password, or password = token with auth_kind "token"); tracker from RUNLINK_URL/RUNLINK_TOKEN.

    The instance must be registered in the tracker (its watermark lives there); `uid` registers nothing, it only
    overrides the uid the events carry when given. `url` / `token`: the tracker's, over RUNLINK_URL / RUNLINK_TOKEN.
    """
    conn_id = conn_id or CONN_PREFIX + name
    creds, airflow_url = _from_reference(f"airflow-conn:{conn_id}", auth_kind, None)
    config = load(url=url, token=token)
    api = TrackerClient.from_config(config)
    try:
        registered = api.instance(name)
        if registered is None:
            raise LookupError(f"no Airflow instance named {name!r} in the tracker (runlink airflow add {name} ...)")
        airflow_url = airflow_url or registered["url"]
        client = make_client(airflow_url, creds,
                             api_version if api_version != "auto" else registered["api_version"])
        try:
            instance = Instance(name=name, uid=uid or registered["uid"])
            result = sync_cycle(client, api, instance, logs=logs,
                                cache=open_cache(config.home, api, client, instance))
        finally:
            client.close()
    finally:
        api.close()
    if not result.ok:
        raise RuntimeError(f"runlink sync of {name} failed: {result.error}")
    return {k: v for k, v in result.as_dict().items() if k != "extra"}


#: Databand's `get_monitor_dag` keywords that mean nothing here (its monitor was one long task restarted now and
#: then; here each cycle is one short DAG run): accepted, ignored with a warning
DATABAND_IGNORED = ("force_restart_after", "guard_memory", "dag_kwargs", "syncer_name", "retries", "monitor_config")


def get_monitor_dag(name: str | None = None, *, dag_id: str = MONITOR_DAG_ID, schedule: Any = None,
                    conn_id: str | None = None, uid: str | None = None, api_version: str = "auto",
                    auth_kind: str = "password", logs: bool | None = None, check_interval: Any = None,
                    start_date: Any = None, url: str | None = None, token: str | None = None,
                    databand_url: str | None = None, databand_access_token: str | None = None,
                    **ignored: Any) -> Any:
    """A DAG that syncs an Airflow instance into the tracker every few minutes (one run at a time); public as
    `runlink.airflow.get_monitor_dag` (Databand's `airflow_monitor.monitor_as_dag.get_monitor_dag`).

    `name` defaults to the `name` param (`RUNLINK_MONITOR_INSTANCE`, else "default"); credentials come from the
    Airflow connection `runlink_airflow_<name>` unless `conn_id` is given. Databand's keywords: `check_interval`
    (seconds or a timedelta between cycles: the schedule, when `schedule` is not given; default
    RUNLINK_MONITOR_INTERVAL / DBND__AIRFLOW_MONITOR__INTERVAL, else 5 minutes), `start_date`, `dag_id`,
    `databand_url` / `databand_access_token` (the tracker's `url` / `token`, else RUNLINK_URL / RUNLINK_TOKEN);
    any other keyword is ignored with a warning. `logs`: send log tails too (default RUNLINK_MONITOR_LOGS).
    """
    import warnings
    from datetime import datetime, timedelta

    from runlink.config import env_value, parse_bool

    try:
        from airflow.sdk import DAG, task  # Airflow 3
    except ImportError:  # Airflow 2.x
        from airflow.decorators import task  # type: ignore[no-redef]

        from airflow import DAG  # type: ignore[no-redef]

    if ignored:
        unknown = sorted(k for k in ignored if k not in DATABAND_IGNORED)
        warnings.warn(f"runlink get_monitor_dag ignores {', '.join(sorted(ignored))}"
                      + (f" (not Databand keywords either: {', '.join(unknown)})" if unknown else
                         " (Databand monitor settings with no meaning here)"), UserWarning, stacklevel=2)
    if check_interval is None:
        check_interval = env_value("RUNLINK_MONITOR_INTERVAL")
    if schedule is None and check_interval not in (None, ""):
        schedule = check_interval if isinstance(check_interval, timedelta) else timedelta(
            seconds=float(check_interval))
    if logs is None:
        logs = parse_bool(env_value("RUNLINK_MONITOR_LOGS"), False)
    tracker_url, tracker_token = url or databand_url, token or databand_access_token
    default_name = name or os.environ.get("RUNLINK_MONITOR_INSTANCE") or "default"
    dag = DAG(
        dag_id=dag_id,
        schedule=schedule if schedule is not None else timedelta(minutes=5),
        start_date=start_date or datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["runlink"],
        params={"name": default_name, "uid": uid, "conn_id": conn_id},
        default_args={"retries": 0},
        doc_md="Copies this Airflow's DAGs, runs and task tries into the runlink tracker.",
    )
    with dag:

        @task(task_id="sync")
        def sync(params: dict | None = None) -> dict[str, Any]:
            params = params or {}
            return sync_from_airflow(params.get("name") or default_name, uid=params.get("uid") or uid,
                                     conn_id=params.get("conn_id") or conn_id, api_version=api_version,
                                     auth_kind=auth_kind, logs=bool(logs), url=tracker_url, token=tracker_token)

        sync()
    return dag
