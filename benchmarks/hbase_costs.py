"""What a probe and an entry cost an HBase search: the rates the README's projection uses.

    python benchmarks/hbase_costs.py [--small 1000000] [--large 4000000]

Starts the test cluster as hbase_search.py does, loads two tables of uniform random hashes
(--small and --large images, flushed and major-compacted), then times in turns, 600 times each:
a single-row Get (the floor), one getMultiple of 57 Gets of empty rows, and the band lookup of a
query (`HBaseStore.candidates`: every probe, the entries decoded and measured) at radius 8 and
10 on both tables. The same probes meet 4x the entries in the large table, so the difference
is the cost of entries, and the rest the cost of probes.
"""

from __future__ import annotations

import argparse
import time
from math import comb

import numpy as np
from hbase_search import control, settled, started_cluster

import phashdb
from phashdb.bands import BandLayout
from phashdb.hbase import create_tables, keys
from phashdb.hbase.thrift import column_range_filter, hb


def probes_and_entries(layout, radius: int, size: int) -> tuple[int, float]:
    probes = entries = 0
    for width, r in zip(layout.widths, layout.probe_radii(radius)):
        if r >= 0:
            k = sum(comb(width, i) for i in range(r + 1))
            probes += k
            entries += k * size / 2**width
    return probes, entries


def project(per_probe: float, per_entry: float, floor: float) -> None:
    """A check at r=8 at 10^8 and 10^9 images on 3, 10 and 30 region servers, from the rates
    measured here (ms): two round trips, and the probes' and entries' cost divided over the
    region servers (getMultiple runs each server's Gets in parallel; the test cluster's three
    share two cores, so its rates already hold that parallelism only in part), with the band
    count (3 to 8 even bands) that is fastest at each size."""
    print("\nprojection at r=8 (README, On HBase):")
    print(
        "| images | region servers | layout | probes | entries read | check latency "
        "| band table an image |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in (10**8, 10**9):
        for servers in (3, 10, 30):
            best = None
            for bands in range(3, 9):
                layout = BandLayout.even(bands)
                probes, entries = probes_and_entries(layout, 8, size)
                ms = 2 * floor + (probes * per_probe + entries * per_entry) * 3 / servers
                if best is None or ms < best[0]:
                    best = ms, layout, probes, entries
            ms, layout, probes, entries = best
            print(
                f"| 10^{len(str(size)) - 1} | {servers} | {len(layout.widths)} bands "
                f"{list(layout.widths)} | {probes:,} | {entries:,.0f} | {ms:.0f} ms "
                f"| {sum(keys.entry_size(w) for w in layout.widths)} B |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=4_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    with started_cluster() as (info, _):
        index = {}
        for name, size in (("small", args.small), ("large", args.large)):
            url = f"hbase://127.0.0.1:{info['thrift2_port']}/{name}"
            create_tables(url)
            index[name] = phashdb.open(url)
            hashes = rng.integers(0, 2**64, size, dtype=np.uint64).tolist()
            index[name].add_hashes((f"i{k}", h) for k, h in enumerate(hashes))
            control(info, f"flush {name}", f"compact {name}")
            settled(info["pid"])
        queries = rng.integers(0, 2**64, 200, dtype=np.uint64).tolist()
        p50 = medians(lookups(index), queries)
        for k, v in p50.items():
            print(f"{k:>24}: p50 {v:.2f} ms")
        print_rates(p50, index["small"].store.layout, args.small, args.large)
        for i in index.values():
            i.close()


def lookups(index: dict) -> dict:
    """What is timed, by name: a function of a query hash."""
    store = index["small"].store
    empty = [
        hb.TGet(
            row=bytes([9]) + k.to_bytes(2, "big"),
            filterBytes=column_range_filter(b"\0\0", b"\0\1"),
        )
        for k in range(57)
    ]
    tests = {
        "floor (one Get)": lambda q: store.pool.call(
            lambda c: c.get(b"small", hb.TGet(row=bytes([9, 0, 0])))
        ),
        "57 Gets of empty rows": lambda q: store.pool.call(
            lambda c: c.getMultiple(b"small", empty)
        ),
    }
    for r in (8, 10):
        for name in ("small", "large"):
            tests[f"{name} r={r}"] = lambda q, n=name, r=r: index[n].store.candidates(
                np.array([q], np.uint64), r
            )
    return tests


def medians(tests: dict, queries: list[int]) -> dict[str, float]:
    """Each test's median milliseconds, all taking turns query by query, three times over."""
    times: dict[str, list[float]] = {k: [] for k in tests}
    for _ in range(3):
        for q in queries:
            for k, f in tests.items():
                t = time.perf_counter()
                f(q)
                times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def print_rates(p50: dict[str, float], layout, small_size: int, large_size: int) -> None:
    """A probe's and an entry's cost, from the two tables' difference; then the projection."""
    rates = []
    for r in (8, 10):
        probes, small = probes_and_entries(layout, r, small_size)
        _, large = probes_and_entries(layout, r, large_size)
        per_entry = (p50[f"large r={r}"] - p50[f"small r={r}"]) / (large - small)
        per_probe = (p50[f"small r={r}"] - p50["floor (one Get)"] - small * per_entry) / probes
        print(
            f"r={r}: {probes} probes, {small:,.0f} / {large:,.0f} entries: "
            f"{per_entry * 1e6:.0f} ns an entry, {per_probe * 1e3:.1f} µs a probe"
        )
        rates.append((per_entry, per_probe))
    # The dearer entry rate of the two radii: the 1M/4M difference is small next to
    # the noise now that the region servers drop most entries.
    per_entry, per_probe = max(rates)
    if per_entry > 0 and per_probe > 0:
        project(per_probe, per_entry, p50["floor (one Get)"])
    else:
        print("no projection: the tables are too small to tell these costs from the noise")


if __name__ == "__main__":
    main()
