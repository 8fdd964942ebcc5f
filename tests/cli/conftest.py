"""Fixtures every CLI test module uses: a user with no configuration, and a port that refuses connections."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no configuration: an empty RUNLINK_HOME, no RUNLINK_URL / RUNLINK_TOKEN."""
    monkeypatch.setenv("RUNLINK_HOME", str(tmp_path))
    monkeypatch.delenv("RUNLINK_URL", raising=False)
    monkeypatch.delenv("RUNLINK_TOKEN", raising=False)
    return tmp_path


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A port that refuses connections: bound (so nobody else takes it) but never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
