"""The keeper: the default rule keeps the original over copies edited, re-encoded, resized or
converted (their EXIF kept, as editors keep it), and says why; the former default (`pixels`)
kept a captioned copy saved at a higher quality."""

from __future__ import annotations

import os

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, features

from phashdb import keep
from phashdb.records import Image

TAKEN = "2019:06:01 12:00:00"


def camera_exif(size) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 80D"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = TAKEN
    sub[0xA002], sub[0xA003] = size
    return exif


def record(path, mtime: float) -> Image:
    os.utime(path, (mtime, mtime))
    with PILImage.open(path) as img:
        width, height = img.size
    st = os.stat(path)
    return Image(str(path), 0, str(path), st.st_size, st.st_mtime, width, height, added=1.0)


@pytest.fixture
def original(tmp_path, photos):
    """A camera's JPEG (EXIF: make, model, capture time, pixel size), saved long ago, and its
    picture."""
    with PILImage.open(photos["astronaut"]) as img:
        picture = img.convert("RGB")
    path = tmp_path / "z-IMG_0001.JPG"  # after every copy by name: the name decides nothing
    picture.save(path, quality=80, exif=camera_exif(picture.size))
    return record(path, 1_560_000_000), picture


def copy(tmp_path, picture, name: str, *, exif=None, mtime=1_600_000_000, **options) -> Image:
    path = tmp_path / name
    picture.save(path, **({"exif": exif} if exif is not None else {}), **options)
    return record(path, mtime)


def captioned(picture):
    out = picture.copy()
    ImageDraw.Draw(out).rectangle((0, out.height - 40, out.width, out.height), fill="black")
    ImageDraw.Draw(out).text((10, out.height - 30), "Holiday 2024 - do not share", fill="white")
    return out


def test_the_default_keeps_the_original_over_a_captioned_copy_in_a_larger_file(tmp_path, original):
    image, picture = original
    edited = copy(tmp_path, captioned(picture), "a-edited.jpg", exif=camera_exif(picture.size),
                  quality=98)  # fmt: skip
    assert edited.size > image.size and (edited.width, edited.height) == (image.width, image.height)
    assert keep.plan([edited, image], "pixels").keeper == edited  # the former default
    plan = keep.plan([edited, image])
    assert plan.keeper == image and plan.rest == (edited,)
    assert plan.why == "kept: oldest"


@pytest.mark.parametrize(
    "kind", ["resized up", "cropped", "converted to PNG", "EXIF stripped", "screenshot"]
)
def test_the_default_keeps_the_original_even_when_the_copy_is_as_old(tmp_path, original, kind):
    """With the same modification time (`cp -p`), the camera's EXIF decides: a resized or
    cropped copy keeps it but no longer has the pixel size it records; a PNG is no camera's."""
    image, picture = original
    exif, options, name = camera_exif(picture.size), {"quality": 92}, "a-copy.jpg"
    if kind == "resized up":
        picture = picture.resize((picture.width * 3 // 2, picture.height * 3 // 2))
    elif kind == "cropped":
        picture = picture.crop((20, 20, picture.width - 20, picture.height - 20))
    elif kind == "converted to PNG":
        options, name = {}, "a-copy.png"
    elif kind == "EXIF stripped":
        exif = None
    else:
        picture, exif, options, name = picture.resize((400, 400)), None, {}, "a-copy.png"
    edited = copy(tmp_path, picture, name, exif=exif, mtime=image.mtime, **options)
    plan = keep.plan([edited, image])
    assert plan.keeper == image, kind
    assert plan.why == "kept: camera EXIF"
    assert keep.plan([edited, image], "oldest").keeper != image  # a tie, decided by the name


def test_the_reason_names_each_signal_that_decided(tmp_path, original):
    image, picture = original
    stripped = copy(tmp_path, picture, "a-stripped.jpg", quality=80)
    later = copy(tmp_path, captioned(picture), "b-later.jpg", exif=camera_exif(picture.size))
    plan = keep.plan([later, stripped, image])
    assert plan.keeper == image and plan.why == "kept: camera EXIF, oldest"
    assert keep.plan([later, image], "largest").why == "kept: largest file"
    os.unlink(later.path)
    assert keep.plan([later, image]).why == "kept: the only file left"


def test_a_fifo_or_a_broken_file_has_no_exif_and_never_blocks(tmp_path, original):
    image, _ = original
    fifo, broken = tmp_path / "a-fifo.jpg", tmp_path / "a-broken.jpg"
    os.mkfifo(fifo)
    broken.write_bytes(b"\xff\xd8\xff\xe1 not really")
    others = [Image(str(p), 0, str(p), 10, 1.0, image.width, image.height) for p in (fifo, broken)]
    assert keep.exif_of(others[0]) == keep.exif_of(others[1]) == keep.Exif()
    assert keep.exif_of(image) == keep.Exif(True, TAKEN)
    assert keep.plan([*others, image]).keeper == image


def test_a_file_of_a_format_phashdb_does_not_read_gives_no_exif(tmp_path, original):
    """A stored path whose file is now of another format Pillow reads (AVIF) is opened as
    hashing opens files, its formats only: no other decoder parses it, its EXIF decides nothing
    (issue 22: every file the service or the report opens)."""
    if not features.check("avif"):
        pytest.skip("this Pillow reads no AVIF")
    image, picture = original
    exif = PILImage.Exif()
    exif.get_ifd(0x8769)[0x9003] = "1999:01:01 00:00:00"  # before the original's
    avif = copy(tmp_path, picture, "a-copy.jpg", exif=exif.tobytes(), format="AVIF")
    with PILImage.open(avif.path) as img:  # what an open of any format sees
        assert img.format == "AVIF" and img.getexif().get_ifd(0x8769)[0x9003]
    assert keep.exif_of(avif) == keep.Exif()
    assert keep.plan([avif, image]).keeper == image


def test_a_capture_time_counts_an_unset_one_does_not(tmp_path, original):
    _, picture = original
    exif = PILImage.Exif()
    exif.get_ifd(0x8769)[0x9003] = TAKEN
    dated = copy(tmp_path, picture, "b-dated.jpg", exif=exif, mtime=1_700_000_000, quality=80)
    unset = PILImage.Exif()
    unset.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"  # what some cameras write unset
    undated = copy(tmp_path, picture, "a-undated.jpg", exif=unset, mtime=1_500_000_000, quality=80)
    assert keep.exif_of(undated) == keep.Exif() and keep.exif_of(dated) == keep.Exif(False, TAKEN)
    plan = keep.plan([undated, dated])
    assert plan.keeper == dated and plan.why == "kept: taken first"
