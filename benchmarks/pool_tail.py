"""The pool's tail in `ingest`: how long the last worker hashes alone after the other's last
file, in ms, one line a run (docs/speed.md, issue 25's twelfth piece).

    PYTHONPATH=TREE python benchmarks/pool_tail.py FOLDER [--workers 2]

Each file's end time and worker are carried back with its result; the index is a fresh
embedded one in a temporary folder, removed after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import phashdb
import phashdb.ingest as ingest_module

_hash_file, _store = ingest_module.hash_file, ingest_module._store


def hash_file(path, max_pixels=ingest_module.DEFAULT_MAX_PIXELS):
    """`ingest.hash_file`, its result beside the worker's pid and the time it ended."""
    path, result = _hash_file(path, max_pixels)
    return path, (result, os.getpid(), time.perf_counter())


def store(index, results, report, progress) -> None:
    """`ingest._store` of the results as they were, printing the workers' last ends' spread."""
    ends: dict[int, float] = {}

    def unwrapped():
        for path, (result, pid, at) in results:
            ends[pid] = max(ends.get(pid, 0.0), at)
            yield path, result

    _store(index, unwrapped(), report, progress)
    last = sorted(ends.values())
    print(f"{(last[-1] - last[0]) * 1e3:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # forked workers find these by name in the module, as they were when the pool forked
    ingest_module.hash_file, ingest_module._store = hash_file, store
    hash_file.__module__ = store.__module__ = ingest_module.__name__
    hash_file.__qualname__, store.__qualname__ = "hash_file", "_store"
    folder = tempfile.mkdtemp(prefix="pool-tail-")
    try:
        index = phashdb.open(folder)
        try:
            ingest_module.ingest(index, [args.folder], workers=args.workers)
        finally:
            index.close()
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
