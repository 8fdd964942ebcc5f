"""runlink: one run tree from an Airflow task down to the Spark stages it caused."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_SDK = ("log_metric", "log_metrics", "log_dataframe")
_TRACKING = ("track", "span", "dataset_op", "log_dataset_op")

__all__ = ["__version__", *_SDK, *_TRACKING]


def __getattr__(name: str) -> Any:
    # The SDK is imported on first use so that `import runlink` stays cheap in every worker.
    if name in _SDK:
        from runlink import sdk

        return getattr(sdk, name)
    if name in _TRACKING:
        from runlink import tracking

        return getattr(tracking, name)
    raise AttributeError(name)
