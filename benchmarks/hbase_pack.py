"""Checks on an HBase index grown in small batches, before and after packing its band cells.

    python benchmarks/hbase_pack.py [--size 1000000] [--batch 100] [--queries 100]

Starts the test cluster as hbase_search.py does and stores --size random hashes in batches of
--batch (nearly a cell per image per band value, as single adds leave), flushed and
major-compacted; times checks near stored hashes at radii 8 and 10, each after a floor Get;
packs the band cells (what `phashdb fsck --repair` does), compacts again and times the same
checks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from hbase_search import control, settled, started_cluster

import phashdb
from phashdb.hbase import create_tables
from phashdb.hbase.pack import pack
from phashdb.hbase.thrift import hb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    hashes = np.random.default_rng(1).integers(0, 2**64, args.size, dtype=np.uint64)
    queries = [int(h) ^ 0b1000_0100_0010_0001 for h in hashes[: args.queries]]
    with started_cluster() as (info, _):
        url = f"hbase://127.0.0.1:{info['thrift2_port']}/bench"
        create_tables(url)
        with phashdb.open(f"{url}?batch_size={args.batch}") as index:
            t = time.perf_counter()
            index.add_hashes((f"i{k}", h) for k, h in enumerate(hashes.tolist()))
            print(
                f"{args.size:,} hashes in batches of {args.batch}: "
                f"{args.size / (time.perf_counter() - t):,.0f} hashes/s"
            )

        def compacted():
            control(info, "flush bench", "compact bench")
            settled(info["pid"])

        compacted()
        with phashdb.open(url) as index:
            store = index.store
            empty = hb.TGet(row=bytes([9, 0, 0]))

            def measure(label):
                for r in (8, 10):
                    floors, checks = [], []
                    for q in queries:
                        t = time.perf_counter()
                        store.pool.call(lambda c: c.get(b"bench", empty))
                        floors.append(time.perf_counter() - t)
                        t = time.perf_counter()
                        index.query(q, r)
                        checks.append(time.perf_counter() - t)
                    floor, check = np.median(floors) * 1e3, np.median(checks) * 1e3
                    print(
                        f"{label} r={r}: floor {floor:.2f} ms, check p50 {check:.2f} ms "
                        f"({check / floor:.1f}x)"
                    )

            for _ in range(2):
                measure("a cell per image")
            t = time.perf_counter()
            cells = pack(store.writer, min_age=0)
            print(f"pack: {cells:,} cells replaced in {time.perf_counter() - t:.1f} s")
            compacted()
            for _ in range(2):
                measure("packed")


if __name__ == "__main__":
    main()
