"""Bulk loads into the embedded index (`add_hashes`): rows go in many to an INSERT and sorted by
id, large band tables are built into their file a band at a time, and a process killed at any
point of either loses nothing that was stored."""

from __future__ import annotations

import errno
import gc
import os
import signal
import subprocess
import sys
import tracemalloc
from itertools import chain

import numpy as np
import pytest

import phashdb
from phashdb.embedded import TABLES_FILE, database, live
from phashdb.tables import file as table_file

MASK64 = (1 << 64) - 1
GOLDEN_RATIO = 0x9E3779B97F4A7C15


def spread(i: int) -> int:
    return i * GOLDEN_RATIO & MASK64


def test_a_batch_not_in_id_order_is_stored_and_found_by_every_id(tmp_path):
    # Rows are inserted in the ids' sorted order (seqs given in that order): each id must keep
    # its own hash whatever the order it came in, and odd sizes leave a last, shorter INSERT.
    rng = np.random.default_rng(5)
    ids = [f"p/{n:x}" for n in rng.permutation(2_000)] + ["caf\u00e9", "z\udcff", "a"]
    pairs = [(id, spread(k)) for k, id in enumerate(ids)]
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes(pairs, batch=777)
        assert len(index) == len(pairs)
        found = index.query_many([h for _, h in pairs], 0)
        assert found == [[(id, 0)] for id, _ in pairs]
    with phashdb.open(tmp_path / "index") as index:  # read back from SQLite, not the delta
        assert index.store.find(ids[:3]).keys() == set(ids[:3])
        assert {i.id: i.hash for i in index.store.images()} == dict(pairs)


def test_a_batch_repeating_an_id_keeps_its_last_hash_as_before(tmp_path):
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes([("b", 1), ("a", 2), ("b", 3), ("c", 4)])
        assert {i.id: i.hash for i in index.store.images()} == {"a": 2, "b": 3, "c": 4}
        assert index.query(3, 0) == [("b", 0)] and index.query(1, 0) == []


def test_a_batch_is_made_and_stored_without_a_pass_of_the_cycle_collector(tmp_path):
    # Its passes walked the growing batch (a million pairs, lists of a million ids) again and
    # again: 14% of a load's CPU. It is on again after a batch, and after a failed one.
    passes, made, stored = [], [], []

    def pairs(batch):
        made.append(len(passes))  # the batch's first pair is being made
        for k in range(30_000):
            yield f"b{batch}-{k}", spread(batch * 30_000 + k)

    index = phashdb.open(tmp_path / "index")
    put = index.store.put_hashes
    index.store.put_hashes = lambda *args: (put(*args), stored.append(len(passes)))
    gc.callbacks.append(lambda phase, info: passes.append(phase))
    try:
        index.add_hashes(chain.from_iterable(pairs(b) for b in range(3)), batch=30_000)
        assert gc.isenabled()
        with pytest.raises(ValueError, match="pairs"):
            index.add_hashes([("a", 1), ("b", 2, 3)])
        assert gc.isenabled()
        found = index.query_many([spread(k) for k in range(0, 90_000, 997)], 0)
        assert found == [[(f"b{k // 30_000}-{k % 30_000}", 0)] for k in range(0, 90_000, 997)]
    finally:
        gc.callbacks.pop()
        index.close()
    assert len(made) == len(stored) == 3 and made == stored


