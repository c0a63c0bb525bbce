"""What a candidate method may store and search for an image, beyond its pHash: the pHashes (and
second-stage descriptors) of sub-windows of the picture, each window cut from the upright
greyscale image as phashdb reads it.

A window key finds a re-framed copy when one side's window is the other side's whole picture:
a stored image's centred 16:9 window is what a 16:9 crop of it shows in full (stored-side
windows), and a framed copy's inner window is the stored picture (query-side windows).
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
from PIL import Image, ImageOps

from phashdb import decode, descriptor
from phashdb import phash as hashing

# A window: (name, function of (width, height) -> box or None when it would be the whole image).
RATIOS = {"16:9": 16 / 9, "16:10": 16 / 10, "4:3": 4 / 3, "5:4": 5 / 4, "1:1": 1.0}
# A window that cuts less than this of a side is left out: the whole picture's key covers it.
MIN_CUT = 0.04


def _ratio_box(ratio: float):
    def box(w: int, h: int):
        if w / h > ratio * (1 + MIN_CUT):
            nw = round(h * ratio)
            return ((w - nw) / 2, 0, (w + nw) / 2, h)
        if w / h < ratio * (1 - MIN_CUT):
            nh = round(w / ratio)
            return (0, (h - nh) / 2, w, (h + nh) / 2)
        return None

    return box


def _part(x0: float, y0: float, x1: float, y1: float):
    return lambda w, h: (x0 * w, y0 * h, x1 * w, y1 * h)


WINDOWS = {
    **{f"centre {k}": _ratio_box(r) for k, r in RATIOS.items()},
    "centre 80%": _part(0.1, 0.1, 0.9, 0.9),
    "corner tl 90%": _part(0, 0, 0.9, 0.9),
    "corner tr 90%": _part(0.1, 0, 1, 0.9),
    "corner bl 90%": _part(0, 0.1, 0.9, 1),
    "corner br 90%": _part(0.1, 0.1, 1, 1),
    "inside a 5% frame": _part(1 / 22, 1 / 22, 21 / 22, 21 / 22),
    "top 80%": _part(0, 0, 1, 0.8),
    "bottom 80%": _part(0, 0.2, 1, 1),
}
NAMES = tuple(WINDOWS)
# Windows are cut from the greyscale image reduced to this many pixels on its longer side: a
# pHash reads 32x32, and the library decodes JPEGs at about this size too.
WORK_SIDE = 512


def grey_of(source) -> Image.Image:
    """The upright greyscale image phashdb hashes (transparency flattened as it does), reduced
    to WORK_SIDE: the library's own steps, without its reduced-scale JPEG decoding."""
    with ExitStack() as stack:
        img = source if isinstance(source, Image.Image) else decode.open_image(source, "x", stack)
        img.load()
        img = ImageOps.exif_transpose(img)
        grey = hashing._greyscale(img, "x")
    if max(grey.size) > WORK_SIDE:
        f = WORK_SIDE / max(grey.size)
        grey = grey.resize((max(1, round(grey.width * f)), max(1, round(grey.height * f))),
                           Image.Resampling.BOX)  # fmt: skip
    return grey


def window_keys(grey: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes uint64 (W,), descriptors uint8 (W, SIZE), valid bool (W,)) of every window."""
    hashes = np.zeros(len(WINDOWS), np.uint64)
    descs = np.zeros((len(WINDOWS), descriptor.SIZE), np.uint8)
    valid = np.zeros(len(WINDOWS), bool)
    for k, box in enumerate(WINDOWS.values()):
        b = box(*grey.size)
        if b is None:
            continue
        b = tuple(round(v) for v in b)
        if b[2] - b[0] < 8 or b[3] - b[1] < 8:
            continue
        v = descriptor.variants(hashing._pixels(grey.crop(b)))[0]
        hashes[k], valid[k] = v.hash, True
        descs[k] = np.frombuffer(v.descriptor, np.uint8)
    return hashes, descs, valid
