"""Debian's chromium for the browser tests (never `playwright install`): where it is, how it starts, and the two
page steps several tests take (log in to the tracker's UI, keep a screenshot in test-artifacts/screenshots/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_or_skip() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)")
    return CHROMIUM


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, tracker: Any, path: str = "/ui/dags") -> None:
    page.goto(tracker.url + path)
    page.get_by_label("Access token").fill(tracker.token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")
