"""Load rate and query latency on the real HBase test cluster next to the embedded index.

    python benchmarks/hbase_search.py [--size 1000000] [--queries 100] [--radii 4,10] [--url ...]

Without --url it starts the test cluster (tests/hbase/cluster.sh: ZooKeeper, master, three
region servers, Thrift) and creates fresh pre-split tables. It loads the same N uniform random
hashes into HBase and into an embedded index, and prints hashes/s and the median and 95th
percentile of single queries at --radii (4 and 10), for both, from the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import phashdb
from phashdb.hbase import create_tables

CLUSTER = Path(__file__).resolve().parent.parent / "tests" / "hbase" / "cluster.sh"


def measure(index, pairs, queries, radii):
    t = time.perf_counter()
    for lo in range(0, len(pairs), 50_000):
        index.add_hashes(pairs[lo : lo + 50_000])
    load = len(pairs) / (time.perf_counter() - t)
    index.query(0, 4)  # warm: connections opened, band tables built
    latencies = {}
    for r in radii:
        times = []
        for q in queries:
            t = time.perf_counter()
            index.query(q, r)
            times.append(time.perf_counter() - t)
        latencies[r] = (np.median(times) * 1e3, np.percentile(times, 95) * 1e3)
    return load, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--radii", default="4,10")
    parser.add_argument("--url", help="an existing hbase://HOST:PORT/TABLE?thrift2_port=N")
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False)
    pairs = [(f"img{i:08d}", int(h)) for i, h in enumerate(hashes.tolist())]
    near = hashes[rng.integers(0, args.size, args.queries)] ^ np.uint64(0b1000_0100_0010_0001)
    queries = [int(q) for q in near]
    radii = tuple(int(r) for r in args.radii.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        url, started = args.url, None
        if url is None:
            subprocess.run([str(CLUSTER), "build"], check=True)
            subprocess.run([str(CLUSTER), "start", tmp], check=True, stdout=subprocess.DEVNULL)
            started = json.loads((Path(tmp) / "cluster.json").read_text())
            url = f"hbase://127.0.0.1:{started['thrift_port']}/bench?thrift2_port={started['thrift2_port']}"
        try:
            create_tables(url)
            with phashdb.open(url.split("?")[0]) as hbase:
                info = hbase.stats()
                results = {"hbase": measure(hbase, pairs, queries, radii)}
            with phashdb.open(Path(tmp) / "embedded") as embedded:
                results["embedded"] = measure(embedded, pairs, queries, radii)
        finally:
            if started:
                subprocess.run([str(CLUSTER), "stop", tmp], check=False)
    print(f"{args.size} random hashes; HBase: {info['regions']} regions on "
          f"{info['region_servers']} region servers, bands {info['bands']}")
    print(f"{'backend':>9} {'load/s':>9} " + " ".join(
        f"{'r=%d p50 ms' % r:>12} {'r=%d p95 ms' % r:>12}" for r in radii))
    for name, (load, lat) in results.items():
        print(f"{name:>9} {load:>9,.0f} " + " ".join(
            f"{lat[r][0]:>12.2f} {lat[r][1]:>12.2f}" for r in radii))


if __name__ == "__main__":
    main()
