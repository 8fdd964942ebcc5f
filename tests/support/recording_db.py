"""A tracker Database wrapper that records the keys of every write (None: the exclusive lock) and counts the reads,
for tests that check which writes take which locks and which work needs no read."""

from __future__ import annotations

from typing import Any


class RecordingDatabase:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.keys: list = []
        self.reads = 0

    def write(self, keys=None):  # noqa: ANN001, ANN201 - mirrors Database.write
        self.keys.append(keys)
        return self.db.write(keys)

    def read(self):  # noqa: ANN201
        self.reads += 1
        return self.db.read()
