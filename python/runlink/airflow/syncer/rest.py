"""Airflow's REST API, one client per API version, yielding records in one internal shape.

v2 (Airflow 3): JWT from `POST /auth/token` (username/password), or a given bearer token. v1 (Airflow 2.11):
basic auth, or a given bearer token. Lists are paged (`limit`/`offset`, ordered by id) and yielded one record at
a time, so the caller never holds more than a page. Filtering on `updated_at_gte` (both versions: 2.11 has it on
DAG runs and task instances) keeps incremental cycles proportional to what changed; paging with offsets ordered by
id under that filter can repeat a row (a row that entered the set before the current offset shifts the pages) but
never skips one, and a repeat is a duplicate event anyway. 2.11's task instance list cannot be ordered: it is read
in `updated_at` slices that each fit one page instead (`AirflowV1.task_instances`).

Credentials stay in this object: `repr` and error messages never include them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import requests

from runlink.airflow.syncer.watermark import parse as watermark_parse
from runlink.instants import format_instant

log = logging.getLogger("runlink.syncer")

PAGE = 100  # Airflow's default maximum_page_limit
RETRIES = 4


class AirflowApiError(RuntimeError):
    """The Airflow API answered an error (or could not be reached) after retries."""


@dataclass(frozen=True)
class Credentials:
    """How to log in. `password` and `token` are secrets: not in repr."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


_TICK = timedelta(microseconds=1)  # Airflow's timestamps are microsecond-precise


def _q(value: str) -> str:
    return quote(str(value), safe="")


def _instant(moment: datetime) -> str:
    return format_instant(moment)


def _dag_record(raw: dict[str, Any], *, schedule: Any, next_run_date: Any, is_stale: Any) -> dict[str, Any]:
    """A DAG as the sync records it; the fields the two API versions spell differently come from the caller."""
    return {
        "dag_id": raw["dag_id"],
        "description": raw.get("description"),
        "schedule": schedule,
        "owners": raw.get("owners") or [],
        "tags": sorted(t["name"] if isinstance(t, dict) else str(t) for t in raw.get("tags") or []),
        "fileloc": raw.get("fileloc"),
        "is_paused": raw.get("is_paused"),
        "next_run_date": next_run_date,
        "is_stale": is_stale,
        "last_parsed_time": raw.get("last_parsed_time"),
    }


def _run_record(raw: dict[str, Any], *, logical_date: Any, triggered_by: Any = None, queued_at: Any = None,
                run_after: Any = None) -> dict[str, Any]:
    """A DAG run as the sync records it; the fields the two API versions spell differently come from the caller."""
    return {
        "dag_id": raw["dag_id"],
        "dag_run_id": raw["dag_run_id"],
        "logical_date": logical_date,
        "state": raw.get("state"),
        "start_date": raw.get("start_date"),
        "end_date": raw.get("end_date"),
        "run_type": raw.get("run_type"),
        "conf": raw.get("conf"),
        "data_interval_start": raw.get("data_interval_start"),
        "data_interval_end": raw.get("data_interval_end"),
        "triggered_by": triggered_by,
        "note": raw.get("note"),
        "queued_at": queued_at,
        "run_after": run_after,
    }


