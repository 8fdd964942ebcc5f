"""The agent configuration the delivery tests start from: short batch interval and timeouts, a secret-looking
token (tests check it never leaks), `changes` on top."""

from __future__ import annotations

from pathlib import Path

from runlink.config import Config


def delivery_config(url: str, home: Path, **changes: object) -> Config:
    base = dict(url=url, token="tok-SECRET-123", home=home, batch_interval_s=0.05, flush_timeout_s=5.0,
                request_timeout_s=5.0)
    base.update(changes)
    return Config(**base)  # type: ignore[arg-type]
