"""phashdb.decode: every EXIF orientation, format, mode, transparency and animation hashes as
the photo does; HEIC/HEIF only with pillow-heif, registered on first need."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from hashing_help import distance, encode, imagehash_phash
from PIL import Image

from phashdb import ImageError, decode, phash
from phashdb.phash import Picture, hash_image, read_image

ORIENTATION = 0x0112  # the EXIF tag
# What a camera stores for each EXIF orientation, given the upright picture (the inverse of the
# transposition a viewer applies).
STORED = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


# --- orientation, formats, modes, transparency, animation ----------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation, photo_images):
    upright = photo_images["chelsea"]  # 451 x 300: a swapped width and height would show
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored = STORED[orientation](upright)
    # lossless: exactly the upright photo's hash and size
    for fmt, options in [("PNG", {}), ("TIFF", {}), ("WEBP", {"lossless": True})]:
        picture = read_image(encode(stored, fmt, exif=exif, **options))
        assert picture == Picture(hash_image(upright), upright.width, upright.height), fmt
    # JPEG: as close as the upright photo's own JPEG (the blocks fall elsewhere when rotated)
    jpeg = read_image(encode(stored, "JPEG", quality=90, exif=exif))
    assert (jpeg.width, jpeg.height) == upright.size
    assert distance(jpeg.hash, hash_image(encode(upright, "JPEG", quality=90))) <= 2


@pytest.mark.parametrize(
    "fmt, options, tolerance",
    [
        ("PNG", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("WEBP", {"quality": 80}, 2),
        ("JPEG", {"quality": 85}, 2),
        ("GIF", {}, 2),
    ],
    ids=lambda x: str(x),
)
def test_every_format_hashes_like_the_photo(fmt, options, tolerance, photo_images):
    for name in ("astronaut", "coffee", "camera"):
        img = photo_images[name]
        data = encode(img, fmt, **options)
        assert distance(hash_image(data), hash_image(img)) <= tolerance, name


@pytest.mark.parametrize(
    "mode, fmt",
    [("1", "PNG"), ("L", "PNG"), ("P", "PNG"), ("RGB", "PNG"), ("CMYK", "JPEG"),
     ("CMYK", "TIFF"), ("YCbCr", "JPEG"), ("RGBX", None), ("HSV", None)],
)  # fmt: skip
def test_modes_without_alpha_hash_as_imagehash_does(mode, fmt, photo_images):
    img = photo_images["astronaut"].convert(mode)
    assert hash_image(img) == imagehash_phash(img)
    assert distance(hash_image(img), hash_image(photo_images["astronaut"])) <= 2
    if fmt:
        data = encode(img, fmt)
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.mode == mode or fmt == "JPEG"
            assert distance(hash_image(data), hash_image(decoded)) <= 2


def test_16_bit_images_hash_like_their_8_bit_photo(photo_images):
    grey = photo_images["camera"]
    wide = np.asarray(grey).astype(np.uint16) * 257  # 0..255 -> 0..65535
    i16 = Image.fromarray(wide)
    assert i16.mode == "I;16"
    data = encode(i16, "PNG")
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "I;16"
    assert hash_image(i16) == hash_image(data) == hash_image(grey)
    # where imagehash clips 16-bit samples to white
    assert distance(imagehash_phash(i16), hash_image(grey)) > 10


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_images_are_stretched_from_their_range(mode, photo_images):
    grey = photo_images["moon"]  # dark: its samples use only part of 0..255
    img = grey.convert(mode)
    scaled = Image.fromarray(np.asarray(img) * 1000 + 7)  # the range does not matter
    data = encode(scaled, "TIFF")
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == mode
    assert hash_image(img) == hash_image(scaled) == hash_image(data)
    assert distance(hash_image(img), hash_image(grey)) <= 2


def with_alpha(img: Image.Image, alpha: Image.Image) -> Image.Image:
    out = img.convert("RGBA")
    out.putalpha(alpha)
    return out


def left_half_transparent(size) -> Image.Image:
    alpha = Image.new("L", size, 255)
    alpha.paste(0, (0, 0, size[0] // 2, size[1]))
    return alpha


def test_opaque_alpha_hashes_as_imagehash_does(photo_images):
    for img in (photo_images["coffee"], photo_images["camera"]):
        for opaque in (img.convert("RGBA"), img.convert("LA"), img.convert("PA")):
            assert hash_image(opaque) == imagehash_phash(opaque) == hash_image(img)


def test_transparency_is_flattened_onto_white(photo_images):
    img = photo_images["coffee"]
    holed = with_alpha(img, left_half_transparent(img.size))
    on_white = img.copy()
    on_white.paste((255, 255, 255), (0, 0, img.width // 2, img.height))
    assert hash_image(holed) == hash_image(on_white)
    assert hash_image(encode(holed, "PNG")) == hash_image(encode(holed, "WEBP", lossless=True))
    assert hash_image(encode(holed, "PNG")) == hash_image(on_white)
    assert phash.BACKGROUND == (255, 255, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_images_differing_only_in_alpha_hash_differently(mode, photo_images):
    img = photo_images["astronaut"]
    opaque = img.convert(mode)
    holed = with_alpha(img, left_half_transparent(img.size)).convert(mode)
    assert imagehash_phash(opaque) == imagehash_phash(holed)  # imagehash drops alpha
    assert distance(hash_image(opaque), hash_image(holed)) > 10


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_flattened_too(fmt, photo_images):
    img = photo_images["chelsea"].convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    img.putpalette(img.getpalette() + [0, 0, 0])  # a 256th colour, black...
    img.paste(255, (0, 0, img.width // 2, img.height))
    img.info["transparency"] = 255  # ... made transparent
    expected = img.convert("RGB")
    expected.paste((255, 255, 255), (0, 0, img.width // 2, img.height))
    assert hash_image(img) == hash_image(encode(img, fmt)) == hash_image(expected)


def test_hashing_leaves_a_callers_image_as_it_was(photo_images):
    img = photo_images["chelsea"].convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    img.info["transparency"] = 3
    before = img.getpalette("RGBA"), img.tobytes(), dict(img.info)
    hash_image(img)
    assert (img.getpalette("RGBA"), img.tobytes(), dict(img.info)) == before


@pytest.mark.parametrize(
    "fmt, options",
    [("GIF", {}), ("PNG", {}), ("WEBP", {"lossless": True}), ("TIFF", {})],
    ids=["GIF", "APNG", "WEBP", "TIFF"],
)
def test_animations_and_multipage_files_hash_their_first_frame(fmt, options, photo_images):
    first = photo_images["astronaut"].convert("RGB")
    second = photo_images["coffee"].convert("RGB").resize(first.size)
    data = encode(first, fmt, save_all=True, append_images=[second], **options)
    with Image.open(io.BytesIO(data)) as img:
        assert img.n_frames == 2
    assert hash_image(data) == hash_image(encode(first, fmt, **options))


# --- HEIC/HEIF: only with pillow-heif, and registered on first need ------------------------------


def test_heic_hashes_like_the_photo(photo_images):
    pillow_heif = pytest.importorskip("pillow_heif")  # CI installs it (the "heic" extra)
    img = photo_images["astronaut"]
    buf = io.BytesIO()
    pillow_heif.from_pillow(img).save(buf, quality=90)  # not through Pillow: nothing registered
    picture = read_image(buf.getvalue())
    assert (picture.width, picture.height) == img.size
    assert distance(picture.hash, hash_image(img)) <= 2


def test_pillow_heif_is_not_imported_with_phashdb():
    code = "import sys, phashdb; print('pillow_heif' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_heic_without_pillow_heif_says_what_to_install(monkeypatch):
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    monkeypatch.setattr(decode, "register_heif", lambda: False)
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100)
    with pytest.raises(ImageError, match=r"^<bytes>: HEIC/HEIF needs pillow-heif: pip install"):
        hash_image(heic)
