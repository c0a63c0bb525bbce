"""The dedupe job on YARN against Index.dedupe, on the same stored hashes.

    python benchmarks/hadoop_dedupe.py [--count 100000] [--chains 1000] [--chain-length 30]
        [--group-bits G]

Hashes: clusters of near-duplicates (each a centre with ~5% of its bits flipped per copy) among
random ones, and chains (each hash 5 random bits from the one before, at random places, so
their ids are in no order along them: the connected components take rounds), in an embedded
index. Starts the test cluster of tests/hadoop; checks that both give the same groups and
pairs; prints both times, the job's task seconds (per-container rates), and each step's
largest reducer input (one key's records) against the hashes and the pairs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from dedupe_time import near_copies
from hadoop_ingest import HADOOP, task_seconds, use_cluster

import phashdb
from phashdb.mr import run as mr
from phashdb.mr.counting import CHANGES, LARGEST, largest_inputs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--chain-length", type=int, default=30)
    parser.add_argument("--group-bits", type=int, help="default: chosen from the count")
    args = parser.parse_args()
    hashes = make_hashes(args.count, args.chains, args.chain_length)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = HADOOP / "cluster.sh"
        subprocess.run(
            [str(script), "start", str(tmp / "cluster")], check=True, stdout=subprocess.DEVNULL
        )
        try:
            use_cluster(json.loads((tmp / "cluster" / "cluster.json").read_text()), tmp)
            with phashdb.open(tmp / "index") as index:
                index.add_hashes((f"i{n}", int(h)) for n, h in enumerate(hashes))
                t = time.perf_counter()
                expected = index.dedupe()
                local = time.perf_counter() - t
                counters: list = []
                t = time.perf_counter()
                got = mr.dedupe(index, "hadoop", group_bits=args.group_bits, counters=counters)
                job = time.perf_counter() - t
        finally:
            subprocess.run(
                [str(script), "stop", str(tmp / "cluster")], check=False, stdout=subprocess.DEVNULL
            )
    print_result(args.count, index.threshold, expected, local, got, job, counters)


def make_hashes(count: int, chains: int, chain_length: int) -> np.ndarray:
    """Random hashes, a fifth of them near-copies of an earlier one, and chains of hashes each
    5 random bits from the one before."""
    rng = np.random.default_rng(7)
    hashes = near_copies(count, rng)
    # row k: the k-th hash of each chain
    rows = rng.permutation(count)[: chains * chain_length]
    rows = rows.reshape(chain_length, chains)
    for before, after in zip(rows[:-1], rows[1:]):
        bits = np.zeros(chains, dtype=np.uint64)
        for _ in range(5):
            bits |= np.uint64(1) << rng.integers(0, 64, chains).astype(np.uint64)
        hashes[after] = hashes[before] ^ bits
    return hashes


def print_result(
    count: int, threshold: int, expected: list, local: float, got: list, job: float, counters: list
) -> None:
    """Both times and groups, whether they are the same, and the job's steps."""
    want_pairs = sum(len(g.pairs) for g in expected)
    got_pairs = sum(len(g.pairs) for g in got)
    same = [(g.images, g.pairs) for g in got] == [(g.images, g.pairs) for g in expected]
    print(
        f"{count} hashes, threshold {threshold}: Index.dedupe {local:.1f} s, "
        f"{len(expected)} groups, {want_pairs} pairs"
    )
    print_steps(counters, count)
    print(
        f"dedupe job on YARN: {job:.0f} s ({job / local:.1f}x Index.dedupe), {len(got)} groups, "
        f"{got_pairs} pairs ({'the same groups and pairs' if same else 'DIFFERENT'}); task "
        f"seconds: map {task_seconds(counters, 'map'):.0f}, reduce "
        f"{task_seconds(counters, 'reduce'):.0f} over {len(counters)} steps"
    )


def print_steps(counters: list, count: int) -> None:
    """Each step's largest reducer input against the hashes (the first step's input) and the
    pairs (the later steps'); the rounds of the connected components."""
    pairs = sum(step.get(CHANGES, {}).get("links", 0) for step in counters)
    shares = []
    for n, (step, largest) in enumerate(zip(counters, largest_inputs(counters)), 1):
        name = next(iter(step.get(LARGEST, {})), "-").split(" task ")[0]
        total = next(
            (g.get("Reduce input records", 0) for k, g in step.items()
             if k.strip() == "Map-Reduce Framework"), 0,
        )  # fmt: skip
        whole = count if name == "close-pairs" else pairs
        shares.append(largest / max(whole, 1))
        print(
            f"  step {n:2d} {name:12s} largest reducer input {largest:>9,} of {total:>11,} "
            f"reduce input records; {shares[-1]:.4f} of the {'hashes' if whole == count else 'pairs'}"
        )
    rounds = sum(any(k.startswith("large-star") for k in s.get(LARGEST, {})) for s in counters)
    print(
        f"{len(counters)} steps ({rounds} rounds of large-star/small-star), {pairs:,} pairs; "
        f"largest reducer input at most {max(shares):.4f} of its step's whole "
        f"({'<= 1/4' if max(shares) <= 0.25 else 'MORE THAN 1/4'})"
    )


if __name__ == "__main__":
    main()
