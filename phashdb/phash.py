"""The pHash: an image's pixels in greyscale, upright, to its 64-bit DCT hash.

The hash has the same bits as `imagehash.phash(img)` for the same decoded pixels (greyscale,
LANCZOS to 32x32, 2-D DCT-II, top-left 8x8 against their median, first bit most significant),
so `to_hex(h)` equals `str(imagehash.phash(img))`. What a photo collection needs on top: EXIF
orientation, the first frame of animations, transparency flattened onto white, and JPEGs
decoded at reduced scale. Which inputs are read at all, and how bad ones fail, is
phashdb.decode's; the bytes' digest and the record made are phashdb.source's.
"""

from __future__ import annotations

import os
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image

from . import png
from .backdrop import backdrop_variant
from .decode import (
    DEFAULT_MAX_PIXELS,
    check_max_pixels,
    check_pixels,
    decoding,
    name_of,
    open_image,
)
from .descriptor import KEYS, LOW_QUALITY, Variant, middle, pack, quality, variants
from .errors import ImageError

# The name of the hash definition below (HASH_VERSION) and the hash's text form live in
# phashdb.hashvalue, which opening an index imports without numpy or Pillow: change the name
# there with any change of bits here.
from .hashvalue import (  # noqa: F401 (public here too)
    HASH_VERSION,
    READS_HASH_VERSIONS,
    from_hex,
    hash_value,
    to_hex,
)
from .renderings import flattened, rendering_keys
from .resample import resized
from .trim import trimmed_variant
from .unbox import unboxed_variant
from .windows import window_keys

# Transparent pixels are shown on white by browsers and viewers, so that is what we hash.
BACKGROUND = (255, 255, 255)

# JPEGs are decoded by libjpeg at the smallest 1/2, 1/4 or 1/8 scale that keeps both sides at
# least 512 pixels (16 times the 32 pixels hashed), luma channel only. Measured on 231 real photos
# by benchmarks/draft_check.py: within Hamming distance 2 of a full decode (mean 0.03 at their own
# size, 0.16 upscaled to 12 megapixels) and 6.7x faster on 12 megapixels; asking for 256 was a
# little faster but moved one photo by 4.
DRAFT_MODE = "L"
DRAFT_SIZE = (512, 512)

# The same table as PIL.ImageOps.exif_transpose, applied to the greyscale image instead (it
# commutes with the point-wise greyscale conversion and is a quarter of the size to move).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# The first 8 rows of scipy.fftpack's unnormalised 32-point DCT-II matrix: only the 8x8 lowest
# frequencies are kept, and a matrix product spares the CLI the slow import of scipy.
_k, _n = np.arange(8)[:, None], np.arange(32)[None, :]
_DCT = 2 * np.cos(np.pi * _k * (2 * _n + 1) / 64)

Source = str | os.PathLike | bytes | BinaryIO | Image.Image


@dataclass(frozen=True)
class Picture:
    """What reading an image yields: its 64-bit hash and its upright size in pixels; and for the
    second stage, its eight flipped and rotated variants (phashdb.descriptor), as-is first."""

    hash: int
    width: int
    height: int
    variants: tuple[Variant, ...] = field(default=(), compare=False, repr=False)
    # A query's other keys, searched beside the variants and confirmed like them, and kept in
    # the stored descriptor for a batch pass: the picture on a black backdrop seen on white
    # (phashdb.backdrop), the picture inside a plain frame (phashdb.trim). Empty for most images.
    keys: tuple[Variant, ...] = field(default=(), compare=False, repr=False)

    @property
    def descriptor(self) -> bytes | None:
        """The stored second-stage descriptor (phashdb.descriptor, with the variants' hashes
        and the keys), None if not computed."""
        return pack(self.variants, self.keys) if self.variants else None


