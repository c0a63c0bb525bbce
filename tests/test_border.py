"""The ring read off an image's edges (phashdb.border): within a level of the whole reduction's,
so that ruling the backdrop and trimmed keys out from it never loses one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from phashdb import backdrop, border, trim
from phashdb.phash import _greyscale


def whole_ring(grey: Image.Image, side: int) -> np.ndarray:
    a = np.asarray(grey.resize(border.reduced_size(grey, side), Image.BOX), dtype=np.int16)
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def keys(grey: Image.Image) -> tuple:
    return backdrop.backdrop_variant(grey), trim.trimmed_variant(grey)


def keys_from_the_whole(grey: Image.Image) -> tuple:
    with pytest.MonkeyPatch.context() as m:  # as before the ring: every image reduced whole
        m.setattr(backdrop, "ring", lambda grey, side: None)
        m.setattr(trim, "edge_ring", lambda grey, side: None)
        return keys(grey)


def picture(seed: int, width: int, height: int) -> Image.Image:
    """Smooth random shapes (a picture, not noise) of the given size, in greyscale."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16)), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.BILINEAR)


def framed(grey: Image.Image, fill: int, noise: int, share: float, sides: tuple) -> Image.Image:
    """`grey` inside a frame of `fill` grey, +-`noise` levels (as JPEG leaves a plain colour),
    `share` of each side wide, on `sides` (top, bottom, left, right) only."""
    a = np.asarray(ImageOps.expand(grey, border=1), dtype=np.int16)[1:-1, 1:-1].copy()
    h, w = a.shape
    dy, dx = max(1, round(h * share)), max(1, round(w * share))
    rng = np.random.default_rng(fill * 31 + noise)
    frame = np.zeros_like(a, dtype=bool)
    for side, cut in zip(sides, (np.s_[:dy], np.s_[h - dy :], np.s_[:, :dx], np.s_[:, w - dx :])):
        if side:
            frame[cut] = True
    a[frame] = fill + rng.integers(-noise, noise + 1, frame.sum())
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    width=st.integers(3, 700),
    height=st.integers(3, 700),
    fill=st.one_of(st.integers(0, 40), st.integers(0, 255)),
    noise=st.integers(0, 14),
    share=st.floats(0.0, 0.3),
    sides=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_the_ring_is_within_a_level_and_the_keys_are_the_same(
    seed, width, height, fill, noise, share, sides
):
    grey = framed(picture(seed, width, height), fill, noise, share, sides)
    for side in (backdrop.SIDE, trim.SIDE):
        ring = border.edges(grey, side)
        assert np.abs(ring - whole_ring(grey, side)).max() <= 1
    with pytest.MonkeyPatch.context() as m:
        m.setattr(border, "MIN_PIXELS", 0)  # the edges read on small images too
        assert keys(grey) == keys_from_the_whole(grey)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_real_photos_framed_and_on_black_keep_their_keys(photos, name):
    with Image.open(photos[name]) as img:
        grey = _greyscale(img.convert("RGB"), name)
    for framed in (
        grey,
        ImageOps.expand(grey, border=grey.width // 20, fill=40),
        ImageOps.expand(grey, border=grey.width // 8, fill=0),
    ):
        found = keys(framed)
        assert found == keys_from_the_whole(framed)
    assert found[0] is not None and found[1] is not None  # the keys exist: they were compared


def test_small_thin_and_huge_images_are_reduced_whole():
    assert border.ring(Image.new("L", (300, 300)), 128) is None  # under MIN_PIXELS
    assert border.ring(Image.new("L", (2, 500_000)), 128) is None
    assert border.ring(Image.new("L", (border.MAX_SIDE, 8)), 128) is None
    assert border.ring(Image.new("L", (400, 400)), 128).size == 4 * 128
    assert border.edges(Image.new("L", (3, 3)), 128).size == 12


def off_by_one(worst):
    """border.ring as the whole reduction's ring moved by a level in the direction `worst`
    gives for each pixel: the most the strips may be off (see the first test)."""

    def ring(grey, side):
        whole = whole_ring(grey, side)
        return whole + worst(whole)

    return ring


@pytest.mark.parametrize(
    "fill, worst",
    [
        # Every ring pixel exactly as dark as a backdrop may be, read a level lighter.
        ((backdrop.DARK,) * 2, lambda ring: np.ones_like(ring)),
        # A frame whose bottom is TOLERANCE from the rest, read a level further apart each.
        ((100, 100 + trim.TOLERANCE), lambda ring: np.where(ring > np.median(ring), 1, -1)),
    ],
)
def test_a_ring_a_level_off_never_rules_a_key_out(photos, fill, worst):
    with Image.open(photos["astronaut"]) as img:
        grey = _greyscale(img.convert("RGB"), "astronaut")
    pad = grey.width // 8  # fill[0] on three sides, fill[1] on the bottom: the ring's median
    grey = ImageOps.expand(
        ImageOps.expand(grey, (pad, pad, pad, 0), fill[0]), (0, 0, 0, pad), fill[1]
    )
    expected = keys_from_the_whole(grey)
    assert any(expected)  # the key exists, at the edge of the ring's rule
    with pytest.MonkeyPatch.context() as m:
        m.setattr(backdrop, "ring", off_by_one(worst))
        m.setattr(trim, "edge_ring", off_by_one(worst))
        assert keys(grey) == expected
