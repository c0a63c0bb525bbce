"""What the second stage and the flipped/rotated variants cost a check, at 10M stored images.

    python benchmarks/check_10m.py [PHOTO_FOLDER] [--size 10000000] [--queries 24]

Stores --size images (hashes as in search_10m.py, uniform or clustered, each with a random
49-byte descriptor, written straight into the embedded index's SQLite file), plus --queries real photos (12-megapixel JPEGs, as benchmarks/hashing.py
makes them) stored as themselves. Then, taking turns in one run, three times over, medians:

- the search part of a check (the as-is hash up to the reach, the 7 other variants at the
  threshold, candidates' records read and confirmed) for hashes near stored ones (read_image of
  the photos, and search_10m's near queries with their photo's variants);
- a whole `Index.check` of a 12 MP JPEG file;

each for the index opened with the second stage off (reach 0, no variants: what a check did
before it), with the default, and with reach 14.
Prints times and ratios; the ratio is the figure.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from accuracy import find_photos
from PIL import Image as PILImage
from search_10m import hash_set, timed

import phashdb
from phashdb.records import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--sets", default="uniform,clustered")
    args = parser.parse_args()
    rng = np.random.default_rng(13)
    photos = find_photos(args.folders)[: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = []
        for n, photo in enumerate(photos):
            with PILImage.open(photo) as img:
                jpegs.append(Path(tmp) / f"{n:03d}.jpg")
                img.convert("RGB").resize((4000, 3000), PILImage.LANCZOS).save(
                    jpegs[-1], quality=90
                )
        pictures = [phashdb.read_image(p) for p in jpegs]
        for kind in args.sets.split(","):
            hashes = hash_set(kind, args.size, rng)
            folder = Path(tmp) / kind
            load = store(folder, hashes, jpegs, pictures)
            queries = near_queries(hashes, pictures, rng, args.queries)
            compare(folder, queries, jpegs, f"{kind}: {args.size:,}", load)


def store(folder: Path, hashes: np.ndarray, jpegs: list[Path], pictures: list) -> float:
    """Stores `hashes` with random descriptors and the photos as themselves: the seconds."""
    t = time.perf_counter()
    with phashdb.open(folder) as index:
        index.add_hashes(zip((f"i{i}" for i in range(len(hashes))), hashes.tolist()))
    # Random descriptors for all of them in one statement: storing 10M records one by
    # one through Index.insert would take most of an hour here.
    db = sqlite3.connect(folder / "index.sqlite3")
    db.execute("UPDATE images SET descriptor = randomblob(49)")
    db.commit()
    db.close()
    with phashdb.open(folder) as index:
        index.insert(
            Image(str(p), pic.hash, descriptor=pic.descriptor) for p, pic in zip(jpegs, pictures)
        )
        index.query(0, 0)  # builds the band tables
    return time.perf_counter() - t


def near_queries(hashes: np.ndarray, pictures: list, rng, count: int) -> list[tuple]:
    """The photos' own, then queries near stored hashes, each with a real photo's variants
    and descriptor: (Image, variants)."""
    near = hashes[rng.integers(0, len(hashes), count)]
    flips = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    near = (near ^ (flips & np.uint64(0x0101_0001_0100_0001))).tolist()
    queries = [(Image("q", pic.hash, descriptor=pic.descriptor), pic.variants) for pic in pictures]
    queries += [
        (
            Image("q", h, descriptor=pic.descriptor),
            (pic.variants[0]._replace(hash=h), *pic.variants[1:]),
        )
        for h, pic in zip(near, pictures)
    ]
    return queries


def compare(folder: Path, queries: list, jpegs: list[Path], stored: str, load: float) -> None:
    """The three indexes taking turns, query by query; prints their medians."""
    with (
        phashdb.open(folder, reach=0, variants=False) as old,
        phashdb.open(folder) as default,
        phashdb.open(folder, reach=14) as near14,
    ):
        r = old.threshold
        indexes = {"second stage off": old, "default": default, "reach 14": near14}
        search = {name: [] for name in indexes}
        whole = {name: [] for name in indexes}
        for _ in range(3):  # all take turns, query by query
            for q, v in queries:
                for name, index in indexes.items():
                    search[name].append(timed(index._confirmed, q, v, r))
            for p in jpegs:
                for name, index in indexes.items():
                    whole[name].append(timed(index.check, p))
        found = [len(default._confirmed(q, v, r)) for q, v in queries]
    print(
        f"\n{stored} stored images with descriptors (stored in "
        f"{load:.0f} s); medians of {len(queries)} queries and {len(jpegs)} "
        f"checks x 3; matches a query {np.mean(found):.1f}"
    )
    base_s, base_w = (
        statistics.median(search["second stage off"]),
        statistics.median(whole["second stage off"]),
    )
    for name in indexes:
        s_ms, w_ms = statistics.median(search[name]), statistics.median(whole[name])
        print(
            f"  {name:17} search part {s_ms:8.3f} ms ({s_ms / base_s:6.2f}x)   "
            f"whole Index.check of a 12 MP JPEG {w_ms:7.1f} ms ({w_ms / base_w:5.2f}x)"
        )


if __name__ == "__main__":
    main()
