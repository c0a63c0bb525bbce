"""The three-host cluster (scripts/cluster3.sh) under load, in one run: load rates, check
latency, a host's death, and how evenly the hosts hold the data.

    python benchmarks/cluster3.py [--size 1000000] [--photos 3000] [--queries 100] [--dir DIR]

Starts the cluster in a temporary folder (or uses the one running in --dir). Loads --size
random hashes online (Index.add_hashes through host 1's Thrift2 gateway) into one pair of
tables and --size more through HFiles (phashdb.hbase.bulkload) into another; times checks
(Index.query) at r=4/8/10 against a single-row Get (the floor); flushes and compacts; copies
--photos photos into HDFS (the corpus of ../shared/photos/build.sh in var/photos or $PHASHDB_PHOTOS, else scikit-image's); ingests 10
new photo files into the bulk-loaded index and counts what that reads (rows of the record
table, at the Thrift client); runs the balancer; prints each host's DataNode used bytes,
store-file bytes (band cells, ids, records apart) and region count with max/min
(benchmarks/cluster3_even.py). Then it adds
images one at a time, SIGKILLs host 3 after the 50th acknowledged one, goes on adding until
every region is served by hosts 1 and 2, and counts the acknowledged images not found (lost).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import phashdb
from phashdb.hbase import create_tables, keys
from phashdb.hbase.bulkload import load_hashes
from phashdb.hbase.schema import DEFAULT_REGIONS_PER_BAND
from phashdb.hbase.thrift import RECORDS_SUFFIX, hb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster3_even import HOSTS, admin, evenness, locations, print_evenness
from hbase_search import RADII, measure, workload

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "cluster3.sh"
# ../shared/photos/build.sh var/photos gathers it; $PHASHDB_PHOTOS names another folder.
CORPUS = Path(os.environ.get("PHASHDB_PHOTOS", ROOT / "var" / "photos" / "photos"))
RUN = f"{int(time.time()) % 10**6}"
ONLINE, BULK = f"bench{RUN}", f"bulk{RUN}"
TABLES = (ONLINE, ONLINE + RECORDS_SUFFIX, BULK, BULK + RECORDS_SUFFIX)


@contextmanager
def cluster(dir_: str | None):
    if dir_:
        yield json.loads((Path(dir_) / "cluster.json").read_text()), dir_
        return
    with tempfile.TemporaryDirectory(prefix="cluster3-bench-") as tmp:
        subprocess.run([str(SCRIPT), "start", tmp], check=True, stdout=subprocess.DEVNULL)
        try:
            yield json.loads((Path(tmp) / "cluster.json").read_text()), tmp
        finally:
            subprocess.run([str(SCRIPT), "stop", tmp], check=False, stdout=subprocess.DEVNULL)


def corpus_files() -> list[Path]:
    """The photo corpus's files (../shared/photos/build.sh), else scikit-image's photos."""
    manifest = CORPUS.parent / "manifest.tsv"
    files = [CORPUS / line.split("\t")[0] for line in manifest.read_text().splitlines()[1:]
             if line] if manifest.exists() else []  # fmt: skip
    if not files:
        from skimage import data

        files = sorted(Path(data.__file__).parent.glob("*.jpg"))
    return files


def put_photos(info: dict, count: int) -> int:
    """`count` photo files in HDFS under /photosRUN (the corpus again and again under new names)."""
    import hdfs_native

    files = corpus_files()
    fs = hdfs_native.Client(info["namenode"])
    fs.mkdirs(f"/photos{RUN}", create_parent=True)
    total = 0
    for i in range(count):
        payload = files[i % len(files)].read_bytes()
        with fs.create(f"/photos{RUN}/{i:05d}-{files[i % len(files)].name}") as f:
            f.write(payload)
        total += len(payload)
    return total


def ingest_reads(url: str, held: int, count: int = 10) -> None:
    """Ingest `count` new photo files into the index at `url` (holding `held` images), then the
    same folder again (every file known, skipped); print what each read of the index, counted
    at the Thrift client: calls, record-table rows and cells, records, band cells."""
    from phashdb.hbase.tally import CallTally
    from phashdb.ingest import ingest

    with (
        tempfile.TemporaryDirectory(prefix="cluster3-ingest-") as folder,
        phashdb.open(url) as index,
    ):
        for i, path in enumerate(corpus_files()[:count]):
            shutil.copy(path, Path(folder) / f"{RUN}-{i:02d}-{path.name}")
        store = index.store
        for run in ("new", "known"):
            with CallTally(store.pool) as tally:
                report = ingest(index, [folder], workers=1)
            cells = tally.cells_of(store.options.images_table)
            records = sum(1 for row, q in cells if row.startswith(b"n") and len(q) == 1)
            print(f"ingest of {count} {run} files into a {held:,}-image index (added "
                  f"{report.added}, skipped {report.skipped}): {tally.total} Thrift calls, "
                  f"{len({row for row, _ in cells})} record-table rows read ({len(cells)} "
                  f"cells, {records} records), {len(tally.cells_of(store.options.table))} "
                  "band cells", flush=True)  # fmt: skip


def host_death(info: dict, dir_: str, client) -> tuple[float, int, int]:
    """Add images one by one; host 3 SIGKILLed after the 50th acknowledged; go on until every
    region is off host 3, then 50 more. (seconds to every region served again, acknowledged,
    lost)."""
    rng = np.random.default_rng(11)
    acked, done, seconds = [], threading.Event(), {}

    def kill_when_acked():
        while len(acked) < 50:
            time.sleep(0.01)
        t0 = time.monotonic()
        subprocess.run([str(SCRIPT), "kill-host", "3"], check=True)
        while HOSTS[2] in set(locations(client, TABLES).values()):
            time.sleep(0.2)
        seconds["moved"] = time.monotonic() - t0
        done.set()

    threading.Thread(target=kill_when_acked, daemon=True).start()
    with phashdb.open(f"{info['thrift2_urls'][0]}/{ONLINE}?timeout=120") as index:
        extra = 0
        while extra < 50:
            pair = (f"death{len(acked):06d}", int(rng.integers(0, 2**63)))
            try:
                index.add_hashes([pair])
                acked.append(pair)
            except phashdb.Error as e:
                print(f"  an add failed (not acknowledged): {e}")
            extra += done.is_set()
        found = index.query_many([h for _, h in acked], 0)
        lost = sum((id, 0) not in f for (id, _), f in zip(acked, found))
    return seconds["moved"], len(acked), lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--photos", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--regions-per-band", type=int, default=DEFAULT_REGIONS_PER_BAND)
    parser.add_argument("--dir", help="use the cluster running there")
    args = parser.parse_args()
    hashes, pairs, queries = workload(args.size, args.queries)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with cluster(args.dir) as (info, dir_):
        os.environ["HBASE_CONF_DIR"] = str(Path(dir_) / "conf" / "hbase")
        os.environ["HADOOP_CONF_DIR"] = info["hadoop_conf_dir"]
        base = info["thrift2_urls"][0]
        # Both pairs of tables first: the balancer has settled them by the time of the bulk
        # load (a region moving under the loader fails it).
        for table in (ONLINE, BULK):
            create_tables(f"{base}/{table}", regions_per_band=args.regions_per_band)
        with phashdb.open(f"{base}/{ONLINE}") as index:
            row = keys.probe_range(0, 12345, index.store.layout.widths[0], index.store.row_bits)[0]
            get = hb.TGet(row=row, columns=[hb.TColumn(keys.BAND_FAMILY, b"\0")])
            online = measure(index, pairs, queries,
                             lambda: index.store.pool.call(lambda c: c.get(ONLINE.encode(), get)))  # fmt: skip
        with phashdb.open(f"{base}/{BULK}?zookeeper={info['zookeeper']}") as bulk:
            t = time.perf_counter()
            report = load_hashes(bulk.store, [f"b{i:08d}" for i in range(args.size)], hashes)
            hfile_rate = report.added / (time.perf_counter() - t)
        floor = online["floor"][0]
        print(f"load: online {online['load']:,.0f} hashes/s, HFiles {hfile_rate:,.0f} hashes/s")
        print(f"single-row Get p50 {floor:.2f} ms (the floor); checks p50/p95 ms: " + ", ".join(
            f"r={r} {online[r][0]:.2f}/{online[r][1]:.2f} ({online[r][0] / floor:.1f}x)"
            for r in RADII), flush=True)  # fmt: skip
        admin(
            dir_,
            *[w for t in TABLES for w in ("flush", t)],
            *[w for t in TABLES for w in ("compact", t)],
        )
        photo_bytes = put_photos(info, args.photos)
        host, port = base.split("//")[1].split(":")
        from thriftpy2.rpc import make_client

        client = make_client(hb.THBaseService, host, int(port), timeout=120_000)
        ingest_reads(f"{base}/{BULK}", report.added)
        # The balancer weighs each region's store-file bytes as last reported (every 3 s) since
        # the compaction: a few runs, as its periodic runs (every 30 s) would do.
        for _ in range(3):
            time.sleep(5)
            print(admin(dir_, "balance", "-").strip(), flush=True)
        even = evenness(info, client, TABLES)
        moved, acked, lost = host_death(info, dir_, client)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"three hosts, {args.size:,} hashes online + {args.size:,} through HFiles, "
          f"{args.photos:,} photos ({photo_bytes / 1e6:,.0f} MB) in HDFS, replication {info['replication']}")  # fmt: skip
    print(f"host 3 SIGKILLed under load: every region served again after {moved:.1f} s; "
          f"{acked} adds acknowledged, {lost} lost")  # fmt: skip
    print_evenness(even)


if __name__ == "__main__":
    main()
