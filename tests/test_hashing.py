"""phashdb.phash: what a hash is (bit for bit imagehash's pHash), every kind of input, JPEG at
reduced scale, and how bad input fails."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
from hashing_help import distance, encode, imagehash_phash
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageOps

from phashdb import ImageError, decode
from phashdb.phash import HASH_VERSION, Picture, from_hex, hash_image, read_image, to_hex

# The persisted definition: these must never change under HASH_VERSION "phash-dct64-v2" (v1
# gave the same bits to every image but transparent ones blank on white).
GOLDEN = {
    "astronaut": "c2924c5532bddfc8",
    "camera": "bff1c1c0434e8cbc",
    "chelsea": "b15fe6465121175e",
    "coffee": "bb8320376c0f3637",
    "coins": "e4d5b5a92b54523a",
    "moon": "a3d9765014369c77",
    "rocket": "c0371bec1be51267",
    "motorcycle_left": "c507c66b9370aa73",
    "hubble_deep_field": "84cc4b96ba4d333e",
    "retina": "c0cc1f977ac02d4f",
    "brick": "a2898b1566fd46f1",
    "grass": "92f2e18ba30b770d",
    "gravel": "c6771cbe3d2424a6",
    "page": "81efa4a966d892da",
    "text": "b620ba8e2371cddc",
}
# The reduced-scale JPEG path, pinned: retina.jpg as shipped (1411 px: decoded at 1/2), and moon
# upscaled to 2048 px and saved at quality 90 (decoded at 1/4, luma only), whose full decode
# hashes 2 bits away: this pin fails if JPEGs stop being decoded the way the hash was measured.
GOLDEN_RETINA_JPG = "c0cc1f977ac02d4f"
GOLDEN_MOON_2048_Q90 = "a3d9761214369c77"
GOLDEN_MOON_2048_Q90_FULL_DECODE = "a3d9765214369877"


def upscaled(img: Image.Image, width: int) -> Image.Image:
    return img.convert("RGB").resize((width, round(img.height * width / img.width)), Image.LANCZOS)


# --- the hash: a persisted definition, bit for bit imagehash's pHash -----------------------------


def test_golden_vectors_pin_the_definition(photo_images):
    assert HASH_VERSION == "phash-dct64-v2"
    assert {name: to_hex(hash_image(img)) for name, img in photo_images.items()} == GOLDEN


def test_golden_vectors_pin_the_reduced_scale_jpeg_path(photo_files, photo_images):
    assert to_hex(hash_image(photo_files["retina"])) == GOLDEN_RETINA_JPG
    big = encode(upscaled(photo_images["moon"], 2048), "JPEG", quality=90)
    assert to_hex(hash_image(big)) == GOLDEN_MOON_2048_Q90
    with Image.open(io.BytesIO(big)) as full:
        assert to_hex(hash_image(full)) == GOLDEN_MOON_2048_Q90_FULL_DECODE


def variants(img: Image.Image) -> list[Image.Image]:
    """The photo and a few edits of it, to test bit-identity on more than 15 images."""
    w, h = img.size
    return [
        img,
        img.convert("L"),
        img.resize((w // 3, h // 3)),
        img.crop((w // 10, h // 7, w - w // 5, h - h // 9)),
        img.transpose(Image.Transpose.ROTATE_90),
        ImageOps.autocontrast(img.convert("RGB")),
    ]


def test_bit_identical_to_imagehash_on_real_photos(photo_images):
    for name, img in photo_images.items():
        for i, v in enumerate(variants(img)):
            assert to_hex(hash_image(v)) == str(imagehash.phash(v)), (name, i)


def test_bit_identical_to_imagehash_when_decoding_png_files(photo_files):
    for name, path in photo_files.items():
        if path.endswith(".png"):
            with Image.open(path) as img:
                assert hash_image(path) == imagehash_phash(img), name


@pytest.mark.parametrize(
    "img",
    [
        Image.new("L", (40, 30), 0),
        Image.new("L", (40, 30), 128),
        Image.new("RGB", (33, 65), (250, 20, 90)),
        Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1))),  # left-right ramp
        Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1)).T),  # top-down
    ],
    ids=["black", "grey", "red", "ramp", "ramp-down"],
)
def test_bit_identical_to_imagehash_on_flat_and_symmetric_images(img):
    # Many DCT coefficients of these are exactly equal, so float noise would decide their bits.
    assert hash_image(img) == imagehash_phash(img)


def test_hex_form_is_imagehash_string_form():
    h = 0x0123456789ABCDEF
    assert to_hex(h) == "0123456789abcdef"
    assert from_hex("0123456789ABCDEF") == from_hex("0123456789abcdef") == h
    assert str(imagehash.hex_to_hash(to_hex(h))) == to_hex(h)


@given(st.integers(0, 2**64 - 1))
def test_hex_round_trips(h):
    assert from_hex(to_hex(h)) == h
    assert len(to_hex(h)) == 16


@pytest.mark.parametrize("bad", ["abc", "0123456789abcdef0", "0x23456789abcdef", " 123456789abcdef",
                                 "0123456789abcdeg", "", 12345, None])  # fmt: skip
def test_from_hex_names_the_bad_value(bad):
    with pytest.raises(ValueError, match=re.escape(f"{bad!r} is not a 16-hex-digit pHash")):
        from_hex(bad)


@pytest.mark.parametrize("bad", [-1, 2**64, "00", 1.5])
def test_to_hex_refuses_what_is_not_a_64_bit_hash(bad):
    with pytest.raises(ValueError, match="64-bit"):
        to_hex(bad)


# --- inputs -----------------------------------------------------------------------------------


class Pipe:
    """A file object that can only be read forward, like a socket or stdin."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)


