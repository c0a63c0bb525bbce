"""An image's window keys: the pictures its re-framed and cropped copies show.

A copy cut to another aspect ratio (a wallpaper for another screen: centred 16:9, 16:10, 4:3,
5:4, 1:1), a crop of 10% from one corner, or the centre 80% shows only part of the picture, and
its pHash is another picture's: the plain search finds 4-73% of such copies
(docs/accuracy-beyond-photos.md). The stored image keeps the pHash and descriptor of each of
these windows as keys (descriptor.KEYS), so a copy's as-is hash meets the window it shows;
a query keeps them too, so a check of the whole picture finds its stored crop, as a batch pass
(which searches every stored key against the stored hashes) links the two.

A copy shows its window pixel for pixel, only resized and re-encoded, so a window key is
confirmed strictly, by its pHash and thumbnail alone (confirm.STRICT: within the threshold,
the 4x4 thumbnails' correlation at least 0.95 and every cell within 8 grey levels), and stored
in 26 bytes (descriptor layout v4, descriptor.COMPACT). On the corpus of
docs/accuracy-beyond-photos.md (the library's own run, benchmarks/accuracy.py --beyond)
re-framed copies were found 42.2% -> 99.5% (photos) and 26.6% -> 96.2% (other images; each kind
>= 84.7%) by the earlier rule (a score of at most -40 with the 256-bit hash); the false matches
among 113.8M pairs grew by 13, all one pair of images: the flag of the Netherlands as Open
Clip Art and as Twemoji draw it. Confirmed as the default confirms (score <= 20), the windows
would add 237 (benchmarks/window_rules.py). The compact rule's own run:
docs/accuracy-beyond-photos.md, "Windows".
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .confirm import judge_pairs
from .descriptor import LOW_QUALITY, Variant, _orders, _transforms, middle
from .resample import resized_boxes

# Each window: its key name and its box as fractions (left, top, right, bottom) of the upright
# picture, or an aspect ratio (width / height) for the largest centred window of that shape.
RATIOS = {"centre 16:9": 16 / 9, "centre 16:10": 16 / 10, "centre 4:3": 4 / 3,
          "centre 5:4": 5 / 4, "centre 1:1": 1.0}  # fmt: skip
PARTS = {
    "centre 80%": (0.1, 0.1, 0.9, 0.9),
    "top left 90%": (0, 0, 0.9, 0.9),
    "top right 90%": (0.1, 0, 1, 0.9),
    "bottom left 90%": (0, 0.1, 0.9, 1),
    "bottom right 90%": (0.1, 0.1, 1, 1),
}
NAMES = (*RATIOS, *PARTS)
# A ratio window cutting less than this share of a side is the whole picture to pHash.
MIN_CUT = 0.04
# A window is left out when the whole picture or a window kept before it would confirm it as
# its copy (within this pHash distance, and strictly): what finds the one finds the other.
# Measured with the compact rule (confirm.STRICT; benchmarks/accuracy.py --beyond, re-framed
# copies found, photos / other images): at 8 (the threshold) 99.1% / 96.2%, a 16:10 window
# often left out for its 16:9 one and 16:10 copies lost (98.3% / 95.9%); at 4 99.6% / 96.9%,
# every kind at least as found as by the 256-bit rule but 4 (of 14), the same false matches.
SAME = 4
# The windows are read (32x32, as pHash reads) by FILTER from the picture reduced by a whole
# factor to a shorter side of at least WORK_SIDE. Measured (re-framed copies found, photos /
# other images; hashing a 640-pixel JPEG with windows against without): read by LANCZOS from
# 256 pixels 99.8% / 97.1%, 2.8x; from 96 99.4% / 96.5%, 1.5x; from 64 98.5% / 94.0%; by
# BILINEAR from 96 99.5% / 96.2%, with a third less of the windows' time.
WORK_SIDE = 96
FILTER = Image.Resampling.BILINEAR


def boxes(width: int, height: int) -> dict[str, tuple[float, float, float, float]]:
    """Each window's box in pixels of a `width` x `height` picture; a ratio window that is
    (nearly) the whole picture is left out."""
    out = {}
    for name, ratio in RATIOS.items():
        if width / height > ratio * (1 + MIN_CUT):
            cut = (width - height * ratio) / 2
            out[name] = (cut, 0, width - cut, height)
        elif width / height < ratio * (1 - MIN_CUT):
            cut = (height - width / ratio) / 2
            out[name] = (0, cut, width, height - cut)
    for name, (x0, y0, x1, y1) in PARTS.items():
        out[name] = (x0 * width, y0 * height, x1 * width, y1 * height)
    return out


def window_keys(grey: Image.Image, whole: Variant) -> list[Variant]:
    """The window keys of upright greyscale picture `grey` (its as-is Variant `whole`), in
    NAMES' order: each window that shows a picture (not near-constant) and that neither the
    whole picture nor a window kept before it confirms (SAME)."""
    factor = max(1, min(grey.size) // WORK_SIDE)
    small = grey.reduce(factor) if factor > 1 else grey
    cut = {n: b for n, b in boxes(*small.size).items() if min(b[2] - b[0], b[3] - b[1]) >= 8}
    if not cut:
        return []
    stack = resized_boxes(small, (32, 32), FILTER, list(cut.values()))
    found = [whole, *as_is(stack, tuple(cut))]
    alike = _confirmed(found)
    kept = [0]
    for k in range(1, len(found)):
        if found[k].descriptor[32] >= LOW_QUALITY and not alike[k, kept].any():
            kept.append(k)
    return [found[k] for k in kept[1:]]


def as_is(stack: np.ndarray, names: tuple[str, ...]) -> list[Variant]:
    """`descriptor.variants(pixels, 1)[0]` of each 32x32 uint8 image of `stack` (n, 32, 32),
    named `names`, computed at once (ten one by one were half the cost of hashing a small
    photo). The thumbnails' and the steps' sums are of whole numbers, exact in any order: summed
    by a matrix product and in integers, the same values as the means `variants` takes, faster."""
    dct16, signs = _transforms()
    order, low_order, thumb_order, _ = _orders()
    n = len(stack)
    pixels = stack.astype(np.float64)
    # two matrix products over the whole stack (a product per image was most of the cost)
    rows = (pixels.reshape(n * 32, 32) @ dct16.T).reshape(n, 32, 16).transpose(0, 2, 1)
    coeffs = (rows.reshape(n * 16, 32) @ dct16.T).reshape(n, 16, 16).transpose(0, 2, 1)
    full = np.round(coeffs, 6).reshape(n, 256)[:, order[0]] * signs[0].ravel()
    low = full[:, low_order]
    hashes = np.packbits(low > middle(low), axis=1)
    bits = np.packbits(full > middle(full), axis=1)
    sums = (pixels.reshape(n * 32, 32) @ _EIGHTS).reshape(n, 4, 8, 4).sum(axis=2).reshape(n, 16)
    greys = np.clip(np.rint(sums / 64), 0, 255).astype(np.uint8)[:, thumb_order[0]]
    whole = stack.astype(np.int16)
    down = np.abs(whole[:, 1:] - whole[:, :-1]).sum(axis=(1, 2))
    across = np.abs(whole[:, :, 1:] - whole[:, :, :-1]).sum(axis=(1, 2))
    steps = (down / (31 * 32) + across / (31 * 32)).tolist()  # each a mean of 992 steps
    hashes, bits, greys = hashes.tobytes(), bits.tobytes(), greys.tobytes()
    return [
        Variant(name, int.from_bytes(hashes[8 * k : 8 * k + 8], "big"),
                bits[32 * k : 32 * k + 32] + bytes([min(255, round(steps[k] / 2 * 8))])
                + greys[16 * k : 16 * k + 16])
        for k, name in enumerate(names)
    ]  # fmt: skip


# Sums each run of eight columns of a 32-column row (a 4x4 thumbnail's cells, by one product).
_EIGHTS = np.kron(np.eye(4), np.ones((8, 1)))


def _confirmed(found: list[Variant]) -> np.ndarray:
    """alike[i, j]: whether found[j] would be confirmed as a copy of window found[i] (within
    SAME, as confirm.judge confirms a window: strictly, confirm.STRICT, by the pHash and
    thumbnail alone), for j < i; the pairs judged in one call."""
    n = len(found)
    i, j = np.tril_indices(n, -1)
    hashes = np.array([v.hash for v in found], np.uint64)
    distances = np.bitwise_count(hashes[i] ^ hashes[j])
    near = np.nonzero(distances <= SAME)[0]
    alike = np.zeros((n, n), bool)
    if len(near):
        verdicts = judge_pairs(
            found[-1].name,  # every window is judged by the one rule (STRICT)
            distances[near], SAME,
            [found[k].descriptor for k in i[near]], [found[k].descriptor for k in j[near]],
        )  # fmt: skip
        alike[i[near], j[near]] = [ok for ok, _ in verdicts]
    return alike
