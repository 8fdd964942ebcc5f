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

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._seq = itertools.count()

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
            if self.size_bytes() + len(body) > self.max_bytes:
                log.warning("runlink spool is full (%d bytes max): dropping %d events", self.max_bytes, events)
                return False
            pid = os.getpid()
            name = f"{time.time_ns():020d}-{pid}-{next(self._seq)}-n{events}{SUFFIX}"
            tmp = self.directory / f".tmp-{pid}-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as out:
                    out.write(body)
                os.replace(tmp, self.directory / name)
            except BaseException:
                try:
                    tmp.unlink()
                except OSError:
                    pass
                raise
            return True
        except OSError as exc:
            log.warning("runlink cannot spool to %s (%s): dropping %d events", self.directory, exc, events)
            return False

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
        """Rename-claim the oldest unclaimed file; None when there is none."""
        for path in self.pending():
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
            claim.path.unlink()
        except OSError:
            pass

    def release(self, claim: Claim) -> None:
        """Give a claimed file back (the replay failed; it will be tried again later)."""
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
