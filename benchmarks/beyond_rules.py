"""Stricter confirmations measured: for each candidate rule of the second stage, the false
matches it removes among the >= 10^8 pairs of distinct images of benchmarks/accuracy.py --beyond
and the true copies it loses, per edit kind, photos and other images apart, and on the 27-edit
photo benchmark (benchmarks/accuracy.py without --beyond).

    python benchmarks/beyond_rules.py HASHED.npz [--photos PHOTOS --photos-hashed FILE.npz]

HASHED.npz is the cache of benchmarks/accuracy.py --beyond (--hashed); PHOTOS the folder of
shared/photos/build.sh, hashed once with the 27 edits into FILE.npz (made if missing). Every rule
is the default's verdict (phashdb.confirm.judge: the as-is query within the threshold, or
any variant within its radius and confirmed) with one more condition on each (pair, variant).
"""

from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool

import numpy as np
from beyond_hash import KIND_OF_EDIT
from beyond_match import REACH, Rows, T, candidate_pairs, popcount
from beyond_pairs import originals, queried_and_stored

from phashdb import confirm, descriptor

LOW = descriptor.LOW_QUALITY
WEIGHT = confirm.CORRELATION_WEIGHT


def features(qh, qd, sh, sd) -> dict:
    """Per (pair, variant): pHash distance, 256-bit distance, thumbnail correlation, both
    qualities, and whether the variant reaches the stored image (queries (n, 8), stored (n,))."""
    d = popcount(qh ^ sh[:, None]).astype(np.int64)
    bits = popcount(qd[:, :, :32] ^ sd[:, None, :32]).sum(-1, dtype=np.int64)
    ta, tb = qd[:, :, 33:].astype(np.float64), sd[:, None, 33:].astype(np.float64)
    ac, bc = ta - ta.mean(-1, keepdims=True), tb - tb.mean(-1, keepdims=True)
    norm = np.sqrt((ac * ac).sum(-1) * (bc * bc).sum(-1))
    corr = np.divide((ac * bc).sum(-1), norm, out=np.zeros(norm.shape), where=norm > 0)
    qa = qd[:, :, 32].astype(np.int64)
    qb = np.broadcast_to(sd[:, None, 32], qa.shape).astype(np.int64)
    reach = np.concatenate([d[:, :1] <= REACH, d[:, 1:] <= T], axis=1)
    thumbs_agree = np.abs(ta - tb).max(-1) <= 4
    score = bits - WEIGHT * corr
    return {"d": d, "bits": bits, "corr": corr, "score": score, "qa": qa, "qb": qb,
            "reach": reach, "thumbs_agree": thumbs_agree}  # fmt: skip


def verdict(f: dict, rule) -> np.ndarray:
    """Per pair: whether any variant is a match under the default with `rule`'s condition."""
    shows = (f["qa"] >= LOW) & (f["qb"] >= LOW)
    ok = f["reach"] & shows & (f["score"] <= confirm.SCORE_LIMIT)
    ok[:, 0] |= (f["d"][:, 0] <= T) & shows[:, 0]
    return (ok & rule(f)).any(axis=1)


def _as_before(f):
    """Before issue 24: two near-constant images matched when their thumbnails agreed."""
    blank = (f["qa"] < LOW) & (f["qb"] < LOW) & f["reach"] & f["thumbs_agree"]
    return np.ones(f["d"].shape, bool), blank


def _plain_confirmed(limit):
    def rule(f):
        return ~((f["d"] <= T) & (f["score"] > limit))

    return rule


def _low_detail(quality, limit):
    def rule(f):
        return (np.minimum(f["qa"], f["qb"]) >= quality) | (f["score"] <= limit)

    return rule


def _bits_or_correlation(bits, corr):
    def rule(f):
        return (f["bits"] <= bits) | (f["corr"] >= corr)

    return rule


# (label, rule): the first is the library's default (since issue 24: near-constant never).
RULES = [
    ("before: blank pages matched by thumbnail", None),
    ("default (near-constant never matched)", lambda f: np.ones(f["d"].shape, bool)),
    ("+ plain threshold needs score <= 60", _plain_confirmed(60)),
    ("+ plain threshold needs score <= 20", _plain_confirmed(20)),
    ("+ quality < 48 needs score <= 0", _low_detail(48, 0)),
    ("+ quality < 64 needs score <= 0", _low_detail(64, 0)),
    ("+ quality < 96 needs score <= 0", _low_detail(96, 0)),
    ("+ any score <= 0", lambda f: f["score"] <= 0),
    ("+ bits <= 72 or correlation >= 0.95", _bits_or_correlation(72, 0.95)),
    ("+ bits <= 56 or correlation >= 0.97", _bits_or_correlation(56, 0.97)),
]


