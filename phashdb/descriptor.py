"""The second stage: a stored descriptor that confirms (or refutes) a pHash candidate, and the
eight flips and rotations of a query, all derived from one DCT of the 32x32 image pHash reads.

The 64-bit pHash is the search key; candidates are gathered at a wider radius than a plain
pHash could afford and kept only when the descriptors agree. Chosen by measurement on 231 real
photos and 27 edits (benchmarks/accuracy.py; README, "Accuracy"): a 256-bit DCT hash (the 16x16
lowest frequencies against their median: PDQ's idea on the pixels pHash already has) separated
edited copies from other photos better than a 256-bit hash of a 64x64 image, grey thumbnails
compared by correlation, or cosines of DCT coefficients; adding the correlation of a 4x4 grey
thumbnail to it widened the gap further. 49 bytes an image:

    bytes 0..31   the 256-bit DCT hash, first bit most significant
    byte  32      quality: the mean absolute step between neighbouring pixels of the 32x32
                  image, in eighths of a grey level (capped at 255)
    bytes 33..48  the 4x4 grey thumbnail (means of 8x8 blocks), row by row

Stored since layout v2 (DESCRIPTOR_VERSION), 329 bytes: those 49, then for each of the seven
other variants in VARIANTS' order 40 bytes, its 64-bit pHash (big-endian) and its 256-bit DCT
hash. A batch pass (phashdb.grouping) needs them: flips change the signs of odd coefficients,
so neither hash of a variant can be derived from the image's own hashes. A variant's quality
and thumbnail can (the same byte; the thumbnail flipped and rotated), so they are not stored.
Stored since layout v3: those 329, then for each query key the image has (phashdb.backdrop,
phashdb.trim; most images have none, and their rows are v2's 329 bytes) 58 bytes, its name byte
(1 + its place in KEYS, in KEYS' order), its 64-bit pHash and its 49 compared bytes: a batch pass
searches them as a check searches a query's keys. None of a key's bytes derive from the image's.
Stored since layout v4: the same, but each window key (phashdb.windows, confirmed by STRICT's
rule, which reads no 256-bit hash) in 26 bytes, under a name byte of its own (COMPACT: 18-27,
after KEYS' 17): its name byte, its 64-bit pHash, its quality byte and its 4x4 thumbnail. The
keys of other names keep 58 bytes and come first; a window's 58-byte form (names 8-17, layout
v3) is still read, its 256-bit hash unused. So each entry's name byte says its size (KEY_SIZES),
and a row of v3 and one of v4 are read alike from one table (an index of format 3 written by
this phashdb holds both).
Rows of layout v1 (49 bytes) are still read, as-is only, and of v2 without keys; a blob of any
other length, or with an unknown name byte, is damaged and treated as missing (the plain pHash
threshold).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # imported where used: opening an index reads this module's constants
    import numpy as np

# The name of the layout above; indexes record it, so change it with any change of bytes.
DESCRIPTOR_VERSION = "dct256-q-thumb4-variants-keys-v4"
# The layouts this phashdb reads (told apart row by row by their length and name bytes).
READS_DESCRIPTOR_VERSIONS = (
    "dct256-q-thumb4-v1", "dct256-q-thumb4-variants-v2", "dct256-q-thumb4-variants-keys-v3",
    DESCRIPTOR_VERSION,
)  # fmt: skip
SIZE = 49  # what is compared: layout v1, the head of v2, v3 and v4
VARIANT_SIZE = 8 + 32
STORED_SIZE = SIZE + 7 * VARIANT_SIZE  # layout v2, and v3 without keys
# The keys a row of layout v3 may hold, by name byte - 1 (phashdb.backdrop.NAME,
# phashdb.trim.NAME, phashdb.renderings.NAMES, phashdb.unbox.NAME); appending a name keeps
# every stored byte's meaning. Names 3 and 4 (index format 2) are a transparent source's other
# renderings, name 5 the picture with a plain box filled in, names 6 and 7 the renderings of
# a small source (phashdb.renderings.SMALL), searched wider (WIDE); names 8 to 17 (index
# format 3) the windows a re-framed or cropped copy shows (phashdb.windows), confirmed strictly
# (STRICT).
KEYS = (
    "backdrop", "trimmed", "on black", "alpha dropped", "unboxed",
    "on black, small", "alpha dropped, small",
    "centre 16:9", "centre 16:10", "centre 4:3", "centre 5:4", "centre 1:1",
    "centre 80%", "top left 90%", "top right 90%", "bottom left 90%", "bottom right 90%",
)  # fmt: skip
KEY_SIZE = 1 + 8 + SIZE  # a key of layout v3, and of v4 but a window's
# Layout v4's window keys (STRICT) by name byte: the windows' names again after KEYS' (18-27),
# each entry 26 bytes (name byte, pHash, quality, thumbnail: what STRICT's rule reads).
COMPACT = {name: len(KEYS) + 1 + k for k, name in enumerate(KEYS[7:])}
COMPACT_SIZE = 1 + 8 + 1 + 16
# Each name byte's entry size (0: no key has that name byte) and key (its place in KEYS + 1).
KEY_SIZES = bytes([0, *[KEY_SIZE] * len(KEYS), *[COMPACT_SIZE] * len(COMPACT)]).ljust(256, b"\0")
KEY_CODES = bytes([0, *range(1, len(KEYS) + 1), *(KEYS.index(n) + 1 for n in COMPACT)]).ljust(
    256, b"\0"
)
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

# Below this quality (a mean step of one grey level between neighbours; the flattest of 231 real
# photos and their edits scored 2.0) an image is near-constant: its pHash and DCT bits are
# rounding noise that every blank image shares, so neither can say two such images are copies.
# Nor can its thumbnail: black exports of 14 different images (black pages) agreed cell by
# cell in 364 pairs of distinct images (benchmarks/beyond_rules.py), so a near-constant image is
# never matched, by its blankness or otherwise.
LOW_QUALITY = 8

# Each variant: its name (what was done to the stored image to give the query; rotations
# counterclockwise, as PIL's ROTATE_90), then how to undo it on the query's DCT coefficients:
# transpose first or not, then negate the odd rows (a vertical flip) and/or odd columns (a
# mirror), since a DCT-II basis function of odd frequency is odd about the centre.
VARIANTS = (
    ("as-is", False, False, False),
    ("mirrored", False, False, True),
    ("flipped", False, True, False),
    ("rotated 180", False, True, True),
    ("transposed", True, False, False),
    ("rotated 90", True, False, True),
    ("rotated 270", True, True, False),
    ("transverse", True, True, True),
)


@cache
def _transforms() -> tuple[np.ndarray, np.ndarray]:
    """(the first 16 rows of the unnormalised 32-point DCT-II matrix, each variant's signs:
    -1 on the odd rows it flips and the odd columns it mirrors)."""
    import numpy as np

    k, n = np.arange(16)[:, None], np.arange(32)[None, :]
    odd = np.arange(16) % 2 == 1
    signs = np.stack(
        [
            np.where(odd[:, None] & rows, -1.0, 1.0) * np.where(odd[None, :] & cols, -1.0, 1.0)
            for _, _, rows, cols in VARIANTS
        ]
    )
    return 2 * np.cos(np.pi * k * (2 * n + 1) / 64), signs


class Variant(NamedTuple):
    """One of the eight ways a query may have been flipped or rotated from a stored image."""

    name: str
    hash: int  # the pHash of the query with that undone
    descriptor: bytes


def middle(a: np.ndarray) -> np.ndarray:
    """`np.median(a, axis=-1, keepdims=True)` to the bit, for rows of even length: the mean of
    the two middle values. np.median's checks cost more than sorting 64 or 256 values (a tenth
    of the time hashing a small photo) and its first call imports numpy.ma."""
    import numpy as np

    s = np.sort(a, axis=-1)
    n = a.shape[-1] // 2
    return (s[..., n - 1 : n] + s[..., n : n + 1]) / 2


def variants(pixels: np.ndarray, count: int = len(VARIANTS)) -> tuple[Variant, ...]:
    """The eight variants of the 32x32 image `pixels` (as pHash reads it), as-is first; the
    first `count` of them (1: the as-is one, a key's)."""
    import numpy as np

    dct16, signs = _transforms()
    order, low_order, thumb_order, twins = _orders()
    coeffs = np.round(dct16 @ pixels @ dct16.T, 6)
    thumb = pixels.reshape(4, 8, 4, 8).mean(axis=(1, 3))
    # each variant's coefficients and thumbnail moved into place by one index each, the same
    # values as transposing and flipping them one by one (tests/test_descriptor.py's golden bytes);
    # only the first `count` made (a key's one), each of the first four its own twin
    full = coeffs.ravel()[order[:count]] * signs.reshape(8, 256)[:count]
    low, twin, own = full[:, low_order], twins[:count], min(count, 4)
    hashes = np.packbits(low > middle(low[:own])[twin], axis=1).tobytes()
    bits = np.packbits(full > middle(full[:own])[twin], axis=1).tobytes()
    greys = np.clip(np.rint(thumb), 0, 255).astype(np.uint8).ravel()[thumb_order[:count]]
    greys = greys.tobytes()
    q = bytes([quality(pixels)])
    return tuple(
        Variant(
            name,
            int.from_bytes(hashes[8 * k : 8 * k + 8], "big"),
            bits[32 * k : 32 * k + 32] + q + greys[16 * k : 16 * k + 16],
        )
        for k, (name, *_) in enumerate(VARIANTS[:count])
    )


@cache
def _orders() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(where each variant's 16x16 coefficients come from in the image's, where its 8x8 lowest
    ones lie in them, where its 4x4 thumbnail's cells come from, which of the first four
    variants has the same coefficients up to a transpose: the same median)."""
    import numpy as np

    at, cells = np.arange(256).reshape(16, 16), np.arange(16).reshape(4, 4)
    order = np.stack([at.T if t else at for _, t, _, _ in VARIANTS]).reshape(8, 256)
    thumb_order = np.stack([_undo(cells, *how) for _, *how in VARIANTS]).reshape(8, 16)
    # a transpose moves odd rows to odd columns: "rotated 90" (transposed, odd columns negated)
    # has the values of "flipped" (odd rows negated), and so on
    twins = np.array([0, 1, 2, 3, 0, 2, 1, 3])
    return order, at[:8, :8].ravel(), thumb_order, twins


def pack(found: tuple[Variant, ...], keys: tuple[Variant, ...] = ()) -> bytes:
    """The stored descriptor (layout v4) of an image's eight `variants`, as-is first, and its
    query `keys` (named in KEYS, in that order; a window's in 26 bytes: COMPACT)."""
    if [k.name for k in keys] != [n for n in KEYS if n in {k.name for k in keys}]:
        raise ValueError(f"'keys' must be named in {KEYS} in that order, got {keys!r}")
    return (
        found[0].descriptor
        + b"".join(v.hash.to_bytes(8, "big") + v.descriptor[:32] for v in found[1:])
        + b"".join(key_entry(k) for k in keys)
    )


def as_stored(key: Variant) -> Variant:
    """`key` as layout v4 stores it and stored_keys reads it back: a window's (COMPACT) without
    its 256-bit hash (32 zero bytes), any other as it is."""
    return key._replace(descriptor=bytes(32) + key.descriptor[32:]) if key.name in COMPACT else key


def entry_size(name: str) -> int:
    """How many bytes layout v4 stores a key named `name` in (a window's: COMPACT_SIZE)."""
    return COMPACT_SIZE if name in COMPACT else KEY_SIZE


def key_entry(key: Variant) -> bytes:
    """A key as layout v4 stores it: a window's name byte, pHash, quality and thumbnail
    (COMPACT), any other's name byte, pHash and 49 compared bytes."""
    hash = key.hash.to_bytes(8, "big")
    if key.name in COMPACT:
        return bytes([COMPACT[key.name]]) + hash + key.descriptor[32:]
    return bytes([KEYS.index(key.name) + 1]) + hash + key.descriptor


def core(stored: bytes | None) -> bytes | None:
    """The 49 bytes compared of a stored descriptor (any layout); None for none or a damaged
    one (a length of no layout, or an unknown key)."""
    if stored is None or not _whole(stored):
        return None
    return stored if len(stored) == SIZE else stored[:SIZE]


def _whole(stored: bytes) -> bool:
    """Whether `stored` is a descriptor of layout v1, v2, v3 or v4."""
    return len(stored) in (SIZE, STORED_SIZE) or _key_counts(stored) is not None


def _key_counts(stored: bytes) -> tuple[int, int] | None:
    """(keys of KEY_SIZE bytes, then keys of COMPACT_SIZE bytes) of a descriptor with keys;
    None when it has none, or its keys are damaged: a name byte of no key, a length that ends
    inside an entry, names out of KEYS' order or repeated (a window in both forms)."""
    at, end = STORED_SIZE, len(stored)
    while at < end and KEY_SIZES[stored[at]] == KEY_SIZE:  # the 58-byte keys (all of v3's)
        at += KEY_SIZE
    full = (at - STORED_SIZE) // KEY_SIZE
    compact, rest = divmod(end - at, COMPACT_SIZE)
    if at > end or rest or full + compact == 0:
        return None
    # The name bytes, sliced out at once: a list made byte by byte was most of the time of
    # reading a million keyed descriptors (phashdb/embedded/keys.py).
    names = stored[STORED_SIZE:at:KEY_SIZE] + stored[at::COMPACT_SIZE]
    if names != bytes(sorted(set(names))) or 0 in names.translate(KEY_SIZES):
        return None
    codes = names.translate(KEY_CODES)
    return (full, compact) if codes == bytes(sorted(set(codes))) else None


def damaged(stored: bytes | None) -> bool:
    """Whether a stored descriptor is there but of neither layout."""
    return stored is not None and core(stored) is None


def stored_variants(hash: int, stored: bytes | None) -> tuple[Variant, ...]:
    """The eight variants of a stored image of pHash `hash` from its stored descriptor, as
    `variants` gave them; () when it holds none (layout v1, bare hashes, damaged)."""
    import numpy as np

    if stored is None or len(stored) < STORED_SIZE or not _whole(stored):
        return ()
    quality = stored[32:33]
    # every variant's thumbnail at once, its cells moved into place as `variants` moves them
    greys = np.frombuffer(stored, np.uint8, count=16, offset=33)[_orders()[2][1:]].tobytes()
    out = [Variant(VARIANTS[0][0], hash, stored[:SIZE])]
    for k, (name, *_) in enumerate(VARIANTS[1:]):
        at = SIZE + k * VARIANT_SIZE
        out.append(
            Variant(
                name,
                int.from_bytes(stored[at : at + 8], "big"),
                stored[at + 8 : at + VARIANT_SIZE] + quality + greys[16 * k : 16 * k + 16],
            )
        )
    return tuple(out)


def stored_hashes(hash: int, stored: bytes | None) -> tuple[int, ...]:
    """The pHashes of `stored_variants(hash, stored)`, read without making their descriptors
    (what a dedupe keeps of every image searched)."""
    if stored is None or len(stored) < STORED_SIZE or not _whole(stored):
        return ()
    ends = range(SIZE, STORED_SIZE, VARIANT_SIZE)
    return (hash, *(int.from_bytes(stored[at : at + 8], "big") for at in ends))


def stored_keys(stored: bytes | None) -> tuple[Variant, ...]:
    """The query keys (phashdb.backdrop, phashdb.trim, phashdb.windows, ...) kept in a stored
    descriptor, as the Picture read from the image gave them, but a window's of layout v4 with
    no 256-bit hash (32 zero bytes: STRICT's rule does not read it); () for none (layouts v1
    and v2, bare hashes, damaged)."""
    keys = stored_key_bytes(stored)
    out, at = [], 0
    while at < len(keys):
        size, name = KEY_SIZES[keys[at]], KEYS[KEY_CODES[keys[at]] - 1]
        hash = int.from_bytes(keys[at + 1 : at + 9], "big")
        compared = keys[at + 9 : at + size]
        out.append(Variant(name, hash, compared if size == KEY_SIZE else bytes(32) + compared))
        at += size
    return tuple(out)


def stored_key_bytes(stored: bytes | None) -> bytes:
    """The keys of a stored descriptor as they are stored, each entry KEY_SIZES[its name byte]
    long (name byte, pHash big-endian, then the 49 compared bytes, or a v4 window's quality and
    thumbnail); b"" for none (layouts v1 and v2, bare hashes, damaged)."""
    if stored is None or len(stored) <= STORED_SIZE or not _whole(stored):
        return b""
    return stored[STORED_SIZE:]


def key_rows(descriptors: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, key, pHash) of every key of `descriptors` (stored descriptors or None) at once:
    the descriptor's place in the list, the key's place in KEYS + 1 (whichever form it is
    stored in), its pHash. What reads the keys of many rows at once (phashdb.embedded.keys)."""
    import numpy as np

    parts = [stored_key_bytes(d) for d in descriptors]
    counts = [_key_counts(d) if p else (0, 0) for d, p in zip(descriptors, parts)]
    counts = np.array(counts, np.int64).reshape(-1, 2)
    blob = np.frombuffer(b"".join(parts), np.uint8)
    # the entries lie end to end in `blob`: each row's full keys, then its compact ones
    sizes = np.repeat(np.tile([KEY_SIZE, COMPACT_SIZE], len(parts)), counts.ravel())
    starts = np.cumsum(sizes) - sizes
    rows = np.repeat(np.arange(len(parts)), counts.sum(axis=1))
    codes = np.frombuffer(KEY_CODES, np.uint8)[blob[starts]].astype(np.int64)
    hashes = blob[starts[:, None] + np.arange(1, 9)].copy().view(">u8").ravel().astype(np.uint64)
    return rows, codes, hashes


def _undo(a: np.ndarray, transpose: bool, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    a = a.T if transpose else a
    return a[:: -1 if flip_rows else 1, :: -1 if flip_cols else 1]


def quality(pixels: np.ndarray) -> int:
    """The quality byte of a 32x32 image: its mean absolute step between neighbours, in
    eighths of a grey level (PDQ's quality is likewise a sum of gradients)."""
    import numpy as np

    # np.diff's own subtractions, without its checks
    steps = np.abs(pixels[1:] - pixels[:-1]).mean() + np.abs(pixels[:, 1:] - pixels[:, :-1]).mean()
    return min(255, round(steps / 2 * 8))


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
    ok, scores = _compare_rows(mine, table)
    if variant in WIDE or variant in BETWEEN or variant in STRICT:  # their cells less mine
        greys = table[:, 33:].astype(np.int16) - mine[:, 33:]
    if variant in WIDE:  # the strict confirmation beyond the threshold
        limit, most = WIDE[variant]
        near = distances[both] <= threshold
        ok &= near | ((scores <= limit) & (np.abs(greys).max(axis=1) <= most))
    if variant in STRICT:  # a window: pHash and thumbnails alone (no 256-bit hash read)
        least, most = STRICT[variant]
        corr = _correlations(mine, table)
        ok = _shows(mine, table) & (distances[both] <= threshold) & (corr >= least)
        ok &= np.abs(greys).max(axis=1) <= most
        scores = -CORRELATION_WEIGHT * corr
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


def _compare_rows(mine: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confirmed, score) of each row of descriptors `mine` (a _table, or one row for all)
    against the same row of `table`."""
    import numpy as np

    bits = np.bitwise_count(table[:, :32] ^ mine[:, :32]).sum(axis=1, dtype=np.int64)
    scores = bits - CORRELATION_WEIGHT * _correlations(mine, table)
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
