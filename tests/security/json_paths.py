"""Addressing the parts of a JSON document, for the fuzz tests that replace one part of a valid event."""

from __future__ import annotations

from typing import Any


def json_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) in `node`, the root's `()` first."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += json_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += json_paths(value, (*prefix, index))
    return out


def replace_at(node: Any, path: tuple, value: Any) -> Any:
    """A copy of `node` with the part at `path` replaced by `value` (the input is left as it was)."""
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = replace_at(copy[path[0]], path[1:], value)
    return copy