class AirflowClient:
    """Shared transport: session, retries on connection errors and 5xx, auth refresh on 401."""

    version = "?"
    prefix = ""

    def __init__(self, url: str, credentials: Credentials, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._credentials = credentials
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.requests_made = 0
        self.page = PAGE
        self._authenticated = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    def close(self) -> None:
        self.session.close()

    # -- auth ------------------------------------------------------------------------------------------
    def authenticate(self) -> None:
        raise NotImplementedError

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 accept: str | None = None, allow_404: bool = False) -> requests.Response | None:
        if not self._authenticated:
            self.authenticate()
            self._authenticated = True
        url = self.url + path
        headers = {"Accept": accept} if accept else None
        delay = 0.5
        refreshed = False
        for attempt in range(RETRIES + 1):
            try:
                self.requests_made += 1
                response = self.session.request(method, url, params=params, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                if attempt == RETRIES:
                    raise AirflowApiError(f"{method} {path}: {type(exc).__name__}") from None
                time.sleep(delay)  # backoff between retries of a failed request
                delay = min(delay * 2, 8.0)
                continue
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self.authenticate()
                continue
            if response.status_code == 404 and allow_404:
                return None
            if response.status_code >= 500 or response.status_code == 429:
                if attempt == RETRIES:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
                continue
            if response.status_code >= 400:
                raise AirflowApiError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
            return response
        raise AirflowApiError(f"{method} {path}: HTTP {response.status_code} after {RETRIES + 1} tries")

    def get_json(self, path: str, params: dict[str, Any] | None = None, allow_404: bool = False) -> Any:
        response = self._request("GET", self.prefix + path, params=params, allow_404=allow_404)
        return None if response is None else response.json()

    def paged(self, path: str, key: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.get_json(path, {**(params or {}), "limit": self.page, "offset": offset})
            items = page.get(key) or []
            yield from items
            if len(items) < self.page:
                return
            offset += len(items)

    # -- what the sync needs (normalized records) --------------------------------------------------
    def health(self) -> dict[str, Any]:
        raise NotImplementedError

    #: list the DAGs Airflow no longer has files for too (`is_stale`), so the tracker can mark them
    dag_list_params: dict[str, Any] = {}

    def dags(self) -> Iterator[dict[str, Any]]:
        for dag in self.paged("/dags", "dags", self.dag_list_params):
            yield self._dag(dag)

    def tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """Structure: task id, operator, upstream and downstream ids (upstream derived from downstream)."""
        data = self.get_json(f"/dags/{_q(dag_id)}/tasks", allow_404=True) or {}
        tasks = data.get("tasks") or []
        upstream: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
        for t in tasks:
            for down in t.get("downstream_task_ids") or []:
                upstream.setdefault(down, []).append(t["task_id"])
        out = []
        for t in sorted(tasks, key=lambda t: t["task_id"]):
            class_ref = t.get("class_ref") or {}
            operator = (f"{class_ref.get('module_path')}.{class_ref.get('class_name')}"
                        if class_ref.get("class_name") else t.get("operator_name"))
            out.append({
                "task_id": t["task_id"],
                "operator": operator,
                "upstream": sorted(upstream.get(t["task_id"], [])),
                "downstream": sorted(t.get("downstream_task_ids") or []),
                "retries": t.get("retries"),
                "trigger_rule": t.get("trigger_rule"),
                "owner": t.get("owner"),
                "pool": t.get("pool"),
                "queue": t.get("queue"),
                "is_mapped": t.get("is_mapped"),
            })
        return out

    def dag_versions_since(self, mark: str | None) -> tuple[set[str], str | None] | None:
        """DAGs with a structure version newer than `mark` and the newest version id; None when this API has no
        DAG versions (2.11). Airflow 3 only."""
        return None

    def dag_runs(self, updated_since: str | None) -> Iterator[dict[str, Any]]:
        params = {"order_by": "id"}
        if updated_since:
            params["updated_at_gte"] = updated_since
        for run in self.paged("/dags/~/dagRuns", "dag_runs", params):
            yield self._run(run)

    def task_instances(self, updated_since: str | None) -> Iterator[dict[str, Any]]:
        params = {"order_by": "id"} if self.version == "v2" else {}
        if updated_since:
            params["updated_at_gte"] = updated_since
        for ti in self.paged("/dags/~/dagRuns/~/taskInstances", "task_instances", params):
            yield self._ti(ti)

    def tries(self, ti: dict[str, Any]) -> list[dict[str, Any]]:
        """Every try of a task instance (history + current), oldest first."""
        path = (f"/dags/{_q(ti['dag_id'])}/dagRuns/{_q(ti['dag_run_id'])}/taskInstances/{_q(ti['task_id'])}"
                + (f"/{ti['map_index']}" if ti["map_index"] >= 0 else "") + "/tries")
        data = self.get_json(path, allow_404=True) or {}
        tries = [self._ti({**ti_raw, "dag_run_id": ti_raw.get("dag_run_id") or ti["dag_run_id"]})
                 for ti_raw in data.get("task_instances") or []]
        for t in tries:  # the history rows carry no logical date on some versions
            t["logical_date"] = t.get("logical_date") or ti.get("logical_date")
        return sorted(tries, key=lambda t: t["try_number"])

    def log_tail(self, ti: dict[str, Any], max_bytes: int) -> str | None:
        """The end of one try's log as text (None when Airflow has none)."""
        path = (f"{self.prefix}/dags/{_q(ti['dag_id'])}/dagRuns/{_q(ti['dag_run_id'])}/taskInstances/"
                f"{_q(ti['task_id'])}/logs/{ti['try_number']}")
        params: dict[str, Any] = {"full_content": "true"}
        if ti["map_index"] >= 0:
            params["map_index"] = ti["map_index"]
        try:
            response = self._request("GET", path, params=params, accept="text/plain", allow_404=True)
        except AirflowApiError:
            return None
        if response is None:
            return None
        text = response.text
        data = text.encode("utf-8")
        if len(data) > max_bytes:
            text = data[-max_bytes:].decode("utf-8", errors="ignore")
        return text

    # -- per-version record shapes -----------------------------------------------------------------
    def _dag(self, raw: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _run(self, raw: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _ti(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {
            "dag_id": raw["dag_id"],
            "dag_run_id": raw.get("dag_run_id") or raw.get("run_id"),
            "task_id": raw["task_id"],
            "map_index": raw.get("map_index", -1) if raw.get("map_index") is not None else -1,
            "try_number": int(raw.get("try_number") or 0),
            "max_tries": raw.get("max_tries"),
            "state": raw.get("state"),
            "start_date": raw.get("start_date"),
            "end_date": raw.get("end_date"),
            "duration": raw.get("duration"),
            "operator": raw.get("operator_name") or raw.get("operator"),
            "hostname": raw.get("hostname") or None,
            "pid": raw.get("pid"),
            "pool": raw.get("pool"),
            "queue": raw.get("queue"),
            "executor": raw.get("executor"),
            "logical_date": raw.get("logical_date") or raw.get("execution_date"),
            "queued_when": raw.get("queued_when") or raw.get("queued_dttm"),
            "scheduled_when": raw.get("scheduled_when") or raw.get("scheduled_dttm"),
        }


class AirflowV2(AirflowClient):
    """Airflow 3: /api/v2, JWT bearer tokens."""

    version = "v2"
    prefix = "/api/v2"
    dag_list_params = {"exclude_stale": "false"}

    def authenticate(self) -> None:
        creds = self._credentials
        if creds.token:
            self.session.headers["Authorization"] = f"Bearer {creds.token}"
            return
        if not creds.username:
            return  # an instance with auth disabled (all admins)
        try:
            response = self.session.post(self.url + "/auth/token",
                                         json={"username": creds.username, "password": creds.password or ""},
                                         timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise AirflowApiError(f"POST /auth/token: {type(exc).__name__}") from None
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"POST /auth/token: HTTP {response.status_code} (check the username/password)")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def health(self) -> dict[str, Any]:
        return self.get_json("/monitor/health")

    def dag_versions_since(self, mark: str | None) -> tuple[set[str], str | None] | None:
        """Newest first, down to `mark`: usually one request. Version ids are UUIDv7 (time-ordered, so their text
        sorts like their creation); Airflow makes a version only when a DAG's serialized form changed."""
        changed: set[str] = set()
        newest = mark
        limit = 1 if mark is None else self.page
        offset = 0
        while True:
            page = self.get_json("/dags/~/dagVersions", {"order_by": "-id", "limit": limit, "offset": offset})
            items = page.get("dag_versions") or []
            for version in items:
                vid = str(version["id"])
                if newest is None or vid > newest:
                    newest = vid
                if mark is None:
                    continue
                if vid <= mark:
                    return changed, newest
                changed.add(version["dag_id"])
            if mark is None or len(items) < limit:
                return changed, newest
            offset += len(items)

    def _dag(self, raw: dict[str, Any]) -> dict[str, Any]:
        return _dag_record(raw, schedule=raw.get("timetable_summary") or raw.get("timetable_description"),
                           next_run_date=raw.get("next_dagrun_logical_date") or raw.get("next_dagrun_run_after"),
                           is_stale=raw.get("is_stale"))

    def _run(self, raw: dict[str, Any]) -> dict[str, Any]:
        return _run_record(raw, logical_date=raw.get("logical_date"), triggered_by=raw.get("triggered_by"),
                           queued_at=raw.get("queued_at"), run_after=raw.get("run_after"))


class AirflowV1(AirflowClient):
    """Airflow 2.11: /api/v1, basic auth (or a bearer token an auth backend accepts)."""

    version = "v1"
    prefix = "/api/v1"
    dag_list_params = {"only_active": "false"}

    def authenticate(self) -> None:
        creds = self._credentials
        if creds.token:
            self.session.headers["Authorization"] = f"Bearer {creds.token}"
        elif creds.username:
            self.session.auth = (creds.username, creds.password or "")

    def health(self) -> dict[str, Any]:
        return self.get_json("/health")

    def task_instances(self, updated_since: str | None) -> Iterator[dict[str, Any]]:
        """2.11's task instance list has no ORDER BY (and takes no `order_by`), so offset pages over it are not a
        stable partition: a page could repeat rows and, worse, skip some. Instead the `updated_at` range is cut
        into slices that each fit in one page (one query sees a whole slice, in any order), halving a slice that
        holds more. The last slice is open-ended and read last, so a row updated during the cycle moves forward
        into a slice still to come (or into the next cycle's window): it is never skipped."""
        lo = watermark_parse(updated_since) if updated_since else datetime(1970, 1, 1, tzinfo=timezone.utc)
        for ti in self._ti_slice(lo, None):
            yield self._ti(ti)

    def _ti_slice(self, lo: datetime, hi: datetime | None) -> Iterator[dict[str, Any]]:
        path = "/dags/~/dagRuns/~/taskInstances"
        params: dict[str, Any] = {"updated_at_gte": _instant(lo)}
        if hi is not None:
            params["updated_at_lte"] = _instant(hi)
        page = self.get_json(path, {**params, "limit": self.page, "offset": 0})
        items = page.get("task_instances") or []
        total = page.get("total_entries")
        if total is None or total <= len(items):
            yield from items
            return
        top = hi or max(datetime.now(timezone.utc), lo) + timedelta(minutes=10)
        if top - lo <= _TICK:
            # more than a page of rows updated at the very same microsecond (a bulk UPDATE): offset pages are
            # the only way left; a row that another update moves out of this instant meanwhile is in the next
            # cycle's window
            offset = len(items)
            yield from items
            while offset < total:
                more = self.get_json(path, {**params, "limit": self.page, "offset": offset}).get("task_instances") or []
                if not more:
                    return
                yield from more
                offset += len(more)
            return
        mid = lo + (top - lo) / 2
        yield from self._ti_slice(lo, mid)
        yield from self._ti_slice(mid + _TICK, hi)

    def _dag(self, raw: dict[str, Any]) -> dict[str, Any]:
        schedule = raw.get("timetable_description")
        interval = raw.get("schedule_interval")
        if isinstance(interval, dict):
            schedule = interval.get("value") or schedule
        return _dag_record(raw, schedule=schedule, next_run_date=raw.get("next_dagrun"),
                           is_stale=not raw.get("is_active", True))

    def _run(self, raw: dict[str, Any]) -> dict[str, Any]:
        # 2.11 has no triggered_by, queued_at or run_after on a DAG run
        return _run_record(raw, logical_date=raw.get("logical_date") or raw.get("execution_date"))


def detect_version(url: str, timeout_s: float = 10.0) -> str:
    """"v2" when the server answers Airflow 3's health endpoint, else "v1"."""
    url = url.rstrip("/")
    try:
        if requests.get(url + "/api/v2/monitor/health", timeout=timeout_s).status_code == 200:
            return "v2"
    except requests.RequestException:
        pass
    return "v1"


def make_client(url: str, credentials: Credentials, api_version: str = "auto") -> AirflowClient:
    if api_version in ("auto", "", None):
        api_version = detect_version(url)
    return (AirflowV2 if api_version == "v2" else AirflowV1)(url, credentials)
