"""The second stage: a stored descriptor that confirms (or refutes) a pHash candidate, and the
eight flips and rotations of a query, all derived from one DCT of the 32x32 image pHash reads:
how they are computed and stored (the verdicts, by which rule: phashdb.confirm).

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

    # each descriptor's keys read once (stored_key_bytes would check their names again)
    counts = [_key_counts(d) if d and len(d) > STORED_SIZE else None for d in descriptors]
    parts = [d[STORED_SIZE:] if c else b"" for d, c in zip(descriptors, counts)]
    counts = np.array([c or (0, 0) for c in counts], np.int64).reshape(-1, 2)
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
