"""The embedded index under faults: damaged band table files, a database restored from a
backup, images removed while `dedupe` reads, and the fault suite (seeded random damage, kill -9
of `ingest`).

The promise under test (README, "What survives what"): SQLite holds the truth and the band table
file is derived from it; whatever happens to the files, a command gives the verdict a brute-force
scan over SQLite's hashes gives, or a clear one-line error, and never crashes the process.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PHASHDB
from faults_help import make_index, phashdb_cli, photo_folder, verdicts

import phashdb
from phashdb import StoreError
from phashdb.embedded import DATABASE_FILE, TABLES_FILE


def array_span(path: Path, name: str) -> tuple[int, int]:
    """Where array `name` lies in a band table file: (first byte, length in bytes)."""
    from phashdb import tables

    header, base = tables.read_header(path)
    dtype, length, offset = header["arrays"][name][:3]
    return base + offset, length * np.dtype(dtype).itemsize


def damage(path: Path, start: int, length: int, rng: random.Random, flips: int) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(flips):
        at = start + rng.randrange(length)
        data[at] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


# --- defect 2: a damaged band table file -----------------------------------------------------

# Each array wrecked in the way that did harm before: sorted hashes zeroed (every stored
# duplicate reported unique), starts and row numbers past the end (SIGSEGV), ids' ends
# scrambled (wrong ids, MemoryError).
WRECKS = ["sorted0", "start0", "order0", "hashes", "keys", "id_ends", "id_blob"]


@pytest.mark.parametrize("array", WRECKS)
def test_a_wrecked_table_array_is_rebuilt_from_sqlite_never_a_wrong_verdict(tmp_path, array):
    path = tmp_path / "index"
    make_index(path)
    start, length = array_span(path / TABLES_FILE, array)
    data = bytearray((path / TABLES_FILE).read_bytes())
    data[start : start + length] = b"\xff" * length
    (path / TABLES_FILE).write_bytes(bytes(data))
    result = verdicts(path)
    assert result["outcome"] == "right", result
    assert "rebuilding the band tables" in result["stderr"]
    # Rebuilt from SQLite and saved: the next process finds nothing to warn about.
    result = verdicts(path)
    assert result["outcome"] == "right" and "rebuilding" not in result["stderr"], result


def test_fsck_finds_tables_that_disagree_with_sqlite_and_repair_rebuilds_from_sqlite(tmp_path):
    path = tmp_path / "index"
    pairs = make_index(path)
    # A row changed in SQLite behind the tables' back (as a damaged database page would).
    db = sqlite3.connect(path / DATABASE_FILE)
    db.execute(
        "UPDATE images SET hash = CASE WHEN hash & 1 THEN hash - 1 ELSE hash + 1 END "
        "WHERE id = 'img7'"
    )
    db.execute("DELETE FROM images WHERE id = 'img8'")
    db.execute("DELETE FROM removals")  # as if the removal were never logged
    db.commit()
    db.close()
    with phashdb.open(path) as index, pytest.raises(StoreError, match="disagree") as e:
        index.fsck()
    assert str(path) in str(e.value) and "fsck --repair" in str(e.value)
    with phashdb.open(path) as index:
        index.fsck(repair=True)
    with phashdb.open(path) as index:
        assert index.fsck() == []
        assert index.query(pairs["img7"] ^ 1, 0) == [("img7", 0)]
        assert all(i != "img8" for i, _ in index.query(pairs["img8"], 0))
    assert verdicts(path)["outcome"] == "right"


def test_a_damaged_table_file_found_mid_query_is_rebuilt_not_read_out_of_bounds(tmp_path):
    # Damage the C loops meet without the load noticing (written after the file was verified,
    # bypassing the file system's record of the change): they refuse to read out of bounds.
    from phashdb.tables import BandTables, Damaged, RowIds, load

    path = tmp_path / "index"
    pairs = make_index(path)
    tables, rows, _ = load(path / TABLES_FILE)
    wrecked = BandTables(
        tables.layout,
        tables.hashes,
        list(tables.orders),
        [np.full_like(s, 2**31 - 1) for s in tables.starts],
        list(tables.sorted_hashes),
    )
    wrecked_rows = RowIds(rows.keys, rows.id_blob, np.full_like(rows.id_ends, 2**40))
    queries = np.array(list(pairs.values())[:10], dtype=np.uint64)
    with pytest.raises(Damaged):
        wrecked.search(queries, 4, strategy="probe")
    with pytest.raises(Damaged):
        wrecked_rows.ids(np.array([0, 1]))
    with phashdb.open(path) as index:
        index.store._live.refresh()
        index.store._live.tables, index.store._live.rows = wrecked, wrecked_rows
        assert index.query(pairs["img3"], 0)[0] == ("img3", 0)


# --- defect 4: tables of another database, or of an older state of it ------------------------


def spread(i: int) -> int:
    """Hashes far from one another (Fibonacci hashing of i)."""
    return i * 0x9E3779B97F4A7C15 % 2**64


def test_tables_of_a_database_restored_from_a_backup_are_rebuilt(tmp_path):
    path = tmp_path / "index"
    with phashdb.open(path) as index:
        index.add_hashes([(f"old{i}", spread(i)) for i in range(50)])
    backup = (path / DATABASE_FILE).read_bytes()
    with phashdb.open(path) as index:
        index.add_hashes([(f"later{i}", spread(1000 + i)) for i in range(50)])
        index.fsck(repair=True)
    (path / DATABASE_FILE).write_bytes(backup)  # the backup comes back, the tables stay
    with phashdb.open(path) as index:
        index.add_hashes([("new", 0xDEADBEEF)])
        assert index.query(0xDEADBEEF, 0) == [("new", 0)]
        assert index.query(spread(1000), 0) == []
        assert len(index.dedupe()) == 0
        assert sorted(i for i, _ in index.query(0, 64)) == sorted(
            [f"old{i}" for i in range(50)] + ["new"]
        )


def test_tables_of_a_deleted_and_recreated_database_are_not_used(tmp_path):
    path = tmp_path / "index"
    make_index(path)
    (path / DATABASE_FILE).unlink()
    with phashdb.open(path) as index:
        assert index.query(0, 64) == []
        index.add_hashes([("fresh", 12345)])
        assert index.query(12345, 0) == [("fresh", 0)]
        assert [len(g.images) for g in index.dedupe()] == []


def test_restored_backup_then_more_adds_than_the_tables_held(tmp_path):
    # The sequence passes the tables' mark again: the row at the mark is another image now.
    path = tmp_path / "index"
    with phashdb.open(path) as index:
        index.add_hashes([("a", 1)])
    backup = (path / DATABASE_FILE).read_bytes()
    with phashdb.open(path) as index:
        index.add_hashes([(f"b{i}", 2**50 + i) for i in range(5)])
        index.fsck(repair=True)
    (path / DATABASE_FILE).write_bytes(backup)
    with phashdb.open(path) as index:
        index.add_hashes([(f"c{i}", 2**60 + i) for i in range(10)])
    with phashdb.open(path) as index:
        assert index.query(2**50, 0) == []
        assert index.query(2**60 + 9, 0) == [("c9", 0)]


# --- defect 9: images removed while dedupe reads -----------------------------------------------


def test_dedupe_while_another_process_removes_images_gives_the_groups_left(tmp_path):
    path = tmp_path / "index"
    with phashdb.open(path) as index:
        index.add_hashes([("a1", 0), ("a2", 1), ("a3", 3), ("b1", 2**64 - 1), ("b2", 2**64 - 2)])
    with phashdb.open(path) as index, phashdb.open(path) as other:
        find = index.store.find

        def find_after_a_removal(ids):
            other.remove("b2")  # between reading the hashes and reading the records
            return find(ids)

        index.store.find = find_after_a_removal
        groups = index.dedupe()
    assert [[i.id for i in g.images] for g in groups] == [["a1", "a2", "a3"]]


# --- the fault suite: seeded random damage, kill -9 ---------------------------------------------

TABLE_ARRAYS = ["header", "keys", "hashes", "id_blob", "id_ends", "order0", "start0", "sorted0",
                "order2", "start2", "sorted2", "truncate"]  # fmt: skip


def test_fault_suite_random_damage_to_each_array_never_gives_a_wrong_verdict(tmp_path):
    """Seeded byte flips in each array of the table file (and truncations): every trial ends in
    verdicts equal to brute force over SQLite, or a clear error; never a wrong verdict, never a
    crash. Prints the counts."""
    clean = tmp_path / "clean"
    make_index(clean, 3000, seed=2)
    rng = random.Random(20261202)
    outcomes: dict[str, int] = {}
    trials = 0
    for array in TABLE_ARRAYS:
        for trial in range(3):
            path = tmp_path / f"{array}{trial}"
            shutil.copytree(clean, path)
            file = path / TABLES_FILE
            if array == "truncate":
                size = file.stat().st_size
                os.truncate(file, rng.randrange(size))
            elif array == "header":
                damage(file, 8, 200, rng, rng.randint(1, 4))
            else:
                start, length = array_span(file, array)
                damage(file, start, length, rng, rng.choice([1, 1, 3, 50]))
            result = verdicts(path, seed=trial)
            trials += 1
            outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
            assert result["outcome"] in ("right", "error"), (array, trial, result)
    print(f"table file damage: {trials} trials, outcomes {outcomes}")


def test_fault_suite_random_damage_to_the_database_is_an_error_or_found_by_fsck(tmp_path):
    """Seeded byte flips in the SQLite file: each trial ends in a clear error, or verdicts equal
    to brute force over what SQLite now holds after `fsck --repair` (SQLite keeps no checksums
    of its own: a changed row is the truth now; fsck finds the tables disagree and repair
    rebuilds them from it). Never a crash, never a traceback."""
    clean = tmp_path / "clean"
    make_index(clean, 3000, seed=3)
    size = (clean / DATABASE_FILE).stat().st_size
    rng = random.Random(7)
    outcomes: dict[str, int] = {}
    for trial in range(12):
        path = tmp_path / f"db{trial}"
        shutil.copytree(clean, path)
        if trial % 4 == 3:
            os.truncate(path / DATABASE_FILE, rng.randrange(size))
        else:
            damage(path / DATABASE_FILE, 0, size, rng, rng.choice([1, 5, 40]))
        fsck = phashdb_cli(path, "fsck")
        assert fsck.returncode in (0, 2) and "Traceback" not in fsck.stderr, fsck.stderr
        repair = phashdb_cli(path, "fsck", "--repair")
        assert repair.returncode in (0, 2) and "Traceback" not in repair.stderr, repair.stderr
        result = verdicts(path, seed=trial)
        if fsck.returncode == 0:
            assert result["outcome"] == "right", (trial, fsck.stderr, result)
        else:
            assert "error:" in fsck.stderr and str(path) in fsck.stderr, fsck.stderr
            assert result["outcome"] in ("right", "error", "unverifiable"), (trial, result)
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    print(f"database damage: 12 trials, outcomes {outcomes}")


def test_fault_suite_kill_9_of_ingest_then_fsck_and_resume_reach_the_exact_count(tmp_path):
    photos = photo_folder(tmp_path / "photos", 120, seed=9)
    rng = random.Random(99)
    db = tmp_path / "index"
    phashdb.open(db).close()  # fsck refuses a missing index: a kill may come before it is made
    trials = survived = 0
    for _trial in range(5):
        proc = subprocess.Popen(
            [PHASHDB, "--db", str(db), "ingest", "-j", "2", str(photos)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.3, 3.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        trials += 1
        fsck = phashdb_cli(db, "fsck")
        assert fsck.returncode == 0, fsck.stderr
        survived += 1
    resume = phashdb_cli(db, "ingest", photos)
    assert resume.returncode == 0, resume.stderr
    with phashdb.open(db) as index:
        assert len(index) == 120 and index.fsck() == []
    assert verdicts(db)["outcome"] == "right"
    print(f"kill -9 of ingest: {trials} trials, {survived} survived")


def test_fsck_and_rebuilds_keep_ids_that_are_not_utf8(tmp_path):
    # Such names are stored as BLOBs: the tables' ties, rebuild and fsck read them back alike.
    path = tmp_path / "index"
    name = b"/photos/caf\xe9.jpg".decode("utf-8", "surrogateescape")
    with phashdb.open(path) as index:
        index.add_hashes([("plain", 1), (name, 2**63)])
        index.fsck(repair=True)
    with phashdb.open(path) as index:
        assert index.fsck() == []
        assert index.query(2**63, 0) == [(name, 0)]
    assert "rebuilding" not in verdicts(path)["stderr"]
