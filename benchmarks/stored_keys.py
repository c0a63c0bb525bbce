"""Stored keys of transparent sources (phashdb.renderings) as the library makes and searches
them: the exports found, and the false matches among every row against every other image's
keys, on the corpus hashed by benchmarks/beyond_hash.py (benchmarks/accuracy.py --beyond).

    python benchmarks/stored_keys.py HASHED.npz [--below 8 16 32 64 256]

The keys are the library's own (read_image(original).keys named in renderings.NAMES); a check
searches them with the query as-is within the threshold (a small source's wide keys,
confirm.WIDE_KEYS, up to the reach, confirmed strictly beyond the threshold) and the second
stage confirms against the key's descriptor (Index.check, matching.by_keys), and so does a
dedupe (grouping). The rows "wide keys confirmed at (L, G)" loosen or tighten the wide keys'
confirmation (score <= L, thumbnails within G grey levels). `--below
Q`: keys stored only for sources whose picture on white has quality under Q (the restriction
phash._flatten makes at LOW_QUALITY for the hash itself); 256: every transparent source.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from beyond_hash import KIND_OF_EDIT
from beyond_match import REACH, Rows, T, popcount, scores
from beyond_pairs import originals
from PIL import Image

from phashdb import confirm, descriptor
from phashdb.descriptor import quality
from phashdb.phash import read_image
from phashdb.renderings import NAMES, SMALL_NAMES

LIMIT = confirm.SCORE_LIMIT
WIDE = confirm.WIDE["on black, small"]  # a small source's renderings': (score, greys)


def library_keys(paths) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, np.ndarray]:
    """(image of each key, key hashes, key descriptors, key names, quality on white per
    image) of the originals at `paths`, as the library stores them."""
    img_of, hs, ds, names = [], [], [], []
    white = np.full(len(paths), 255)
    for i, path in enumerate(paths):
        with Image.open(path) as probe:
            if not probe.has_transparency_data:
                continue
            on_white = Image.new("RGBA", probe.size, (255, 255, 255, 255))
            on_white.alpha_composite(probe.convert("RGBA"))
            grey = on_white.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
            white[i] = quality(np.asarray(grey, dtype=np.float64))
        picture = read_image(str(path))
        for key in picture.keys:
            if key.name in NAMES or key.name in SMALL_NAMES.values():
                img_of.append(i)
                hs.append(key.hash)
                ds.append(np.frombuffer(key.descriptor, np.uint8))
                names.append(key.name)
    ds = np.array(ds).reshape(-1, descriptor.SIZE)
    return np.array(img_of, np.int64), np.array(hs, np.uint64), ds, names, white


def by_keys(
    rows: Rows, qi: np.ndarray, kh: np.ndarray, kd: np.ndarray, limit: float = LIMIT,
    radius: int = T, wide: np.ndarray | bool = False, strict: tuple = WIDE,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(candidate, confirmed) of query rows `qi` as-is against keys (one per pair) within
    `radius`, confirmed when the second stage's score is at most `limit` (the library's:
    the threshold and SCORE_LIMIT); a `wide` key (confirm.WIDE_KEYS) up to the reach,
    confirmed beyond `radius` at a score of at most `strict`[0] with thumbnails within
    `strict`[1] grey levels (the library's: confirm.WIDE)."""
    d = popcount(rows.h[qi, 0] ^ kh)
    cand = d <= np.where(wide, max(radius, REACH), radius)
    shows, score = scores(rows.d[qi, 0], kd)
    greys = np.abs(rows.d[qi, 0, 33:].astype(np.int16) - kd[..., 33:]).max(axis=-1)
    near = (d <= radius) | ((score <= strict[0]) & (greys <= strict[1]))
    return cand, cand & shows & (score <= limit) & near


def today(rows: Rows, qi: np.ndarray, si: np.ndarray) -> np.ndarray:
    """Confirmed by the library before stored keys: the default and the query's own keys."""
    ok = rows.default(qi, si)[1]
    for k in range(len(rows.keys)):
        ok |= rows.query_key(qi, si, k)[1]
    return ok


