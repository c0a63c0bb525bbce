"""phashdb's resizes in C (phashdb/_resample.c) against Pillow's, on every image under FOLDER.

    python benchmarks/resample_speed.py FOLDER [--rounds 5]
    python benchmarks/resample_speed.py --alone


First every image is read both ways and its Picture compared (hash, size, descriptor, keys:
the run stops at the first difference). Then `phash.read_image` of the whole folder is timed
--rounds times each way, alternating in this one process (the order swapped every round), and
the CPU per file given as medians: all of read_image, and the resizes alone (the calls of
`phashdb.resample.resized` from phash, backdrop, trim and unbox, in CPU time of the thread).
With --alone: single resizes of noise images of a few sizes, Pillow's and the C code's calls
alternating, the least time of each of 200 (20 at 12 MP; the least is the one a busy machine
disturbed least).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

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


def best(*calls, times: int = 200) -> list[float]:
    """The least time of one call of each of `calls`, in ms, the calls made in turn."""
    least = [float("inf")] * len(calls)
    for _ in range(times):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            call()
            least[i] = min(least[i], time.perf_counter() - start)
    return [t * 1e3 for t in least]


def alone() -> None:
    for width, height in [(800, 600), (600, 800), (1024, 683), (4000, 3000)]:
        grey = Image.effect_noise((width, height), 40).convert("L")
        for size, name in [((32, 32), "LANCZOS"), ((64, 64), "BOX"), ((128, 128), "BOX")]:
            f = Image.Resampling[name]
            pillow, in_c = best(
                lambda g=grey, s=size, f=f: g.resize(s, f),
                lambda g=grey, s=size, f=f: resample.resized(g, s, f),
                times=200 if width < 2000 else 20,
            )
            print(
                f"{width}x{height} -> {size[0]}x{size[1]}".ljust(24)
                + f"{name:7s} Pillow {pillow:.3f} ms"
                f"  C {in_c:.3f} ms  {pillow / in_c:.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--alone", action="store_true", help="single resizes only")
    args = parser.parse_args()
    if IN_C is None:
        sys.exit("phashdb._resample is not built or not used with this Pillow")
    if args.alone or args.folder is None:
        return alone()
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
