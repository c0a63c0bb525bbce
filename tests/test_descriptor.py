"""phashdb.descriptor and the images it exists for: the second stage's stored descriptor, the
eight flips and rotations of a query, transparent artwork and near-constant images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

import phashdb
from phashdb import descriptor
from phashdb.descriptor import DESCRIPTOR_VERSION, SIZE, VARIANTS, confirms, flat, judge
from phashdb.hashing import read_image

# The persisted definition: these must never change under DESCRIPTOR_VERSION.
GOLDEN = {
    "astronaut": (
        "c2d692764c9f550f3228bd90ddb1c09bcc15b60a7b35b5e29cf14a51b50a67ad"
        "ea7a9ea98f805bb49a82706b336b733025"
    ),
    "camera": (
        "bf78f183c102c06743fc4e9c8cd8bc223327787761d3b39897888f8f4b172e5c"
        "6fcf93c6c855408bb3124c899b24849292"
    ),
    "chelsea": (
        "b1ac5ffae6df46225131214897e25edba411e16552ca376ab8c93d465d07426f"
        "7c826d6a6777607d7f7273728485826e92"
    ),
    "coffee": (
        "bb2483cc209e37f24cf10fc336bc37cf32c29b273209330e60cf9936333c773c"
        "993b949f9164878c876c2d476484203063"
    ),
    "coins": (
        "e053d552b52ca9732b58544d52923aac7becc603d05333d4d6a552ab8ffbcc25"
        "cd8181756b6d6861445453566054564861"
    ),
    "moon": (
        "a327d9855647109b14db367998dc7764d9346d268d93a6c763c3c0cdb36399d0"
        "207475727574707078716a6d756f666372"
    ),
    "rocket": (
        "c0d937671b96ec201bdfe521125e67a19c7e0381fc7e0381ec7a1387e4f81b0f"
        "34282e281c3d423926505649314f5d5e2c"
    ),
    "motorcycle_left": (
        "c5110711c6316b0f925a70e8a88573693576cd52694b973b8c29b58ce59f7df9"
        "b3489c73674f5551656f676b4ca2948965"
    ),
    "hubble_deep_field": (
        "8486cc4e4f679ec1ba124d1d331c3eb0387374e52ba6a3da95a77963332313dc"
        "46111b1212141511121012171712141411"
    ),
    "retina": (
        "c010cc7a1feb97a27afcc01f2d010ff5781f70952c7e0fc770ecec0a2de08d6a"
        "4b236761227d83745a7583775b23655e20"
    ),
    "brick": (
        "a2728dc1cb7515456efafded4659f98a9ef5234f259100ae7c72496c84624974"
        "596e6f7072706f6f726f6e6e6f706f706f"
    ),
    "grass": (
        "92bbf2c8e1c08bdcabd80b0e77720dbe5132b7c06789db1588daa8e0a7ae9b31"
        "6978747b787173797671767a797075787a"
    ),
    "gravel": (
        "c61d75441cb5aeef347624762495a6b49a2ee58d058be5ecf3b741858b9cb40c"
        "7a7d7e7b7a7e7f7b7d808381837b83817e"
    ),
    "page": (
        "806eed31a431a99c664ed00a90c2da06d2469b9ec299db31b36e6f7774b13df9"
        "6c87abcaea7296bace6c94c1db6895c7e3"
    ),
    "text": (
        "b69930f3bb588eb223c9713fcdd0dc3b90612438a8b337d9d7ea64cdec640183"
        "5b73707f867d77777f7f8988888a878e8b"
    ),
}

# PIL's transposition giving the query each variant names, from the stored image.
MAKES = {
    "as-is": None,
    "mirrored": Image.Transpose.FLIP_LEFT_RIGHT,
    "flipped": Image.Transpose.FLIP_TOP_BOTTOM,
    "rotated 180": Image.Transpose.ROTATE_180,
    "transposed": Image.Transpose.TRANSPOSE,
    "rotated 90": Image.Transpose.ROTATE_90,
    "rotated 270": Image.Transpose.ROTATE_270,
    "transverse": Image.Transpose.TRANSVERSE,
}


def jpeg(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=options.pop("quality", 85), **options)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_golden_vectors_pin_the_descriptor(photo_images):
    assert DESCRIPTOR_VERSION == "dct256-q-thumb4-v1"
    got = {name: read_image(img).descriptor.hex() for name, img in photo_images.items()}
    assert all(len(bytes.fromhex(d)) == SIZE for d in got.values())
    assert got == GOLDEN


def test_the_as_is_variant_is_the_images_own_hash(photo_images):
    for img in photo_images.values():
        picture = read_image(img)
        assert [v.name for v in picture.variants] == [name for name, *_ in VARIANTS]
        assert picture.variants[0].hash == picture.hash == phashdb.hash_image(img)


@pytest.mark.parametrize("name", list(MAKES))
def test_each_variant_undoes_its_flip_or_rotation(name, photo_images):
    """The variant named for how a query was made from a photo is (nearly) the photo itself:
    derived from the query's DCT coefficients, it equals the hash of the query flipped back,
    up to the resampling of a transposed image."""
    for photo in ("astronaut", "camera", "coffee", "rocket"):
        img = photo_images[photo]
        query = img if MAKES[name] is None else img.transpose(MAKES[name])
        stored = read_image(img)
        variant = {v.name: v for v in read_image(query).variants}[name]
        assert (variant.hash ^ stored.hash).bit_count() <= 2, photo
        ok, score = confirms(variant.descriptor, stored.descriptor)
        assert ok and score < -70, (photo, score)
        # and no other variant looks like the photo
        others = [v for v in read_image(query).variants if v.name != name]
        assert all((v.hash ^ stored.hash).bit_count() > 10 for v in others), photo


def test_distinct_photos_are_not_confirmed(photo_images):
    descs = [(name, read_image(img).descriptor) for name, img in photo_images.items()]
    for a, da in descs:
        for b, db in descs:
            if a < b:
                ok, score = confirms(da, db)
                assert not ok and score > descriptor.SCORE_LIMIT, (a, b, score)


def test_an_edited_copy_beyond_the_threshold_is_confirmed(photo_images):
    """A 3-degree rotation of a photo is further from it than the plain threshold, and the
    second stage still finds it: the point of gathering candidates at a wider radius."""
    img = photo_images["astronaut"].convert("RGB")
    copy = read_image(jpeg(img.rotate(3, Image.BICUBIC)))
    stored = read_image(img)
    d = (copy.hash ^ stored.hash).bit_count()
    assert 8 < d <= 16
    assert judge("as-is", d, 8, copy.descriptor, stored.descriptor)[0]
    assert not judge("as-is", d, 8, None, None)[0]  # without descriptors: the plain threshold


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
        # the same blank page, re-encoded, is the same picture
        assert [m.id for m in index.check(jpeg(white, quality=60)).matches] == ["white"]


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


def test_an_embedded_index_made_before_the_second_stage_is_read_and_extended(tmp_path, photos):
    """An index of v1 hashes without the descriptor column: its hashes are matched by the plain
    threshold, new images are stored with their descriptors."""
    import sqlite3

    location = tmp_path / "index"
    with phashdb.open(location) as index:
        index.add(photos["astronaut"], id="old")
    db = sqlite3.connect(location / "index.sqlite3")
    db.execute("ALTER TABLE images DROP COLUMN descriptor")
    db.execute("DELETE FROM meta WHERE key = 'descriptor_version'")
    db.execute("UPDATE meta SET value = '\"phash-dct64-v1\"' WHERE key = 'hash_version'")
    db.commit()
    db.close()
    with phashdb.open(location) as index:
        assert index.get("old").descriptor is None
        assert index.settings["descriptor_version"] == DESCRIPTOR_VERSION
        [match] = index.check(photos["astronaut"]).matches
        assert (match.id, match.distance, match.score) == ("old", 0, None)
        index.add(photos["coffee"], id="new")
        assert index.get("new").descriptor == read_image(photos["coffee"]).descriptor
