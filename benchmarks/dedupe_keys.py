"""How many framed copies `dedupe` groups with their original now that the query keys are
stored (descriptor layout v3), against what `check` finds and against the keys left out.

    python benchmarks/dedupe_keys.py FOLDER

Every photo under FOLDER (the team's corpus: shared/photos/build.sh) is stored with its copy in
a 5% frame (benchmarks/beyond_edits.py's "frame 5%", JPEG q85), all in one embedded index.
Prints: copies a check names the original for; copies `dedupe` groups with their original, with
the keys stored and with them cut off (layout v2's rows: what dedupe did before); images with a
stored key; and groups holding two distinct originals (false links), with and without keys.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time

from accuracy import find_photos, short, upright_rgb
from beyond_edits import as_jpeg, framed

import phashdb
from phashdb import descriptor


def grouped(groups, originals: set) -> tuple[int, int, list]:
    """Copies in their original's group; groups of two or more distinct originals; the links
    between two photos' families (false links)."""
    found, mixed, across = 0, 0, []
    for group in groups:
        ids = {i.id for i in group.images}
        mixed += len(ids & originals) > 1
        across += [p for p in group.pairs if p[0].split("|")[0] != p[1].split("|")[0]]
        found += sum(id.split("|")[0] in ids for id in ids - originals)
    return found, mixed, across


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args()
    photos = find_photos(args.folders)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with phashdb.open(f"{tmp}/index") as index:
            originals = set()
            for path in photos:
                name = short(path)
                originals.add(name)
                index.add(path, id=name, keep_duplicate=True)
                copy = as_jpeg(framed(upright_rgb(path)))
                index.add(copy, id=f"{name}|frame 5%", keep_duplicate=True)
            checked = sum(
                name in [m.id for m in index.check(path, id=f"{name}|frame 5%").matches]
                for path, name in ((p, short(p)) for p in photos)
            )
            keyed = sum(len(d) > descriptor.STORED_SIZE for d in index.descriptors().values())
            now = grouped(index.dedupe(), originals)
        db = sqlite3.connect(f"{tmp}/index/index.sqlite3")
        db.execute("UPDATE images SET descriptor = substr(descriptor, 1, ?)",
                   (descriptor.STORED_SIZE,))  # fmt: skip
        db.commit()
        db.close()
        with phashdb.open(f"{tmp}/index") as index:
            before = grouped(index.dedupe(), originals)
    n = len(photos)
    print(f"{n} photos, each with a copy in a 5% frame ({time.perf_counter() - started:.0f} s)")
    print(f"check names the original: {checked}/{n}")
    print(f"dedupe groups it, keys stored: {now[0]}/{n}; keys cut off: {before[0]}/{n}")
    print(f"images with a stored key: {keyed}/{2 * n}")
    print(f"groups of two distinct originals: keys stored {now[1]}, keys cut off {before[1]}")
    print(
        f"links between two photos' families: keys stored {len(now[2])}, cut off {len(before[2])}"
    )
    for a, b, d in sorted(set(now[2]) ^ set(before[2])):
        print(f"  only {'with' if (a, b, d) in now[2] else 'without'} the keys: {a} -- {b} ({d})")


if __name__ == "__main__":
    main()
