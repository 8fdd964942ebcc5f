"""A secret file (a key) made once and readable by its owner only: created 0600 from the start, never chmod-ed
after writing, and exclusively (O_EXCL), so that processes racing to make it all end up with the winner's."""

from __future__ import annotations

import os
from pathlib import Path


def create_once(path: Path, content: bytes) -> bytes:
    """Write `content` to a new file at `path` (mode 0600); if the file exists already, its bytes instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return content
