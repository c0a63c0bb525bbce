"""What phashdb.png saves over Pillow's PNG decoder, per PNG, in one process.

    python benchmarks/png_decode.py FOLDER [--runs 5]

For every PNG under FOLDER, alternating file by file: decoding alone (the file's bytes to a
Pillow image) and `read_image` as a whole, with phashdb.png and with Pillow's decoder (the
fast path turned off), the CPU time of this thread, the minimum over --runs passes per file.
Also checks that both give the same hash, size and descriptor for every file.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from PIL import Image

from phashdb import phash, png

FAST = png.decoded


def pillow_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.load()


def fast_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        if FAST(img) is None:
            img.load()


def read(data: bytes, fast: bool):
    png.decoded = FAST if fast else (lambda img: None)
    try:
        return phash.read_image(data)
    finally:
        png.decoded = FAST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    files = {p: p.read_bytes() for p in sorted(args.folder.rglob("*.png"))}
    for path, data in files.items():
        ours, theirs = read(data, True), read(data, False)
        same = (ours.hash, ours.width, ours.height, ours.descriptor)
        if same != (theirs.hash, theirs.width, theirs.height, theirs.descriptor):
            raise SystemExit(f"{path}: not the same with phashdb.png")
    ways = {
        "decode, Pillow": pillow_decode, "decode, phashdb.png": fast_decode,
        "read_image, Pillow": lambda d: read(d, False), "read_image, phashdb.png": lambda d: read(d, True),
    }  # fmt: skip
    best: dict[str, dict[Path, float]] = {name: {} for name in ways}
    for _ in range(args.runs):
        for path, data in files.items():
            for name, way in ways.items():
                start = time.thread_time()
                way(data)
                spent = time.thread_time() - start
                best[name][path] = min(best[name].get(path, spent), spent)
    taken = sum(FAST(Image.open(io.BytesIO(d))) is not None for d in files.values())
    print(f"{len(files)} PNGs, {taken} decoded by phashdb.png; CPU ms per PNG (min of {args.runs})")
    for name, times in best.items():
        print(f"  {name:24s} {sum(times.values()) / len(files) * 1000:6.2f}")
    for what in ("decode", "read_image"):
        ratio = sum(best[f"{what}, phashdb.png"].values()) / sum(best[f"{what}, Pillow"].values())
        print(f"  {what}: phashdb.png / Pillow = {ratio:.2f}")


if __name__ == "__main__":
    main()
