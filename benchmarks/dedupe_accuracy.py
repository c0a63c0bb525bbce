"""How many planted copies `dedupe` groups with their original, against what `check` finds.

    python benchmarks/dedupe_accuracy.py FOLDER [--edits NAME,NAME,...]

Every photo under FOLDER (the team's corpus: shared/photos/build.sh) is stored with a copy per
edit (benchmarks/accuracy.py's TRANSFORMS; default the issue's: JPEG q50, resize 50%, mirror,
crop 5%, caption box, brightness +20%, rotate 90), all in one embedded index. Prints per edit:
copies a check of the copy (with everything else stored) names its original for; copies
`dedupe` groups with their original now (phashdb.grouping: as a check judges), and as before
(the plain threshold: reach 0, no variants); and groups holding two distinct originals.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

from accuracy import TRANSFORMS, find_photos, short, upright_rgb

import phashdb

EDITS = (
    "jpeg q50", "resize 50%", "mirror", "crop 5%", "caption box", "brightness +20%", "rotate 90°",
)  # fmt: skip


def grouped(groups, originals: dict) -> tuple[Counter, list]:
    """Per edit, the copies in their original's group; and groups of two distinct originals."""
    found, mixed = Counter(), []
    for group in groups:
        ids = {i.id for i in group.images}
        if len(ids & set(originals)) > 1:
            # the links between two photos' families: what joined them
            across = [(a, b, d) for a, b, d in group.pairs if a.split("|")[0] != b.split("|")[0]]
            mixed.append((sorted(ids & set(originals)), across))
        for id in ids - set(originals):
            photo, edit = id.split("|")
            found[edit] += photo in ids
    return found, mixed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--edits", default=",".join(EDITS))
    args = parser.parse_args()
    edits = args.edits.split(",")
    photos = find_photos(args.folders)
    with tempfile.TemporaryDirectory() as tmp, phashdb.open(tmp) as index:
        originals = {}
        for path in photos:
            originals[short(path)] = path
            index.add(path, id=short(path), keep_duplicate=True)
            img = upright_rgb(path)
            for edit in edits:
                index.add(TRANSFORMS[edit](img), id=f"{short(path)}|{edit}", keep_duplicate=True)
        checked = Counter()
        for path in photos:
            img = upright_rgb(path)
            for edit in edits:
                copy = f"{short(path)}|{edit}"
                matches = index.check(TRANSFORMS[edit](img), id=copy).matches
                checked[edit] += short(path) in {m.id for m in matches}
        t = time.perf_counter()
        now, mixed_now = grouped(index.dedupe(), originals)
        t_now = time.perf_counter() - t
        said = {  # what a check of each original in such a group names among the originals
            name: [
                f"{m.id} ({m.variant}, {m.distance})"
                for m in index.check(originals[name], id=name).matches
                if m.id in originals and m.id != name
            ]
            for names, _ in mixed_now
            for name in names
        }
        plain = phashdb.Index(index.store, variants=False)
        t = time.perf_counter()
        before, mixed_before = grouped(plain.dedupe(reach=0), originals)
        t_before = time.perf_counter() - t
    n = len(photos)
    print(
        f"{n} photos, {n * len(edits)} planted copies, threshold {index.threshold}, "
        f"reach {index.reach}"
    )
    print(f"{'edit':<18} {'check':>7} {'dedupe now':>11} {'before':>7}")
    for edit in edits:
        print(f"{edit:<18} {checked[edit]:>7} {now[edit]:>11} {before[edit]:>7}")
    total = lambda c: sum(c[e] for e in edits)
    print(f"{'all':<18} {total(checked):>7} {total(now):>11} {total(before):>7}")
    print(f"groups of distinct originals: now {len(mixed_now)}, before {len(mixed_before)}")
    for names, across in mixed_now:
        print("  joined by:", "; ".join(f"{a} ~ {b} ({d})" for a, b, d in across))
        print("  now:", "; ".join(f"{n}: check names {said[n] or 'none'}" for n in names))
    print(f"dedupe time: now {t_now:.2f} s, before {t_before:.2f} s")


if __name__ == "__main__":
    main()