def test_a_new_index_has_large_pages_and_an_older_one_keeps_its_own(tmp_path):
    # 64 KiB pages: a bulk load's CPU 17% down. An index made before (4 KiB) is read and
    # written as it is; its WAL is copied back at the same size in bytes either way.
    def page(index):
        db = index.store._db._db
        return [
            db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "wal_autocheckpoint")
        ]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(database, "PAGE_SIZE", 4096)
        with phashdb.open(tmp_path / "old") as index:
            index.add_hashes((f"o{k}", spread(k)) for k in range(5000))
    for name, size in (("old", 4096), ("new", 65536)):
        with phashdb.open(tmp_path / name) as index:
            index.add_hashes((f"n{k}", spread(5000 + k)) for k in range(5000))
            assert page(index) == [size, (4 << 20) // size]
        with phashdb.open(tmp_path / name) as index:
            assert index.fsck() == [] and index.query(spread(7000), 0) == [("n2000", 0)]
            assert len(index) == (10_000 if name == "old" else 5000)


@pytest.mark.parametrize("removed", [0, 40])
def test_tables_built_into_their_file_answer_as_a_scan_does(tmp_path, removed):
    path = tmp_path / "index"
    hashes = [spread(i) for i in range(3_000)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(live, "BUILD_INTO_FILE_AT", 0)
        with phashdb.open(path) as index:
            index.add_hashes((f"i{k}", h) for k, h in enumerate(hashes))
            for k in range(removed):
                index.remove(f"i{k * 7}")
            index.query(0, 0)  # builds the tables into their file
            written = (path / TABLES_FILE).stat()
            assert not index.store._live.dirty
            assert index.query_many(hashes[:5], 0) == [
                [] if k % 7 == 0 and k // 7 < removed else [(f"i{k}", 0)] for k in range(5)
            ]
        assert (path / TABLES_FILE).stat().st_mtime_ns == written.st_mtime_ns  # not saved again
    with phashdb.open(path) as index:
        assert index.fsck() == []
        gone = {k * 7 for k in range(removed)}
        kept = np.array([h for k, h in enumerate(hashes) if k not in gone], np.uint64)
        for q in kept[:20].tolist():
            d = np.bitwise_count(kept ^ np.uint64(q))
            assert len(index.query(q, 16)) == int((d <= 16).sum())


def test_building_into_the_file_holds_a_band_at_a_time(tmp_path):
    # At 10^8 rows the whole tables in memory until close were 4.4 GB more than the rows: built
    # into the file, only one band's arrays are (the rows, written first, are let go).
    n = 200_000

    def peak_per_row(into_file: bool) -> float:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(live, "BUILD_INTO_FILE_AT", 0 if into_file else n + 1)
            with phashdb.open(tmp_path / f"index{into_file}") as index:
                index.add_hashes((f"image-{i:08d}", spread(i)) for i in range(n))
                tracemalloc.start()
                index.query(0, 0)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                assert index.query(spread(123), 0) == [("image-00000123", 0)]
        return peak / n

    in_memory, into_file = peak_per_row(False), peak_per_row(True)
    # Measured: ~90 bytes a row in memory (4 bands), ~40 into the file.
    assert into_file < 0.6 * in_memory, (into_file, in_memory)


def test_a_failed_table_file_write_builds_in_memory_and_loses_no_row(tmp_path, caplog):
    real_put, calls = table_file._put, []

    def disk_full_at_the_fifth_array(f, pieces):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(f, pieces)

    path = tmp_path / "index"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(live, "BUILD_INTO_FILE_AT", 0)
        mp.setattr(table_file, "_put", disk_full_at_the_fifth_array)
        with phashdb.open(path) as index:
            index.add_hashes((f"a{i}", i << 20) for i in range(3000))
            found = index.query_many([i << 20 for i in range(3000)], 0)
            assert found == [[(f"a{i}", 0)] for i in range(3000)]
            assert "built in memory" in caplog.text and index.store._live.dirty
            assert not list(path.glob("*.tmp"))
    with phashdb.open(path) as index:  # saved on close, as tables built in memory are
        assert index.fsck() == [] and len(index) == 3000


KILLED_LOAD = """
import sys
import phashdb
from phashdb.embedded import live
from phashdb.tables import file

live.BUILD_INTO_FILE_AT = 0
index = phashdb.open(sys.argv[1])
stop_in = sys.argv[2]
batch = 5000

def pairs(b):
    return ((f"b{b}-{i}", (b * batch + i) * 0x9E3779B97F4A7C15 % 2**64) for i in range(batch))

def stop(*args):
    # The parent kills us here: in the middle of the step named.
    print("stopped", flush=True)
    sys.stdin.read()
    return 0

index.add_hashes(pairs(0))
index.add_hashes(pairs(1))
if stop_in == "insert":
    calls = []
    def progress():
        calls.append(1)
        return stop() if len(calls) == 3 else 0
    index.store._db._db.set_progress_handler(progress, 1000)
    index.add_hashes(pairs(2))
else:
    real_put, arrays = file._put, []
    def put(f, pieces):
        arrays.append(1)
        return stop() if len(arrays) == 6 else real_put(f, pieces)
    file._put = put
    index.query(0, 0)
"""


@pytest.mark.parametrize("stop_in", ["insert", "table file"])
def test_a_load_killed_mid_step_keeps_every_batch_committed_before(tmp_path, stop_in):
    # WAL, synchronous=NORMAL: a batch is one transaction, so a kill -9 inside one (here: three
    # progress callbacks into its INSERT, or writing the sixth array of the table file) loses
    # that batch whole and nothing else; a half-written table file is a temporary one,
    # removed by the next open.
    path = tmp_path / "index"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_LOAD, str(path), stop_in],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline() == "stopped\n"
    if stop_in == "table file":
        assert list(path.glob(f"{TABLES_FILE}.*.tmp"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with phashdb.open(path) as index:
        assert not list(path.glob("*.tmp"))
        assert len(index) == 10_000 and index.fsck() == []
        stored = [spread(i) for i in range(10_000)]
        assert index.query_many(stored[::997], 0) == [
            [(f"b{i // 5000}-{i % 5000}", 0)] for i in range(0, 10_000, 997)
        ]
        lost = [spread(i) for i in range(10_000, 15_000, 997)]
        assert index.query_many(lost, 0) == [[] for _ in lost]
        index.add_hashes((f"b2-{i}", spread(10_000 + i)) for i in range(5000))
        assert len(index) == 15_000 and index.query(spread(12_345), 0) == [("b2-2345", 0)]
