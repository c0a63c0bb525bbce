"""The keys' cheap look at the border (phashdb.border) against reducing the whole image.

    python benchmarks/border_check.py FOLDER... [--limit N]

For every image under the folders: the hash, descriptor and keys of phash.read_image with the
border look and without it (phashdb.border.ring answering None: the whole reduction, as before
the look existed), which must be byte-identical; and how many ring pixels the edges' strips
give off the whole reduction, and by how much at most (within border.SPARE, or keys could be
lost). Prints the counts and every image that differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from unittest import mock

import numpy as np
from PIL import Image

from phashdb import backdrop, border, trim
from phashdb.decode import IMAGE_SUFFIXES
from phashdb.errors import ImageError
from phashdb.phash import _greyscale_in_strips, read_image


def images(folders: list[str], limit: int | None):
    found = 0
    for folder in folders:
        for dirpath, _, names in sorted(os.walk(folder)):
            for name in sorted(names):
                if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                    yield os.path.join(dirpath, name)
                    found += 1
                    if limit and found >= limit:
                        return


def record(path: str) -> tuple:
    p = read_image(path)
    return p.hash, p.width, p.height, p.descriptor, tuple(k.name for k in p.keys)


def ring_off(path: str) -> int:
    """The largest difference of a ring pixel read from the strips from the whole reduction."""
    with Image.open(path) as img:
        img.load()
        grey = _greyscale_in_strips(img, path)
    worst = 0
    for side in (backdrop.SIDE, trim.SIDE):
        edge = border.ring(grey, side)
        if edge is None:
            continue
        a = np.asarray(grey.resize(border.reduced_size(grey, side), Image.BOX), dtype=np.int16)
        whole = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        worst = max(worst, int(np.abs(whole - edge).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    counts = {"images": 0, "keyed": 0, "differ": 0, "ring off by 1+": 0, "unreadable": 0}
    worst, took = 0, {"look": 0.0, "whole": 0.0}
    for path in images(args.folders, args.limit):
        try:
            t = time.perf_counter()
            new = record(path)
            took["look"] += time.perf_counter() - t
            with mock.patch.object(border, "ring", lambda grey, side: None):
                with mock.patch.object(trim, "edge_ring", border.ring):
                    with mock.patch.object(backdrop, "ring", border.ring):
                        t = time.perf_counter()
                        old = record(path)
                        took["whole"] += time.perf_counter() - t
            off = ring_off(path)
        except (ImageError, OSError, Image.DecompressionBombError):
            counts["unreadable"] += 1
            continue
        counts["images"] += 1
        counts["keyed"] += bool(old[4])
        counts["ring off by 1+"] += off > 0
        worst = max(worst, off)
        if new != old:
            counts["differ"] += 1
            print(f"DIFFERS {path}: keys {old[4]} -> {new[4]}", flush=True)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()), f"(largest ring difference {worst})")
    print(f"read_image: {took['look']:.2f} s with the border look, {took['whole']:.2f} s without")
    sys.exit(1 if counts["differ"] or worst > border.SPARE else 0)


if __name__ == "__main__":
    main()
