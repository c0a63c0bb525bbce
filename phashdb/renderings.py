"""A transparent source's stored keys: how its exports show it, beside how phashdb sees it.

phashdb hashes a transparent image on white (phashdb.phash._flatten). Its exports are often
made otherwise: flattened on black, or with the alpha dropped (Pillow's convert("RGB"): the
colour stored under transparent pixels shows, black in most files, white in some). Where such
a rendering is another picture to pHash, the source keeps that rendering's pHash and
descriptor as keys of its own (descriptor.KEYS "on black", "alpha dropped"): the index
searches them as it searches the stored hash (Store.search_keys), so a check of the export
finds its stored source, and a batch pass links the two as a check does (phashdb.grouping).

A rendering is kept only when it shows a picture (quality at least descriptor.LOW_QUALITY: a
blank export is never matched by its blankness) and when no key kept before it, nor the hash,
finds it already (a pHash distance over the default threshold): most transparent sources keep
at most one.

Both renderings come from the source's grey (of its colours) and its alpha (on black: the
grey times the opacity), and are read (32x32, as pHash reads) from them reduced
to about KEY_SIDE pixels: a key is searched and confirmed within a distance, not compared bit
for bit with imagehash as the hash is. Flattening each rendering in colour and reading it at
full size made hashing a transparent source 1.4-1.7x slower than without keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageChops

from .descriptor import LOW_QUALITY, Variant, quality, variants

NAMES = ("on black", "alpha dropped")
# A source of at most this many pixels on its longer side keeps its renderings under the names
# of confirm.WIDE_KEYS (searched up to the reach, confirmed strictly beyond the threshold):
# a JPEG export of a 64-pixel emoji moves its pHash 8-16 bits from the rendering's, past the
# threshold (docs/wide-keys.md).
SMALL = 64
SMALL_NAMES = {name: f"{name}, small" for name in NAMES}
# A rendering within this pHash distance of the hash or of a key kept before is found by it
# already (settings.DEFAULT_THRESHOLD: the radius a check searches keys at).
SAME = 8
# The renderings are reduced by a whole factor (a mean of each factor x factor block) to a
# shorter side of at least this, eight times the 32 pixels read, before that read: on the 448
# transparent sources of docs/accuracy-beyond-photos.md's corpus the same 503 keys, 0.12 bits
# from the full-size renderings' on average, 8 at most (128 moved one by 14, and a symmetric
# shape, whose pHash bits are ties, by 12).
KEY_SIDE = 256


def flattened(rgba: Image.Image, background: tuple) -> Image.Image:
    """RGBA image `rgba` shown on `background`, in greyscale."""
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat.convert("L")


def _with_alpha(strip: Image.Image) -> Image.Image:
    """`strip` (of any mode with transparency) as RGBA, or as LA if it is."""
    if strip.mode in ("RGBA", "LA"):
        return strip
    # A copy: Pillow's P conversions may write the transparency into the caller's palette.
    # Through RGBA: the same colours as P -> RGB, without Pillow's warning about a palette's
    # transparency given as bytes (printed to the user for every such file).
    return (strip.copy() if strip.mode == "P" else strip).convert("RGBA")


def on_black(strip: Image.Image) -> Image.Image:
    """The grey of `strip` flattened on black: the grey of its colours times its opacity."""
    rgba = _with_alpha(strip)
    return ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))


def alpha_dropped(strip: Image.Image) -> Image.Image:
    """The grey of `strip`'s colours, its alpha dropped."""
    return _with_alpha(strip).convert("L")


RENDER: dict[str, Callable[[Image.Image], Image.Image]] = {
    NAMES[0]: on_black, NAMES[1]: alpha_dropped,
}  # fmt: skip


def renderings(in_strips: Callable[[Callable], Image.Image], size: tuple) -> Iterator:
    """(name, greyscale rendering) of an image of `size` for each of NAMES, reduced to about
    KEY_SIDE pixels on its shorter side; `in_strips(convert)` gives the greyscale image
    `convert` makes of the image. One full-size rendering at a time is held."""
    factor = max(1, min(size) // KEY_SIDE)
    for name, render in RENDER.items():
        grey = in_strips(render)
        if factor > 1:
            grey = grey.reduce(factor)
        yield name, grey


def rendering_keys(
    img: Image.Image,
    hash: int,
    in_strips: Callable[[Callable], Image.Image],
    seen: Callable[[Image.Image], np.ndarray],
) -> tuple[Variant, ...]:
    """The stored keys of decoded image `img` of pHash `hash` (none unless it has
    transparency), in NAMES' order. `in_strips(convert)` gives the greyscale image `convert`
    makes of `img` (a band of rows at a time: phashdb.phash), `seen(grey)` the 32x32 pixels
    pHash reads of a greyscale image of `img` (upright as the hash's were). A SMALL source's
    keys are named in SMALL_NAMES."""
    if not img.has_transparency_data:
        return ()
    kept: list[Variant] = []
    small = max(img.size) <= SMALL
    for name, grey in renderings(in_strips, img.size):
        pixels = seen(grey)
        if quality(pixels) < LOW_QUALITY:
            continue
        key = variants(pixels, 1)[0]._replace(name=SMALL_NAMES[name] if small else name)
        if all((key.hash ^ h).bit_count() > SAME for h in (hash, *(k.hash for k in kept))):
            kept.append(key)
    return tuple(kept)
