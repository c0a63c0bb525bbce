"""What looking for the keys costs per image: ms per file of each key function and of
phash.read_image as a whole, on the images under FOLDER, in one process.

    python benchmarks/keys_cost.py FOLDER [--against PACKAGE] [--rounds 5]

With --against, an importable copy of another phashdb (say an older commit's `phashdb/` copied
to `phashdb_old/` on PYTHONPATH: its imports are relative) is timed on the same decoded images,
alternating with this one round by round, and the ratios printed: the machine's noise falls on
both alike. The figures are the medians of the rounds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time

import numpy as np
from PIL import Image


def load(package: str):
    """The modules timed, of `package`."""
    return {m: importlib.import_module(f"{package}.{m}") for m in ("phash", "unbox", "backdrop", "trim", "descriptor")}  # fmt: skip


def inputs(folder: str, phash) -> list[tuple[str, Image.Image, np.ndarray, np.ndarray]]:
    """(path, greyscale image as read_image hands it to the keys, its 64-pixel reduction, its
    32x32 pixels) of each image under `folder`."""
    out = []
    for dirpath, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            img = Image.open(path)
            if img.format in ("JPEG", "MPO"):
                img.draft(phash.DRAFT_MODE, phash.DRAFT_SIZE)
            img.load()
            grey = phash._greyscale_in_strips(img, path)
            small = grey.resize((min(64, grey.width), min(64, grey.height)), Image.Resampling.BOX)
            out.append((path, grey, np.asarray(small, dtype=np.int16), phash._pixels(grey)))
    return out


def timings(m: dict, images: list) -> dict[str, float]:
    """Seconds over all `images` of each function of modules `m`."""
    calls = {
        "unboxed_variant": lambda i: m["unbox"].unboxed_variant(i[1]),
        "  find_box": lambda i: m["unbox"].find_box(i[2]),
        "backdrop_variant": lambda i: m["backdrop"].backdrop_variant(i[1]),
        "trimmed_variant": lambda i: m["trim"].trimmed_variant(i[1]),
        "descriptor.variants": lambda i: m["descriptor"].variants(i[3]),
        "descriptor.quality": lambda i: m["descriptor"].quality(i[3]),
        "read_image (whole)": lambda i: m["phash"].read_image(i[0]),
    }
    out = {}
    for name, call in calls.items():
        start = time.perf_counter()
        for i in images:
            call(i)
        out[name] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--against", help="an importable copy of another phashdb")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    packages = ["phashdb"] + ([args.against] if args.against else [])
    modules = {p: load(p) for p in packages}
    images = inputs(args.folder, modules["phashdb"]["phash"])
    rounds: dict[str, list[dict]] = {p: [] for p in packages}
    for _ in range(args.rounds):
        for p in packages if _ % 2 == 0 else packages[::-1]:
            rounds[p].append(timings(modules[p], images))
    print(f"{len(images)} images, {args.rounds} rounds; ms per file (median of the rounds)")
    print(f"{'':22}" + "".join(f"{p:>14}" for p in packages) + ("   ratio" if args.against else ""))
    for name in rounds["phashdb"][0]:
        ms = [statistics.median(r[name] for r in rounds[p]) / len(images) * 1e3 for p in packages]
        ratio = f"{ms[0] / ms[1]:8.2f}" if args.against else ""
        print(f"{name:22}" + "".join(f"{v:14.3f}" for v in ms) + ratio)


if __name__ == "__main__":
    main()
