"""A query's unboxed key: an image with a plain box laid over it (a caption box, a black bar, a
sticker of one colour) seen with the box filled in from what surrounds it.

A white or black box of a quarter of the width and 15% of the height moves the pHash of a
smooth, flat picture past the reach (benchmarks/accuracy.py --beyond, "white box 1/4"): the
box is a large step in the 32x32 image a pHash reads. A photo hides a box in its detail; a flat
artwork does not, but neither has it much to hide under the box, so continuing the picture
across the box from its edges gives back the stored picture closely enough for the second
stage to confirm.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .descriptor import LOW_QUALITY, Variant, quality, variants
from .resample import resized

# The box is looked for on the image reduced to this size (BOX filter: text in a caption box
# becomes a few grey pixels), and filled on the image reduced to FILL_SIDE.
SIDE, FILL_SIDE = 64, 128
# A pixel within this many grey levels of the box's level is the box (JPEG and the reduction
# keep a plain box within a few levels; its blurred edge is grown over when filled).
TOLERANCE = 12
# The box's share of the image: less is within a pHash's reach, more is a plain ground, not
# something laid over a picture.
MIN_SHARE, MAX_SHARE = 0.02, 0.3
# Gaps this many reduced pixels wide (the text in a caption box) are closed before the box is
# measured; at least this share of the box must be its level as it is.
GAP, FILLED = 2, 0.5
# A box stands out from what surrounds it: at most this share of the pixels just outside it
# (where it does not touch the image's border) are of its level.
RING_LEVEL = 0.5
# The grey levels tried for a box: the most common ones, this many.
LEVELS = 8
# A box's region fills at least this share of its bounding rectangle (a plain ground around
# a picture does not).
RECTANGULAR = 0.9
# A round box (a sticker, a badge: a disc fills 79% of its rectangle, a rounded rectangle more)
# fills at least ROUND of its rectangle, holds ROUND_INSIDE of the ellipse inscribed in it and
# is the same as its mirror images on SYMMETRIC of its pixels (unbox._is_round). Looked for
# only where there is no box: a patch of a picture is sometimes round enough. Its rectangle
# covers at most ROUND_SHARE of the image: a sticker is small beside the picture it is laid
# on; a larger disc is the picture's own figure (a sun, a ball, a face).
ROUND, ROUND_INSIDE, SYMMETRIC, ROUND_SHARE = 0.75, 0.95, 0.9, 0.15
NAME = "unboxed"

try:  # the regions labelled in C (phashdb/_regions.c), ~50x faster than numpy's propagation
    from . import _regions
except ImportError:  # phashdb from a zip, as the MapReduce tasks have it: no C extension
    _regions = None


def unboxed_variant(grey: Image.Image) -> Variant | None:
    """The as-is Variant of greyscale `grey` with its plain box filled in from around it, or
    None when it has no such box (most images) or what is left is near-constant."""
    small = np.asarray(
        resized(grey, (min(SIDE, grey.width), min(SIDE, grey.height)), Image.Resampling.BOX),
        dtype=np.int16,
    )
    box = find_box(small)
    if box is None:
        return None
    fw, fh = min(FILL_SIDE, grey.width), min(FILL_SIDE, grey.height)
    a = np.asarray(resized(grey, (fw, fh), Image.Resampling.BOX), dtype=np.float64)
    sy, sx = fh / small.shape[0], fw / small.shape[1]
    # one reduced pixel more on every side: the box's edge is blurred by the reductions
    top, left = max(0, int((box[0] - 1) * sy)), max(0, int((box[1] - 1) * sx))
    bottom, right = (
        min(fh, int(np.ceil((box[2] + 1) * sy))),
        min(fw, int(np.ceil((box[3] + 1) * sx))),
    )
    filled = fill(a, top, left, bottom, right)
    pixels = np.asarray(
        resized(
            np.clip(np.rint(filled), 0, 255).astype(np.uint8), (32, 32), Image.Resampling.LANCZOS
        ),
        dtype=np.float64,
    )
    if quality(pixels) < LOW_QUALITY:
        return None
    return variants(pixels, 1)[0]._replace(name=NAME)


def find_box(a: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the plain box over the reduced image `a`, or None: of
    the regions of one common level (gaps closed) that nearly fill their bounding rectangle,
    the largest (the first level's, of equal ones); where there is none, the largest round
    one (_is_round: a sticker, a badge) of any level with enough pixels for a box."""
    h, w = a.shape
    levels = _levels(a) if h >= 8 and w >= 8 else []
    if not levels:
        return None
    # every level's mask at once, one plane each: the closing and the labels never cross planes;
    # in int16 for an int16 image (numpy's int64 default cost 30 times as much)
    common = sum(n >= MIN_SHARE * a.size for _, n in levels)
    levels = np.array([v for v, _ in levels], dtype=np.result_type(a.dtype, np.int16))
    exact = np.abs(a[None] - levels[:, None, None]) <= TOLERANCE
    # a round box's rectangle covers MIN_SHARE of the image: the box itself ROUND of that
    regions = _large_regions(exact, ROUND * MIN_SHARE * a.size)
    boxes = [r for r in regions if r[0] < common and r[1] >= MIN_SHARE * a.size]
    return _largest(exact, boxes, _is_rectangular) or _largest(exact, regions, _is_round)


