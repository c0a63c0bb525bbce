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
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hadoop_ingest import HADOOP, task_seconds

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
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**64, args.count, dtype=np.uint64, endpoint=False)
    copies = rng.random(args.count) < 0.2  # a fifth are near-copies of an earlier hash
    source = rng.integers(0, args.count, args.count) % np.maximum(np.arange(args.count), 1)
    hashes[copies] = hashes[source[copies]]
    for bit in range(64):
        hashes[copies & (rng.random(args.count) < 0.05)] ^= np.uint64(1 << bit)
    # row k: the k-th hash of each chain
    chains = rng.permutation(args.count)[: args.chains * args.chain_length]
    chains = chains.reshape(args.chain_length, args.chains)
    for before, after in zip(chains[:-1], chains[1:]):
        bits = np.zeros(args.chains, dtype=np.uint64)
        for _ in range(5):
            bits |= np.uint64(1) << rng.integers(0, 64, args.chains).astype(np.uint64)
        hashes[after] = hashes[before] ^ bits
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = HADOOP / "cluster.sh"
        subprocess.run(
            [str(script), "start", str(tmp / "cluster")], check=True, stdout=subprocess.DEVNULL
        )
        try:
            cluster = json.loads((tmp / "cluster" / "cluster.json").read_text())
            conf = tmp / "mrjob.conf"
            conf.write_text(
                json.dumps(
                    {
                        "runners": {
                            "hadoop": {
                                "hadoop_bin": [
                                    str(HADOOP / "bin" / "hadoop"),
                                    "--config",
                                    cluster["conf_dir"],
                                ],
                                "hadoop_streaming_jar": str(
                                    HADOOP / "target/lib/hadoop-streaming-3.3.4.jar"
                                ),
                                "hadoop_tmp_dir": f"{cluster['namenode']}/tmp/mrjob",
                                "python_bin": sys.executable,
                            }
                        }
                    }
                )
            )
            os.environ["MRJOB_CONF"] = str(conf)
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
    want_pairs = sum(len(g.pairs) for g in expected)
    got_pairs = sum(len(g.pairs) for g in got)
    same = [(g.images, g.pairs) for g in got] == [(g.images, g.pairs) for g in expected]
    print(
        f"{args.count} hashes, threshold {index.threshold}: Index.dedupe {local:.1f} s, "
        f"{len(expected)} groups, {want_pairs} pairs"
    )
    print_steps(counters, args.count)
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
