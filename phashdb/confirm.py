"""The second stage's verdicts: whether a stored descriptor (phashdb.descriptor: its bytes, how
they are computed and stored) confirms a candidate the pHash search found, by which rule for
which variant or key, and how far each stored key is searched.

A pair is confirmed by its score (the 256-bit DCT hashes' distance less CORRELATION_WEIGHT
times the 4x4 thumbnails' correlation) at most SCORE_LIMIT, within the threshold (the as-is
hash) or for a variant or key found within its radius; keys with a rule of their own: WIDE
(searched up to the reach), BETWEEN (a rendering on black), STRICT (the windows). A
near-constant image (descriptor.LOW_QUALITY) is never confirmed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .descriptor import KEYS, LOW_QUALITY, SIZE, VARIANTS, core

if TYPE_CHECKING:  # imported where used: opening an index reads this module's constants
    import numpy as np

# Keys searched up to the reach, not the threshold, each confirmed beyond the threshold only
# at a score of at most its WIDE[name][0] with every cell of the two 4x4 thumbnails within
# WIDE[name][1] grey levels (what the score's correlation leaves out: the grey levels
# themselves). Measured on the corpus of docs/accuracy-beyond-photos.md (docs/wide-keys.md):
# - a small source's renderings (an emoji or icon of <= 64 px): its pHash bits are near-ties
#   that any JPEG export flips (8-16 bits at quality 100: a nearly mirror-symmetric figure has
#   half its low DCT coefficients near the median). An export shows the rendering's own grey
#   levels (at most 4 apart in the corpus's JPEG q85 exports; a perfectly symmetric figure's
#   256-bit hash has near-ties too, scoring -14 to -19); two Twemoji of one template, brown
#   and blond hair, scored -33 and -35, 24 apart. No new false match among 8.9M row-key pairs
#   at (0, 6), nor loosened to (20, 6) or (0, 12).
# - the unboxed key (phashdb.unbox): a box over a flat picture moves the filled-in picture's
#   pHash 10-16 bits. No new false match among 113.8M pairs at (-30, 24), nor at (-30, 40);
#   at (-20, 24) 6 (icons under one logo, clipart against emoji).
WIDE = {
    "on black, small": (0, 6), "alpha dropped, small": (0, 6), "unboxed": (-30, 24),
}  # fmt: skip
WIDE_KEYS = frozenset(WIDE)
# A rendering on black shows each pixel's grey times its opacity, the picture on white (the
# source's hash and descriptor, when it keeps this key) that plus white where it is transparent,
# and any export of the source (on black or another colour, or its alpha dropped) each pixel
# between the two. So, cell by cell of the thumbnails, an export lies at most BETWEEN[name][0]
# grey levels below the key and BETWEEN[name][1] above the source's picture. On the corpus of
# docs/accuracy-beyond-photos.md the exports lay within 2 of both; of the key's 994 false
# matches (two icons of one template; their emblems differ) 6 are left at (6, 8); at (6, 6)
# none, but a crop 10% only the key finds is lost ("Bounds of a key on black").
BETWEEN = {"on black": (6, 8)}
# Keys a copy shows pixel for pixel, only resized and re-encoded (phashdb.windows: a re-framed
# or cropped copy shows its window): confirmed only within the threshold, at a correlation of
# the two 4x4 thumbnails of at least STRICT[name][0] with every cell within STRICT[name][1]
# grey levels; the 256-bit hash is not read, so layout v4 stores none for them (COMPACT), and
# the score is -CORRELATION_WEIGHT x the correlation (-80 to -76: ranked with the closest, as
# the 256-bit rule's scores of at most -40 were). On the corpus of
# docs/accuracy-beyond-photos.md no false match among 113.8M pairs at (0.95, 8), and 84.5% of
# the lowest kind of re-framing found (the earlier rule, a score of at most -40 with cells
# within 8: 82.3% on the same windows; benchmarks/window_rules.py).
STRICT = dict.fromkeys(KEYS[7:], (0.95, 8))

# A confirmed match: the 256-bit distance minus 80 times the thumbnails' correlation at most
# this (identical images score -80). Chosen on benchmarks/accuracy.py's 231 photos: of the
# 1.49M pairs of an edited copy (or a photo) and another photo, the closest candidate within
# pHash distance 16, in any of the 8 variants, scored 30.9; at 10 instead of 20, crop 10% would
# fall from 87% to 76% found.
SCORE_LIMIT = 20
CORRELATION_WEIGHT = 80


def confirms(a: bytes, b: bytes) -> tuple[bool, float]:
    """Whether descriptors `a` and `b` show the same picture, and their score. A near-constant
    image is never the same picture as another: it has nothing to tell two blank pages apart."""
    ok, scores = _compare(a, [b])
    return bool(ok[0]), float(scores[0])


def judge(
    variant: str, distance: int, threshold: int, mine: bytes | None, theirs: bytes | None,
    keyed: str = "mine", source: bytes | None = None,
) -> tuple[bool, float | None]:  # fmt: skip
    """Whether a candidate found by a query's `variant` at pHash `distance` is a duplicate, and
    the second stage's score (None when either side has no descriptor). The as-is query within
    the plain `threshold` matches as a plain pHash index says, unless an image is near-constant;
    beyond it, and for every other variant, the descriptors must confirm (a wide key's
    beyond the threshold strictly: WIDE; a window strictly at any distance: STRICT; a key on
    black within bounds: BETWEEN). `keyed`: the side holding the key named `variant`, "mine"
    (a query's key, a stored key a batch pass searches) or "theirs" (a stored key the query
    met); `source`: the stored descriptor of the image whose key it is (None: not known, that
    bound left out)."""
    sources = source if keyed == "mine" else [source]
    return judge_many(variant, [distance], threshold, mine, [theirs], keyed, sources)[0]


def judge_many(
    variant: str, distances, threshold: int, mine: bytes | None, theirs: list,
    keyed: str = "mine", source=None,
) -> list[tuple[bool, float | None]]:  # fmt: skip
    """`judge` of one query against many candidates at once (a check meets hundreds at a
    wide reach): `distances` and `theirs` (descriptors or None) one per candidate, and for
    keys of theirs (`keyed` "theirs") `source` a list too (or None). Stored descriptors of
    either layout are compared by their 49 bytes; a damaged one counts as none."""
    n = len(theirs)
    sources = [source] * n if keyed == "mine" else (source or [None] * n)
    return judge_pairs(variant, distances, threshold, [mine] * n, theirs, keyed, sources)


def judge_pairs(
    variant: str, distances, threshold: int, mines: list, theirs: list,
    keyed: str = "mine", sources: list | None = None,
) -> list[tuple[bool, float | None]]:  # fmt: skip
    """`judge` of many pairs found by queries of one `variant` at once (a dedupe's every
    query): pair k is the query's descriptor `mines[k]` against `theirs[k]` at `distances[k]`,
    the key's image's stored descriptor `sources[k]` (None: not known)."""
    if keyed not in ("mine", "theirs"):
        raise ValueError(f"'keyed' must be 'mine' or 'theirs', got {keyed!r}")
    import numpy as np

    mines, theirs = [core(m) for m in mines], [core(t) for t in theirs]
    distances = np.asarray(distances)
    plain = distances <= threshold if variant == VARIANTS[0][0] else np.zeros(len(theirs), bool)
    # a pair without both descriptors: the plain threshold alone, never a near-constant image
    out = [
        (bool(p) and not (m is not None and flat(m)) and not (t is not None and flat(t)), None)
        for p, m, t in zip(plain, mines, theirs)
    ]
    both = [k for k, (m, t) in enumerate(zip(mines, theirs)) if m is not None and t is not None]
    if not both:
        return out
    mine, table = _table([mines[k] for k in both]), _table([theirs[k] for k in both])
    corr = _correlations(mine, table)
    if variant in WIDE or variant in BETWEEN or variant in STRICT:  # their cells less mine
        greys = table[:, 33:].astype(np.int16) - mine[:, 33:]
    if variant in STRICT:  # a window: pHash and thumbnails alone (no 256-bit hash read)
        least, most = STRICT[variant]
        ok = _shows(mine, table) & (distances[both] <= threshold) & (corr >= least)
        ok &= np.abs(greys).max(axis=1) <= most
        scores = -CORRELATION_WEIGHT * corr
    else:
        ok, scores = _compare_rows(mine, table, corr)
    if variant in WIDE:  # the strict confirmation beyond the threshold
        limit, most = WIDE[variant]
        near = distances[both] <= threshold
        ok &= near | ((scores <= limit) & (np.abs(greys).max(axis=1) <= most))
    if variant in BETWEEN:
        seen = [sources[k] for k in both] if sources else [None] * len(both)
        ok &= _between(BETWEEN[variant], greys, keyed, mine, table, seen)
    plain_ok = plain[both] & (table[:, 32] >= LOW_QUALITY) & (mine[:, 32] >= LOW_QUALITY)
    for k, o, p, sc in zip(both, ok.tolist(), plain_ok.tolist(), scores.tolist()):
        out[k] = (o or p, sc)
    return out


def _between(limits, greys, keyed: str, mine: np.ndarray, table, source: list) -> np.ndarray:
    """Whether each pair lies between a rendering key and its source's picture (BETWEEN):
    `greys` the thumbnails' cells of `table`'s rows less `mine`'s, `source` the key's image's
    stored descriptor for each pair (None where not known)."""
    import numpy as np

    below, above = limits
    ok = (greys if keyed == "theirs" else -greys).max(axis=1) <= below
    seen = [core(s) for s in source]
    known = [k for k, s in enumerate(seen) if s is not None]
    if known:
        export = (table if keyed == "mine" else mine)[known, 33:]
        over = export.astype(np.int16) - _table([seen[k] for k in known])[:, 33:]
        ok[known] &= over.max(axis=1) <= above
    return ok


def key_radius(name: str, threshold: int, reach: int) -> int:
    """How far a stored key named `name` is searched: up to the reach for WIDE_KEYS, else
    within the threshold."""
    return max(threshold, reach) if name in WIDE_KEYS else threshold


def flat(descriptor: bytes) -> bool:
    """Whether the image is near-constant (too little detail for its hash to identify it)."""
    return descriptor[32] < LOW_QUALITY


def _table(descriptors) -> np.ndarray:
    import numpy as np

    return np.frombuffer(b"".join(descriptors), dtype=np.uint8).reshape(-1, SIZE)


def _compare(mine: bytes, theirs) -> tuple[np.ndarray, np.ndarray]:
    """(confirmed, score) of descriptor `mine` against each of `theirs` (a list of descriptors
    or their _table)."""
    import numpy as np

    table = theirs if isinstance(theirs, np.ndarray) else _table([core(t) for t in theirs])
    return _compare_rows(np.frombuffer(core(mine), dtype=np.uint8)[None], table)


def _compare_rows(
    mine: np.ndarray, table: np.ndarray, corr: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(confirmed, score) of each row of descriptors `mine` (a _table, or one row for all)
    against the same row of `table`; `corr`: their _correlations, if already computed."""
    import numpy as np

    bits = np.bitwise_count(table[:, :32] ^ mine[:, :32]).sum(axis=1, dtype=np.int64)
    corr = _correlations(mine, table) if corr is None else corr
    scores = bits - CORRELATION_WEIGHT * corr
    return _shows(mine, table) & (scores <= SCORE_LIMIT), scores


def _shows(mine: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Whether both descriptors of each pair show a picture (neither near-constant)."""
    return (table[:, 32] >= LOW_QUALITY) & (mine[:, 32] >= LOW_QUALITY)


def _correlations(mine: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The correlation of each pair's 4x4 thumbnails (0 when either is flat)."""
    import numpy as np

    a, b = table[:, 33:].astype(np.float64), mine[:, 33:].astype(np.float64)
    # the means as sums of 16 whole numbers over 16: mean's very values, without its wrapper
    # (a third of judging a window's few near pairs when hashing, phashdb.windows)
    ac, bc = (
        a - np.add.reduce(a, 1, keepdims=True) / 16,
        b - np.add.reduce(b, 1, keepdims=True) / 16,
    )
    norm = np.sqrt((ac * ac).sum(axis=1) * (bc * bc).sum(axis=1))
    return np.divide((ac * bc).sum(axis=1), norm, out=np.zeros(len(table)), where=norm > 0)
