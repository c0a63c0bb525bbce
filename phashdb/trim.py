"""A query's trimmed key: an image inside a plain frame or border (a framed copy, letterbox bars)
seen without it, as the picture that was framed.

A frame of 5% of each side moves a pHash past the reach on most images (benchmarks/accuracy.py
--beyond, "frame 5%"). The frame is the plain colour all around the image's border; cut away,
what is left is the stored picture, up to a pixel or two, which the second stage confirms.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .border import SPARE
from .border import ring as edge_ring
from .descriptor import LOW_QUALITY, Variant, middle, quality, variants
from .resample import resized

# A pixel within this many grey levels of the border's colour is frame (JPEG keeps a plain
# frame within a few levels).
TOLERANCE = 10
# The outermost ring must be the frame's colour for this share of its pixels.
RING_SHARE = 0.95
# A row or column belongs to the picture once more than this share of it is not frame.
LINE_SHARE = 0.02
# Trimmed only when the frame takes at least this much of a side (less is within a pHash's
# reach) and leaves at least this much of each side (less is an object on a plain ground).
MIN_CUT, MIN_KEEP = 0.03, 0.5
SIDE = 256
NAME = "trimmed"


def trimmed_variant(grey: Image.Image) -> Variant | None:
    """The as-is Variant of greyscale `grey` with its plain frame cut away, or None when it has
    none (most images) or what is left is near-constant."""
    edge = edge_ring(grey, SIDE)  # the border alone rules most images out cheaply (phashdb.border)
    if edge is not None:
        if (np.abs(edge - middle(edge)) <= TOLERANCE + SPARE).mean() < RING_SHARE:
            return None
    small = resized(grey, (min(SIDE, grey.width), min(SIDE, grey.height)), Image.Resampling.BOX)
    a = np.asarray(small, dtype=np.int16)
    ring = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    colour = middle(ring)[0]  # np.median's value: a ring has an even count of pixels
    if (np.abs(ring - colour) <= TOLERANCE).mean() < RING_SHARE:
        return None
    picture = np.abs(a - colour) > TOLERANCE
    rows = np.nonzero(picture.mean(axis=1) > LINE_SHARE)[0]
    cols = np.nonzero(picture.mean(axis=0) > LINE_SHARE)[0]
    if not len(rows) or not len(cols):
        return None
    h, w = a.shape
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    kept = ((bottom - top) / h, (right - left) / w)
    if min(kept) < MIN_KEEP or min(kept) > 1 - MIN_CUT:
        return None
    fx, fy = grey.width / w, grey.height / h
    box = (round(left * fx), round(top * fy), round(right * fx), round(bottom * fy))
    pixels = np.asarray(resized(grey.crop(box), (32, 32), Image.Resampling.LANCZOS), np.float64)
    if quality(pixels) < LOW_QUALITY:
        return None
    return variants(pixels, 1)[0]._replace(name=NAME)
