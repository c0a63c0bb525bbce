"""What the window keys (phashdb.windows) cost an index on disk: the same images stored with
their window keys and without them, each in a new embedded index, bytes an image.

    python benchmarks/windows_bytes.py FOLDER [FOLDER ...]

Every image under the folders is read once (phashdb.source, as ingest reads it); the records are
stored twice, as read and with the window keys taken out of their descriptors (every other key
kept), then each index is closed and its folder's files counted (the SQLite database after
VACUUM, the band tables' and the key tables' files, made by a first check). Prints both, the ratio, and how many window keys an image
keeps.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import phashdb
from phashdb import descriptor
from phashdb.ingest import find_images
from phashdb.source import read_source


def without_windows(record):
    """`record` with the window keys taken out of its descriptor."""
    d = record.descriptor
    keys = tuple(k for k in descriptor.stored_keys(d) if k.name not in descriptor.STRICT)
    return replace(
        record, descriptor=descriptor.pack(descriptor.stored_variants(record.hash, d), keys)
    )


def stored_bytes(records: list, folder: Path) -> int:
    """The bytes of an embedded index at `folder` holding `records`."""
    with phashdb.open(folder) as index:
        index.insert(records)
        index.check(records[0].id)  # builds the derived files (band tables, key tables)
    db = sqlite3.connect(folder / "index.sqlite3")
    db.execute("VACUUM")
    db.close()
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args()
    paths = find_images(args.folders)
    records = [read_source(str(p)).image for p in paths]
    records = [r for r in records if r.descriptor is not None]
    windows = sum(
        k.name in descriptor.STRICT for r in records for k in descriptor.stored_keys(r.descriptor)
    )
    with tempfile.TemporaryDirectory() as tmp:
        a = stored_bytes([without_windows(r) for r in records], Path(tmp) / "without")
        b = stored_bytes(records, Path(tmp) / "with")
    n = len(records)
    print(f"{n} images, {windows / n:.2f} window keys an image: without windows {a / n:,.0f} "
          f"bytes an image, with them {b / n:,.0f}: ratio {b / a:.3f} (load {os.getloadavg()[0]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
