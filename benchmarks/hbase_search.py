"""Load rate, check latency and storage on the real HBase test cluster, next to the embedded index.

    python benchmarks/hbase_search.py [--size 1000000] [--queries 100] [--bands 4]

Starts the test cluster (tests/hbase/cluster.sh: ZooKeeper, master, three region servers,
Thrift; full JIT and a 3 GB heap unless HBASE_TEST_JVM_OPTS / HBASE_TEST_HEAP say otherwise),
creates fresh pre-split tables, asks the balancer to run, and loads the same N uniform random
hashes into HBase and into an embedded index. Prints, from one run: hashes/s loaded; p50/p95 of
single queries (Index.query: every probe, then the candidates' records) at radii 4, 8 and 10
and of a batch of 100 queries at radius 8, with the region servers' HammingFilter (the default)
and without it (`unfiltered`: every entry of a probed band value sent to the client); the p50 of one single-row Get on the same cluster
(the floor: one round trip); bytes per image on disk after a flush and major compaction, band
table and records apart; each region server's regions, share of band cells and requests.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import phashdb
from phashdb.bands import BandLayout
from phashdb.hbase import DEFAULT_BANDS, create_tables, keys
from phashdb.hbase.tally import CallTally
from phashdb.hbase.thrift import hb

CLUSTER = Path(__file__).resolve().parent.parent / "tests" / "hbase" / "cluster.sh"


@contextmanager
def started_cluster():
    """The test cluster (tests/hbase), built and started in a temporary folder for the run and
    stopped after it, as the benchmarks want it (full JIT, a 3 GB heap, unless the environment
    says otherwise): (its cluster.json, the folder)."""
    env = {"HBASE_TEST_JVM_OPTS": "-XX:+TieredCompilation", "HBASE_TEST_HEAP": "3g", **os.environ}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(CLUSTER), "build"], check=True)
        subprocess.run([str(CLUSTER), "start", tmp], check=True, stdout=subprocess.DEVNULL, env=env)
        try:
            yield json.loads((Path(tmp) / "cluster.json").read_text()), tmp
        finally:
            subprocess.run([str(CLUSTER), "stop", tmp], check=False, stdout=subprocess.DEVNULL)


RADII = (4, 8, 10)


def control(info: dict, *commands: str) -> list[str]:
    """Commands to the test cluster's control port (MiniCluster.java), one answer each."""
    with socket.create_connection(("127.0.0.1", info["control_port"])) as s:
        f = s.makefile("rw")
        out = []
        for command in commands:
            f.write(command + "\n")
            f.flush()
            answer = f.readline().strip()
            if not answer.startswith("ok"):
                raise RuntimeError(f"{command}: {answer}")
            out.append(answer[3:])
        return out


def table_bytes(data_dir: str, table: str) -> int:
    """Bytes of a table's store files under the cluster's data folder."""
    total = 0
    for root, _, files in os.walk(data_dir):
        parts = Path(root).parts
        if "default" in parts and table in parts and "archive" not in parts and ".tmp" not in parts:
            i = parts.index("default")
            if (
                i + 1 < len(parts) and parts[i + 1] == table and len(parts) == i + 4
            ):  # region/family
                total += sum(os.path.getsize(Path(root) / f) for f in files)
    return total


def timed(fn, repeat):
    times = []
    for arg in repeat:
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return np.median(times) * 1e3, np.percentile(times, 95) * 1e3


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(pid: int, limit: float = 180.0) -> float:
    """Wait until the cluster's JVM is idle (under 0.3 s of CPU a second: flushes,
    compactions and the band table's block prefetch done); returns the seconds waited."""
    t0 = time.perf_counter()
    last = cpu_seconds(pid)
    while time.perf_counter() - t0 < limit:
        time.sleep(1)
        now = cpu_seconds(pid)
        if now - last < 0.3:
            break
        last = now
    return time.perf_counter() - t0


