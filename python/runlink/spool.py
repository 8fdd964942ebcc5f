"""On-disk spool for batches the tracker could not take: `$RUNLINK_HOME/spool`, bounded, shared by processes.

Why a spool: a task must not lose its metrics because the tracker was restarting. Each file holds one
ready-to-send gzip batch body, so replay is a plain POST. Files are written atomically (temp file + rename);
a reader claims a file by renaming it to `<name>.claimed-<pid>` (rename is atomic, so two processes never
replay the same file); claims left by dead processes are released on start. Duplicates would be harmless
anyway: the tracker dedupes event ids. Every method swallows OS errors: a full or read-only disk turns into
counted drops, never into an exception in the user's job.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("runlink.spool")

SUFFIX = ".batch.gz"
_NAME = re.compile(r"^(\d{20})-(\d+)-(\d+)-n(\d+)" + re.escape(SUFFIX) + r"$")
_CLAIMED = re.compile(r"^(?P<name>.+" + re.escape(SUFFIX) + r")\.claimed-(?P<pid>\d+)$")
_TMP = re.compile(r"^\.tmp-(?P<pid>\d+)-")


@dataclass(frozen=True)
class Claim:
    """A spool file this process owns until `done` or `release`."""

    path: Path  #: the claimed file (renamed)
    original: Path  #: where it goes back on release
    events: int

    def read(self) -> bytes:
        return self.path.read_bytes()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


class Spool:
    """A bounded directory of gzip batch bodies, replayed oldest first."""

    #: how long a measured spool size is trusted before the folder is scanned again (other processes write too)
    RESCAN_S = 2.0

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._seq = itertools.count()
        self._size: int | None = None
        self._size_at = 0.0
        self._candidates: list[Path] = []
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, max_bytes={self.max_bytes})"

    # -- writing ---------------------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes used by every file in the spool (all processes), claimed and temporary included."""
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        pass
        except OSError:
            return 0
        return total

    def write(self, body: bytes, events: int) -> bool:
        """Store one batch; False when it was not stored (over the bound, or the disk refused)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            now = time.monotonic()
            if self._size is None or now - self._size_at > self.RESCAN_S:
                self._size, self._size_at = self.size_bytes(), now  # a scan per write would be O(files)
            if self._size + len(body) > self.max_bytes:
                self._warn("full", "runlink spool %s is full (%d bytes max): dropping events (counted)",
                           self.directory, self.max_bytes)
                return False
            pid = os.getpid()
            name = f"{time.time_ns():020d}-{pid}-{next(self._seq)}-n{events}{SUFFIX}"
            tmp = self.directory / f".tmp-{pid}-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as out:
                    out.write(body)
                os.replace(tmp, self.directory / name)
                self._size += len(body)
            except BaseException:
                try:
                    tmp.unlink()
                except OSError:
                    pass
                raise
            return True
        except OSError as exc:
            self._warn("error", "runlink cannot spool to %s (%s): dropping events (counted)", self.directory, exc)
            return False

    def _warn(self, key: str, message: str, *args: object) -> None:
        """Once per kind and process: a down tracker must not flood the task's log."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    # -- replay ----------------------------------------------------------------------------------

    def pending(self) -> list[Path]:
        """Unclaimed batch files, oldest first."""
        try:
            names = [e.name for e in os.scandir(self.directory) if _NAME.match(e.name)]
        except OSError:
            return []
        return [self.directory / n for n in sorted(names)]

    def pending_events(self) -> int:
        return sum(int(_NAME.match(p.name).group(4)) for p in self.pending())  # type: ignore[union-attr]

    def claim_oldest(self) -> Claim | None:
        """Rename-claim the oldest unclaimed file; None when there is none.

        The sorted listing is kept between calls (replaying n files must not scan the folder n times);
        entries another process took meanwhile simply fail to rename and are skipped.
        """
        for _ in range(2):
            if not self._candidates:
                self._candidates = self.pending()[::-1]  # oldest last: pop() is O(1)
            while self._candidates:
                path = self._candidates.pop()
                claimed = path.with_name(f"{path.name}.claimed-{os.getpid()}")
                try:
                    os.rename(path, claimed)
                except OSError:
                    continue  # another process claimed it first (or it vanished)
                match = _NAME.match(path.name)
                return Claim(claimed, path, int(match.group(4)) if match else 0)
        return None

    def done(self, claim: Claim) -> None:
        try:
            size = claim.path.stat().st_size
            claim.path.unlink()
            if self._size is not None:
                self._size = max(0, self._size - size)
        except OSError:
            pass

    def release(self, claim: Claim) -> None:
        """Give a claimed file back (the replay failed; it will be tried again later, oldest first)."""
        self._candidates = []
        try:
            os.rename(claim.path, claim.original)
        except OSError:
            pass

    def release_orphans(self) -> int:
        """Give back claims of dead processes and remove their half-written temp files."""
        released = 0
        try:
            entries = [e.name for e in os.scandir(self.directory)]
        except OSError:
            return 0
        for name in entries:
            claimed = _CLAIMED.match(name)
            if claimed and not _pid_alive(int(claimed.group("pid"))):
                try:
                    os.rename(self.directory / name, self.directory / claimed.group("name"))
                    released += 1
                except OSError:
                    pass
                continue
            tmp = _TMP.match(name)
            if tmp and not _pid_alive(int(tmp.group("pid"))):
                try:
                    (self.directory / name).unlink()
                except OSError:
                    pass
        return released
