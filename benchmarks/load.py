"""Loading speed: `add_hashes` into the embedded index, and a resumed `ingest` that skips
files already stored.

    python benchmarks/load.py [--size 1000000] [--files 20000]

add_hashes: N (id, hash) pairs into a fresh embedded index, against the same rows written
with one bare `executemany` INSERT into a fresh SQLite table (the floor of any SQLite-backed
index). Resume: --files small image files, ingested once, then ingested again (all skipped),
against the floor of finding them at all (os.walk + os.stat of every file).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import phashdb
from phashdb.ingest import ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(2)
    hashes = rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False)
    ids = [f"img{i:09d}" for i in range(args.size)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with phashdb.open(tmp / "index") as index:
            t = time.perf_counter()
            index.add_hashes(zip(ids, hashes.tolist()))
            ours = time.perf_counter() - t
        db = sqlite3.connect(tmp / "bare.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (id TEXT, hash INTEGER)")
        t = time.perf_counter()
        db.execute("BEGIN")
        db.executemany("INSERT INTO t VALUES (?, ?)", zip(ids, hashes.view(np.int64).tolist()))
        db.execute("COMMIT")
        bare = time.perf_counter() - t
        print(
            f"add_hashes of {args.size:,}: {args.size / ours:,.0f} hashes/s; bare SQLite "
            f"INSERT {args.size / bare:,.0f} rows/s; ratio {bare / ours:.2f} (goal >= 500,000/s)"
        )

        folder = tmp / "files"
        for d in range(args.files // 1000 + 1):
            (folder / f"d{d}").mkdir(parents=True)
        img = Image.new("RGB", (8, 8))
        for n in range(args.files):
            img.putpixel((n % 8, n // 8 % 8), (n % 256, n // 256 % 256, 7))
            img.save(folder / f"d{n // 1000}" / f"{n}.png")
        with phashdb.open(tmp / "files-index") as index:
            ingest(index, [folder])
            t = time.perf_counter()
            report = ingest(index, [folder])
            resume = time.perf_counter() - t
        t = time.perf_counter()
        seen = sum(
            os.stat(os.path.join(d, f)).st_size >= 0 for d, _, fs in os.walk(folder) for f in fs
        )
        walk = time.perf_counter() - t
        print(
            f"resumed ingest of {report.skipped:,} stored files: {report.skipped / resume:,.0f} "
            f"files/s; os.walk + stat {seen / walk:,.0f} files/s; ratio {walk / resume:.2f} "
            f"(goal >= 20,000/s)"
        )


if __name__ == "__main__":
    main()
