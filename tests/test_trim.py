"""The trimmed key (phashdb.trim): a copy inside a plain frame is found as the picture framed."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from phashdb.phash import read_image, to_hex
from phashdb.trim import trimmed_variant

# The trimmed key of the astronaut in a 5% frame: pins the definition (phashdb.trim).
GOLDEN_ASTRONAUT_FRAMED = "c2924c5532bddfc8"


def framed(img: Image.Image, share: float = 0.05, colour=(40, 30, 20)) -> Image.Image:
    border = (round(img.width * share), round(img.height * share))
    return ImageOps.expand(img.convert("RGB"), border=border + border, fill=colour)


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def trimmed(source):
    return {k.name: k for k in read_image(source).keys}.get("trimmed")


def test_the_trimmed_key_is_pinned(photo_images):
    copy = framed(photo_images["astronaut"])
    key = trimmed(copy)
    assert key is not None and to_hex(key.hash) == GOLDEN_ASTRONAUT_FRAMED
    assert key == trimmed_variant(copy.convert("L"))


def test_photos_have_no_trimmed_key(photo_images):
    for name in ("astronaut", "camera", "chelsea", "coffee", "rocket"):
        assert trimmed(photo_images[name]) is None, name


def test_the_trimmed_key_is_the_picture_framed(photo_images):
    for name in ("astronaut", "chelsea", "coffee"):
        img = photo_images[name]
        key = trimmed(jpeg(framed(img, 0.08, (250, 250, 250))))
        assert (key.hash ^ read_image(img).hash).bit_count() <= 4, name


def test_a_framed_copy_is_found_as_trimmed(index, photo_images):
    """A 5% frame moves the coffee photo's pHash past the reach: only the trimmed key finds it."""
    img = photo_images["coffee"]
    index.add(img, id="coffee")
    index.add(photo_images["chelsea"], id="chelsea")
    copy = jpeg(framed(img))
    assert (read_image(copy).hash ^ read_image(img).hash).bit_count() > 16
    assert [(m.id, m.variant) for m in index.check(copy).matches] == [("coffee", "trimmed")]


def test_a_plain_page_or_an_object_on_a_plain_ground_has_no_trimmed_key():
    assert trimmed(Image.new("RGB", (300, 200), (40, 30, 20))) is None
    small = Image.new("RGB", (400, 400), "white")
    small.paste(Image.new("RGB", (60, 60), "black"), (170, 170))  # 15% of a side: no frame
    assert trimmed(small) is None
