"""The embedded index on a full disk and read-only (real file systems, mounted here): a one-line
error, nothing lost, no temporary file left; reads answered, writes refused naming the path."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from faults_help import clustered_hashes, make_index, phashdb_cli, photo_folder

import phashdb
from phashdb.embedded import TABLES_FILE

IN_CI = os.environ.get("CI") == "true"
AS_ROOT = os.geteuid() == 0


# --- defect 8 and 13: a full disk, a read-only index (real file systems, mounted here) ----------

needs_root = pytest.mark.skipif(
    not AS_ROOT and not IN_CI, reason="mounting a small tmpfs needs root"
)


@contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte; returns the file that does it."""
    ballast = folder / "ballast"
    try:
        with open(ballast, "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError:
        pass
    return ballast


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@needs_root
def test_a_full_disk_is_a_one_line_error_exit_2_nothing_lost_nothing_left(tmp_path):
    photos = photo_folder(tmp_path / "photos", 40, seed=3)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        db = disk / "index"
        first = phashdb_cli(db, "ingest", photos)
        assert first.returncode == 0, first.stderr
        with phashdb.open(db) as index:
            index.add_hashes((f"h{i}", int(h)) for i, h in enumerate(clustered_hashes(5, 2000)))
        # A reader holds the index open, as a busy machine has: SQLite's shared-memory and
        # log files stay (a process opening an index makes them, which a full disk refuses).
        holder = phashdb.open(db)
        holder.query(0, 1)
        ballast = fill(disk)
        more = photo_folder(tmp_path / "more", 30, seed=4)
        for args in (
            ["add", "--on-duplicate", "keep", *sorted(more.iterdir())[:3]],
            ["ingest", more],
            ["fsck", "--repair"],
        ):
            done = phashdb_cli(db, *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            errors = [line for line in done.stderr.splitlines() if "error" in line]
            assert errors and "Traceback" not in done.stderr, done.stderr
            assert "disk is full" in errors[0] and str(db) in errors[0], done.stderr
            assert leftovers(db) == []
        assert phashdb_cli(db, "check", min(photos.iterdir())).returncode == 1
        ballast.unlink()
        holder.close()
        with phashdb.open(db) as index:
            assert len(index) == 2040
        again = phashdb_cli(db, "ingest", more)
        assert again.returncode == 0, again.stderr
        with phashdb.open(db) as index:
            assert len(index) == 2070 and index.fsck() == []


def test_stale_temporary_table_files_of_dead_processes_are_removed_on_open(tmp_path):
    path = tmp_path / "index"
    make_index(path, 100)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (path / f"{TABLES_FILE}.{dead.pid}.tmp").write_bytes(b"half a table")
    (path / f"{TABLES_FILE}.{os.getpid()}.tmp").write_bytes(b"ours, being written")
    (path / f"{TABLES_FILE}.{2**70}.tmp").write_bytes(b"no process id: not ours to judge")
    phashdb.open(path).close()
    assert leftovers(path) == sorted(
        [f"{TABLES_FILE}.{os.getpid()}.tmp", f"{TABLES_FILE}.{2**70}.tmp"]
    )


@contextmanager
def read_only(folder: Path):
    """Make `folder` read-only for real: a read-only bind mount as root (root ignores file
    modes), file modes otherwise."""
    if AS_ROOT:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def test_a_read_only_index_answers_reads_and_refuses_writes_naming_the_path(tmp_path, photos):
    db = tmp_path / "index"
    assert phashdb_cli(db, "add", photos["astronaut"], photos["coffee"]).returncode == 0
    with phashdb.open(db) as index:
        index.fsck(repair=True)
    with read_only(db):
        done = phashdb_cli(db, "check", photos["astronaut"])
        assert done.returncode == 1 and "duplicate of" in done.stdout, done.stderr
        done = phashdb_cli(db, "stats")
        assert done.returncode == 0 and "images: 2" in done.stdout, done.stderr
        done = phashdb_cli(db, "dedupe")
        assert done.returncode == 0, done.stderr
        done = phashdb_cli(db, "add", photos["chelsea"])
        assert done.returncode == 2 and "read-only" in done.stderr, done.stderr
        assert str(db) in done.stderr and "Traceback" not in done.stderr
    with phashdb.open(db) as index:
        assert len(index) == 2
