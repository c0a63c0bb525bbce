"""The images the second stage exists for: transparent artwork whose content lies in the alpha
channel, and near-constant images (blank pages) that share a pHash but are not duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from hashing_help import jpeg, png
from PIL import Image, ImageDraw

import phashdb
from phashdb import descriptor
from phashdb.confirm import confirms, flat
from phashdb.phash import read_image

# --- transparency: artwork whose content lies in the alpha channel -------------------------


def shapes_on_transparency(draw_shapes, *, hidden=(0, 0, 0)) -> Image.Image:
    """White shapes on a fully transparent canvas whose hidden colour is `hidden`."""
    img = Image.new("RGBA", (400, 300), (*hidden, 0))
    draw_shapes(ImageDraw.Draw(img))
    return img


def circles(d):
    d.ellipse((40, 40, 200, 200), fill=(255, 255, 255, 255))
    d.ellipse((250, 120, 380, 280), fill=(255, 255, 255, 255))


def bars(d):
    for x in range(20, 400, 60):
        d.rectangle((x, 30, x + 25, 270), fill=(255, 255, 255, 255))
    d.polygon([(0, 300), (200, 150), (400, 300)], fill=(255, 255, 255, 200))


def flattened(img: Image.Image, background) -> Image.Image:
    out = Image.new("RGB", img.size, background)
    out.paste(img, mask=img.getchannel("A"))
    return out


def test_two_alpha_only_artworks_do_not_collide():
    """On white both are a blank page (one hash for both, under v1); their content is hashed."""
    a, b = (
        read_image(png(shapes_on_transparency(circles))),
        read_image(png(shapes_on_transparency(bars))),
    )
    assert (a.hash ^ b.hash).bit_count() > 16
    assert not flat(a.descriptor) and not flat(b.descriptor)
    assert not confirms(a.descriptor, b.descriptor)[0]


@pytest.mark.parametrize("hidden", [(0, 0, 0), (255, 255, 255)])
def test_a_transparent_png_matches_its_exports_that_show_the_picture(tmp_path, hidden):
    art = shapes_on_transparency(circles, hidden=hidden)
    with phashdb.open(tmp_path / "index") as index:
        index.add(png(art), id="art")
        on_black = index.check(jpeg(flattened(art, (0, 0, 0))))
        assert [m.id for m in on_black.matches] == ["art"]
        dropped = index.check(jpeg(art.convert("RGB")))  # Pillow drops alpha: hidden colour shows
        if hidden == (0, 0, 0):
            assert [m.id for m in dropped.matches] == ["art"]
        # onto white (and alpha dropped over hidden white) the export is a blank page: it shows
        # nothing of the picture, and is not called a copy of it
        assert not index.check(jpeg(flattened(art, (255, 255, 255)))).duplicate
        assert not index.check(jpeg(Image.new("RGB", art.size, "white"))).duplicate


def test_a_transparent_logo_visible_on_white_keeps_its_v1_hash(photo_images):
    holed = photo_images["camera"].convert("RGBA")
    holed.paste((0, 0, 0, 0), (0, 0, 100, 100))
    assert read_image(holed).hash == read_image(flattened(holed, (255, 255, 255))).hash


# --- near-constant images --------------------------------------------------------------------


def test_blank_images_share_a_phash_but_are_not_duplicates_of_each_other(tmp_path):
    white, black = Image.new("RGB", (300, 200), "white"), Image.new("RGB", (300, 200), "black")
    grey_page = Image.new("RGB", (300, 200), (200, 200, 200))
    assert read_image(white).hash == read_image(grey_page).hash
    assert (read_image(white).hash ^ read_image(black).hash).bit_count() == 1  # the DC bit
    assert all(flat(read_image(i).descriptor) for i in (white, black, grey_page))
    with phashdb.open(tmp_path / "index") as index:
        index.add(white, id="white")
        assert not index.check(black).duplicate
        assert not index.check(grey_page).duplicate
        # nor is a white page of another size, or re-encoded: a blank page says nothing of
        # where it came from (blank exports of different logos are all this page)
        assert not index.check(jpeg(white, quality=60)).duplicate
        assert not index.check(Image.new("RGB", (640, 480), "white")).duplicate


def test_a_near_constant_image_is_not_matched_by_phash_alone(tmp_path):
    """Loaded as a bare hash (no descriptor), a blank image's pHash says nothing: not matched."""
    white = Image.new("RGB", (300, 200), "white")
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes([("bare-blank", read_image(white).hash)])
        assert not index.check(Image.new("RGB", (300, 200), "black")).duplicate
        assert not index.check(white).duplicate


def test_real_photos_are_not_near_constant(photo_images):
    assert not any(flat(read_image(img).descriptor) for img in photo_images.values())
    quality = [read_image(img).descriptor[32] for img in photo_images.values()]
    assert min(quality) >= 2 * descriptor.LOW_QUALITY


def test_quality_is_the_mean_step_between_neighbours_in_eighths():
    ramp = np.tile(np.arange(32, dtype=np.float64) * 2, (32, 1))  # 2 grey levels a column
    assert descriptor.quality(ramp) == 8  # (2 across + 0 down) / 2 = 1 level = 8 eighths
