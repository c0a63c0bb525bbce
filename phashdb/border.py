"""The ring of an image reduced by Pillow's BOX filter, read from the image's edges only.

The backdrop and trimmed keys (phashdb.backdrop, phashdb.trim) exist for few images, and both
are ruled out by the reduced image's outermost pixels alone: a backdrop needs half of them
dark, a frame nearly all of one colour. Reducing the whole image to look at its border cost a
fifth of hashing a small photo; each border pixel of a BOX reduction is the mean of the pixels
in a strip along the image's edge, so reducing those four strips (`resize(..., box=)`) is a
fraction of the work.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import resample

# The strips have the very windows and weights of the whole reduction (the reduced sides are
# whole or powers of two, so every window's bounds are exact binary fractions), but Pillow may
# run a strip's two passes in the other order, each rounded to a whole level: a ring pixel can
# be one level off (benchmarks/border_check.py counts them). Keys are ruled out from the ring
# with this many levels to spare, and worked out from the whole reduction otherwise.
SPARE = 2
# Beyond this side Pillow's float32 box could no longer hold the strips' bounds exactly.
MAX_SIDE = 1 << 15
# Below this many pixels reducing the whole image is as cheap as the four strips (measured on
# icons: 0.15 against 0.23 ms at 64x64, even at ~256x256, 3 against 1.1 ms for a small photo).
MIN_PIXELS = 1 << 17


def reduced_size(grey: Image.Image, side: int) -> tuple[int, int]:
    """The size the keys reduce `grey` to: at most `side` pixels a side, never enlarged."""
    return min(side, grey.width), min(side, grey.height)


def ring(grey: Image.Image, side: int) -> np.ndarray | None:
    """`edges(grey, side)`, or None where reducing the whole image is cheaper (under
    MIN_PIXELS) or the strips cannot be read apart (under 3 or over MAX_SIDE pixels a side)."""
    width, height = grey.size
    if width * height < MIN_PIXELS or min(width, height) < 3 or max(width, height) >= MAX_SIDE:
        return None
    return edges(grey, side)


def edges(grey: Image.Image, side: int) -> np.ndarray:
    """The top row, bottom row, left column and right column (corners twice) of
    `grey.resize(reduced_size(grey, side), Image.Resampling.BOX)`, as int16, each pixel within
    a level of it, from the four strips along the edges of `grey` (at least 3 pixels a side)."""
    return resample.edges(grey, reduced_size(grey, side)).astype(np.int16)
