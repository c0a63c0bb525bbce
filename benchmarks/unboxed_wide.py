"""The unboxed key searched up to the reach (confirm.WIDE) measured on rows that hold it
(benchmarks/beyond_unbox.py's WITH_UNBOXED.npz): the boxed copies found, and the false matches
among every row against every other image's stored rows (accuracy_beyond.STORED_EDITS: the
113.8M pairs of docs/accuracy-beyond-photos.md), both ways (the query's key against the stored
hash, the stored image's key against the query's hash), as a check and a batch pass search it.

    python benchmarks/unboxed_wide.py WITH_UNBOXED.npz [--rules="-30,24 -20,24 ..."]

A rule "L,G": beyond the threshold, confirmed at a score of at most L with every cell of the
4x4 thumbnails within G grey levels; within it as today. "new" false matches are those the
library (today's default and query keys within the threshold) does not make already.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from accuracy_beyond import queried_and_stored
from beyond_match import REACH, Rows, T, popcount, scores
from stored_keys import today

from phashdb import confirm


def greys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The largest difference between the 4x4 thumbnails' cells of descriptor rows."""
    return np.abs(a[:, 33:].astype(np.int16) - b[:, 33:]).max(axis=1)


def wide(rows: Rows, k: int, a: np.ndarray, b: np.ndarray, rule: tuple) -> np.ndarray:
    """Confirmed beyond the threshold by rows `a`'s key k against rows `b` (pairs)."""
    kh, kd, kv = rows.kh[a, k], rows.kd[a, k], rows.kv[a, k]
    d = popcount(kh ^ rows.h[b, 0])
    shows, score = scores(kd, rows.d[b, 0])
    strict = (score <= rule[0]) & (greys(kd, rows.d[b, 0]) <= rule[1])
    return kv & (d > T) & (d <= REACH) & shows & strict


def near_pairs(rows: Rows, k: int, a: np.ndarray, b: np.ndarray, image: np.ndarray):
    """(a row, b row) of distinct images with a's key k beyond the threshold, within the
    reach of b's hash."""
    a = a[rows.kv[a, k]]
    out_a, out_b = [], []
    for lo in range(0, len(a), 500):
        part = a[lo : lo + 500]
        d = popcount(rows.kh[part, k][:, None] ^ rows.h[b, 0][None, :])
        i, j = np.nonzero((d > T) & (d <= REACH))
        out_a.append(part[i])
        out_b.append(b[j])
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    other = image[a] != image[b]
    return a[other], b[other]


def main(path: str, rules: list[tuple]) -> None:
    z = dict(np.load(path))
    rows = Rows(z)
    k = rows.keys.index("unboxed")
    edit, image, kinds = z["edit"], z["image"], z["kinds"]
    names = [str(n) for n in z["edit_names"]]
    orig = np.full(image.max() + 1, -1)
    orig[image[edit == 0]] = np.nonzero(edit == 0)[0]
    q, stored, pairs = queried_and_stored(z)
    qa, qb = near_pairs(rows, k, q, stored, image)  # query key -> stored hash
    sa, sb = near_pairs(rows, k, stored, q, image)  # stored key -> query hash
    copies = np.nonzero(edit > 0)[0]
    mine = orig[image[copies]]
    base = today(rows, copies, mine)
    print(f"{pairs:,} pairs of distinct images; library: {confirm.WIDE['unboxed']}")
    for rule in rules:
        ok_q, ok_s = wide(rows, k, qa, qb, rule), wide(rows, k, sa, sb, rule)
        found = set(zip(qa[ok_q].tolist(), qb[ok_q].tolist()))
        found |= set(zip(sb[ok_s].tolist(), sa[ok_s].tolist()))
        a, b = (np.array(x, np.int64) for x in zip(*found)) if found else (q[:0], q[:0])
        new = ~today(rows, a, b)
        kinds_new = Counter(f"{kinds[image[x]]}~{kinds[image[y]]}" for x, y in zip(a[new], b[new]))
        more = wide(rows, k, copies, mine, rule) | wide(rows, k, mine, copies, rule)
        cells = []
        for en in ("black box 1/4", "white box 1/4", "sticker"):
            for photo in (False, True):
                m = (edit[copies] == names.index(en)) & ((kinds[image[copies]] == "photo") == photo)
                who = "photos" if photo else "others"
                cells.append(f"{en} {who} {base[m].mean():.1%} -> {(base | more)[m].mean():.1%}")
        print(f"| {rule} | false {len(found)}, new {int(new.sum())} {dict(kinds_new)} | "
              + " | ".join(cells) + f" | copies newly found {int((more & ~base).sum())} |")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed")
    parser.add_argument("--rules", default="-30,24 -30,40 -25,24 -20,24 -30,255 -40,255")
    args = parser.parse_args()
    main(args.hashed, [tuple(int(x) for x in r.split(",")) for r in args.rules.split()])
