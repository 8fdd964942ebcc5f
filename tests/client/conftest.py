"""Fixtures for the client tests: a private $RUNLINK_HOME, clean runlink env, real local servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import HangingServer, RecordingServer

from runlink import delivery
from runlink.config import ENV_ALIASES
from runlink.context import ENV_KEYS

_VARS = [*ENV_ALIASES, *(a for aliases in ENV_ALIASES.values() for a in aliases), *ENV_KEYS,
         "RUNLINK_HOME", "RUNLINK_FLUSH_TIMEOUT"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Each test gets its own $RUNLINK_HOME and no inherited runlink/Airflow variables, and no leftover client."""
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("RUNLINK_HOME", str(home))
    previous = delivery.set_client(None)
    yield home
    current = delivery.set_client(previous)
    if isinstance(current, delivery.Client):
        current.close(1.0)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    yield srv
    srv.stop()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    srv = HangingServer()
    yield srv
    srv.stop()


@pytest.fixture
def child_env(clean_env: Path) -> dict[str, str]:
    """Environment for a child python process: this test's home, no inherited tracking variables."""
    env = {k: v for k, v in os.environ.items() if k not in _VARS}
    env["RUNLINK_HOME"] = str(clean_env)
    return env
