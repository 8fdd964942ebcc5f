"""runlink: one run tree from an Airflow task down to the Spark stages it caused."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "log_metric", "log_metrics", "log_dataframe"]


def __getattr__(name: str) -> Any:
    # The SDK is imported on first use so that `import runlink` stays cheap in every worker.
    if name in ("log_metric", "log_metrics", "log_dataframe"):
        from runlink import sdk

        return getattr(sdk, name)
    raise AttributeError(name)
