"""Beyond photos in one run: per edit, photos and other images apart, the copies found by the
plain pHash at the default threshold, by the default's search and second stage without keys
(before issue 24's keys), and by the library's default as it is now with every key it stores
and searches (Index.check's verdict: benchmarks/beyond_library.py); the false matches and the
pairs counted for each, the rate per pair with its 95% upper bound; what each part adds.

    python benchmarks/accuracy.py --beyond OTHERS PHOTOS --hashed FILE.npz [--workers 2]
        [--records FILE.npz]

FILE.npz: the rows of benchmarks/beyond_hash.py (made if missing). --records: where the
library's records of the rows are kept (default: beside it, "-library.npz"; made if missing
by reading every image and copy again). The last lines compare these figures with the
separate scripts' rules on the same rows (benchmarks/beyond_agree.py).
"""

from __future__ import annotations

import os
from tempfile import TemporaryDirectory

import numpy as np
from beyond_agree import agreement, methods
from beyond_hash import KIND_OF_EDIT, corpus, hash_corpus
from beyond_library import NO_KEYS, PARTS, check_rows, false_pairs, own_found, records
from beyond_pairs import STORED_EDITS, counts, groups, queried_and_stored, upper_bound, where

import phashdb
from phashdb import descriptor

COLUMNS = ("plain pHash", "default without keys", "default now (Index.check)")
EDIT_KINDS = ("earlier", "overlay", "re-framed", "transparent")


def columns(checked) -> dict[str, list[set]]:
    """Per column, the stored rows each row matches."""
    no_keys = [set().union(*(c[p] for p in NO_KEYS)) for c in checked.conf]
    return dict(zip(COLUMNS, (checked.plain, no_keys, checked.verdict)))


def counted(z) -> np.ndarray:
    """The copies to be found: every copy but an export that shows nothing (near-constant as
    the library reads it: `z["quality"]`)."""
    names = [str(n) for n in z["edit_names"]]
    transparent = np.array([KIND_OF_EDIT.get(names[e]) == "transparent" for e in z["edit"]])
    blank = z["quality"] < descriptor.LOW_QUALITY
    return (z["edit"] > 0) & ~(transparent & blank)


def print_found(z, found: dict[str, np.ndarray]) -> None:
    """Per group, per edit and per kind of edit: the share of copies each column finds."""
    names = [str(n) for n in z["edit_names"]]
    kind = np.array([KIND_OF_EDIT.get(names[e], "") for e in z["edit"]])
    edit, wanted = z["edit"], counted(z)
    for gname, g in groups(z).items():
        print(f"\n{gname}: copies found (their own original matched)\n")
        print("| edit | kind | copies | " + " | ".join(COLUMNS) + " |")
        print("|---|---|---|" + "---|" * len(COLUMNS))
        sets = [(n, KIND_OF_EDIT[n], edit == e) for e, n in enumerate(names) if e]
        sets += [(f"**{k}**", "", kind == k) for k in EDIT_KINDS]
        sets += [("**all edits**", "", edit > 0)]
        for label, k, m in sets:
            m = m & g & wanted
            if m.any():
                cells = " | ".join(f"{found[c][m].mean():.1%}" for c in COLUMNS)
                print(f"| {label} | {k} | {int(m.sum())} | {cells} |")


def print_false(z, false: dict[str, set], pairs: int) -> None:
    """The false matches of each column among `pairs` pairs of distinct images."""
    photo = groups(z)["photos"]
    print(f"\nfalse matches among {pairs:,} pairs of distinct images\n")
    print("| | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    rows = {
        "false matches": lambda f: f"{len(f):,}",
        "of them between two photos": lambda f: f"{sum(photo[a] and photo[b] for a, b in f):,}",
        "rate per pair": lambda f: f"{len(f) / pairs:.1e}",
        "95% upper bound": lambda f: f"{upper_bound(len(f), pairs):.1e}",
    }
    for label, cell in rows.items():
        print(f"| {label} | " + " | ".join(cell(false[c]) for c in COLUMNS) + " |")
    print(f"\n{COLUMNS[1]}: {where(z, false[COLUMNS[1]])}")
    print(f"made by the keys only: {len(false[COLUMNS[2]] - false[COLUMNS[1]])}: "
          f"{where(z, false[COLUMNS[2]] - false[COLUMNS[1]])}")  # fmt: skip


