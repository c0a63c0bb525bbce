"""Hashing throughput on camera-sized JPEGs: phashdb against imagehash on full decodes, one
core; then `phashdb ingest` on all cores against one core.

    python benchmarks/hashing.py [PHOTO_FOLDER] [--count 24]

Makes --count 12-megapixel JPEGs (4000x3000, quality 90) from real photos (scikit-image's
bundled ones, or those under PHOTO_FOLDER, e.g. the corpus of ../shared/photos/build.sh),
then in one run: images/s of `phashdb.hash_image(path)` and of
`imagehash.phash(Image.open(path))` (what imagehash users run: a full decode), and of
`phashdb ingest -j 1` and `-j 2` on the same folder (a fresh index each time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imagehash
from accuracy import find_photos
from PIL import Image

import phashdb
from phashdb import phash as hashing


def rate(fn, paths) -> float:
    t = time.perf_counter()
    for p in paths:
        fn(p)
    return len(paths) / (time.perf_counter() - t)


def ingest_rate(folder: Path, workers: int, scratch: Path) -> float:
    index = scratch / f"index-{workers}"
    phashdb_cli = Path(sys.executable).parent / "phashdb"
    t = time.perf_counter()
    subprocess.run(
        [str(phashdb_cli), "--db", str(index), "ingest", "-j", str(workers), str(folder)],
        check=True,
        capture_output=True,
    )
    return len(os.listdir(folder)) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--names", type=int, default=10, help="names per JPEG for ingest")
    args = parser.parse_args()
    photos = find_photos(args.folders)[: args.count]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "jpegs"
        folder.mkdir()
        for n, photo in enumerate(photos):
            with Image.open(photo) as img:
                img.convert("RGB").resize((4000, 3000), Image.LANCZOS).save(
                    folder / f"{n:03d}.jpg", quality=90
                )
        paths = sorted(folder.iterdir())
        rate(phashdb.hash_image, paths[:2])  # warm the file cache and imports
        # The same without the second stage's descriptor and variants (what hashing was before
        # them: read_image looks its `variants` up in the module at each call), taking turns.
        runs, bare_runs = [], []
        with_variants = hashing.variants
        for _ in range(3):
            runs.append(rate(phashdb.hash_image, paths))
            hashing.variants = lambda pixels: ()
            try:
                bare_runs.append(rate(phashdb.hash_image, paths))
            finally:
                hashing.variants = with_variants
        ours, bare = statistics.median(runs), statistics.median(bare_runs)
        theirs = rate(lambda p: imagehash.phash(Image.open(p)), paths)
        print(f"{len(paths)} JPEGs of 4000x3000 (12 MP) from real photos, one core:")
        print(f"  phashdb.hash_image        {ours:7.1f} images/s")
        print(f"  imagehash.phash (full)    {theirs:7.1f} images/s")
        print(f"  ratio                     {ours / theirs:7.2f}x")
        print(
            f"  without the descriptor    {bare:7.1f} images/s: the descriptor and variants "
            f"make hashing {bare / ours:.3f}x as long"
        )
        # Ingest gets more files (each JPEG under --names names) so that starting the worker
        # processes, once per command, weighs as little as it does on a real collection.
        many = tmp / "many"
        many.mkdir()
        for k in range(args.names):
            for p in paths:
                os.symlink(p, many / f"{k}-{p.name}")
        one, two = ingest_rate(many, 1, tmp), ingest_rate(many, 2, tmp)
        print(
            f"phashdb ingest of {args.names * len(paths)} files, whole command: -j 1 {one:.1f} images/s,"
            f" -j 2 {two:.1f} images/s, ratio {two / one:.2f}x"
        )


if __name__ == "__main__":
    main()
