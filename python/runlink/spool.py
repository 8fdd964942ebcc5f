"""On-disk spool for batches the tracker could not take: `$RUNLINK_HOME/spool/<tracker key>`, bounded, shared by
processes.

Why a spool: a task must not lose its metrics because the tracker was restarting. Each file holds one
ready-to-send gzip batch body, so replay is a plain POST. Files are written atomically (temp file + rename),
mode 0600 (events can hold params and SQL); a reader claims a file by renaming it to `<name>.claimed-<pid>`
(rename is atomic, so two processes never replay the same file); claims left by dead processes are released by
a client at its start and at its periodic spool checks. Duplicates would be harmless anyway: the tracker dedupes
event ids. Every method swallows OS errors: a full or read-only disk turns into counted drops, never into an
exception in the user's job.

One folder per tracker (`spool_key(url)`): a batch spooled for one tracker is only ever sent to that one.
A file's name carries how many 5xx answers it got (`-a<n>`, across processes), so a batch the tracker keeps
failing on is moved to `quarantine/` (with a `.reason.json`: status, message, attempts) instead of staying first
in line forever; so is a batch refused with a 4xx. `runlink spool status|quarantine|requeue` shows and restores
them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("runlink.spool")

SUFFIX = ".batch.gz"
REASON_SUFFIX = ".reason.json"
QUARANTINE = "quarantine"
#: <time ns>-<pid>-<seq>-n<events>[-a<5xx answers so far>].batch.gz
_NAME = re.compile(r"^(\d{20})-(\d+)-(\d+)-n(\d+)(?:-a(\d+))?" + re.escape(SUFFIX) + r"$")
_CLAIMED = re.compile(r"^(?P<name>.+" + re.escape(SUFFIX) + r")\.claimed-(?P<pid>\d+)$")
_TMP = re.compile(r"^\.tmp-(?P<pid>\d+)-")


def spool_key(url: str) -> str:
    """The spool folder name of a tracker URL: readable host and port plus a hash of the whole normalized URL
    (scheme, host, port, path), so two trackers never share a folder."""
    try:
        parts = urlsplit(url.strip())
        scheme = (parts.scheme or "http").lower()
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        scheme, host, port, parts = "", "", 0, None
    path = parts.path.rstrip("/") if parts is not None else url
    normalized = f"{scheme}://{host}:{port}{path}"
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", host)[:60] or "tracker"
    return f"{readable}_{port}-{hashlib.sha256(normalized.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Claim:
    """A spool file this process owns until `done`, `release` or `quarantine`."""

    path: Path  #: the claimed file (renamed)
    original: Path  #: where it goes back on release
    events: int
    attempts: int = 0  #: 5xx answers this batch got so far (all processes)

    @property
    def key(self) -> str:
        """The file's identity whatever its attempt count (the name without `-a<n>`)."""
        return batch_key(self.original.name)

    def read(self) -> bytes:
        return self.path.read_bytes()


def batch_key(name: str) -> str:
    match = _NAME.match(name)
    if match is None:
        return name
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}-n{match.group(4)}"