def judged(f: dict, rule) -> np.ndarray:
    if rule is None:
        _, blank = _as_before(f)
        return verdict(f, lambda f: np.ones(f["d"].shape, bool)) | blank.any(axis=1)
    return verdict(f, rule)


def beyond_pairs(z) -> tuple[dict, dict, int]:
    """Features of the default's candidate pairs of distinct images (every row against every
    other image's STORED_EDITS rows), of every copy against its own original (each with its
    "rows": query and stored row numbers), and the pairs counted."""
    rows = Rows(z)
    edit, image = z["edit"], z["image"]
    q, stored, pairs = queried_and_stored(z)
    qi, si = candidate_pairs(rows, q, stored, "default")
    other = image[qi] != image[si]
    qi, si = qi[other], si[other]
    orig = originals(z)
    tq = np.nonzero(edit > 0)[0]
    h, d = z["h"], z["d"]
    false = features(h[qi], d[qi], h[si, 0], d[si, 0])
    true = features(h[tq], d[tq], h[orig[image[tq]], 0], d[orig[image[tq]], 0])
    true["group"] = _groups(z, tq)
    false["rows"], true["rows"] = (qi, si), (tq, orig[image[tq]])
    return false, true, pairs


def _groups(z, tq) -> np.ndarray:
    """Each copy's column: photo or other, and its kind of edit."""
    names = [str(n) for n in z["edit_names"]]
    photo = z["kinds"][z["image"][tq]] == "photo"
    kind = [KIND_OF_EDIT[names[e]] for e in z["edit"][tq]]
    return np.array([f"{'photos' if p else 'others'} {k}" for p, k in zip(photo, kind)])


def photo_features(folder: str, cache: str, workers: int) -> dict:
    """Features of each of the 27 edits of every photo under `folder` against its original,
    hashed once into the .npz file `cache`."""
    from accuracy import find_photos, hash_photo

    if not os.path.exists(cache):
        with Pool(workers) as pool:
            done = pool.map(hash_photo, find_photos([folder]), chunksize=2)
        h = np.array([[hs for hs, _ in row] for row in done], np.uint64)
        d = np.array([[np.frombuffer(b"".join(ds), np.uint8).reshape(8, -1) for _, ds in row]
                      for row in done])  # fmt: skip
        np.savez(cache, h=h, d=d)
    z = np.load(cache)
    h, d, copies = z["h"], z["d"], z["h"].shape[1] - 1
    return features(h[:, 1:].reshape(-1, 8), d[:, 1:].reshape(-1, 8, descriptor.SIZE),
                    np.repeat(h[:, 0, 0], copies), np.repeat(d[:, 0, 0], copies, axis=0))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed", help="the .npz of benchmarks/accuracy.py --beyond --hashed")
    parser.add_argument("--photos", help="the photo folder: its 27-edit benchmark too")
    parser.add_argument("--photos-hashed", help="with --photos: its .npz (made if missing)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.photos and not args.photos_hashed:
        parser.error("--photos needs --photos-hashed FILE.npz (where its hashes are kept)")
    false, true, pairs = beyond_pairs(dict(np.load(args.hashed)))
    photos = photo_features(args.photos, args.photos_hashed, args.workers) if args.photos else None
    columns = sorted(set(true["group"]))
    base_true = judged(true, RULES[1][1])
    base_photos = judged(photos, RULES[1][1]) if photos is not None else None
    print(f"{pairs:,} pairs of distinct images; copies found by the default: "
          f"{int(base_true.sum())} of {len(base_true)}")  # fmt: skip
    print("\n| rule | false matches | copies lost: " + " | ".join(columns) + " | 27-edit photos |")
    print("|---|---|" + "---|" * (len(columns) + 1))
    for label, rule in RULES:
        ok = judged(true, rule)
        lost = [int((base_true & ~ok)[true["group"] == c].sum()) for c in columns]
        found = judged(photos, rule) if photos is not None else None
        p = "-" if found is None else f"{int((base_photos & ~found).sum())} of {len(found)}"
        print(f"| {label} | {int(judged(false, rule).sum())} | " + " | ".join(map(str, lost))
              + f" | {p} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
