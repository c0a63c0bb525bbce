"""A cold `phashdb check img.jpg` against a 1M-hash index: the whole process, as a user runs it.

    python benchmarks/cold_check.py [--size 1000000] [--runs 7]

Builds an embedded index of N random hashes plus one real photo, then times the whole command
`phashdb --db INDEX check PHOTO` (median of --runs; a new process each time: imports, open,
hash, search, print). Baseline from the same run: the least a Python tool can do for one
photo, `python -c "import imagehash; from PIL import Image; imagehash.phash(Image.open(P))"`,
which hashes and searches nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import phashdb


def median_run(argv, runs) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "chelsea.jpg"
        Image.fromarray(data.chelsea()).save(photo, quality=90)
        rng = np.random.default_rng(1)
        with phashdb.open(Path(tmp) / "index") as index:
            index.add_hashes(
                (f"i{i}", h)
                for i, h in enumerate(
                    rng.integers(0, 2**64, args.size, dtype=np.uint64, endpoint=False).tolist()
                )
            )
            index.add(photo, id="chelsea")
            index.query(0, 0)  # band tables built and saved on close, as any used index has
        cli = str(Path(sys.executable).parent / "phashdb")
        ours = median_run([cli, "--db", str(Path(tmp) / "index"), "check", str(photo)], args.runs)
        base = median_run(
            [
                sys.executable,
                "-c",
                "import imagehash, sys; from PIL import Image; "
                f"imagehash.phash(Image.open({str(photo)!r}))",
            ],
            args.runs,
        )
    print(f"cold `phashdb check` on a {args.size:,}-hash index, median of {args.runs} runs:")
    print(f"  phashdb check               {ours * 1e3:6.0f} ms  (goal: 500 ms)")
    print(f"  python + imagehash, no index {base * 1e3:5.0f} ms")
    print(f"  ratio                       {ours / base:6.2f}x")


if __name__ == "__main__":
    main()
