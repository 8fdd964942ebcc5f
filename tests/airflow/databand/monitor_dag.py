"""Databand's monitor DAG file moved to runlink with the README's rename only:

    from airflow_monitor.monitor_as_dag import get_monitor_dag

became the import below; the call keeps Databand's keywords (`check_interval` is the schedule; the others mean
nothing here and are ignored with a warning).
"""

from __future__ import annotations

from datetime import timedelta

from runlink.airflow import get_monitor_dag

dag = get_monitor_dag(dag_id="rl_databand_monitor", check_interval=timedelta(minutes=3),
                      force_restart_after=3600, guard_memory=2**30)
