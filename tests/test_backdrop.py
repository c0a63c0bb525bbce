"""The backdrop key (phashdb.backdrop): a transparent logo stored as phashdb sees it (on white)
is found from its exports on black and with the alpha dropped; blank exports are not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from phashdb.backdrop import backdrop_variant
from phashdb.confirm import flat
from phashdb.phash import read_image, to_hex

# The backdrop key of logo(sun) flattened on black: pins the definition (phashdb.backdrop).
GOLDEN_SUN_ON_BLACK = "a5d48fd01dd07d23"


def sun(d: ImageDraw.ImageDraw) -> None:
    d.ellipse((110, 60, 290, 240), fill=(230, 160, 20, 255), outline=(120, 60, 0, 255), width=8)
    for x in range(40, 360, 64):
        d.rectangle((x, 262, x + 36, 282), fill=(40, 90, 200, 255))
    d.polygon([(20, 290), (200, 250), (380, 290)], fill=(30, 120, 60, 180))


def gear(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((60, 40, 340, 120), fill=(200, 30, 40, 255))
    d.ellipse((150, 130, 250, 230), fill=(20, 20, 120, 255))
    d.polygon([(40, 280), (120, 160), (200, 280)], fill=(90, 90, 90, 255))


def logo(draw, hidden=(0, 0, 0)) -> Image.Image:
    """A coloured logo on a transparent canvas whose hidden colour is `hidden`."""
    img = Image.new("RGBA", (400, 300), (*hidden, 0))
    draw(ImageDraw.Draw(img))
    return img


def on(img: Image.Image, colour) -> Image.Image:
    out = Image.new("RGB", img.size, colour)
    out.paste(img, mask=img.getchannel("A"))
    return out


def encoded(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def exports(img: Image.Image) -> dict[str, bytes]:
    return {
        "on white": encoded(on(img, (255, 255, 255))),
        "on black": encoded(on(img, (0, 0, 0))),
        "alpha dropped": encoded(img.convert("RGB")),
    }


def backdrop(source):
    return {k.name: k for k in read_image(source).keys}.get("backdrop")


def test_the_backdrop_key_is_pinned():
    key = backdrop(on(logo(sun), (0, 0, 0)))
    assert key is not None and key.name == "backdrop"
    assert to_hex(key.hash) == GOLDEN_SUN_ON_BLACK
    assert key == backdrop_variant(on(logo(sun), (0, 0, 0)).convert("L"))


def test_the_backdrop_key_is_the_picture_on_white():
    stored = read_image(encoded(logo(sun), "PNG"))
    key = backdrop(encoded(on(logo(sun), (0, 0, 0))))
    assert (key.hash ^ stored.hash).bit_count() <= 8
    assert (read_image(encoded(on(logo(sun), (0, 0, 0)))).hash ^ stored.hash).bit_count() > 16


def test_photos_have_no_backdrop_key(photo_images):
    for name in ("astronaut", "camera", "chelsea", "coffee"):
        assert backdrop(photo_images[name]) is None, name


def test_a_black_page_or_a_blank_export_has_no_backdrop_key():
    assert backdrop(Image.new("RGB", (300, 200), "black")) is None
    # a white dot on black would be a white page once its backdrop is white: near-constant
    dot = Image.new("RGB", (300, 200), "black")
    ImageDraw.Draw(dot).ellipse((145, 95, 150, 100), fill="white")
    assert backdrop(dot) is None


def test_a_transparent_logo_matches_its_three_exports(index):
    index.add(encoded(logo(sun), "PNG"), id="sun")
    index.add(encoded(logo(gear), "PNG"), id="gear")
    found = {}
    for name, data in exports(logo(sun)).items():
        found[name] = [(m.id, m.variant) for m in index.check(data).matches]
    # Since index format 2 the source's own stored key "on black" (phashdb.renderings) finds
    # the black exports too, closer than the query's backdrop key: it names the match.
    assert found == {
        "on white": [("sun", "as-is")],
        "on black": [("sun", "on black")],
        "alpha dropped": [("sun", "on black")],  # the black under transparent pixels shows
    }
    assert [m.id for m in index.check(exports(logo(gear))["on black"]).matches] == ["gear"]


def test_an_export_showing_nothing_is_not_a_copy(index):
    """A black logo exported on black, or over its hidden black, is a black page."""
    black = logo(lambda d: d.ellipse((100, 50, 300, 250), fill=(0, 0, 0, 255)))
    index.add(encoded(black, "PNG"), id="black logo")
    for name, data in exports(black).items():
        verdict = index.check(data)
        if name == "on white":
            assert [m.id for m in verdict.matches] == ["black logo"]
        else:
            assert flat(read_image(data).descriptor)
            assert not verdict.duplicate, name


def test_black_exports_of_two_different_logos_are_not_duplicates(index):
    """Two black logos exported on black are both a black page: nothing tells them apart, so
    neither is a copy of the other (issue 24: 364 such pairs among 10^8 were matched)."""
    ring = logo(lambda d: d.ellipse((100, 50, 300, 250), outline=(0, 0, 0, 255), width=30))
    bars = logo(lambda d: [d.rectangle((x, 40, x + 30, 260), fill=(0, 0, 0)) for x in (60, 180)])
    index.add(exports(ring)["on black"], id="ring on black")
    for name in ("on black", "alpha dropped"):
        data = exports(bars)[name]
        assert flat(read_image(data).descriptor)
        assert not index.check(data).duplicate, name
    index.add(exports(bars)["on black"], id="bars on black")
    assert index.dedupe() == []


def test_a_backdrop_needs_half_of_the_border_dark():
    """A picture on black that touches its border (a portrait cut off at the bottom) still has
    a backdrop key while half its border is black (phashdb.backdrop.BORDER_SHARE, 0.5)."""

    def portrait(touching: float) -> Image.Image:
        # `touching` of the border is covered: the picture reaches the bottom and up the sides
        img = Image.new("RGB", (400, 400), (0, 0, 0))
        d = ImageDraw.Draw(img)
        up = round(400 * (4 * touching - 1) / 2)  # rows of each side covered beyond the bottom
        d.rectangle((0, 400 - max(up, 1), 399, 399), fill=(200, 150, 90))
        d.ellipse((100, 40, 300, 240), fill=(230, 190, 140), outline=(90, 40, 10), width=6)
        d.rectangle((140, 120, 260, 140), fill=(40, 30, 20))
        return img

    assert backdrop(encoded(portrait(0.45))) is not None  # 55% of the border black
    assert backdrop(encoded(portrait(0.55))) is None  # 45% black


def grown(dark: np.ndarray, border: np.ndarray) -> np.ndarray:
    """The definition of backdrop.reached_from: the border's dark pixels grown through dark
    pixels side by side or one above the other, a pixel a round, until nothing changes."""
    reached = dark & border
    while True:
        more = reached.copy()
        more[1:] |= reached[:-1]
        more[:-1] |= reached[1:]
        more[:, 1:] |= reached[:, :-1]
        more[:, :-1] |= reached[:, 1:]
        more &= dark
        if (more == reached).all():
            return reached
        reached = more


def test_the_backdrop_is_what_the_border_s_dark_pixels_reach():
    """By labelled regions, in C (phashdb._regions) and in numpy (the MapReduce tasks' zip),
    as growing from the border defines it: random masks, a spiral, tiny images."""
    from phashdb import _regions, unbox
    from phashdb.backdrop import reached_from

    rng = np.random.default_rng(25)
    masks = [rng.random(tuple(rng.integers(1, 40, 2))) < rng.random() for _ in range(60)]
    spiral = np.zeros((21, 21), dtype=bool)  # a winding corridor from the border inwards
    for i in range(0, 10, 2):
        spiral[i, i : 21 - i] = spiral[i : 21 - i, 20 - i] = spiral[20 - i, i : 21 - i] = True
        spiral[i + 2 : 21 - i, i] = True
    masks.append(spiral)
    for dark in masks:
        border = np.zeros_like(dark)
        border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
        expected = grown(dark, border)
        assert np.array_equal(reached_from(dark, border), expected)
        unbox._regions = None
        try:
            assert np.array_equal(reached_from(dark, border), expected)
        finally:
            unbox._regions = _regions
    assert grown(spiral, border).sum() > 40  # the corridor is reached deep inside
