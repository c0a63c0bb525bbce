"""What the window keys (phashdb.windows) cost a whole check, at 10M stored images.

    python benchmarks/windows_check.py [PHOTO_FOLDER] [--size 10000000] [--queries 12]
        [--keyed 1000000]

Stores --size images as benchmarks/check_10m.py does (random hashes with random 49-byte
descriptors, the photos as 12 MP JPEGs stored as themselves), of which --keyed also hold nine
window keys each (random hashes, a layout-v4 descriptor: what an index of real images holds,
whose stored keys a check searches). Then, taking turns in one run, three times over, medians:
a whole `Index.check` of a 12 MP JPEG with the window keys (the default) and without them, as
an index before them checks (phash.window_keys off: the query has none to search; the stored
keys' search answering nothing: the stored images hold none). Prints times and the ratio, the
figure, and the index's files' bytes.

Runs of Dec 7 (2 cores shared with another job; load 1-3): with one search of every stored key
up to the reach, 26.9 -> 37.9 ms at 2M (1.41x) and 49.7 -> 83.8 ms at 10M (1.69x); with every
key searched within the threshold and the wide keys alone up to the reach (their own tables,
wide_keys.bin), 33.0 -> 35.7 ms at 2M (1.08x) and 51.4 -> 52.1 ms at 10M (1.01x).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
from pathlib import Path

import numpy as np
from check_10m import store
from query_keys_cost import camera_jpegs
from search_10m import hash_set, timed

import phashdb
from phashdb import descriptor, windows
from phashdb import phash as hashing


def window_key_bytes(count: int, rng) -> np.ndarray:
    """Nine window keys for each of `count` images, as a layout-v4 descriptor stores them after
    its head (`count` rows of 9 * descriptor.COMPACT_SIZE bytes): each key's name byte, a random
    pHash (below 2**63) and random quality and thumbnail bytes. Made as arrays: a key at a
    time took minutes at a million images."""
    names = [descriptor.COMPACT[n] for n in windows.NAMES[1:]]  # KEYS' order
    out = rng.integers(0, 256, (count, len(names), descriptor.COMPACT_SIZE), dtype=np.uint8)
    out[:, :, 0] = names
    out[:, :, 1] &= 0x7F
    return out.reshape(count, -1)


def keyed_descriptors(folder: Path, count: int, rng) -> None:
    """Gives the first `count` stored random images nine window keys each (random hashes and
    compared bytes, in layout v4), written straight into the SQLite file."""
    db = sqlite3.connect(folder / "index.sqlite3")
    rows = db.execute("SELECT seq FROM images ORDER BY seq LIMIT ?", (count,)).fetchall()
    head = rng.integers(0, 256, descriptor.STORED_SIZE, dtype=np.uint8).tobytes()
    for lo in range(0, len(rows), 100_000):
        part = rows[lo : lo + 100_000]
        keys = window_key_bytes(len(part), rng)
        batch = [(head + keys[k].tobytes(), seq) for k, (seq,) in enumerate(part)]
        db.executemany("UPDATE images SET descriptor = ? WHERE seq = ?", batch)
        db.commit()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--keyed", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(13)
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = camera_jpegs(args.folders, args.queries, tmp)
        pictures = [phashdb.read_image(p) for p in jpegs]
        folder = Path(tmp) / "index"
        seconds = store(folder, hash_set("uniform", args.size, rng), jpegs, pictures)
        keyed_descriptors(folder, args.keyed, rng)
        real = hashing.window_keys
        times = {"without windows": [], "with windows": []}
        with phashdb.open(folder) as index:
            index.check(jpegs[0])  # the key tables built once
            keys = index.store.search_keys
            nothing = keys(np.array([], np.uint64), 0)
            for r in range(3):
                for p in jpegs:
                    for label in times if r % 2 == 0 else list(times)[::-1]:
                        on = label == "with windows"
                        hashing.window_keys = real if on else (lambda grey, whole: [])
                        index.store.search_keys = keys if on else (lambda *a, **k: nothing)
                        times[label].append(timed(index.check, p))
            index.store.search_keys = keys
        hashing.window_keys = real
        sizes = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    a, b = (statistics.median(times[k]) for k in times)
    print(f"{args.size:,} stored ({args.keyed:,} with nine window keys; stored in {seconds:.0f} s): "
          f"a whole Index.check of a 12 MP JPEG without windows {a:.1f} ms, with them {b:.1f} ms: "
          f"ratio {b / a:.3f} (load {os.getloadavg()[0]:.2f}); files {sizes}")  # fmt: skip


if __name__ == "__main__":
    main()
