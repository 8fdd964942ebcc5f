"""Wait on a condition with a deadline: the tests' only way to wait for something (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(fetch: Callable[[], Any], what: str = "the condition", deadline_s: float = 30.0, *,
             ready: Callable[[Any], bool] = bool, interval_s: float = 0.05,
             tolerate: tuple[type[BaseException], ...] = (), context: Callable[[], str] | None = None) -> Any:
    """Call `fetch` until `ready(value)` (by default: until the value is truthy) and return that value.

    Exceptions of the `tolerate` types count as "not yet"; any other propagates. At the deadline, raise an
    AssertionError naming `what`, the last value (or exception), and `context()` if given (a log tail)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            value = fetch()
        except tolerate as exc:
            value, done = exc, False
        else:
            done = ready(value)
        if done:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise AssertionError(f"{what}: not within {deadline_s:g}s (last: {value!r})"[:4000] + extra)
        time.sleep(interval_s)  # polling interval; the condition is `ready`