def every_kind(path: Path) -> dict:
    data = path.read_bytes()
    return {
        "str": str(path),
        "Path": path,
        "bytes": data,
        "file": path.open("rb"),
        "BytesIO": io.BytesIO(data),
        "pipe": Pipe(data),
    }


def test_every_input_kind_gives_the_same_hash(tmp_path, photo_images):
    img = photo_images["chelsea"]
    png = tmp_path / "chelsea.png"
    img.save(png)
    kinds = every_kind(png)
    with Image.open(png) as opened:
        kinds["PIL image"] = opened
        hashes = {kind: read_image(source) for kind, source in kinds.items()}
    kinds["file"].close()
    assert hashes == dict.fromkeys(kinds, Picture(hash_image(img), img.width, img.height))


def test_every_input_kind_of_a_large_jpeg_gives_the_same_hash(tmp_path, photo_images):
    jpeg = tmp_path / "big.jpg"
    upscaled(photo_images["coffee"], 1600).save(jpeg, quality=90)
    kinds = every_kind(jpeg)
    assert len({hash_image(source) for source in kinds.values()}) == 1
    kinds["file"].close()
    # A PIL image is hashed as given: decoded in full, so within the draft tolerance only.
    with Image.open(jpeg) as opened:
        assert distance(hash_image(opened), hash_image(jpeg)) <= 2


def test_a_file_object_is_read_from_its_start_and_left_open(tmp_path, photo_files):
    with open(photo_files["camera"], "rb") as f:
        f.read(100)
        assert hash_image(f) == int(GOLDEN["camera"], 16)
        assert not f.closed


def test_hash_image_is_the_hash_of_read_image(photo_files):
    assert hash_image(photo_files["coins"]) == read_image(photo_files["coins"]).hash


@pytest.mark.parametrize("source", [123, 4.5, ["a.jpg"]])
def test_an_unsupported_argument_type_is_a_type_error(source):
    with pytest.raises(TypeError, match="'source' must be"):
        hash_image(source)


