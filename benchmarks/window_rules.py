"""Stored windows confirmed strictly: a re-framed copy shows the stored image's window pixel for
pixel (only re-encoded and resized), so its descriptor should agree with the window's far more
closely than an edited copy's does with its original. How many re-framed copies the stored
windows find, and how many false matches they add, at stricter confirmations than the
default's (score <= 20).

    python benchmarks/window_rules.py HASHED.npz [--radius 8]

HASHED.npz is benchmarks/beyond_hash.py's (accuracy.py --beyond --hashed). Pairs as in
benchmarks/beyond_pairs.py; the windows as in benchmarks/beyond_keys.py.
"""

from __future__ import annotations

import argparse

import numpy as np
from beyond_hash import KIND_OF_EDIT
from beyond_match import Rows, candidate_pairs, popcount, scores
from beyond_pairs import groups, originals, queried_and_stored, upper_bound

from phashdb import descriptor

STORED_WINDOWS = ("centre 16:9", "centre 16:10", "centre 4:3", "centre 5:4", "centre 1:1",
                  "centre 80%", "corner tl 90%", "corner tr 90%", "corner bl 90%", "corner br 90%")  # fmt: skip
# (score at most, every thumbnail cell within): the default's, then stricter ones
RULES = ((20, 255), (0, 255), (-20, 255), (-40, 255), (-40, 16), (-40, 8), (-50, 8), (-60, 8),
         (-50, 4), (-60, 4))  # fmt: skip


def judged(rows: Rows, qi, si, w: int, radius: int):
    """(candidate, score, largest cell difference) of the query's whole picture against the
    stored image's window w."""
    qd, sd = rows.d[qi, 0], rows.wd[si, w]
    cand = rows.wv[si, w] & (popcount(rows.h[qi, 0] ^ rows.wh[si, w]) <= radius)
    shows, score = scores(qd, sd)
    cells = np.abs(qd[:, 33:].astype(int) - sd[:, 33:].astype(int)).max(axis=1)
    return cand & shows, score, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed")
    parser.add_argument("--radius", type=int, default=8)
    args = parser.parse_args()
    z = np.load(args.hashed, allow_pickle=False)
    rows = Rows(z)
    names = [str(n) for n in z["edit_names"]]
    wins = [rows.windows.index(w) for w in STORED_WINDOWS]
    edit, image = z["edit"], z["image"]
    q = np.nonzero(edit > 0)[0]
    own = originals(z)[image[q]]
    base = rows.default(q, own)[1]
    for k in range(len(rows.keys)):
        base |= rows.query_key(q, own, k)[1]
    found = {r: np.zeros(len(q), bool) for r in RULES}
    for w in wins:
        cand, score, cells = judged(rows, q, own, w, args.radius)
        for r in RULES:
            found[r] |= cand & (score <= r[0]) & (cells <= r[1])
    # false matches: every row against the other images' stored rows
    allq, stored, pairs = queried_and_stored(z)
    fq, fs = candidate_pairs(rows, allq, stored, "default")
    other = image[fq] != image[fs]
    fq, fs = fq[other], fs[other]
    ok = rows.default(fq, fs)[1]
    default_false = set(zip(fq[ok].tolist(), fs[ok].tolist()))
    new_false = {r: set() for r in RULES}
    per_window = {r: {} for r in RULES}
    for w in wins:
        wq, ws = candidate_pairs(rows, allq, stored, "stored", w, radius=args.radius)
        other = image[wq] != image[ws]
        wq, ws = wq[other], ws[other]
        cand, score, cells = judged(rows, wq, ws, w, args.radius)
        for r in RULES:
            m = cand & (score <= r[0]) & (cells <= r[1])
            got = set(zip(wq[m].tolist(), ws[m].tolist())) - default_false
            per_window[r][rows.windows[w]] = len(got)
            new_false[r] |= got
    print(
        f"{pairs:,} pairs of distinct images; the default's false matches: {len(default_false):,}"
    )
    reframed = [e for e in range(1, len(names)) if KIND_OF_EDIT[names[e]] == "re-framed"]
    head = " ".join(f"{names[e][-9:]:>10}" for e in reframed)
    print(
        f"{'rule (score, cells)':22} {'group':13} {'default':>8} {head}   all re-framed   new false"
    )
    for r in RULES:
        for g, mask in groups(z).items():
            m = mask[q]
            cells = []
            for e in reframed:
                sel = m & (edit[q] == e)
                cells.append(f"{(base | found[r])[sel].mean():10.1%}")
            sel = m & np.isin(edit[q], reframed)
            print(f"{str(r):22} {g:13} {base[sel].mean():8.1%} {' '.join(cells)}   "
                  f"{(base | found[r])[sel].mean():6.1%}"
                  + (f"          {len(new_false[r]):,} (95% bound {upper_bound(len(default_false) + len(new_false[r]), pairs):.1e})"
                     if g == "photos" else ""))  # fmt: skip
        print(f"{'':22} new false by window: {per_window[r]}")
    print(
        f"(lowest score of a copy's window match; cells <= {descriptor.SIZE - 33} thumbnail cells)"
    )


if __name__ == "__main__":
    main()
