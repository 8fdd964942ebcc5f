"""The Airflow instance uid: one per deployment, the same in every component without configuration.

Every component of one deployment (scheduler, API server, DAG processor, triggerer, task processes under any
executor) and the syncer must report the same uid, or one DAG run splits into several in the tracker. The uid is
resolved, first match wins:

1. pinned: `[runlink] uid` in airflow.cfg / `AIRFLOW__RUNLINK__UID` / `RUNLINK_AIRFLOW_UID`;
2. derived from the metadata database URL (password removed), which every component that reaches the database
   shares: `airflow-` + 12 hex digits of its sha256;
3. inherited: a process that derived it exports it as `_RUNLINK_AIRFLOW_INSTANCE_UID`, so processes forked or
   started from it get it. Airflow 3's task runner blocks database access in the task process (the URL becomes
   `airflow-db-not-allowed:///`), but the task process is forked from a supervisor in the scheduler's
   (LocalExecutor) or the Celery worker's process tree, which imported Airflow, and so this module, first;
4. asked: the runlink endpoint on Airflow's API server (`GET <api server>/runlink/instance`), found from
   `[core] execution_api_server_url` (an Airflow 3 worker configured without the database);
5. none: the events carry no uid, and the tracker places them by their DAG run (DESIGN.md, "Linking").

The syncer learns the same uid from the endpoint (`runlink airflow add` prints it), so it needs no `--uid`.
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import urlsplit

#: the variable through which a component hands its derived uid to the processes it starts
INHERITED_ENV = "_RUNLINK_AIRFLOW_INSTANCE_UID"
#: the path of the endpoint the plugin adds to Airflow's API server (Airflow 3) / web server (Airflow 2)
ENDPOINT_PATH = "/runlink/instance"
#: what Airflow 3's task runner puts in place of the metadata database URL
BLOCKED_DB_URL_PREFIX = "airflow-db-not-allowed"
ASK_TIMEOUT_S = 3.0

_PASSWORD = re.compile(r"://([^:/@]+):[^@]*@")


def strip_password(url: str) -> str:
    return _PASSWORD.sub(r"://\1@", url)


def uid_of_database(url: str) -> str:
    """The default uid of the deployment whose metadata database is `url` (the password never counts)."""
    digest = hashlib.sha256(strip_password(url.strip()).encode("utf-8")).hexdigest()[:12]
    return f"airflow-{digest}"


def _airflow_conf_value(section: str, option: str) -> str | None:
    try:
        from airflow.configuration import conf

        if conf.has_option(section, option):
            value = conf.get(section, option)
            return str(value) if value else None
    except Exception:  # noqa: BLE001 - a broken airflow.cfg must not stop any component
        return None
    return None


def database_url() -> str | None:
    """The metadata database URL this process really reaches, or None (blocked, or a default that points at
    no database: a worker configured without one)."""
    url = _airflow_conf_value("database", "sql_alchemy_conn") or _airflow_conf_value("core", "sql_alchemy_conn")
    if not url or url.startswith(BLOCKED_DB_URL_PREFIX):
        return None
    if url.startswith("sqlite:"):
        path = url.split("sqlite:///", 1)[1].split("?", 1)[0] if "sqlite:///" in url else ""
        if not path or not os.path.exists(path):
            return None
    return url


def databand_uid(url: str | None = None) -> str | None:
    """The uid Databand's plugin reported for the deployment whose metadata database is `url` (default: this
    process's): uuid5(NAMESPACE_URL, "host:port/database"). Added as an alias of the instance (`runlink airflow
    alias NAME <uid>`), it joins what was reported under Databand's uid to the instance's run trees."""
    import uuid

    url = url or database_url()
    if not url:
        return None
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL has no Databand uid
        return None
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{parsed.host}:{parsed.port}/{parsed.database}"))


def derived_uid() -> str | None:
    """The uid derived from this process's own metadata database URL, or None."""
    url = database_url()
    return uid_of_database(url) if url else None


def export_for_children() -> str | None:
    """Derive the uid where the database is visible and hand it to every process started from here.

    Called when `import airflow` loads runlink's cluster policy, so the scheduler, the Celery worker and the
    DAG processor export it before they fork task or parsing processes; cheap (a config read and a hash).
    """
    uid = derived_uid()
    if uid:
        os.environ[INHERITED_ENV] = uid
    return uid


def endpoint_base() -> str | None:
    """The API server's root URL, from the execution API URL every Airflow 3 worker is configured with."""
    url = _airflow_conf_value("core", "execution_api_server_url")
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def ask_endpoint(base: str, timeout_s: float = ASK_TIMEOUT_S) -> str | None:
    """The uid the runlink endpoint of the Airflow at `base` reports, or None when it cannot say."""
    try:
        import requests

        response = requests.get(base.rstrip("/") + ENDPOINT_PATH, timeout=timeout_s)
        if response.status_code != 200:
            return None
        uid = response.json().get("uid")
    except Exception:  # noqa: BLE001 - any failure means "unknown", never a failed task
        return None
    return uid if isinstance(uid, str) and uid.strip() else None


def resolve(pinned: str | None) -> tuple[str | None, str]:
    """(uid, how it was found) for this process; see the module docstring for the order."""
    if pinned:
        return pinned, "pinned"
    uid = derived_uid()
    if uid:
        return uid, "metadata database URL"
    inherited = os.environ.get(INHERITED_ENV, "").strip()
    if inherited:
        return inherited, "inherited"
    base = endpoint_base()
    if base:
        uid = ask_endpoint(base)
        if uid:
            os.environ[INHERITED_ENV] = uid  # once per process, and for the processes the task starts
            return uid, "API server"
    return None, "unknown"