def test_a_text_mode_file_is_a_type_error(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with open(tmp_path / "a.txt") as f, pytest.raises(TypeError, match="binary file object"):
        hash_image(f)


# --- JPEG at reduced scale ----------------------------------------------------------------------


def full_decode_hash(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return hash_image(img)  # a PIL image is never decoded at reduced scale


def test_reduced_scale_jpeg_stays_within_distance_2_of_a_full_decode(photo_images):
    for name, img in photo_images.items():
        data = encode(upscaled(img, 2 * img.width), "JPEG", quality=90)
        assert distance(hash_image(data), full_decode_hash(data)) <= 2, name


def test_reduced_scale_12_megapixel_jpeg_keeps_its_hash_and_reports_its_full_size(photo_images):
    data = encode(upscaled(photo_images["rocket"], 4240), "JPEG", quality=90)
    picture = read_image(data)
    assert (picture.width, picture.height) == (4240, 2829)
    assert distance(picture.hash, full_decode_hash(data)) <= 2


# --- bad input ----------------------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def png_claiming(width: int, height: int) -> bytes:
    """A 1-pixel PNG whose header says it is width x height: the shape of a decompression bomb."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def bad_inputs(photo_images) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, what the error must say)."""
    jpeg = encode(photo_images["astronaut"], "JPEG")
    png = encode(photo_images["astronaut"], "PNG")
    return {
        "empty": (b"", "empty file"),
        "text": (b"hello, world\n" * 10, "not an image"),
        "mp4": (b"\x00\x00\x00\x18ftypmp42" + bytes(100), "not an image"),
        "truncated jpeg": (truncated(jpeg), "truncated or corrupt"),
        "truncated png": (truncated(png), "truncated or corrupt"),
        "jpeg header only": (jpeg[:300], "truncated or corrupt"),
        "png header only": (png[:30], "truncated or corrupt"),
        "corrupt png": (png[:100] + bytes(len(png) - 100), "truncated or corrupt"),
        "garbage after magic": (b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "truncated or corrupt"),
    }


def test_bad_files_raise_image_error_naming_the_file(tmp_path, photo_images):
    for case, (content, problem) in bad_inputs(photo_images).items():
        path = tmp_path / f"{case}.jpg"
        path.write_bytes(content)
        with pytest.raises(ImageError, match=f"^{path}: {problem}"):
            hash_image(path)
        with pytest.raises(ImageError, match=f"^<bytes>: {problem}"):
            hash_image(content)
        with pytest.raises(ImageError, match=f"^<file object>: {problem}"):
            hash_image(io.BytesIO(content))


def test_a_broken_pil_image_raises_image_error(photo_images):
    data = truncated(encode(photo_images["camera"], "PNG"))
    with Image.open(io.BytesIO(data)) as img, pytest.raises(ImageError, match="^<PIL image>: "):
        hash_image(img)


def test_unreadable_paths_raise_image_error_naming_the_path(tmp_path):
    with pytest.raises(ImageError, match=f"^{tmp_path}/missing.png: cannot read .*No such file"):
        hash_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match=f"^{tmp_path}: cannot read .*directory"):
        hash_image(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_file_without_read_permission_raises_image_error(tmp_path, photo_files):
    path = tmp_path / "secret.png"
    path.write_bytes(Path(photo_files["camera"]).read_bytes())
    path.chmod(0)
    with pytest.raises(ImageError, match=f"^{path}: cannot read .*Permission denied"):
        hash_image(path)


def test_a_permission_error_raises_image_error_even_as_root(monkeypatch, tmp_path):
    def refuse(path, mode):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(decode, "open_regular_file", refuse)
    with pytest.raises(ImageError, match=f"^{tmp_path}/a.png: cannot read .Permission denied"):
        hash_image(tmp_path / "a.png")


def test_the_pixel_limit_is_checked_before_decoding_and_configurable(photo_files):
    path = photo_files["astronaut"]  # 512 x 512
    assert hash_image(path, max_pixels=512 * 512) == int(GOLDEN["astronaut"], 16)
    message = f"^{path}: 512x512 = 262,144 pixels is more than the limit of 262,143 .*max_pixels"
    with pytest.raises(ImageError, match=message):
        hash_image(path, max_pixels=512 * 512 - 1)
    # a bomb's header is enough: its pixels are never decoded
    with pytest.raises(ImageError, match="100,000,000 pixels is more than the limit of 50,000,000"):
        hash_image(png_claiming(10_000, 10_000), max_pixels=50_000_000)


def test_the_default_pixel_limit_is_pillows_hard_limit_and_its_warning_stays_quiet():
    assert decode.DEFAULT_MAX_PIXELS == 2 * 89_478_485
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would raise here
        # 100 Mpx: over Pillow's warning, under our limit, so it is decoded (and found empty)
        with pytest.raises(ImageError, match="^<bytes>: truncated or corrupt"):
            hash_image(png_claiming(10_000, 10_000))
    # Pillow's own refusal is an ImageError too, even when max_pixels would allow the image
    with pytest.raises(ImageError, match="more pixels than Pillow allows.*MAX_IMAGE_PIXELS"):
        hash_image(png_claiming(20_000, 20_000), max_pixels=10**9)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "100", None, True])
def test_max_pixels_must_be_a_positive_int(bad, photo_files):
    with pytest.raises(ValueError, match="'max_pixels' must be a positive int"):
        hash_image(photo_files["camera"], max_pixels=bad)
