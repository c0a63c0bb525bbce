"""A query's backdrop key: an opaque image whose picture stands on a black backdrop (a transparent
source flattened on black, or exported with its alpha dropped over the black that lies under
transparent pixels) seen as phashdb sees the transparent source itself, on white.

phashdb hashes a transparent image on white (phashdb.phash._flatten). Its exports on black
show the same shapes against the opposite background, so their pHash is another picture's; the
backdrop, the black connected to the image's border, is what was transparent. Made white, it
gives back the picture on white, up to the anti-aliased edges, which the descriptor's
confirmation tolerates (benchmarks/accuracy.py --beyond: "backdrop").
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .border import SPARE, ring
from .descriptor import LOW_QUALITY, Variant, quality, variants
from .resample import resized
from .unbox import _components

# Grey levels at most this dark are backdrop (a JPEG of black stays within a few levels of 0).
DARK = 24
# The border must be this dark for at least this share of its pixels. A portrait on black
# touches its border along the bottom: at 0.9, 29 of 90 painted portraits flattened on black
# had a backdrop key, at 0.5 all 90 (benchmarks/accuracy.py --beyond measures the false
# matches this costs).
BORDER_SHARE = 0.5
# Worked out on the image reduced to this size: the key reads 32x32 pixels.
SIDE = 128
NAME = "backdrop"


def backdrop_variant(grey: Image.Image) -> Variant | None:
    """The as-is Variant (pHash and descriptor) of greyscale `grey` with its black backdrop made
    white, or None when its border is not a black backdrop (most images: nothing to search) or
    when what is left is near-constant (a blank export is never matched by its blankness)."""
    edge = ring(grey, SIDE)  # the border alone rules most images out cheaply (phashdb.border)
    if edge is not None and (edge <= DARK + SPARE).sum() < BORDER_SHARE * (edge.size - 4):
        return None
    small = resized(grey, (min(SIDE, grey.width), min(SIDE, grey.height)), Image.Resampling.BOX)
    a = np.asarray(small, dtype=np.uint8)
    dark = a <= DARK
    border = np.zeros_like(dark)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    if dark[border].mean() < BORDER_SHARE or dark.all():
        return None
    white = np.where(reached_from(dark, border), 255, a).astype(np.uint8)
    pixels = np.asarray(resized(white, (32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    if quality(pixels) < LOW_QUALITY:
        return None
    return variants(pixels, 1)[0]._replace(name=NAME)


def reached_from(dark: np.ndarray, border: np.ndarray) -> np.ndarray:
    """The pixels of mask `dark` that the dark pixels of mask `border` reach through dark
    pixels side by side or one above the other: the backdrop. Its regions labelled at once
    (phashdb.unbox), not grown a pixel a round (a round per pixel of a winding backdrop)."""
    labels = _components(dark[None])[0]
    backdrop = np.zeros(dark.size + 1, dtype=bool)
    backdrop[labels[dark & border]] = True
    return backdrop[labels]
