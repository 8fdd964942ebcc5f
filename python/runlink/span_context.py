"""The innermost open span of this thread or asyncio task (a ContextVar: each keeps its own stack).

Apart from `tracking` (which opens spans) so that the SDK's `log_metric` and `log_dataframe` can tag what they
log with the span it was logged in without importing the tracking machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar


class OpenSpan:
    """A span being recorded: its id, its parent's, its name, and the context it reports under."""

    __slots__ = ("span_id", "parent_id", "name", "context")

    def __init__(self, span_id: str, parent_id: str | None, name: str, context: Mapping[str, str]) -> None:
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.context = context


current_span: ContextVar[OpenSpan | None] = ContextVar("runlink_span", default=None)