def hash_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The 64-bit pHash of `source`; see read_image for what it may be."""
    return read_image(source, max_pixels=max_pixels, descriptor=False).hash


def read_image(
    source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS, descriptor: bool = True
) -> Picture:
    """Decode `source` and return its hash and its original size, EXIF orientation applied;
    with `descriptor`, the second stage's variants and keys too (the hash is the same).

    `source` is a path, the bytes of an image file, a binary file object, or a PIL image (hashed
    as it is: no reduced-scale decoding, its current frame). Images over `max_pixels` are refused
    before decoding. Raises ImageError naming the input for anything that is not a readable image.
    """
    check_max_pixels(max_pixels)
    name = name_of(source)
    # max_pixels is the limit that counts: Pillow's warning at half its hard limit would be
    # noise, or (warnings as errors) a refusal below max_pixels. catch_warnings is process-wide
    # before Python 3.14, so threads hashing at once may briefly see each other's filter.
    with warnings.catch_warnings(), ExitStack() as stack:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = source if isinstance(source, Image.Image) else open_image(source, name, stack)
        check_pixels(img, name, max_pixels)
        size = img.size  # before a reduced-scale decode
        with decoding(name):
            if img is not source and img.format in ("JPEG", "MPO"):
                img.draft(DRAFT_MODE, DRAFT_SIZE)
            elif img is not source and img.format == "PNG":
                img = png.decoded(img, grey=True) or img  # Pillow's load (its grey), sooner
            img.load()
            return _picture(img, size, _greyscale_in_strips(img, name), descriptor)


def _picture(img: Image.Image, size: tuple, grey: Image.Image, descriptor: bool) -> Picture:
    """The Picture of a decoded image of `size` (as its file says), from its greyscale pixels
    as stored in the file."""
    width, height = size
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in _TRANSPOSE:
        grey = grey.transpose(_TRANSPOSE[orientation])
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    pixels = _pixels(grey)
    if not descriptor:
        return Picture(_phash_of(pixels), width, height)
    hash = _phash_of(pixels)
    seen_as = variants(pixels)
    upright = _TRANSPOSE.get(orientation)

    def seen(grey: Image.Image) -> np.ndarray:  # a rendering read as the hash's pixels were
        return _pixels(grey.transpose(upright) if upright else grey)

    # kept in descriptor.KEYS' order, as the stored descriptor holds them (a small source's
    # renderings are named after the unboxed key)
    found = (
        backdrop_variant(grey), trimmed_variant(grey),
        *rendering_keys(img, hash, lambda convert: _in_strips(img, convert), seen),
        unboxed_variant(grey), *window_keys(grey, seen_as[0]),
    )  # fmt: skip
    keys = tuple(sorted((k for k in found if k), key=lambda k: KEYS.index(k.name)))
    return Picture(hash, width, height, seen_as, keys)


# Converting a whole decoded image at once takes several full-size copies: an RGBA one needs a
# copy, an RGB canvas, its alpha channel and the greyscale result, 13 bytes a pixel on top of
# the 4 decoded (2.2 GB for a 13000x13000 PNG). Every step is point-wise, so converting a band
# of rows at a time gives the same pixels with only the greyscale image (1 byte a pixel) beside
# the decoded one, and about 16 MB for the band in hand.
STRIP_PIXELS = 1 << 20


def _greyscale_in_strips(img: Image.Image, name: str) -> Image.Image:
    """`_greyscale(img)`, converted STRIP_PIXELS at a time when the image is larger."""
    several = img.height > _rows(img)
    extrema = img.getextrema() if several and img.mode in ("I", "F") else None  # as a whole
    return _in_strips(img, lambda strip: _greyscale(strip, name, extrema))


def _rows(img: Image.Image) -> int:
    return max(1, STRIP_PIXELS // max(img.width, 1))


def _in_strips(img: Image.Image, convert) -> Image.Image:
    """The greyscale image `convert` makes of `img`, converting STRIP_PIXELS at a time when
    `img` is larger (every conversion here is point-wise)."""
    width, height = img.size
    rows = _rows(img)
    if height <= rows:
        return convert(img)
    grey = Image.new("L", img.size)
    for top in range(0, height, rows):
        grey.paste(convert(img.crop((0, top, width, min(top + rows, height)))), (0, top))
    return grey


def _greyscale(img: Image.Image, name: str, extrema: tuple | None = None) -> Image.Image:
    """`img` as 8-bit greyscale ("L"), transparency flattened onto BACKGROUND first; a 32-bit
    image is stretched from `extrema` (default: its own) to 0..255."""
    if img.mode.startswith("I;16"):
        # Pillow would clip 16-bit samples to 255, turning a photo white: keep the high byte.
        return Image.fromarray((np.asarray(img) >> 8).astype(np.uint8))
    if img.mode in ("I", "F"):
        # 32-bit samples have no agreed range; a pHash barely notices a positive linear
        # change of intensity, so stretch min..max to 0..255.
        a = np.asarray(img, dtype=np.float64)
        low, high = extrema or (a.min(), a.max())
        span = high - low
        a = (a - low) * (255 / span) if span else np.zeros_like(a)
        return Image.fromarray(np.rint(a).astype(np.uint8))
    try:  # the pixels are loaded: a ValueError here can only be a conversion Pillow lacks
        if img.has_transparency_data:
            # Pillow's P -> RGBA writes the transparency into the source's palette (a caller's
            # image would then save as a broken GIF): convert a copy.
            return _flatten((img.copy() if img.mode == "P" else img).convert("RGBA"))
        # A JPEG decoded in draft mode is greyscale already: convert("L") would only copy it.
        return img if img.mode == "L" else img.convert("L")
    except ValueError as e:
        raise ImageError(f"{name}: unsupported pixel mode {img.mode!r} ({e})") from e


def _flatten(rgba: Image.Image) -> Image.Image:
    """A transparent image in greyscale as it is seen: on white; but when that is a blank page
    and black shows a picture (white shapes on transparency, whose content lies in the alpha
    channel), on black, as a JPEG export onto black, or Pillow's convert("RGB") of the usual
    black under transparent pixels, shows it."""
    seen = []
    for background in (BACKGROUND, (0, 0, 0)):
        grey = flattened(rgba, background)
        seen.append((quality(_pixels(grey)), grey))
        if seen[0][0] >= LOW_QUALITY:
            break
    return max(seen, key=lambda s: s[0])[1]


def _pixels(grey: Image.Image) -> np.ndarray:
    """The 32x32 image pHash reads."""
    return np.asarray(resized(grey, (32, 32), Image.Resampling.LANCZOS), dtype=np.float64)


def _phash_of(pixels: np.ndarray) -> int:
    """imagehash.phash's bits of the 32x32 image pHash reads, as an int with the first bit
    most significant."""
    # Rounding drops the ~1e-10 noise of the matrix product, which scipy's FFT does not make:
    # without it, coefficients that are exactly equal (all of them in a flat image) compare
    # at random; with it, the bits match imagehash on flat and symmetric images too.
    low = np.round(_DCT @ pixels @ _DCT.T, 6)
    bits = low > middle(low.ravel())
    return int.from_bytes(np.packbits(bits).tobytes(), "big")
