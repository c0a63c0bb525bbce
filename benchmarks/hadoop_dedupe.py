"""The dedupe job on YARN against Index.dedupe, on the same stored hashes.

    python benchmarks/hadoop_dedupe.py [--count 100000]

Hashes: clusters of near-duplicates (each a centre with ~5% of its bits flipped per copy) among
random ones, in an embedded index. Starts the test cluster of tests/hadoop; checks that both
give the same groups and pairs; prints both times and the job's task seconds (per-container rates).
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**64, args.count, dtype=np.uint64, endpoint=False)
    copies = rng.random(args.count) < 0.2  # a fifth are near-copies of an earlier hash
    source = rng.integers(0, args.count, args.count) % np.maximum(np.arange(args.count), 1)
    hashes[copies] = hashes[source[copies]]
    for bit in range(64):
        hashes[copies & (rng.random(args.count) < 0.05)] ^= np.uint64(1 << bit)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = HADOOP / "cluster.sh"
        subprocess.run([str(script), "start", str(tmp / "cluster")], check=True,
                       stdout=subprocess.DEVNULL)
        try:
            cluster = json.loads((tmp / "cluster" / "cluster.json").read_text())
            conf = tmp / "mrjob.conf"
            conf.write_text(json.dumps({"runners": {"hadoop": {
                "hadoop_bin": [str(HADOOP / "bin" / "hadoop"), "--config", cluster["conf_dir"]],
                "hadoop_streaming_jar": str(HADOOP / "target/lib/hadoop-streaming-3.3.4.jar"),
                "hadoop_tmp_dir": f"{cluster['namenode']}/tmp/mrjob",
                "python_bin": sys.executable,
            }}}))
            os.environ["MRJOB_CONF"] = str(conf)
            with phashdb.open(tmp / "index") as index:
                index.add_hashes((f"i{n}", int(h)) for n, h in enumerate(hashes))
                t = time.perf_counter()
                expected = index.dedupe()
                local = time.perf_counter() - t
                counters: list = []
                t = time.perf_counter()
                got = mr.dedupe(index, "hadoop", counters=counters)
                job = time.perf_counter() - t
        finally:
            subprocess.run([str(script), "stop", str(tmp / "cluster")], check=False,
                           stdout=subprocess.DEVNULL)
    want_pairs = sum(len(g.pairs) for g in expected)
    got_pairs = sum(len(g.pairs) for g in got)
    same = [(g.images, g.pairs) for g in got] == [(g.images, g.pairs) for g in expected]
    print(f"{args.count} hashes, threshold {index.threshold}: Index.dedupe {local:.1f} s, "
          f"{len(expected)} groups, {want_pairs} pairs")
    print(f"dedupe job on YARN: {job:.0f} s ({job / local:.1f}x Index.dedupe), {len(got)} groups, "
          f"{got_pairs} pairs ({'the same groups and pairs' if same else 'DIFFERENT'}); task "
          f"seconds: map {task_seconds(counters, 'map'):.0f}, reduce "
          f"{task_seconds(counters, 'reduce'):.0f} over {len(counters)} steps")


if __name__ == "__main__":
    main()
