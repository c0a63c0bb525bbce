"""What the values of benchmarks/beyond_colour.py would cost hashing: read_image of 12-megapixel
JPEGs as today (draft mode "L"), decoded in draft mode "YCbCr" instead, and with each value
computed from that decode, taking turns in one run; the ratios to today are the figures.
Times are the process's CPU time, less disturbed than the wall clock by other work on a shared
machine.

    python benchmarks/colour_cost.py [PHOTO_FOLDER] [--count 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from accuracy import find_photos
from beyond_colour import chroma_of, detail_of
from PIL import Image

from phashdb import phash as hashing

_picture = hashing._picture


def _with(*values):
    def picture(img, size, grey, want):
        for value in values:
            value(img if value is chroma_of else grey)
        return _picture(img, size, grey, want)

    return picture


WAYS = {
    "today": ("L", _picture),
    "decoded in YCbCr": ("YCbCr", _picture),
    "+ chroma 8x8": ("YCbCr", _with(chroma_of)),
    "+ detail 16x16 x 4": ("YCbCr", _with(detail_of)),
    "+ both": ("YCbCr", _with(chroma_of, detail_of)),
    "detail only, decoded in L": ("L", _with(detail_of)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k, path in enumerate(find_photos(args.folders)[: args.count]):
            with Image.open(path) as img:
                big = img.convert("RGB").resize((4000, 3000), Image.LANCZOS)
            files.append(Path(tmp) / f"{k}.jpg")
            big.save(files[-1], quality=90)
        times = {k: [] for k in WAYS}
        for _ in range(args.rounds):
            for label, (mode, picture) in WAYS.items():
                hashing.DRAFT_MODE, hashing._picture = mode, picture
                start = time.process_time()
                for f in files:
                    hashing.read_image(f)
                times[label].append((time.process_time() - start) / len(files))
    today, fastest = statistics.median(times["today"]), min(times["today"])
    for label, spent in times.items():
        t, f = statistics.median(spent), min(spent)
        print(f"read_image of a 12 MP JPEG, {label}: median {t * 1e3:.1f} ms, ratio "
              f"{t / today:.3f}; fastest {f * 1e3:.1f} ms, ratio {f / fastest:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
