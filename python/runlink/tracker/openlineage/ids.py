"""The OpenLineage Airflow provider's deterministic run ids, computed without Airflow or the provider.

Why: a child job (openlineage-spark, dbt, an openlineage-python script) names its parent Airflow task only by the
provider's run id (the `lineage_parent_id` / `lineage_root_parent_id` macros). When the provider never sent anything
to runlink, the tracker recomputes those ids for the attempts and DAG runs it knows and links the child by them.

The formula (apache-airflow-providers-openlineage, plugins/adapter.py -> utils/utils.py, openlineage-python's
`openlineage.client.uuid.generate_static_uuid`): a UUIDv7 whose 48-bit timestamp is the logical date (run_after
when the run has none) in UTC milliseconds and whose 76 low bits are the top of SHA-1(isoformat(instant, UTC) +
data), with

- task instance: data = f"{namespace}.{dag_id}.{task_id}.{try_number}.{map_index}" (providers before map_index
  support: f"{namespace}.{dag_id}.{task_id}.{try_number}");
- DAG run: data = f"{namespace}.{dag_id}.{clear_number}" (older providers: f"{namespace}.{dag_id}").

`tests/openlineage/test_provider_ids.py` compares these functions with the installed provider's own.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from hashlib import sha1

#: DAG run clear numbers tried when matching a DAG run id (the tracker does not store Airflow's clear_number)
MAX_CLEAR_NUMBER = 9


def static_uuid(instant: datetime, data: bytes) -> str:
    """openlineage-python's generate_static_uuid: UUIDv7 with the instant's ms and a SHA-1 of (instant, data)."""
    instant_utc = instant.astimezone(timezone.utc)
    timestamp_ms = int(instant_utc.timestamp() * 1000)
    digest = sha1(instant_utc.isoformat().encode("utf-8") + data).digest()  # noqa: S324 - the provider's hash
    node = int.from_bytes(digest, "big") >> 84
    value = (timestamp_ms & 0xFFFFFFFFFFFF) << 80 | node & 0xFFFFFFFFFFFFFFFFFFFF
    value = (value & ~(0xF000 << 64)) | 7 << 76
    value = (value & ~(0xC000 << 48)) | 0x8000 << 48
    return str(uuid.UUID(int=value))


def task_run_id(namespace: str, dag_id: str, task_id: str, try_number: int, logical_date: datetime,
                map_index: int = -1, *, legacy: bool = False) -> str:
    """The provider's run id of a task instance (`legacy`: providers that did not put map_index in it)."""
    data = f"{namespace}.{dag_id}.{task_id}.{try_number}" + ("" if legacy else f".{map_index}")
    return static_uuid(logical_date, data.encode())


def dag_run_id(namespace: str, dag_id: str, logical_date: datetime, clear_number: int | None = 0) -> str:
    """The provider's run id of a DAG run (`clear_number=None`: providers that did not put it in it)."""
    data = f"{namespace}.{dag_id}" + ("" if clear_number is None else f".{clear_number}")
    return static_uuid(logical_date, data.encode())


def task_run_ids(namespace: str, dag_id: str, task_id: str, try_number: int, logical_date: datetime,
                 map_index: int = -1) -> set[str]:
    """Every spelling a provider version gives this task instance."""
    return {task_run_id(namespace, dag_id, task_id, try_number, logical_date, map_index),
            task_run_id(namespace, dag_id, task_id, try_number, logical_date, map_index, legacy=True)}


def dag_run_ids(namespace: str, dag_id: str, logical_date: datetime) -> set[str]:
    """Every spelling a provider version gives this DAG run (clear numbers 0..MAX_CLEAR_NUMBER, and none)."""
    out = {dag_run_id(namespace, dag_id, logical_date, None)}
    out.update(dag_run_id(namespace, dag_id, logical_date, n) for n in range(MAX_CLEAR_NUMBER + 1))
    return out


def uuid7_millis(run_id: str) -> int | None:
    """The timestamp (Unix ms) a UUIDv7 carries: the logical date of a provider id. None for other ids."""
    try:
        value = uuid.UUID(run_id)
    except (ValueError, AttributeError, TypeError):
        return None
    if value.version != 7:
        return None
    return value.int >> 80


def job_name_splits(job_name: str) -> list[tuple[str, str]]:
    """(dag_id, task_id) readings of a provider task job name "<dag_id>.<task_id>" (both may contain dots)."""
    last = len(job_name) - 1
    return [(job_name[:i], job_name[i + 1:]) for i, ch in enumerate(job_name) if ch == "." and 0 < i < last]
