"""Undo log for injection: every change to an operator attribute or to os.environ is put back after execute()."""

from __future__ import annotations

import copy
import os
import shutil
from typing import Any

_MISSING = object()


class Undo:
    def __init__(self) -> None:
        self._attrs: list[tuple[Any, str, Any]] = []
        self._env: list[tuple[str, str | None]] = []
        self._dirs: list[str] = []

    def set_attr(self, obj: Any, name: str, value: Any) -> None:
        """Set `obj.name`, remembering the previous value (deep-copied values are the caller's business)."""
        self._attrs.append((obj, name, getattr(obj, name, _MISSING)))
        object.__setattr__(obj, name, value) if _frozen(obj) else setattr(obj, name, value)

    def set_env(self, name: str, value: str) -> None:
        self._env.append((name, os.environ.get(name)))
        os.environ[name] = value

    def remove_dir_later(self, path: str) -> None:
        self._dirs.append(path)

    def __call__(self) -> None:
        for obj, name, old in reversed(self._attrs):
            try:
                if old is _MISSING:
                    delattr(obj, name)
                else:
                    setattr(obj, name, old)
            except Exception:  # noqa: BLE001
                pass
        self._attrs.clear()
        for name, old in reversed(self._env):
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self._env.clear()
        for path in self._dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._dirs.clear()


def _frozen(obj: Any) -> bool:
    return False


def copied(value: Any) -> Any:
    """A deep copy, so that the operator's original (maybe shared with other tasks) is never mutated."""
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001
        return copy.copy(value)