@dataclass(frozen=True)
class Quarantined:
    """A batch set aside: never replayed on its own, shown by `runlink spool quarantine`."""

    path: Path
    events: int
    reason: dict[str, Any]


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
        self.last_key: str | None = None  #: the key of the last file `write` stored
        self._quarantine_size: int | None = None
        self._quarantine_size_at = 0.0

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

    def write(self, body: bytes, events: int, attempts: int = 0) -> bool:
        """Store one batch; False when it was not stored (over the bound, or the disk refused)."""
        try:
            self._mkdir(self.directory)
            now = time.monotonic()
            if self._size is None or now - self._size_at > self.RESCAN_S:
                self._size, self._size_at = self.size_bytes(), now  # a scan per write would be O(files)
            if self._size + len(body) > self.max_bytes:
                self._warn("full", "runlink spool %s is full (%d bytes max): dropping events (counted)",
                           self.directory, self.max_bytes)
                return False
            pid = os.getpid()
            tried = f"-a{attempts}" if attempts else ""
            name = f"{time.time_ns():020d}-{pid}-{next(self._seq)}-n{events}{tried}{SUFFIX}"
            self._write_file(self.directory / name, body)
            self._size += len(body)
            self.last_key = batch_key(name)
            return True
        except OSError as exc:
            self._warn("error", "runlink cannot spool to %s (%s): dropping events (counted)", self.directory, exc)
            return False

    @staticmethod
    def _mkdir(directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        """Atomically, mode 0600 (a temp file in the same folder, then a rename)."""
        tmp = path.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise

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

    def claim_oldest(self, skip: frozenset[str] | set[str] = frozenset()) -> Claim | None:
        """Rename-claim the oldest unclaimed file whose key is not in `skip`; None when there is none.

        The sorted listing is kept between calls (replaying n files must not scan the folder n times);
        entries another process took meanwhile simply fail to rename and are skipped.
        """
        for _ in range(2):
            if not self._candidates:
                self._candidates = self.pending()[::-1]  # oldest last: pop() is O(1)
                if skip:
                    self._candidates = [p for p in self._candidates if batch_key(p.name) not in skip]
            while self._candidates:
                path = self._candidates.pop()
                if skip and batch_key(path.name) in skip:
                    continue
                claimed = path.with_name(f"{path.name}.claimed-{os.getpid()}")
                try:
                    os.rename(path, claimed)
                except OSError:
                    continue  # another process claimed it first (or it vanished)
                match = _NAME.match(path.name)
                events = int(match.group(4)) if match else 0
                attempts = int(match.group(5) or 0) if match else 0
                return Claim(claimed, path, events, attempts)
        return None

    def done(self, claim: Claim) -> None:
        try:
            size = claim.path.stat().st_size
            claim.path.unlink()
            if self._size is not None:
                self._size = max(0, self._size - size)
        except OSError:
            pass

    def release(self, claim: Claim, attempts: int | None = None) -> None:
        """Give a claimed file back (the replay failed; it will be tried again later, oldest first), with its new
        count of 5xx answers when one more was counted: the name keeps its place in the order."""
        self._candidates = []
        target = claim.original
        if attempts is not None and attempts != claim.attempts:
            target = claim.original.with_name(f"{batch_key(claim.original.name)}-a{attempts}{SUFFIX}")
        try:
            os.rename(claim.path, target)
        except OSError:
            pass

    # -- quarantine ------------------------------------------------------------------------------

    @property
    def quarantine_dir(self) -> Path:
        return self.directory / QUARANTINE

    def quarantine(self, claim: Claim, reason: dict[str, Any]) -> bool:
        """Move a claimed batch to the quarantine folder with why (never replayed on its own again)."""
        self._candidates = []
        try:
            self._mkdir(self.quarantine_dir)
            target = self.quarantine_dir / claim.original.name
            self._write_file(target.with_name(target.name + REASON_SUFFIX), _reason_json(reason, claim.events))
            os.rename(claim.path, target)
            if self._size is not None:
                self._size = max(0, self._size - target.stat().st_size)
            return True
        except OSError as exc:
            self._warn("quarantine", "runlink cannot quarantine to %s (%s)", self.quarantine_dir, exc)
            return False

    def quarantine_body(self, body: bytes, events: int, reason: dict[str, Any]) -> bool:
        """Quarantine a batch that was never spooled (refused on its first send). False: over the bound or
        the disk refused (the caller counts a drop)."""
        try:
            self._mkdir(self.quarantine_dir)
            now = time.monotonic()
            if self._quarantine_size is None or now - self._quarantine_size_at > self.RESCAN_S:
                self._quarantine_size = Spool(self.quarantine_dir, 0).size_bytes()  # a scan per batch is O(files)
                self._quarantine_size_at = now
            if self._quarantine_size + len(body) > self.max_bytes:
                self._warn("quarantine-full", "runlink quarantine %s is full (%d bytes max): dropping events",
                           self.quarantine_dir, self.max_bytes)
                return False
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq)}-n{events}{SUFFIX}"
            target = self.quarantine_dir / name
            self._write_file(target.with_name(name + REASON_SUFFIX), _reason_json(reason, events))
            self._write_file(target, body)
            self._quarantine_size += len(body)
            return True
        except OSError as exc:
            self._warn("quarantine", "runlink cannot quarantine to %s (%s)", self.quarantine_dir, exc)
            return False

    def quarantined(self) -> list[Quarantined]:
        """The quarantined batches, oldest first, with their reasons."""
        try:
            names = sorted(e.name for e in os.scandir(self.quarantine_dir) if _NAME.match(e.name))
        except OSError:
            return []
        out = []
        for name in names:
            path = self.quarantine_dir / name
            try:
                reason = json.loads(path.with_name(name + REASON_SUFFIX).read_text("utf-8"))
            except (OSError, ValueError):
                reason = {}
            out.append(Quarantined(path, int(_NAME.match(name).group(4)), reason))  # type: ignore[union-attr]
        return out

    def requeue(self, item: Quarantined) -> bool:
        """Put a quarantined batch back in line (attempts reset): after a tracker fix, for instance."""
        try:
            os.rename(item.path, self.directory / f"{batch_key(item.path.name)}{SUFFIX}")
            item.path.with_name(item.path.name + REASON_SUFFIX).unlink(missing_ok=True)
            self._candidates = []
            return True
        except OSError:
            return False

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


def _reason_json(reason: dict[str, Any], events: int) -> bytes:
    return json.dumps({**reason, "events": events, "pid": os.getpid(),
                       "quarantined_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
