"""The syncer: Airflow's REST API (v2 on Airflow 3, v1 on 2.11) -> protocol events -> the tracker.

`rest` talks to Airflow, `records` turns records into events with content-derived ids, `tracker_api` sends them
in bounded batches and keeps the watermark in the tracker, `core.sync_cycle` runs one incremental cycle.
"""

from runlink.airflow.syncer.core import CycleResult, Instance, sync_cycle

__all__ = ["CycleResult", "Instance", "sync_cycle"]
