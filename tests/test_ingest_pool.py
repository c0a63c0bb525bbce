"""Where ingest hashes: in this process for a little work, in worker processes for more. The
records are the same either way; only where they are computed changes."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading

import pytest

import phashdb
import phashdb.ingest
import phashdb.source
from phashdb.ingest import ingest


@pytest.fixture
def folder(tmp_path, photos, near_copies):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in photos:
        shutil.copy(photos[name], folder / f"{name}.jpg")
        shutil.copy(near_copies[name], folder / f"{name}-copy.jpg")
    return folder


def ingested(location, folder, **options):
    """The stored records after ingesting `folder`, and how the worker processes running while
    the files were done were started (seen from the progress callback, as each file is stored):
    an empty set when none were."""
    started = set()

    def progress(n):
        started.update(p._start_method for p in multiprocessing.active_children())

    with phashdb.open(location) as index:
        report = ingest(index, [folder], workers=2, progress=progress, **options)
        records = {i.id: (i.hash, i.width, i.height, i.descriptor) for i in index.images()}
    return report, records, started


# Run in a new process: the test process may have threads of its own (a cluster's fixture
# stopping in the background), and then ingest rightly spawns. Alone it forks; beside a
# thread it spawns; once the thread is gone it forks again.
FRESH = """
import json, multiprocessing, sys, threading
import phashdb, phashdb.ingest
from phashdb.ingest import ingest

phashdb.ingest.POOL_MIN_FILES = phashdb.ingest.FORK_MIN_FILES = 4


def run(location):
    started = set()

    def progress(n):
        started.update(p._start_method for p in multiprocessing.active_children())

    with phashdb.open(location) as index:
        ingest(index, [sys.argv[1]], workers=2, progress=progress)
        records = {i.id: [i.hash, i.width, i.height, i.descriptor.hex()] for i in index.images()}
    return sorted(started), records


out = {"alone": run(sys.argv[2] + "/alone")}
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
out["beside a thread"] = run(sys.argv[2] + "/thread")
stop.set()
other.join()
out["after"] = run(sys.argv[2] + "/after")
print(json.dumps(out))
"""


def in_a_new_process(folder, tmp_path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", FRESH, str(folder), str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_a_little_work_is_hashed_here_and_more_in_workers_alike(tmp_path, folder, monkeypatch):
    small = ingested(tmp_path / "here", folder)
    assert not small[2]  # 12 small files: no worker process was started
    monkeypatch.setattr(phashdb.ingest, "POOL_MIN_FILES", 4)
    monkeypatch.setattr(phashdb.ingest, "FORK_MIN_FILES", 4)
    monkeypatch.setattr(phashdb.ingest, "safe_to_fork", lambda: False)
    spawned = ingested(tmp_path / "spawned", folder)
    assert spawned[2] == {"spawn"}
    forked = in_a_new_process(folder, tmp_path)
    assert forked["alone"][0] == forked["after"][0] == ["fork"]  # forked workers hashed them
    assert forked["beside a thread"][0] == ["spawn"]
    assert small[0].to_json() == spawned[0].to_json()
    assert small[1] == spawned[1] and len(small[1]) == 12
    expected = {id: [h, w, ht, d.hex()] for id, (h, w, ht, d) in small[1].items()}
    assert all(records == expected for _, records in forked.values())


def test_workers_are_not_forked_while_another_thread_runs(tmp_path, folder, monkeypatch):
    # A forked child would inherit whatever lock that thread held: such workers are spawned
    # (and once it is gone, forked again: in_a_new_process above).
    monkeypatch.setattr(phashdb.ingest, "POOL_MIN_FILES", 4)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not phashdb.ingest.safe_to_fork()
        report, records, started = ingested(tmp_path / "index", folder)
    finally:
        stop.set()
        other.join()
    assert started == {"spawn"} and report.added == len(records) == 12


def test_the_bytes_also_count(tmp_path, folder, monkeypatch):
    monkeypatch.setattr(phashdb.ingest, "POOL_MIN_BYTES", 1000)
    assert phashdb.ingest.worth_a_pool([str(p) for p in folder.iterdir()])
    monkeypatch.setattr(phashdb.ingest, "POOL_MIN_BYTES", 1 << 40)
    assert not phashdb.ingest.worth_a_pool([str(p) for p in folder.iterdir()])


def test_a_rerun_hashes_only_what_changed_and_starts_no_workers(tmp_path, folder, monkeypatch):
    location = tmp_path / "index"
    ingested(location, folder)
    monkeypatch.setattr(phashdb.ingest, "POOL_MIN_FILES", 0)  # any hashing would take a pool
    monkeypatch.setattr(phashdb.ingest, "FORK_MIN_FILES", 0)
    pools, decoded = [], []
    get_context, read_image = multiprocessing.get_context, phashdb.source.read_image
    monkeypatch.setattr(
        multiprocessing, "get_context", lambda *a: pools.append(a) or get_context(*a)
    )
    monkeypatch.setattr(
        phashdb.source, "read_image", lambda *a, **kw: decoded.append(1) or read_image(*a, **kw)
    )
    report, records, _ = ingested(location, folder)
    assert (report.added, report.skipped, pools, len(decoded)) == (0, 12, [], 0)
    changed = folder / "rocket.jpg"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    again, after, _ = ingested(location, folder)
    assert (again.added, again.skipped, pools, len(decoded)) == (1, 11, [], 1)
    assert after == records  # the same picture: the same record, but its file's time


@pytest.mark.parametrize("files", [1, 2, 5, 33, 250, 1200, 5000])
@pytest.mark.parametrize("workers", [2, 3, 8])
def test_the_pieces_handed_to_workers_shrink_towards_the_end(files, workers):
    paths = [f"/photos/{i}.jpg" for i in range(files)]
    pieces = phashdb.ingest._pieces(paths, workers)
    assert [p for piece in pieces for p in piece] == paths  # every file once, in order
    sizes = [len(piece) for piece in pieces]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == min(files, phashdb.ingest._chunk(files, workers))
    # whatever is handed out last, each worker's last piece is a few files, not a whole chunk
    assert all(size <= 2 for size in sizes[-workers:])
