"""runlink for Airflow: plugin + listener (entry points), cluster policy, context injection into operators.

Public helpers for custom operators, cheap to import (Airflow is imported on first use):
`context_env(context)` and `spark_conf(context)`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["context_env", "spark_conf"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from runlink.airflow import helpers

        return getattr(helpers, name)
    raise AttributeError(name)
