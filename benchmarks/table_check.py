"""What checking the band table file costs a cold open: a 10M-hash embedded index opened in a new
process and asked one query, with the file's CRC32 already checked (the usual open) and not
(the first open after the file was written by another program or copied), the file in the page
cache and evicted from it.

    python benchmarks/table_check.py [--size 10000000] [--runs 7] [--index DIR]
        [--baseline-code CHECKOUT --baseline-index DIR2]

Each figure is the median of --runs new processes (imports, open, one radius-8 query). With
--baseline-code, every run of ours is followed by one of that checkout's code (another commit,
e.g. a `git worktree` of main) on its own copy of the index, so both meet the same moments of a
shared machine; the ratio is the figure. --index/--baseline-index keep built indexes for reuse.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from search_10m import COLD_OPEN

import phashdb
from phashdb.embedded import TABLES_FILE

REPAIR = "import sys, phashdb\nwith phashdb.open(sys.argv[1]) as i: i.fsck(repair=True)"


def evict(folder: Path) -> None:
    """Drop the index's files (only them) from the page cache: a cold disk for this index."""
    for file in folder.iterdir():
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def python(code: str | None):
    """How to run Python with this code (None) or another checkout's, and nothing else: the
    folder a `-c` script runs in comes first on sys.path, so it must not hold a phashdb."""
    if code is None:
        return {"env": None, "cwd": None}
    return {"env": {**os.environ, "PYTHONPATH": str(code)}, "cwd": "/"}


def cold_open(folder: Path, query: int, code, *, unchecked: bool, evicted: bool):
    if unchecked:
        (folder / f"{TABLES_FILE}.checked").unlink(missing_ok=True)
    if evicted:
        evict(folder)
    took, peak = subprocess.run(
        [sys.executable, "-c", COLD_OPEN, str(folder), str(query)],
        capture_output=True,
        text=True,
        check=True,
        **python(code),
    ).stdout.split()
    return float(took), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--baseline-code", type=Path)
    parser.add_argument("--baseline-index", type=Path)
    args = parser.parse_args()
    folder = args.index or Path(tempfile.mkdtemp())
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False)
    with phashdb.open(folder) as index:
        if len(index) != args.size:
            index.add_hashes(zip((f"i{i}" for i in range(args.size)), hashes.tolist()))
        index.fsck(repair=True)  # the band tables of this code, saved on close
    sides = {"ours": (folder, None)}
    if args.baseline_code:
        other = args.baseline_index or Path(tempfile.mkdtemp()) / "index"
        if not other.exists():
            shutil.copytree(folder, other)
        subprocess.run(
            [sys.executable, "-c", REPAIR, str(other)], check=True, **python(args.baseline_code)
        )
        sides["baseline"] = (other, args.baseline_code)
    size = (folder / TABLES_FILE).stat().st_size
    print(f"{args.size:,} hashes, {TABLES_FILE} {size / 2**20:,.0f} MiB; medians of {args.runs}")
    query = int(hashes[0])
    cases = [
        (False, False, "usual cold open + query, file in page cache"),
        (False, True, "usual, file evicted from the page cache"),
        (True, False, "CRC32 read in full (first open of a file), in page cache"),
        (True, True, "CRC32 read in full, file evicted"),
    ]
    first = None
    for unchecked, evicted, label in cases:
        runs: dict[str, list] = {side: [] for side in sides}
        for _ in range(args.runs):
            for side, (where, code) in sides.items():
                runs[side].append(
                    cold_open(where, query, code, unchecked=unchecked, evicted=evicted)
                )
        line = []
        for side, got in runs.items():
            took = statistics.median(t for t, _ in got)
            peak = statistics.median(p for _, p in got)
            line.append(f"{side} {took * 1e3:.0f} ms ({peak:.0f} MB)")
            if side == "ours":
                ours, first = took, first or took
                line[-1] += f" [{took / first:.2f}x ours usual]"
            else:
                line[-1] += f" [ours/baseline {ours / took:.2f}]"
        print(f"{label}: " + "; ".join(line))
    t = time.perf_counter()
    with open(folder / TABLES_FILE, "rb") as f:
        while f.read(8 << 20):
            pass
    print(f"reading the file alone (page cache): {(time.perf_counter() - t) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
