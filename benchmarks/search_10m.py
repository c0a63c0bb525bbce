"""Exact range search at 10M hashes: the embedded index against faiss IndexBinaryFlat.

    python benchmarks/search_10m.py [--size 10000000] [--queries 100] [--sets uniform,clustered]

For each hash set (uniform random; clustered: a few thousand centres with a few bits flipped
each, and biased bits) it loads N hashes into a fresh embedded index, reopens it cold (open
time, resident memory), then times single queries at radii 0..16 (median over --queries
queries near stored hashes, three rounds, the two taking turns) for the index (`Index.query`,
sorted ids out) and for faiss's brute-force `range_search` (positions out), on the same data in
the same run, and a batched `query_many` of the same queries.
Prints times and ratios; the ratio is the figure (absolute times on a shared machine are noise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

# faiss's OpenMP threads otherwise spin for a while after each call, on the core our next
# query's second thread needs (faiss's own times are the same either way).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import phashdb


def hash_set(kind: str, n: int, rng) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    centres = rng.integers(0, 2**64, 4000, dtype=np.uint64, endpoint=False)
    # Biased bits: each bit is 1 with a probability drawn per bit, as in real pHash sets.
    hashes = centres[rng.integers(0, len(centres), n)]
    for bit in range(64):
        hashes[rng.random(n) < 0.06] ^= np.uint64(1 << bit)
    bias = rng.random(64) < 0.15
    for bit in np.flatnonzero(bias):
        hashes[rng.random(n) < 0.5] &= ~np.uint64(1 << int(bit))
    return hashes


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


def memory() -> str:
    """This process's peak resident memory so far, and what is resident now (its own memory,
    and pages of mapped files: the page cache's, given back whenever needed)."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    gb = {k: int(status[k].split()[0]) / 2**20 for k in ("VmHWM", "RssAnon", "RssFile")}
    return (
        f"peak {gb['VmHWM']:.2f} GB resident; now {gb['RssAnon']:.2f} GB own memory, "
        f"{gb['RssFile']:.2f} GB of mapped files"
    )


def timed(fn, *args) -> float:
    """Milliseconds that fn(*args) took."""
    t = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t) * 1e3


def main() -> None:
    import faiss  # here, so that check_10m.py can borrow hash_set without it

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--sets", default="uniform,clustered")
    parser.add_argument("--radii", default="0,2,4,6,8,10,12,14,16")
    args = parser.parse_args()
    radii = [int(r) for r in args.radii.split(",")]
    rng = np.random.default_rng(11)
    for kind in args.sets.split(","):
        hashes = hash_set(kind, args.size, rng)
        near = hashes[rng.integers(0, args.size, args.queries)]
        flips = rng.integers(0, 2**64, args.queries, dtype=np.uint64, endpoint=False)
        queries = near ^ (flips & np.uint64(0x0101_0001_0100_0001))
        with tempfile.TemporaryDirectory() as folder:
            load, cpu, build = load_index(folder, hashes)
            print(f"loading: {memory()}", flush=True)
            # A cold open in a process of its own: its time and its whole resident memory.
            cold, rss = subprocess.run(
                [sys.executable, "-c", COLD_OPEN, folder, str(int(queries[0]))],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            index = phashdb.open(folder)
            flat = faiss.IndexBinaryFlat(64)
            flat.add(hashes.view(np.uint8).reshape(-1, 8))
            print(
                f"\n{kind}: {args.size:,} hashes; add_hashes {args.size / load:,.0f}/s ({args.size / cpu:,.0f}/s of CPU), "
                f"band tables built and on disk in {build:.1f} s; cold open + first query {float(cold):.2f} s"
                f" in a new process of {float(rss):,.0f} MB resident; bands {index.stats()['bands']}"
            )
            print_radii(index, flat, queries, radii)
            print(f"after the queries: {memory()}")
            index.close()
            del flat


def load_index(folder: str, hashes: np.ndarray) -> tuple[float, float, float]:
    """Seconds to add the hashes to a new index in folder (wall, and the process's CPU: on a
    shared machine the steadier figure), and to build its band tables and have them on disk
    (built into their file, or built in memory and saved on close)."""
    index = phashdb.open(folder)
    t, cpu = time.perf_counter(), time.process_time()
    # A million at a time: all of them as Python ints at once took 4 GB at 10^8.
    for lo in range(0, len(hashes), 1_000_000):
        part = hashes[lo : lo + 1_000_000].tolist()
        index.add_hashes(zip((f"i{i}" for i in range(lo, lo + len(part))), part))
    load, cpu = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    index.query(0, 0)  # folds the new rows into band tables
    index.close()
    return load, cpu, time.perf_counter() - t


def print_radii(index, flat, queries: np.ndarray, radii: list[int]) -> None:
    """Per radius: our median query time against faiss's, the matches, the batch's gain."""
    q8 = queries.view(np.uint8).reshape(-1, 8)
    print(
        f"{'radius':>6} {'index ms':>9} {'faiss ms':>9} {'ratio':>7} {'matches':>8} "
        f"{'batch ms/q':>10} {'batch gain':>10}"
    )
    for r in radii:
        # Ours and faiss's take turns, all the queries at a time, three times over: the
        # shared machine's slow and fast moments fall on both alike.
        ours, theirs = [], []
        for _ in range(3):
            ours += [timed(index.query, q, r) for q in queries.tolist()]
            theirs += [timed(flat.range_search, q8[i : i + 1], r + 1) for i in range(len(q8))]
        ours, theirs = statistics.median(ours), statistics.median(theirs)
        t = time.perf_counter()
        found = index.query_many(queries.tolist(), r)
        batch = (time.perf_counter() - t) * 1e3 / len(queries)
        matches = statistics.mean(len(f) for f in found)
        print(
            f"{r:>6} {ours:>9.3f} {theirs:>9.3f} {ours / theirs:>7.3f} {matches:>8.1f} "
            f"{batch:>10.3f} {ours / batch:>9.1f}x"
        )


if __name__ == "__main__":
    main()