def measure(index, pairs, queries, floor=None, server_pid=None, settle=None):
    """Load rate (and the CPU seconds the client and the server spent on it), then query
    latencies; with `floor`, one floor Get is timed before each query, so both meet the same
    load on this shared machine. `settle` runs between the load and the queries. Without
    `pairs`, the index is not loaded (it already holds them)."""
    t, c = time.perf_counter(), time.process_time()
    s = cpu_seconds(server_pid) if server_pid else 0.0
    out = {}
    if pairs:
        index.add_hashes(pairs)
        out = {
            "load": len(pairs) / (time.perf_counter() - t),
            "client_cpu": time.process_time() - c,
            "server_cpu": cpu_seconds(server_pid) - s if server_pid else 0.0,
        }
    if settle:
        settle()
    for r in RADII:  # warm: connections opened, band tables built, the JIT at work
        for q in queries[:20]:
            index.query(q, r)
    floors = []

    def one(q, r):
        if floor:
            t = time.perf_counter()
            floor()
            floors.append(time.perf_counter() - t)
        index.query(q, r)

    for r in RADII:
        out[r] = timed(lambda q, r=r: one(q, r), queries)
    out["batch"] = timed(lambda _: index.query_many(queries[:100], 8), range(5))
    if floors:
        out["floor"] = np.median(floors) * 1e3, np.percentile(floors, 95) * 1e3
    return out


def calls_per_check(index) -> tuple[float, dict]:
    """Thrift calls per check (counted at the client, phashdb.hbase.tally) of each of five real
    photos (scikit-image's bundled files) stored first, flips and rotations searched: the mean
    and the calls by method."""
    import skimage.data

    photos = sorted(Path(skimage.data.__file__).parent.glob("*.png"))[:5]
    for photo in photos:
        if str(photo) not in index:
            index.add(photo, keep_duplicate=True)
    with CallTally(index.store.pool) as tally:
        for photo in photos:
            index.check(photo)
    return tally.total / len(photos), dict(tally.calls)


def workload(size: int, queries: int) -> tuple[np.ndarray, list, list[int]]:
    """`size` random hashes, as an array and as (id, hash) pairs, and `queries` queries 4 bits
    from stored hashes (the same every run)."""
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, size, dtype=np.uint64, endpoint=False)
    pairs = [(f"img{i:08d}", h) for i, h in enumerate(hashes.tolist())]
    near = hashes[rng.integers(0, size, queries)] ^ np.uint64(0b1000_0100_0010_0001)
    return hashes, pairs, [int(q) for q in near]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--bands", type=int, default=DEFAULT_BANDS)
    parser.add_argument("--regions-per-band", type=int, default=6)
    parser.add_argument("--row-bits", type=int, default=keys.DEFAULT_ROW_BITS)
    args = parser.parse_args()
    hashes, pairs, queries = workload(args.size, args.queries)
    with started_cluster() as (info, tmp):
        url = f"hbase://127.0.0.1:{info['thrift2_port']}/bench"
        create_tables(
            url,
            bands=BandLayout.even(args.bands),
            regions_per_band=args.regions_per_band,
            row_bits=args.row_bits,
        )
        control(info, "balance")
        with phashdb.open(url) as hbase:
            get = floor_get(hbase)
            results = {"hbase": measure_loaded(hbase, info, pairs, queries, get)}
            assert hbase.store.server_filter
            per_check = calls_per_check(hbase)
        # The same data, every band entry sent to the client (no HammingFilter).
        with phashdb.open(url + "?server_filter=0") as unfiltered:
            results["unfiltered"] = measure(
                unfiltered,
                None,
                queries,
                lambda: unfiltered.store.pool.call(lambda c: c.get(b"bench", get)),
            )
        with phashdb.open(url) as hbase:
            info_stats = hbase.stats()
            requests = json.loads(control(info, "metrics bench")[0])
        with phashdb.open(Path(tmp) / "embedded") as embedded:
            results["embedded"] = measure(embedded, pairs, queries)
    print_report(args.size, results, per_check, info_stats, requests)


