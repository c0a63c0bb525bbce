"""What the window keys (phashdb.windows) cost the HBase backend: a check, the bytes, the reach.

    python benchmarks/hbase_windows.py [PHOTO_FOLDER] [--sizes 200000,800000] [--photos 6]

Starts the test cluster as hbase_search.py does and, for each size N, loads two indexes of the
same N images (random hashes, random layout-v4 descriptors as windows_check.py makes them):
"keyed", whose images hold nine window keys each (random hashes), and "plain", without keys;
then stores the photos (12 MP JPEGs, query_keys_cost.camera_jpegs) in both as themselves, and
flushes and major-compacts every table. Then, per size:

1. a whole `Index.check` of each photo, taking turns three times over, medians: the keyed index
   with the query's window keys (the default); the same searched as a layout-3 index is (its
   wide keys in every key's band rows: all of them probed up to the reach, as before layout
   4); the plain index without the query's windows (a check before the windows:
   phash.window_keys off) and with them (what the query's own windows cost: nine more hashes
   searched at the threshold). The ratio keyed/plain without windows is the figure. Then one
   check each counted at the Thrift client (phashdb.hbase.tally, as tests/test_hbase_reads.py
   counts): calls by method, band cells of images and of keys, and record cells read;
2. bytes per image of each index's tables: the store files under the cluster's data folder
   after the flush and major compaction (hbase_search.table_bytes: the region folders of the
   table, archive and .tmp left out); the keys' band rows are the band tables' difference;
3. the band lookup alone (HBaseStore.candidates, no records) of the photos' hashes at radius 8
   and 16: of the images' band rows, of every key's (keys.KEY_BANDS) and of the wide keys'
   (keys.WIDE_KEY_BANDS: none here, the window keys are not wide), taking turns, medians; with
   the Gets sent, the band cells and entries sent back (the HammingFilter drops the far ones
   at the region server) and the entries those cells hold (what the region servers read).

Runs of Dec 7 (2 cores shared with other work). First (20:44-20:49 UTC, `--sizes
200000,800000 --photos 8`, load average 3.2-3.4), before layout 4, every key searched once up
to the reach: a check keyed/plain 122.3/89.8 ms (1.36x) at 200k and 146.7/87.0 ms (1.69x) at
800k. Then (20:57-21:10, `--sizes 200000,800000,1600000 --photos 8`, load average 2.0-2.7 at
the reports, up to 8.4 during the 1.6M load), layout 4:

| images | keyed | keyed, layout-3 search | plain, no windows | plain, query windows | keyed/plain | layout-3/plain |
|---|---|---|---|---|---|---|
| 200,000 | 121.3 ms | 144.1 ms | 92.6 ms | 108.5 ms | 1.31x | 1.56x |
| 800,000 | 133.7 ms | 185.9 ms | 107.5 ms | 127.7 ms | 1.24x | 1.73x |
| 1,600,000 | 148.3 ms | 264.9 ms | 122.3 ms | 144.0 ms | 1.21x | 2.17x |

The rest of the 1.2x is the query's own nine windows (1.17-1.19x: 477 more Gets at the
threshold). Every key's rows at 16 read 192,730 / 771,756 / 1,542,902 entries a check (the
images' rows 26,836 / 107,304 / 214,486) and sent back 85 / 310 / 624 keys within reach of
the filter, whose records a check then read (record cells 47 / 155 / 288 against 14 / 24 / 49
now); at 8 they hold 10,172 / 40,417 / 80,983. Bytes an image: keyed 1,855 (band table 614,
records 1,241), plain 610 (67, 544): 3.04x at every size, the keys' band rows 547 B an image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from hbase_search import control, settled, started_cluster, table_bytes
from query_keys_cost import camera_jpegs
from windows_check import window_key_bytes

import phashdb
from phashdb import descriptor
from phashdb import phash as hashing
from phashdb.hbase import create_tables, keys
from phashdb.hbase.schema import drop_tables
from phashdb.hbase.tally import CallTally
from phashdb.records import Image

CHUNK = 50_000
REAL_WINDOWS = hashing.window_keys


def load(index, size: int, keyed: bool, seed: int) -> float:
    """Stores `size` random images (the same for both kinds of index: one seed); with nine
    window keys each when `keyed`. Returns the seconds it took."""
    rng = np.random.default_rng(seed)
    start, now = time.perf_counter(), time.time()
    for lo in range(0, size, CHUNK):
        n = min(CHUNK, size - lo)
        hashes = rng.integers(0, 2**64, n, dtype=np.uint64).tolist()
        heads = rng.integers(0, 256, (n, descriptor.STORED_SIZE), dtype=np.uint8)
        windows = window_key_bytes(n, rng)  # drawn for both, so both draw the same hashes
        rows = np.concatenate([heads, windows], axis=1) if keyed else heads
        index.store.put(
            Image(f"img{lo + k:08d}", h, added=now, descriptor=rows[k].tobytes())
            for k, h in enumerate(hashes)
        )
    return time.perf_counter() - start


def timed(fn, arg) -> float:
    t = time.perf_counter()
    fn(arg)
    return (time.perf_counter() - t) * 1e3


def with_windows(on: bool) -> None:
    """The query's window keys made (the default) or not (a check before the windows)."""
    hashing.window_keys = REAL_WINDOWS if on else (lambda grey, whole: [])


