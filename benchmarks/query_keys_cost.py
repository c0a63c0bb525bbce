"""What a query's other keys (phashdb.backdrop, phashdb.trim) cost hashing: read_image of
12-megapixel JPEGs with them and without them, taking turns in one run, medians; the ratio is
the figure.

    python benchmarks/query_keys_cost.py [PHOTO_FOLDER] [--count 8] [--rounds 3]

A photo has no black backdrop and no plain frame, so a check pays only for looking (a small
copy of the decoded greyscale image and its border); a query that has such a key adds one
search at the threshold, like one of the seven flipped and rotated variants.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from accuracy import find_photos
from PIL import Image

from phashdb import phash as hashing


def arguments(doc: str) -> argparse.Namespace:
    """The folders of photos, how many, and how many rounds (this script's, colour_cost's)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def camera_jpegs(folders: list, count: int, tmp: str) -> list[Path]:
    """`count` of the photos in `folders` upscaled to 12 megapixels, saved as JPEGs in `tmp`."""
    files = []
    for k, path in enumerate(find_photos(folders)[:count]):
        with Image.open(path) as img:
            big = img.convert("RGB").resize((4000, 3000), Image.LANCZOS)
        files.append(Path(tmp) / f"{k}.jpg")
        big.save(files[-1], quality=90)
    return files


def main() -> None:
    args = arguments(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        files = camera_jpegs(args.folders, args.count, tmp)
        real = hashing.backdrop_variant, hashing.trimmed_variant
        times = {"without": [], "with": []}
        for _ in range(args.rounds):
            for label, spent in times.items():
                none = (lambda grey: None, lambda grey: None)
                hashing.backdrop_variant, hashing.trimmed_variant = (
                    real if label == "with" else none
                )
                start = time.perf_counter()
                for f in files:
                    hashing.read_image(f)
                spent.append((time.perf_counter() - start) / len(files))
        hashing.backdrop_variant, hashing.trimmed_variant = real
    a, b = (statistics.median(times[k]) for k in ("without", "with"))
    print(f"read_image of a 12 MP JPEG: without the query's other keys {a * 1e3:.1f} ms, "
          f"with it {b * 1e3:.1f} ms: ratio {b / a:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
