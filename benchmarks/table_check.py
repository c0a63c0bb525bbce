"""What checking the band table file costs a cold open: a 10M-hash embedded index opened in a new
process and asked one query, with the file's CRC32 already checked (the usual open) and not
(the first open after the file was written by another program or copied), the file in the page
cache and evicted from it.

    python benchmarks/table_check.py [--size 10000000] [--runs 5] [--index DIR]

Each figure is the median of --runs new processes (imports, open, one radius-8 query); the
baseline is the usual open in the same run, the ratio is the figure. With --index DIR an index
built before is reused (built there when missing). Run with PYTHONPATH pointing at another
checkout to time that code on the same index (a file it cannot read is rebuilt first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import phashdb
from phashdb.embedded import TABLES_FILE

COLD_OPEN = """
import sys, time
t = time.perf_counter()
import phashdb
index = phashdb.open(sys.argv[1])
index.query(int(sys.argv[2]), 8)
took = time.perf_counter() - t
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
index.close()
print(took, int(peak) / 1024)
"""


def evict(folder: Path) -> None:
    """Drop the index's files (only them) from the page cache: a cold disk for this index."""
    for file in folder.iterdir():
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cold(folder: Path, query: int, runs: int, *, unchecked: bool, evicted: bool):
    times, peaks = [], []
    for _ in range(runs):
        if unchecked:
            (folder / f"{TABLES_FILE}.checked").unlink(missing_ok=True)
        if evicted:
            evict(folder)
        took, peak = subprocess.run(
            [sys.executable, "-c", COLD_OPEN, str(folder), str(query)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append(float(took))
        peaks.append(float(peak))
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--index", type=Path)
    args = parser.parse_args()
    folder = args.index or Path(tempfile.mkdtemp())
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False)
    with phashdb.open(folder) as index:
        if len(index) != args.size:
            index.add_hashes(zip((f"i{i}" for i in range(args.size)), hashes.tolist()))
        index.fsck(repair=True)  # the band tables of this code, saved on close
    size = (folder / TABLES_FILE).stat().st_size
    print(f"{args.size:,} hashes, {TABLES_FILE} {size / 2**20:,.0f} MiB; code {phashdb.__file__}")
    query = int(hashes[0])
    base, base_mb = cold(folder, query, args.runs, unchecked=False, evicted=False)
    print(
        f"usual cold open + query (file in page cache): {base * 1e3:.0f} ms, {base_mb:.0f} MB peak"
    )
    for unchecked, evicted, label in [
        (False, True, "usual, file evicted from the page cache"),
        (True, False, "CRC32 checked in full, file in page cache"),
        (True, True, "CRC32 checked in full, file evicted"),
    ]:
        took, mb = cold(folder, query, args.runs, unchecked=unchecked, evicted=evicted)
        print(f"{label}: {took * 1e3:.0f} ms ({took / base:.2f}x), {mb:.0f} MB peak")
    t = time.perf_counter()
    with open(folder / TABLES_FILE, "rb") as f:
        while f.read(8 << 20):
            pass
    print(f"reading the file alone (page cache): {(time.perf_counter() - t) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
