"""What the window keys (phashdb.windows) cost hashing: read_image with them and without them,
taking turns in one process, CPU time of this thread, medians; the ratio is the figure.

    python benchmarks/windows_cost.py PHOTO_FOLDER [--count 8] [--rounds 5]

Three sets: `count` of the photos upscaled to 12-megapixel JPEGs (a camera's), the photos as
they are (JPEGs and PNGs of 0.1-5 megapixels), and the same photos reduced to 640 pixels (a
web image's size). The windows are read from the decoded greyscale picture reduced by a whole
factor to about windows.WORK_SIDE pixels, so their cost hardly grows with the picture's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from accuracy import find_photos
from PIL import Image
from query_keys_cost import arguments, camera_jpegs

from phashdb import phash as hashing


def small_copies(paths: list, tmp: str) -> list[Path]:
    """Each photo reduced to 640 pixels on its longer side, saved as a JPEG (q85) in `tmp`."""
    out = []
    for k, path in enumerate(paths):
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((640, 640))
        out.append(Path(tmp) / f"small{k}.jpg")
        img.save(out[-1], quality=85)
    return out


def timed(files: list, rounds: int) -> tuple[float, float]:
    """(median CPU seconds a file without windows, with them), the two taking turns."""
    real = hashing.window_keys
    times = {"without": [], "with": []}
    for r in range(rounds):
        order = list(times) if r % 2 == 0 else list(times)[::-1]
        for label in order:
            hashing.window_keys = real if label == "with" else (lambda grey, whole: [])
            start = time.thread_time()
            for f in files:
                hashing.read_image(f)
            times[label].append((time.thread_time() - start) / len(files))
    hashing.window_keys = real
    return statistics.median(times["without"]), statistics.median(times["with"])


def main() -> None:
    args = arguments(__doc__)
    photos = find_photos(args.folders)
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "12 MP JPEG": camera_jpegs(args.folders, args.count, tmp),
            "the photos as they are": photos,
            "the photos at 640 px (JPEG)": small_copies(photos, tmp),
        }
        for name, files in sets.items():
            for f in files[:2]:
                hashing.read_image(f)  # warm up
            a, b = timed(files, args.rounds)
            print(f"read_image, {name} ({len(files)} files): without windows {a * 1e3:.2f} ms, "
                  f"with {b * 1e3:.2f} ms: ratio {b / a:.3f} (load {os.getloadavg()[0]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
