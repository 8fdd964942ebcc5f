"""The "runlink" extra link on every task instance in the Airflow UI (Airflow 3.x and 2.11).

Airflow's API server (3.x) or webserver (2.11) asks the plugin for the link of a task instance try; the link names
the attempt by its Airflow context (and this deployment's instance uid) and the tracker's `/ui/attempt` route
redirects to that attempt's page. The tracker URL is what every runlink component reads: `RUNLINK_URL` (alias
`DBND__CORE__DATABAND_URL`); no token ever goes into the link.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

try:
    from airflow.sdk import BaseOperatorLink
except ImportError:  # Airflow 2.11
    from airflow.models.baseoperatorlink import BaseOperatorLink  # type: ignore[no-redef]


def attempt_url(tracker_url: str, dag_id: str, run_id: str, task_id: str, try_number: int | None,
                map_index: int | None, uid: str | None) -> str:
    """The tracker URL that opens the attempt Airflow names (`try_number` None: the latest try)."""
    query: dict[str, Any] = {"dag_id": dag_id, "dag_run_id": run_id, "task_id": task_id}
    if try_number:
        query["try_number"] = int(try_number)
    query["map_index"] = -1 if map_index is None else int(map_index)
    if uid:
        query["uid"] = uid
    return f"{tracker_url.rstrip('/')}/ui/attempt?{urlencode(query)}"


class RunlinkAttemptLink(BaseOperatorLink):
    """Opens the task attempt's page in runlink (its run tree, Spark applications, metrics)."""

    name = "runlink"

    def get_link(self, operator: Any, *, ti_key: Any = None, **kwargs: Any) -> str:
        try:
            from runlink.airflow.settings import get_settings
            from runlink.config import load

            return attempt_url(load().url, ti_key.dag_id, ti_key.run_id, ti_key.task_id,
                               getattr(ti_key, "try_number", None), getattr(ti_key, "map_index", -1),
                               get_settings().uid)
        except Exception:  # noqa: BLE001 - a link that cannot be built is no link, never an error page
            return ""