def main(path: str, below: list[int]) -> None:
    z = dict(np.load(path))
    rows = Rows(z)
    edit, image = z["edit"], z["image"]
    names = [str(n) for n in z["edit_names"]]
    orig = originals(z)
    img_of, kh, kd, knames, white = library_keys([str(p) for p in z["paths"]])
    print(f"{len(z['paths'])} originals, {int((white < 255).sum())} transparent, "
          f"{len(kh)} keys ({dict(zip(*np.unique(knames, return_counts=True)))})")  # fmt: skip
    q = np.nonzero(edit > 0)[0]
    kind = np.array([KIND_OF_EDIT.get(names[e], "") for e in edit[q]])
    shows = rows.d[q, 0, 32] >= descriptor.LOW_QUALITY
    base = today(rows, q, orig[image[q]])
    # every row against every key of another image (candidates first, in numpy chunks)
    fq, fk = [], []
    for lo in range(0, len(edit), 2000):
        part = np.arange(lo, min(lo + 2000, len(edit)))
        a, b = np.nonzero(popcount(rows.h[part, 0][:, None] ^ kh[None, :]) <= REACH)
        fq.append(part[a])
        fk.append(b)
    fq, fk = np.concatenate(fq), np.concatenate(fk)
    other = image[fq] != img_of[fk]
    fq, fk = fq[other], fk[other]
    print("| keys stored, confirmed | keys | " + " | ".join(
        f"{n} (of {int(((edit[q] == names.index(n)) & shows).sum())})"
        for n in ("flattened on white", "flattened on black", "alpha dropped")
    ) + " | other copies newly found | false matches | of them new |")  # fmt: skip
    print("|---" * 7 + "|")
    every = np.ones(len(kh), bool)
    wide = np.isin(knames, list(SMALL_NAMES.values()))
    no = np.zeros(len(kh), bool)
    rules = [(f"wired; wide keys to {REACH}, confirmed at {WIDE}", every, LIMIT, T, wide)]
    rules += [("every key within the threshold (before wide keys)", every, LIMIT, T, no)]
    rules += [
        (f"wide keys confirmed at {w}", every, LIMIT, T, wide, w)
        for w in ((20, 6), (0, 12), (0, 16), (-20, 16), (-30, 255), (-35, 255), (20, 255))
    ]
    rules += [(f"quality on white < {b}", white[img_of] < b, LIMIT, T, wide) for b in below]
    rules += [(f"key quality >= {b}", kd[:, 32] >= b, LIMIT, T, wide) for b in (16, 32, 64)]
    rules += [(f"every key, score <= {b}", every, b, T, wide) for b in (0, -20, -40)]
    rules += [(f"every key, score <= 20, within {REACH}", every, LIMIT, REACH, no)]
    for label, use, limit, radius, wide_on, *strict in rules:
        strict = strict[0] if strict else WIDE
        found = base.copy()
        for k in np.nonzero(use)[0]:
            mine = np.nonzero(image[q] == img_of[k])[0]
            found[mine] |= by_keys(
                rows, q[mine], kh[k], kd[k][None, :], limit, radius, wide_on[k], strict
            )[1]
        cells = []
        for n in ("flattened on white", "flattened on black", "alpha dropped"):
            m = (edit[q] == names.index(n)) & shows
            cells.append(f"{base[m].mean():.1%} -> {found[m].mean():.1%}")
        newly = int((found & ~base & (kind != "transparent")).sum())
        ok = by_keys(rows, fq, kh[fk], kd[fk], limit, radius, wide_on[fk], strict)[1] & use[fk]
        pairs = sorted({(a, orig[img_of[k]]) for a, k in zip(fq[ok].tolist(), fk[ok].tolist())})
        a, b = (np.array(x, dtype=np.int64) for x in zip(*pairs)) if pairs else (q[:0], q[:0])
        new = int((~today(rows, a, b)).sum())
        print(f"| {label} | {int(use.sum())} | " + " | ".join(cells)
              + f" | {newly} | {len(pairs)} | {new} |")  # fmt: skip
        if label == rules[0][0]:
            kinds = Counter(f"{z['kinds'][image[x]]}~{z['kinds'][image[y]]}" for x, y in pairs)
            by_edit = Counter(names[edit[x]] for x, _ in pairs)
            held = f"{dict(kinds.most_common(6))}; query edits {dict(by_edit.most_common(5))}"
            # the same query already matched by today's rule to the other image's black export
            black = np.full(image.max() + 1, -1)
            at = edit == names.index("flattened on black")
            black[image[at]] = np.nonzero(at)[0]
            has = black[image[b]] >= 0
            twice = int(today(rows, a[has], black[image[b[has]]]).sum())
    print(
        f"false matches of every key, by kinds: {held}; of them, {twice} whose query "
        "today matches the other image's stored black export (the default's false match)"
    )
    blank = (~shows) & (kind == "transparent")
    print(f"exports showing nothing: {int(blank.sum())}, matched by stored keys: "
          f"{int((found & ~base & blank).sum())}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed")
    parser.add_argument("--below", type=int, nargs="+", default=[64, 32])
    args = parser.parse_args()
    main(args.hashed, args.below)