def print_parts(z, checked) -> None:
    """What each part (each search of a check) finds at all and confirms, of the copies
    (photos / other images) and of the false matches; "only it": what no other part does."""
    wanted, photo = counted(z), groups(z)["photos"]
    cand = {p: np.array(checked.cand_own[p]) & wanted for p in PARTS}
    conf = {p: own_found(z, [c[p] for c in checked.conf]) & wanted for p in PARTS}
    fcand = checked.cand_false
    fconf = {p: false_pairs(z, [c[p] for c in checked.conf]) for p in PARTS}
    print("\nwhat each part adds: copies (photos / other images), then false matches; found "
          "at all (candidate), confirmed, and confirmed by no other part (only it)\n")  # fmt: skip
    print("| part | copies: candidate | confirmed | only it | false: candidate | confirmed "
          "| only it |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")

    def split(m):
        return f"{int((m & photo).sum())} / {int((m & ~photo).sum())}"

    for p in PARTS:
        others = [q for q in PARTS if q != p]
        only = conf[p] & ~np.logical_or.reduce([conf[q] for q in others])
        f_only = fconf[p] - set().union(*(fconf[q] for q in others))
        print(f"| {p} | {split(cand[p])} | {split(conf[p])} | {split(only)} | {fcand[p]:,} "
              f"| {len(fconf[p]):,} | {len(f_only):,} |")  # fmt: skip


def print_kinds(z, found: dict[str, np.ndarray]) -> None:
    """Each kind of image: its overlaid, re-framed and transparent-export copies found,
    without keys -> now."""
    names = [str(n) for n in z["edit_names"]]
    kind = np.array([KIND_OF_EDIT.get(names[e], "") for e in z["edit"]])
    image_kind, wanted = z["kinds"][z["image"]], counted(z)
    print(f"\nper kind of image: {COLUMNS[1]} -> {COLUMNS[2]}")
    for k in np.unique(z["kinds"]):
        cells = []
        for e in EDIT_KINDS[1:]:
            m = (image_kind == k) & (kind == e) & wanted
            if m.any():
                cells.append(f"{e} {found[COLUMNS[1]][m].mean():.1%} -> "
                             f"{found[COLUMNS[2]][m].mean():.1%}")  # fmt: skip
        print(f"  {k:11} " + "   ".join(cells))


def print_reverse(z, sets: dict[str, list[set]], conf: list[dict]) -> None:
    """The other way round: each transparent original checked against its own export
    flattened on black, stored (those showing a picture): found by each column, and by the
    query's "on black" key (never measured by a copy against its original)."""
    names = [str(n) for n in z["edit_names"]]
    at = z["edit"] == names.index("flattened on black")
    black = np.full(z["image"].max() + 1, -1)
    black[z["image"][at]] = np.nonzero(at)[0]
    mine = black[z["image"]]
    sources = np.nonzero((z["edit"] == 0) & (mine >= 0))[0]
    sources = sources[z["quality"][mine[sources]] >= descriptor.LOW_QUALITY]
    cells = [f"{c} {sum(mine[r] in sets[c][r] for r in sources)}" for c in COLUMNS]
    by_key = sum(mine[r] in conf[r]["query's on black"] for r in sources)
    print(f"\ntransparent originals checked against their own stored black export (of "
          f"{len(sources)}): found by {', '.join(cells)}; by the query's on black key {by_key}")  # fmt: skip


def main(others: str, photos: str, hashed: str | None, workers: int, kept: str | None) -> None:
    path = hashed or os.path.join(os.path.dirname(os.path.abspath(others)), "hashed.npz")
    if not os.path.exists(path):
        hash_corpus(corpus(photos, others), path, workers)
    z = dict(np.load(path))
    rows = records(z, others, photos, kept or os.path.splitext(path)[0] + "-library.npz", workers)
    z["quality"] = np.array([r.descriptor[32] for r in rows])
    _, stored, pairs = queried_and_stored(z)
    with TemporaryDirectory() as home, phashdb.open(home) as index:
        checked = check_rows(index, z, rows, stored)
        setting = (f"embedded index, threshold {index.threshold}, reach {index.reach}, flips "
                   f"and rotations {'searched' if index.variants else 'not searched'}")  # fmt: skip
    print(f"\n{len(z['paths'])} originals ({counts(z['kinds'])}), "
          f"{len(rows):,} rows (originals and copies); {pairs:,} pairs of distinct images (every "
          f"row against every other image's {', '.join(STORED_EDITS)}); {setting}; descriptor "
          f"{descriptor.DESCRIPTOR_VERSION}")  # fmt: skip
    sets = columns(checked)
    found = {c: own_found(z, s) for c, s in sets.items()}
    print_found(z, found)
    false = {c: false_pairs(z, s) for c, s in sets.items()}
    print_false(z, false, pairs)
    print_parts(z, checked)
    print_kinds(z, found)
    print_reverse(z, sets, checked.conf)
    blank = (z["edit"] > 0) & ~counted(z)
    print(f"\nexports that show nothing (near-constant, left out above): {int(blank.sum())}; "
          f"matched to their source now: {int((found[COLUMNS[2]] & blank).sum())}")  # fmt: skip
    print(f"rows whose parts' union is not Index.check's verdict: {checked.differ}")
    agreement(z, rows, checked, found, false)
    methods(z, checked, counted(z))
