"""A dedupe after changes, from the kept links (phashdb.group_cache), against a search of
everything: the same groups, and the time of each, on a copy of an embedded index.

    python benchmarks/dedupe_changes.py INDEX_FOLDER [--work /tmp/copy] [--seed 7]

Copies INDEX_FOLDER (never written), keeps its groups, then makes one change after another,
each in its own `phashdb.open`: remove 20 images, add 10 of them back, store 1 image again
with another's hash and descriptor (a file overwritten by another picture), mark 3 pairs not
duplicates, nothing. After each, `index.dedupe()` (everything searched) and
`group_cache.dedupe` (what changed searched) in the same process, imports already paid;
exits non-zero if their groups differ.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import phashdb
from phashdb import group_cache


def step(work: Path, name: str, change) -> bool:
    with phashdb.open(work) as index:
        change(index)
    with phashdb.open(work) as index:
        t = time.perf_counter()
        full = index.dedupe()
        took_full = time.perf_counter() - t
        t = time.perf_counter()
        kept = group_cache.dedupe(index)
        took_kept = time.perf_counter() - t
    same = kept == full
    print(
        f"  {name:30} same groups: {same!s:5} ({len(full)} groups)   everything searched "
        f"{took_full:.3f} s, what changed {took_kept:.3f} s ({took_full / took_kept:.1f}x)"
    )
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="phashdb-changes-")) / "index"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.index, work)
    rnd = random.Random(args.seed)
    with phashdb.open(work) as index:
        group_cache.dedupe(index)
        ids = sorted(index.store.hashes()[0].tolist())
    gone = rnd.sample(ids, min(20, len(ids) // 4))
    left = [i for i in ids if i not in gone]

    def overwrite(index):
        a, b = rnd.sample(left, 2)
        other = index.get(b)
        index.store.put([replace(index.get(a), hash=other.hash, descriptor=other.descriptor)])

    def decide(index):
        groups = [g for g in index.dedupe() if len(g.images) >= 3][:3]
        index.mark_not_duplicates([(g.images[0].id, g.images[1].id) for g in groups])

    load = os.getloadavg()
    print(f"{args.index}: {len(ids)} images, load {load[0]:.2f} (1 min)")
    changes = {
        f"remove {len(gone)}": lambda index: [index.remove(i) for i in gone],
        f"add {len(gone) // 2} back": lambda index: [
            index.add(i, keep_duplicate=True) for i in gone[: len(gone) // 2]
        ],
        "overwrite 1": overwrite,
        "decide 3 pairs": decide,
        "nothing": lambda index: None,
    }
    same = [step(work, name, change) for name, change in changes.items()]
    shutil.rmtree(work, ignore_errors=True)
    if not all(same):
        raise SystemExit("the groups differ")


if __name__ == "__main__":
    main()