def checks(index: dict, jpegs: list[Path]) -> dict[str, float]:
    """Median ms of a whole check of each photo, the three ways taking turns, three rounds."""
    ways = {
        "keyed, query windows": (index["keyed"], True, True),
        "keyed, query windows, layout-3 search": (index["keyed"], True, False),
        "plain, no windows": (index["plain"], False, True),
        "plain, query windows": (index["plain"], True, True),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(3):
        for p in jpegs:
            for label in ways if r % 2 == 0 else list(ways)[::-1]:
                target, on, wide_rows = ways[label]
                with_windows(on)
                target.store.wide_rows = wide_rows
                times[label].append(timed(target.check, p))
    with_windows(True)
    index["keyed"].store.wide_rows = True
    return {k: statistics.median(v) for k, v in times.items()}


def counted(index, jpeg: Path, windows: bool, wide_rows: bool = True) -> dict:
    """What one check asks of HBase: calls by method, band cells (images', keys'), records;
    `wide_rows` False: the wide keys searched as in a layout-3 index (every key's rows to 16)."""
    with_windows(windows)
    store = index.store
    store.wide_rows = wide_rows
    with CallTally(store.pool) as tally:
        index.check(jpeg)
    with_windows(True)
    store.wide_rows = True
    band = tally.cells_of(store.options.table)
    return {
        "calls": dict(tally.calls),
        "image cells": sum(1 for row, _ in band if row[0] < keys.KEY_BANDS),
        "key cells": sum(1 for row, _ in band if row[0] >= keys.KEY_BANDS),
        "record cells": sum(
            1 for row, q in tally.cells_of(store.options.images_table) if row[:1] == b"n"
        ),
    }


def lookup_counts(store, hashes: np.ndarray, radius: int, first_band: int) -> dict:
    """Gets, band cells and entries sent back for the lookup of `hashes` at `radius`, and the
    entries those cells hold (asked again without the HammingFilter)."""
    out = {"gets": 0, "cells": 0, "entries": 0, "held": 0}
    for filtered in (True, False):
        store.server_filter = filtered
        for q in hashes:
            found = store._probe(np.array([q], np.uint64), radius, first_band)
            entries = sum(
                len(c.value) // keys.entry_size(store.layout.widths[band])
                for (_, band), result in found
                for c in result.columnValues or []
            )
            if filtered:
                out["gets"] += len(found)
                out["cells"] += sum(len(r.columnValues or []) for _, r in found)
                out["entries"] += entries
            else:
                out["held"] += entries
    store.server_filter = True
    return {k: v / len(hashes) for k, v in out.items()}


def lookups(index: dict, hashes: np.ndarray) -> dict[str, tuple[float, dict]]:
    """The band lookup alone at 8 and 16, images' rows and keys' rows, taking turns: median ms
    a photo's hash, and lookup_counts."""
    tests = {}
    for r in (8, 16):
        for name in ("plain", "keyed"):
            tests[f"{name} images r={r}"] = (index[name].store, r, 0)
        for name in ("plain", "keyed"):
            tests[f"{name} keys r={r}"] = (index[name].store, r, keys.KEY_BANDS)
    tests["keyed wide keys' rows r=16"] = (index["keyed"].store, 16, keys.WIDE_KEY_BANDS)
    times: dict[str, list[float]] = {k: [] for k in tests}
    for _ in range(5):
        for q in hashes:
            for k, (store, r, first) in tests.items():
                t = time.perf_counter()
                store.candidates(np.array([q], np.uint64), r, first)
                times[k].append((time.perf_counter() - t) * 1e3)
    return {
        k: (statistics.median(times[k]), lookup_counts(store, hashes, r, first))
        for k, (store, r, first) in tests.items()
    }


def one_size(info: dict, size: int, jpegs: list[Path]) -> None:
    index, sizes, seconds = {}, {}, {}
    for kind in ("keyed", "plain"):
        url = f"hbase://127.0.0.1:{info['thrift2_port']}/{kind}{size}"
        create_tables(url)
        index[kind] = phashdb.open(url)
        seconds[kind] = load(index[kind], size, kind == "keyed", seed=size)
        with_windows(kind == "keyed")
        for p in jpegs:
            index[kind].add(p)
        with_windows(True)
    for kind, i in index.items():
        tables = (i.store.options.table, i.store.options.images_table)
        control(info, *(f"flush {t}" for t in tables), *(f"compact {t}" for t in tables))
        sizes[kind] = [table_bytes(info["data_dir"], t) for t in tables]
    idle = settled(info["pid"])
    hashes = np.array([phashdb.read_image(p).hash for p in jpegs], np.uint64)
    for i in index.values():  # warm: connections, the JIT
        for p in jpegs[:2]:
            i.check(p)
    p50 = checks(index, jpegs)
    counts = {
        "keyed": counted(index["keyed"], jpegs[0], True),
        "keyed, layout-3 search": counted(index["keyed"], jpegs[0], True, False),
        "plain, no windows": counted(index["plain"], jpegs[0], False),
    }
    looked = lookups(index, hashes)
    regions = {k: len(i.store.regions()) for k, i in index.items()}
    for i in index.values():
        i.close()
        drop_tables(i.store.url)  # the next size's regions have the cluster's heap to themselves
    report(size, seconds, sizes, idle, p50, counts, looked, regions)


def report(size, seconds, sizes, idle, p50, counts, looked, regions) -> None:
    load = os.getloadavg()
    print(f"\n== {size:,} images (loaded keyed in {seconds['keyed']:.0f} s, plain in "
          f"{seconds['plain']:.0f} s; band regions {regions}; idle after compaction in "
          f"{idle:.0f} s); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip
    for k, v in p50.items():
        print(f"  check, {k}: p50 {v:.1f} ms")
    a, old, b, c = p50.values()
    print(f"  ratio keyed/plain {a / b:.2f}x (layout-3 search {old / b:.2f}x); the query's "
          f"windows alone {c / b:.2f}x")  # fmt: skip
    for k, v in counts.items():
        print(f"  one check, {k}: {v}")
    for kind, (band, records) in sizes.items():
        print(f"  bytes an image, {kind}: band table {band / size:.1f}, records {records / size:.1f}"
              f", both {(band + records) / size:.1f}")  # fmt: skip
    keyed, plain = (sum(sizes[k]) for k in ("keyed", "plain"))
    print(f"  bytes keyed/plain {keyed / plain:.2f}x; the keys' band rows "
          f"{(sizes['keyed'][0] - sizes['plain'][0]) / size:.1f} B an image (band tables' difference)")  # fmt: skip
    for k, (ms, n) in looked.items():
        print(f"  lookup {k}: p50 {ms:.2f} ms; {n['gets']:.0f} Gets, {n['cells']:.0f} cells "
              f"and {n['entries']:.1f} entries sent back, of {n['held']:,.0f} entries held")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=["/work/wt/photos/photos"])
    parser.add_argument("--sizes", default="200000,800000")
    parser.add_argument("--photos", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, started_cluster() as (info, _):
        jpegs = camera_jpegs(args.folders, args.photos, tmp)
        for size in (int(s) for s in args.sizes.split(",")):
            one_size(info, size, jpegs)


if __name__ == "__main__":
    main()