def floor_get(hbase) -> hb.TGet:
    """A single-row Get of one band row: the floor a search is measured against."""
    layout = hbase.store.layout
    row = keys.probe_range(0, 12345, layout.widths[0], hbase.store.row_bits)[0]
    return hb.TGet(row=row, columns=[hb.TColumn(keys.BAND_FAMILY, b"\0")])


def measure_loaded(hbase, info: dict, pairs: list, queries: list, get: hb.TGet) -> dict:
    """The load and searches of HBase; with the tables' bytes once flushed and compacted, and
    the seconds the cluster was busy after, under "sizes"."""
    sizes = {}

    def floor():
        hbase.store.pool.call(lambda c: c.get(b"bench", get))

    def settle():
        # the tables as they settle after a load: flushed and major-compacted
        control(
            info,
            "flush bench",
            "flush bench.images",
            "compact bench",
            "compact bench.images",
        )
        for t in ("bench", "bench.images"):
            sizes[t] = table_bytes(info["data_dir"], t)
        sizes["settled"] = settled(info["pid"])

    result = measure(hbase, pairs, queries, floor, info["pid"], settle)
    return {**result, "sizes": sizes}


def print_report(size: int, results: dict, per_check: tuple, info_stats: dict, requests: dict):
    """The table of times per backend, then HBase's costs and its spread over the servers."""
    floor = results["hbase"]["floor"]
    sizes = results["hbase"]["sizes"]
    print(
        f"{size:,} random hashes; HBase: bands {info_stats['bands']}, {info_stats['regions']} "
        f"band regions on {info_stats['region_servers']} region servers; single-row Get p50 "
        f"{floor[0]:.2f} ms (the floor)"
    )
    header = f"{'backend':>9} {'load/s':>9} " + " ".join(
        f"{f'r={r} p50/p95 ms':>17}" for r in RADII
    )
    print(header + f" {'batch 100 r=8 ms':>17}")
    for name, res in results.items():
        load = f"{res['load']:>9,.0f}" if "load" in res else f"{'-':>9}"
        print(
            f"{name:>9} {load} "
            + " ".join(f"{res[r][0]:>8.2f}/{res[r][1]:<8.2f}" for r in RADII)
            + f" {res['batch'][0]:>8.1f}/{res['batch'][1]:<8.1f}"
        )
    h = results["hbase"]
    print(
        f"HBase load CPU: client {h['client_cpu']:.0f} s, cluster JVM {h['server_cpu']:.0f} s for "
        f"{size:,} hashes: {size / max(h['client_cpu'], h['server_cpu']):,.0f} hashes/s "
        "if each had one core to itself"
    )
    print(
        f"Thrift calls per check (a real photo, flips searched): {per_check[0]:.1f} {per_check[1]}"
    )
    print("HBase/floor at p50: " + ", ".join(f"r={r} {h[r][0] / floor[0]:.1f}x" for r in RADII))
    u = results["unfiltered"]
    print(
        f"unfiltered/floor at p50 (its own floor {u['floor'][0]:.2f} ms): "
        + ", ".join(f"r={r} {u[r][0] / u['floor'][0]:.1f}x" for r in RADII)
    )
    print(
        f"after the load's flush and compaction, the cluster was busy {sizes['settled']:.0f} s more"
    )
    print(
        f"bytes per image on disk (flushed, major-compacted): band table "
        f"{sizes['bench'] / size:.1f}, records {sizes['bench.images'] / size:.1f}"
    )
    for server, s in info_stats["per_region_server"].items():
        r = requests.get(server, {})
        print(
            f"  {server}: {s['regions']} regions, share of band cells {s['share']:.3f}, "
            f"requests read {r.get('reads', '?'):,} write {r.get('writes', '?'):,}"
        )
    print(f"  max/min share: {info_stats['max_min_share']}")


if __name__ == "__main__":
    main()
