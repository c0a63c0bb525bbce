"""What the window keys (phashdb.windows) cost an index on disk: the same images stored with
their window keys and without them, each in a new embedded index, bytes an image.

    python benchmarks/windows_bytes.py FOLDER [FOLDER ...] [--scale N [--ids FORMAT]]

Every image under the folders is read once (phashdb.source, as ingest reads it); the records are
stored twice, as read and with the window keys taken out of their descriptors (every other key
kept), then each index is closed and its folder's files counted (the SQLite database after
VACUUM, the band tables' and the key tables' files, made by a first check). Prints both, the
ratio, and how many window keys an image keeps.

With --scale N each index holds N records made of the images' in turn (at_scale: hashes of
their own, ids and paths of the images' length, or --ids formatted with a number, e.g.
"/home/alice/Pictures/IMG_{:08d}.jpg"), as a collection of N images would: the band and key
tables' bytes grow with N, the SQLite file's overhead does not. An image's bytes are mostly its
descriptor and its id (kept as id, path, in the id index and in the band tables' ids), so the
ratio falls as the ids grow.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

import phashdb
from phashdb import confirm, descriptor
from phashdb.ingest import find_images
from phashdb.source import read_source


def without_windows(record):
    """`record` with the window keys taken out of its descriptor."""
    d = record.descriptor
    keys = tuple(k for k in descriptor.stored_keys(d) if k.name not in confirm.STRICT)
    return replace(
        record, descriptor=descriptor.pack(descriptor.stored_variants(record.hash, d), keys)
    )


def at_scale(records: list, count: int, rng, ids: str | None = None) -> list:
    """`count` records made of `records` in turn, as a collection of that size would hold
    them: each with a hash of its own (random), its keys' hashes random too (their descriptors
    as read), an id and path its original's with a number of its own before the file name, or
    `ids` formatted with its number."""
    out = []
    for i in range(count):
        r = records[i % len(records)]
        keys = tuple(
            k._replace(hash=int(rng.integers(0, 2**63)))
            for k in descriptor.stored_keys(r.descriptor)
        )
        found = descriptor.stored_variants(r.hash, r.descriptor)
        head, tail = os.path.split(r.path)
        path = ids.format(i) if ids else os.path.join(head, f"{i:08d}-{tail}")
        out.append(replace(r, id=path, path=path, hash=int(rng.integers(0, 2**63)),
                           descriptor=descriptor.pack(found, keys)))  # fmt: skip
    return out


def stored_bytes(records: list, folder: Path, probe: str) -> int:
    """The bytes of an embedded index at `folder` holding `records` (image file `probe`
    checked once against it)."""
    with phashdb.open(folder) as index:
        for lo in range(0, len(records), 100_000):
            index.insert(records[lo : lo + 100_000])
        index.check(probe)  # builds the derived files (band tables, key tables)
    db = sqlite3.connect(folder / "index.sqlite3")
    db.execute("VACUUM")
    db.close()
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--scale", type=int, default=0)
    parser.add_argument("--ids", help="with --scale: the ids, a format of a number")
    args = parser.parse_args()
    paths = find_images(args.folders)
    records = [read_source(str(p)).image for p in paths]
    records = [r for r in records if r.descriptor is not None]
    if args.scale:
        records = at_scale(records, args.scale, np.random.default_rng(5), args.ids)
    windows = sum(
        k.name in confirm.STRICT for r in records for k in descriptor.stored_keys(r.descriptor)
    )
    with tempfile.TemporaryDirectory() as tmp:
        probe = str(paths[0])
        a = stored_bytes([without_windows(r) for r in records], Path(tmp) / "without", probe)
        b = stored_bytes(records, Path(tmp) / "with", probe)
    n = len(records)
    print(f"{n} images, {windows / n:.2f} window keys an image: without windows {a / n:,.0f} "
          f"bytes an image, with them {b / n:,.0f}: ratio {b / a:.3f} (load {os.getloadavg()[0]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
