"""The disk spool: bounded, atomic, oldest first, and claimable by exactly one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runlink.spool import Spool


def test_write_then_replay_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 10_000)
    for i in range(3):
        assert spool.write(f"batch{i}".encode(), events=i + 1)
    assert spool.pending_events() == 6
    seen = []
    while (claim := spool.claim_oldest()) is not None:
        seen.append((claim.read(), claim.events))
        spool.done(claim)
    assert seen == [(b"batch0", 1), (b"batch1", 2), (b"batch2", 3)]
    assert spool.pending() == [] and os.listdir(tmp_path / "spool") == []


def test_release_puts_a_claim_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.write(b"x", 1)
    claim = spool.claim_oldest()
    assert claim is not None and spool.pending() == []
    spool.release(claim)
    assert len(spool.pending()) == 1


def test_over_the_bound_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    assert spool.write(b"a" * 60, 1)
    assert not spool.write(b"b" * 60, 1)
    assert spool.size_bytes() == 60 and len(spool.pending()) == 1


def test_unwritable_location_refuses_without_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    spool = Spool(blocker / "spool", 10_000)  # mkdir fails with NotADirectoryError, even for root
    assert spool.write(b"x", 1) is False
    assert spool.pending() == [] and spool.claim_oldest() is None and spool.release_orphans() == 0


def test_no_temp_files_are_left_and_files_are_complete(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000_000)
    payload = os.urandom(200_000)
    assert spool.write(payload, 5)
    names = os.listdir(tmp_path)
    assert len(names) == 1 and not names[0].startswith(".tmp")
    assert (tmp_path / names[0]).read_bytes() == payload


def test_claims_of_dead_processes_are_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.write(b"x", 1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (original,) = spool.pending()
    os.rename(original, original.with_name(f"{original.name}.claimed-{dead_pid}"))
    (tmp_path / f".tmp-{dead_pid}-abc").write_bytes(b"half")
    assert spool.pending() == []
    assert spool.release_orphans() == 1
    assert spool.pending() == [original]
    assert not (tmp_path / f".tmp-{dead_pid}-abc").exists()


CLAIMER = """
import json, sys, time
from runlink.spool import Spool
spool = Spool(sys.argv[1], 10**9)
print("ready", flush=True)
sys.stdin.readline()  # start together
got = []
while (claim := spool.claim_oldest()) is not None:
    got.append(claim.read().decode())
    spool.done(claim)
print(json.dumps(got), flush=True)
"""


def test_two_processes_never_replay_the_same_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**9)
    expected = {f"b{i}" for i in range(300)}
    for name in sorted(expected):
        spool.write(name.encode(), 1)
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.communicate(timeout=60)[0].strip()) for proc in procs]
    first, second = (set(r) for r in results)
    assert len(results[0]) == len(first) and len(results[1]) == len(second)
    assert not (first & second), "a file was replayed by both processes"
    assert first | second == expected
