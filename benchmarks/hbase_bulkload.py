"""HFile bulk load against online `add_hashes`, on the real HBase test cluster.

    python benchmarks/hbase_bulkload.py [--size 10000000] [--online 1000000]

Starts the test cluster as benchmarks/hbase_search.py does (tests/hbase/cluster.sh; full JIT,
a 3 GB heap), creates two fresh pairs of pre-split tables, and loads uniform random hashes:
a sample of `--online` of them with `Index.add_hashes` (Thrift2 puts) into one pair, all
`--size` with the HFile bulk load (phashdb.hbase.bulkload.load_hashes: numbering, the input
file, the Java loader writing HFiles per region, BulkLoadHFiles) into the other. Prints
hashes/s of each and their ratio, the loader's phases, a spot check that loaded hashes are
found, and per region server the bulk-loaded tables' store-file bytes after the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from hbase_search import CLUSTER, control

import phashdb
from phashdb.hbase import create_tables
from phashdb.hbase.bulkload import load_hashes


def _varint(raw: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = raw[at]
        value |= (b & 0x7F) << shift
        at += 1
        shift += 7
        if b < 0x80:
            return value, at


def region_start_key(regioninfo: bytes) -> bytes:
    """The start key in a region folder's .regioninfo ("PBUF", a length, protobuf RegionInfo:
    field 3 is start_key)."""
    _, at = _varint(regioninfo, 4)
    while at < len(regioninfo):
        tag, at = _varint(regioninfo, at)
        field, kind = tag >> 3, tag & 7
        if kind == 0:
            _, at = _varint(regioninfo, at)
        elif kind == 2:
            size, at = _varint(regioninfo, at)
            if field == 3:
                return regioninfo[at : at + size]
            at += size
        else:
            raise ValueError(f"unexpected protobuf wire type {kind}")
    return b""


def store_file_bytes(store, data_dir: str) -> dict[str, int]:
    """Bytes of the store files of both tables' regions, by the region server holding them
    (Thrift2 names each region's server and start key; a region's folder its start key)."""
    out: dict[str, int] = defaultdict(int)
    for table in (store.options.table, store.options.images_table):
        regions = store.pool.call(lambda c, t=table: c.getAllRegionLocations(t.encode()))
        server_of = {
            r.regionInfo.startKey or b"": f"{r.serverName.hostName}:{r.serverName.port}"
            for r in regions
        }
        for folder in Path(data_dir).glob(f"**/data/default/{table}/*"):
            if not (folder / ".regioninfo").exists():
                continue
            server = server_of[region_start_key((folder / ".regioninfo").read_bytes())]
            for family in folder.iterdir():
                if family.name in ("b", "i"):
                    out[server] += sum(f.stat().st_size for f in family.iterdir() if f.is_file())
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--online", type=int, default=1_000_000, help="online sample size")
    parser.add_argument("--regions-per-band", type=int, default=6)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False)
    ids = [f"img{i:09d}" for i in range(args.size)]
    sample = min(args.online, args.size)
    pairs = list(zip(ids[:sample], hashes[:sample].tolist()))
    env = {"HBASE_TEST_JVM_OPTS": "-XX:+TieredCompilation", "HBASE_TEST_HEAP": "3g", **os.environ}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(CLUSTER), "build"], check=True)
        subprocess.run([str(CLUSTER), "start", tmp], check=True, stdout=subprocess.DEVNULL, env=env)
        info = json.loads((Path(tmp) / "cluster.json").read_text())
        base = f"hbase://127.0.0.1:{info['thrift2_port']}"
        zk = f"127.0.0.1:{info['zk_port']}"
        try:
            for table in ("online", "bulk"):
                create_tables(f"{base}/{table}", regions_per_band=args.regions_per_band)
            control(info, "balance")
            with phashdb.open(f"{base}/online") as online:
                t = time.perf_counter()
                online.add_hashes(pairs)
                online_rate = sample / (time.perf_counter() - t)
            with phashdb.open(f"{base}/bulk?zookeeper={zk}") as bulk:
                t = time.perf_counter()
                report = load_hashes(bulk.store, ids, hashes)
                seconds = time.perf_counter() - t
                bulk_rate = args.size / seconds
                picks = rng.integers(0, args.size, 200)
                found = bulk.query_many(hashes[picks].tolist(), 0)
                hits = sum((ids[p], 0) in f for p, f in zip(picks.tolist(), found))
                stats = bulk.stats()
                per_server = store_file_bytes(bulk.store, info["data_dir"])
        finally:
            subprocess.run([str(CLUSTER), "stop", tmp], check=False, stdout=subprocess.DEVNULL)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"online add_hashes: {sample:,} hashes (a sample of the {args.size:,}) at "
        f"{online_rate:,.0f} hashes/s"
    )
    print(
        f"HFile bulk load:   {report.added:,} hashes in {seconds:.1f} s at {bulk_rate:,.0f} "
        f"hashes/s ({bulk_rate / online_rate:.1f}x online); {report.bytes / 1e6:,.0f} MB of HFiles"
    )
    print("  loader phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()))
    print(f"  spot check: {hits}/200 loaded hashes found at radius 0")
    print(f"  band regions {stats.get('regions')} on {stats.get('region_servers')} region servers")
    total = sum(per_server.values())
    for server, size in sorted(per_server.items()):
        print(f"  {server}: store files {size / 1e6:,.1f} MB ({size / total:.3f} of both tables)")


if __name__ == "__main__":
    main()
