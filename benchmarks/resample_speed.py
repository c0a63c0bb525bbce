"""phashdb's resizes in C (phashdb/_resample.c) against Pillow's, on every image under FOLDER.

    python benchmarks/resample_speed.py FOLDER [--rounds 5]

First every image is read both ways and its Picture compared (hash, size, descriptor, keys:
the run stops at the first difference). Then `phash.read_image` of the whole folder is timed
--rounds times each way, alternating in this one process (the order swapped every round), and
the CPU per file given as medians: all of read_image, and the resizes alone (the calls of
`phashdb.resample.resized` from phash, backdrop, trim and unbox, in CPU time of the thread).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from phashdb import backdrop, phash, resample, trim, unbox
from phashdb.errors import ImageError

IN_C = resample._resample
spent = [0.0]


def timed_resized(grey, size, filter, box=None):
    start = time.thread_time()
    try:
        return resample.resized(grey, size, filter, box)
    finally:
        spent[0] += time.thread_time() - start


def read(path: str) -> tuple | None:
    try:
        p = phash.read_image(path)
    except ImageError:
        return None
    return p.hash, p.width, p.height, p.descriptor, p.keys


def one_pass(files: list[str]) -> tuple[float, float]:
    """CPU ms per file of read_image, and of its resizes."""
    spent[0] = 0.0
    start = time.process_time()
    for path in files:
        read(path)
    return (time.process_time() - start) / len(files) * 1e3, spent[0] / len(files) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if IN_C is None:
        sys.exit("phashdb._resample is not built or not used with this Pillow")
    files = sorted(str(p) for p in args.folder.rglob("*") if p.is_file())
    for path in files:
        resample._resample = IN_C
        in_c = read(path)
        resample._resample = None
        if read(path) != in_c:
            sys.exit(f"{path}: not the same Picture with Pillow's resize")
    print(f"{len(files)} files: the same hash, size, descriptor and keys both ways")
    for module in (phash, backdrop, trim, unbox):
        module.resized = timed_resized
    times: dict[str, list] = {"C": [], "Pillow": []}
    for r in range(args.rounds):
        for way in ("C", "Pillow") if r % 2 == 0 else ("Pillow", "C"):
            resample._resample = IN_C if way == "C" else None
            times[way].append(one_pass(files))
    median = {way: [statistics.median(t[i] for t in v) for i in (0, 1)] for way, v in times.items()}
    for way, (whole, resizes) in median.items():
        print(f"{way:6s}  read_image {whole:.3f} ms CPU/file, its resizes {resizes:.3f}")
    (c_whole, c_resizes), (p_whole, p_resizes) = median["C"], median["Pillow"]
    print(
        f"C saves {p_whole - c_whole:.3f} ms/file ({1 - c_whole / p_whole:.1%} of read_image);"
        f" the resizes {p_resizes / c_resizes:.2f}x faster"
    )


if __name__ == "__main__":
    main()
