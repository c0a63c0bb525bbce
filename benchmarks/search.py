"""Query time of the embedded index against brute force (numpy XOR + popcount), same run.

    python benchmarks/search.py [--size 1000000] [--radii 4,8,10] [--queries 200]

Loads N uniform random hashes into a fresh embedded index (in a temporary folder), then times
single queries (median over --queries) at each radius, for the index and for a numpy scan of
the same hashes, and a batched query_many. Prints the times and the ratio; absolute times on a
shared machine are noise, the ratio is the figure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

import phashdb


def timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--radii", default="4,8,10")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    hashes = rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False)
    # Queries near stored hashes (a few bits off) so that every query has answers.
    queries = hashes[rng.integers(0, args.size, args.queries)] ^ rng.integers(
        0, 2**64, args.queries, dtype=np.uint64, endpoint=False
    ) & np.uint64(0x0101_0101_0101_0101)
    with tempfile.TemporaryDirectory() as folder, phashdb.open(folder) as index:
        t = time.perf_counter()
        index.add_hashes((f"i{i}", int(h)) for i, h in enumerate(hashes.tolist()))
        load = time.perf_counter() - t
        index.query(0, 4)  # builds the band tables once, as any open index has them
        print(
            f"{args.size} random hashes, loaded in {load:.1f} s "
            f"({args.size / load:,.0f} hashes/s); bands {index.stats()['bands']}"
        )
        print(
            f"{'radius':>6} {'index ms':>10} {'numpy ms':>10} {'ratio':>8} "
            f"{'batch ms/q':>11} {'batch gain':>10}"
        )
        for radius in map(int, args.radii.split(",")):
            ours = [timed(index.query, int(q), radius) for q in queries.tolist()]
            brute = [
                timed(
                    lambda q, radius=radius: np.flatnonzero(np.bitwise_count(hashes ^ q) <= radius),
                    q,
                )
                for q in queries
            ]
            batch = timed(index.query_many, queries.tolist(), radius) / len(queries)
            ours_ms, brute_ms = statistics.median(ours) * 1e3, statistics.median(brute) * 1e3
            print(
                f"{radius:>6} {ours_ms:>10.3f} {brute_ms:>10.3f} {ours_ms / brute_ms:>8.3f} "
                f"{batch * 1e3:>11.3f} {ours_ms / (batch * 1e3):>9.1f}x"
            )


if __name__ == "__main__":
    main()
