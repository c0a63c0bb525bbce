"""What the values of benchmarks/beyond_colour.py would cost hashing: read_image of 12-megapixel
JPEGs as today (draft mode "L"), decoded in draft mode "YCbCr" instead, and with each value
computed from that decode, taking turns in one run; the ratios to today are the figures.
Times are the process's CPU time, less disturbed than the wall clock by other work on a shared
machine.

    python benchmarks/colour_cost.py [PHOTO_FOLDER] [--count 8] [--rounds 3]
"""

from __future__ import annotations

import statistics
import tempfile
import time

from beyond_colour import chroma_of, detail_of
from query_keys_cost import arguments, camera_jpegs

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
    args = arguments(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        files = camera_jpegs(args.folders, args.count, tmp)
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