def _largest(exact: np.ndarray, regions: list, shaped) -> tuple[int, int, int, int] | None:
    """The box of the largest of `regions` (_large_regions) shaped as `shaped` says and laid
    over the picture (_is_box); a plane's regions are weighed against the best of the planes
    before it (the first level's, of equal ones)."""
    best, found, before = 0, None, -1
    for k, size, *box in regions:
        if k != before:
            floor, before = best, k
        if size > floor and shaped(exact[k], size, box) and _is_box(exact[k], box):
            best, found = size, tuple(box)
    return found


def _large_regions(exact: np.ndarray, least: float) -> list[tuple[int, ...]]:
    """(plane, size, top, left, bottom, right) of each region of planes `exact` (gaps closed)
    with at least `least` pixels, by plane, then by the region's first pixel: by
    phashdb._regions, or where it is not built, by numpy (the same: tests/test_unbox.py)."""
    if _regions is None:
        return _large_regions_numpy(exact, least)
    planes, h, w = exact.shape
    return _regions.regions(exact.tobytes(), planes, h, w, GAP, least)


def _large_regions_numpy(exact: np.ndarray, least: float) -> list[tuple[int, ...]]:
    """_large_regions in numpy."""
    closed = _closed(exact)
    labels = _propagated(closed)
    counts = np.bincount(labels[closed], minlength=labels.size)
    out, plane = [], exact[0].size
    for i in np.flatnonzero(counts >= least):  # by plane, then label
        ys, xs = np.nonzero(labels[i // plane] == i)
        box = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
        out.append((int(i // plane), int(counts[i]), *box))
    return out


def _levels(a: np.ndarray) -> list[tuple[int, int]]:
    """The common grey levels (peaks within TOLERANCE), each with enough pixels for a box (a
    box is at least FILLED of its level as it is: a sticker's text takes a share of it), and
    the number of pixels within TOLERANCE of each."""
    counts = np.bincount(a.ravel(), minlength=256).astype(np.int64)
    near = np.convolve(counts, np.ones(2 * TOLERANCE + 1, np.int64), mode="same")
    out = []
    for _ in range(LEVELS):
        level = int(near.argmax())
        if near[level] < FILLED * MIN_SHARE * a.size:
            break
        out.append((level, int(near[level])))
        near[max(0, level - 2 * TOLERANCE) : level + 2 * TOLERANCE + 1] = 0
    return out


def _padded(m: np.ndarray, width: int, value, axis: int | None = None) -> np.ndarray:
    """Planes `m` (..., rows, columns) with `width` cells of `value` added on both sides of
    `axis` (0: rows, 1: columns, None: both); np.pad's generality cost more than the rest of a
    look for a box."""
    h, w = m.shape[-2:]
    dy, dx = (width if axis in (None, 0) else 0), (width if axis in (None, 1) else 0)
    out = np.full((*m.shape[:-2], h + 2 * dy, w + 2 * dx), value, dtype=m.dtype)
    out[..., dy : dy + h, dx : dx + w] = m
    return out


def _shift_all(m: np.ndarray, pad: bool, op) -> np.ndarray:
    """`op` (np.logical_and or _or) of planes `m` shifted by every offset within GAP (rows,
    then columns: a square is the product of its sides), `pad` outside."""
    h, w = m.shape[-2:]
    for axis in (0, 1):
        p = _padded(m, GAP, pad, axis)
        out = m
        for d in range(2 * GAP + 1):
            out = op(out, p[..., d : d + h, :] if axis == 0 else p[..., d : d + w])
        m = out
    return m


def _closed(m: np.ndarray) -> np.ndarray:
    """Planes `m` with gaps up to 2 * GAP wide closed (dilated, then eroded)."""
    return _shift_all(_shift_all(m, False, np.logical_or), True, np.logical_and)


def _components(m: np.ndarray) -> np.ndarray:
    """A label per pixel of planes `m`, the same within each 4-connected region of True pixels
    of a plane (the smallest pixel number in it), `m.size` elsewhere: by phashdb._regions, or
    where it is not built, by numpy (the same labels: tests/test_unbox.py)."""
    if _regions is None:
        return _propagated(m)
    h, w = m.shape[-2:]
    m = np.ascontiguousarray(m, dtype=bool)
    labels = _regions.label(m.tobytes(), m.size // (h * w) if m.size else 0, h, w)
    return np.frombuffer(labels, dtype=np.int64).reshape(m.shape)


def _propagated(m: np.ndarray) -> np.ndarray:
    """_components in numpy: on the True pixels and the pairs of them side by side or one
    above the other, each round every label's root takes the least label across its pairs,
    and labels follow their roots to the end (pointer jumping: a few rounds)."""
    pixels = np.flatnonzero(m.ravel())
    number = np.zeros(m.size, dtype=np.intp)
    number[pixels] = np.arange(len(pixels))
    at = np.arange(m.size).reshape(m.shape)
    right = at[..., :, :-1][m[..., :, :-1] & m[..., :, 1:]]
    down = at[..., :-1, :][m[..., :-1, :] & m[..., 1:, :]]
    a = number[np.concatenate([right, down])]
    b = number[np.concatenate([right + 1, down + m.shape[-1]])]
    label = np.arange(len(pixels))
    while True:
        low = label.copy()
        np.minimum.at(low, label[a], label[b])
        np.minimum.at(low, label[b], label[a])
        while not (low[low] == low).all():
            low = low[low]
        if (low == label).all():
            break
        label = low
    labels = np.full(m.shape, m.size, dtype=np.int64)
    labels.ravel()[pixels] = pixels[label]
    return labels


def _is_rectangular(exact: np.ndarray, size: int, box: tuple[int, ...]) -> bool:
    """Whether a region of `size` pixels nearly fills its bounding rectangle `box`."""
    return size >= RECTANGULAR * (box[2] - box[0]) * (box[3] - box[1])


def _is_round(exact: np.ndarray, size: int, box: tuple[int, ...]) -> bool:
    """Whether the region of `size` pixels of level mask `exact` with bounding rectangle `box`
    is round in it: it fills at least ROUND of the rectangle, holds the ellipse inscribed in it
    (ROUND_INSIDE of it, one pixel in from its edge; a ground with a picture in it, an L-shaped
    patch do not) and is symmetric across both middle lines of the rectangle (SYMMETRIC of its
    pixels: a patch of the picture seldom is), a rectangle of at most ROUND_SHARE, inside the
    image (not touching its border)."""
    top, left, bottom, right = box
    area = (bottom - top) * (right - left)
    if size < ROUND * area or area > ROUND_SHARE * exact.size:
        return False
    if min(top, left) == 0 or bottom == exact.shape[0] or right == exact.shape[1]:
        return False  # cut by the image's border: not round in its rectangle, whatever it is
    ry, rx = (bottom - top) / 2 - 1, (right - left) / 2 - 1
    if min(ry, rx) < 1:
        return False
    inside = _closed(exact[None, top:bottom, left:right])[0]
    y = (np.arange(bottom - top) + 0.5 - (bottom - top) / 2) / ry
    x = (np.arange(right - left) + 0.5 - (right - left) / 2) / rx
    ellipse = y[:, None] ** 2 + x[None, :] ** 2 <= 1
    mirrored = min((inside == inside[::-1]).mean(), (inside == inside[:, ::-1]).mean())
    return bool(inside[ellipse].mean() >= ROUND_INSIDE and mirrored >= SYMMETRIC)


def _is_box(exact: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether rectangle `box` of level mask `exact` is a box laid over a picture."""
    top, left, bottom, right = box
    h, w = exact.shape
    share = (bottom - top) * (right - left) / exact.size
    if not MIN_SHARE <= share <= MAX_SHARE or min(bottom - top, right - left) < 2:
        return False
    if exact[top:bottom, left:right].mean() < FILLED:
        return False
    outside = []
    if top > 0:
        outside.append(exact[top - 1, left:right])
    if bottom < h:
        outside.append(exact[bottom, left:right])
    if left > 0:
        outside.append(exact[top:bottom, left - 1])
    if right < w:
        outside.append(exact[top:bottom, right])
    return bool(outside) and np.concatenate(outside).mean() <= RING_LEVEL


def fill(a: np.ndarray, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """`a` with rectangle [top:bottom, left:right] filled in from the pixels around it: each
    row continued linearly between the pixels left and right of it, each column between those
    above and below, the two averaged (a side on the image's border gives no pixels: the
    opposite side's are continued)."""
    out = a.copy()
    h, w = a.shape
    across = _between(a, top, bottom, left, right, w)
    down = _between(a.T, left, right, top, bottom, h)
    down = None if down is None else down.T
    parts = [p for p in (across, down) if p is not None]
    if parts:
        out[top:bottom, left:right] = sum(parts) / len(parts)
    return out


def _between(a: np.ndarray, r0: int, r1: int, c0: int, c1: int, n: int) -> np.ndarray | None:
    """Rows r0:r1 of columns c0:c1 of `a`, each continued from the columns just outside."""
    before = a[r0:r1, c0 - 1] if c0 > 0 else None
    after = a[r0:r1, c1] if c1 < n else None
    if before is None and after is None:
        return None
    before = after if before is None else before
    after = before if after is None else after
    t = (np.arange(c0, c1) - (c0 - 1)) / (c1 - c0 + 1)
    return before[:, None] * (1 - t)[None, :] + after[:, None] * t[None, :]
