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
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from .descriptor import LOW_QUALITY, Variant, quality, variants

NAMES = ("on black", "alpha dropped")
# A rendering within this pHash distance of the hash or of a key kept before is found by it
# already (settings.DEFAULT_THRESHOLD: the radius a check searches keys at).
SAME = 8


def flattened(rgba: Image.Image, background: tuple) -> Image.Image:
    """RGBA image `rgba` shown on `background`, in greyscale."""
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat.convert("L")


def on_black(strip: Image.Image) -> Image.Image:
    # A copy: Pillow's P conversions may write the transparency into the caller's palette.
    return flattened((strip.copy() if strip.mode == "P" else strip).convert("RGBA"), (0, 0, 0))


def alpha_dropped(strip: Image.Image) -> Image.Image:
    # Through RGBA: the same colours as P -> RGB, without Pillow's warning about a palette's
    # transparency given as bytes (printed to the user for every such file).
    rgba = (strip.copy() if strip.mode == "P" else strip).convert("RGBA")
    return rgba.convert("RGB").convert("L")


RENDER: dict[str, Callable[[Image.Image], Image.Image]] = {
    NAMES[0]: on_black, NAMES[1]: alpha_dropped,
}  # fmt: skip


def rendering_keys(
    img: Image.Image, hash: int, seen: Callable[[Callable], np.ndarray]
) -> tuple[Variant, ...]:
    """The stored keys of decoded image `img` of pHash `hash` (none unless it has
    transparency), in NAMES' order; `seen(render)` gives the 32x32 pixels pHash reads of the
    greyscale image `render` makes of `img` (made a band of rows at a time, upright as the
    hash's pixels were: phashdb.phash)."""
    if not img.has_transparency_data:
        return ()
    kept: list[Variant] = []
    for name in NAMES:
        pixels = seen(RENDER[name])
        if quality(pixels) < LOW_QUALITY:
            continue
        key = variants(pixels)[0]._replace(name=name)
        if all((key.hash ^ h).bit_count() > SAME for h in (hash, *(k.hash for k in kept))):
            kept.append(key)
    return tuple(kept)
