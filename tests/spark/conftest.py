"""Fixtures for the Spark tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def sqlite_tracker(tracker_factory: Any) -> Any:
    """One real tracker (SQLite) for the scenarios that need not run on both backends."""
    return tracker_factory(backend="sqlite")
