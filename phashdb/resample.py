"""Pillow's `Image.resize` of a greyscale image, the same bytes, computed in C.

The reduction of every image to the 32x32 pixels pHash reads was a third of hashing a small
photo, and the keys reduce it again (BOX to 64, 128 pixels; LANCZOS to 32x32). phashdb's
`_resample.c` does Pillow's arithmetic (the filter's weights, fixed point, one 8-bit pass per
axis, clipping) in loops the compiler vectorises, and reads the pixels without a copy (Pillow's
Arrow export). The hash spec is Pillow's resize: where the C code cannot give its bytes (no
extension, as in the MapReduce tasks' zip; a Pillow other than the 13 it follows; another mode
or filter; rows not stored in one block) Pillow resizes.
"""

from __future__ import annotations

import numpy as np
import PIL
from PIL import Image

try:  # in C (phashdb/_resample.c), 3-6x faster than Pillow's resize to 32x32
    from . import _resample
except ImportError:  # phashdb from a zip, as the MapReduce tasks have it: no C extension
    _resample = None

# The arithmetic of Pillow 13 (13.0 first runs the vertical pass when the height shrinks more
# than twice the width); another Pillow resizes for itself, so the bytes stay its own.
if PIL.__version__.split(".")[0] != "13":
    _resample = None

# NEAREST is no resampling (Pillow takes another path for it).
FILTERS = frozenset(Image.Resampling) - {Image.Resampling.NEAREST}


def resized(
    grey: Image.Image | np.ndarray,
    size: tuple[int, int],
    filter: Image.Resampling,
    box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """`grey`, an "L" image or a 2-D uint8 array, resized to `size` (width, height) by Pillow's
    resampling `filter`, reading the region `box` (left, upper, right, lower; the whole image
    by default): `np.asarray(grey.resize(size, filter, box))`, as a read-only uint8 array."""
    # a box of NaN, or of numbers no image reaches (inf once made 32-bit floats), is left to
    # Pillow, whose answer to it is the spec
    plain = box is None or all(abs(v) < 2**31 for v in box)
    source = _source(grey, filter) if plain else None
    if source is None:
        image = grey if isinstance(grey, Image.Image) else Image.fromarray(grey)
        return np.asarray(image.resize(size, filter, box))
    height, width = grey.shape if isinstance(grey, np.ndarray) else (grey.height, grey.width)
    box = (0, 0, width, height) if box is None else box
    out = _resample.resample(source, width, height, tuple(size), int(filter), box)
    return np.frombuffer(out, np.uint8).reshape(size[1], size[0])


def resized_boxes(
    grey: Image.Image | np.ndarray,
    size: tuple[int, int],
    filter: Image.Resampling,
    boxes: list[tuple[float, float, float, float]],
) -> np.ndarray:
    """`resized(grey, size, filter, box)` of each of `boxes`, stacked (len(boxes), height,
    width): one call into C for all of them where it can (an image's window keys)."""
    source = (
        _source(grey, filter) if boxes and all(abs(v) < 2**31 for b in boxes for v in b) else None
    )
    if source is None:
        return np.stack([resized(grey, size, filter, box) for box in boxes])
    height, width = grey.shape if isinstance(grey, np.ndarray) else (grey.height, grey.width)
    out = _resample.resample_boxes(source, width, height, tuple(size), int(filter), boxes)
    return np.frombuffer(out, np.uint8).reshape(len(boxes), size[1], size[0])


def edges(grey: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The top row, bottom row, left column and right column of "L" image `grey` reduced to
    `size` by the BOX filter, each reduced from the strip along its edge alone (phashdb.border):
    one call into C for the four strips where it can, as a uint8 array."""
    width, height = grey.size
    w, h = size
    source = _source(grey, Image.Resampling.BOX)
    if source is not None:
        return np.frombuffer(_resample.edges(source, width, height, w, h), np.uint8)
    fx, fy = width / w, height / h
    box = Image.Resampling.BOX
    strips = (
        resized(grey, (w, 1), box, (0, 0, width, fy)),
        resized(grey, (w, 1), box, (0, height - fy, width, height)),
        resized(grey, (1, h), box, (0, 0, fx, height)),
        resized(grey, (1, h), box, (width - fx, 0, width, height)),
    )
    return np.concatenate(strips, axis=None)


def _source(grey: Image.Image | np.ndarray, filter: Image.Resampling) -> object | None:
    """What _resample reads `grey`'s pixels from without a copy, or None when Pillow must resize
    it."""
    if _resample is None or filter not in FILTERS:
        return None
    if isinstance(grey, np.ndarray):
        if grey.dtype != np.uint8 or grey.ndim != 2:
            return None
        return np.ascontiguousarray(grey)
    if grey.mode != "L":
        return None
    try:
        return grey.__arrow_c_array__()[1]
    except ValueError:  # rows not stored in one run (a large image's several blocks)
        return None
