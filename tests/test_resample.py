"""Pillow's resize of greyscale images in C (phashdb.resample): the same bytes as the installed
Pillow's `Image.resize`, whatever the sizes, filter and region, so that no hash, descriptor or
key moves; and Pillow's own resize where the C code cannot give them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import PHOTO_NAMES, skimage_photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from phashdb import phash, resample, windows

FILTERS = sorted(resample.FILTERS)
LANCZOS, BOX = Image.Resampling.LANCZOS, Image.Resampling.BOX


def pillows(grey: Image.Image, size, filter, box=None) -> bytes:
    return grey.resize(size, filter, box).tobytes()


def in_c(grey: Image.Image | np.ndarray, size, filter, box=None) -> bytes:
    """`resized`'s bytes, made sure to be the C code's."""
    assert resample._source(grey, filter) is not None
    return resized_bytes(grey, size, filter, box)


def resized_bytes(grey, size, filter, box=None) -> bytes:
    out = resample.resized(grey, size, filter, box)
    assert out.dtype == np.uint8 and out.shape[:2] == (size[1], size[0])
    return out.tobytes()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))


def test_the_c_code_is_used_with_this_pillow():
    # the tests below would compare Pillow with itself if the extension were not built
    assert resample._resample is not None


SIDES = [(1, 1), (2, 3), (31, 31), (32, 32), (33, 33), (33, 31), (7, 1000), (999, 13),
         (4000, 3), (3, 4000), (640, 480), (480, 640), (1023, 767), (129, 65)]  # fmt: skip
TARGETS = [(32, 32), (64, 64), (128, 128), (256, 256), (1, 1), (3, 2), (300, 5), (5, 300)]


@pytest.mark.parametrize("filter", FILTERS, ids=lambda f: f.name)
@pytest.mark.parametrize("side", SIDES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_random_pixels_every_size_down_and_up(side, filter):
    grey = noise(*side, seed=side[0] * 7919 + side[1])
    for size in [*TARGETS, side, (side[0] + 1, side[1]), (side[0], side[1] * 3)]:
        assert in_c(grey, size, filter) == pillows(grey, size, filter), size


@pytest.mark.parametrize("filter", FILTERS, ids=lambda f: f.name)
def test_windows_that_repeat_share_their_weights_as_pillow_computes_them(filter):
    """A side reduced by a whole or simple factor (960 -> 32: every window 30 pixels on) has its
    windows weighed once and copied; sides a pixel off, regions offset by a fraction, and windows
    cut short by the image's edges are weighed apart. Pillow's bytes every time."""
    for width in (960, 961, 959, 1000, 1008, 800):
        grey = noise(width, 40, seed=width)
        for box in (None, (0.25, 0, width - 0.25, 40), (1, 0, width - 3, 40), (0, 0, 480, 40)):
            for size in ((32, 40), (25, 40), (33, 40), (320, 40)):
                want = pillows(grey, size, filter, box)
                assert in_c(grey, size, filter, box) == want, (width, box, size)


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_real_photos(name):
    grey = skimage_photo(name).convert("L")
    w, h = grey.size
    for filter in FILTERS:
        for size in [(32, 32), (64, 64), (128, 96), (w // 3, h // 2), (w * 2 + 1, h + 7)]:
            assert in_c(grey, size, filter) == pillows(grey, size, filter), (filter, size)


@pytest.mark.parametrize("filter", [LANCZOS, BOX], ids=lambda f: f.name)
def test_twelve_megapixels(filter):
    grey = noise(4000, 3000, seed=12)
    for size in [(32, 32), (128, 96), (1024, 768)]:
        assert in_c(grey, size, filter) == pillows(grey, size, filter), size
    portrait = grey.transpose(Image.Transpose.ROTATE_90)
    for size in [(32, 32), (96, 128)]:  # the height shrinks most: Pillow's vertical pass first
        assert in_c(portrait, size, filter) == pillows(portrait, size, filter), size


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 200),
    height=st.integers(1, 200),
    size=st.tuples(st.integers(1, 260), st.integers(1, 260)),
    filter=st.sampled_from(FILTERS),
    cut=st.tuples(*[st.floats(0, 1)] * 4),
    seed=st.integers(0, 2**16),
)
def test_any_size_and_region(width, height, size, filter, cut, seed):
    grey = noise(width, height, seed)
    x0, x1 = sorted((cut[0] * width, cut[1] * width))
    y0, y1 = sorted((cut[2] * height, cut[3] * height))
    boxes = [(0, 0, width, height), (x0, y0, x1, y1), (int(x0), int(y0), int(x0) + 1, int(y0) + 1)]
    boxes = [box for box in boxes if box[2] <= width and box[3] <= height]
    for box in (None, *boxes):
        assert in_c(grey, size, filter, box) == pillows(grey, size, filter, box), box
    # all of them in one call (an image's window keys; the horizontal pass then runs over the
    # transposed pixels): each box's bytes as above
    together = resample.resized_boxes(grey, size, filter, boxes)
    assert [b.tobytes() for b in together] == [pillows(grey, size, filter, b) for b in boxes]


@pytest.mark.parametrize("filter", FILTERS)
def test_narrow_strips_anywhere_along_a_row(filter):
    """A box a few pixels wide reads only its windows' span of each row (phashdb.border's
    column strips): at the left edge, the right edge and inside, its bytes are Pillow's."""
    grey = noise(640, 360, seed=5)
    for x0, x1 in ((0, 5.0), (634.9, 640), (300.25, 307.5), (0, 640), (639, 640)):
        for size in ((1, 128), (3, 45), (1, 360)):
            box = (x0, 0, x1, 360)
            assert in_c(grey, size, filter, box) == pillows(grey, size, filter, box), (box, size)


def test_arrays_as_their_images():
    a = np.asarray(noise(300, 200, seed=3))
    for filter in FILTERS:
        assert in_c(a, (32, 32), filter) == pillows(Image.fromarray(a), (32, 32), filter)
    view = a[10:150:2, 5:250]  # not contiguous: copied for the C code, the same pixels
    expected = pillows(Image.fromarray(np.ascontiguousarray(view)), (32, 32), LANCZOS)
    assert in_c(view, (32, 32), LANCZOS) == expected


def test_pillow_resizes_what_the_c_code_does_not(monkeypatch):
    rgb = Image.merge("RGB", [noise(90, 60, seed) for seed in range(3)])
    grey = noise(90, 60)
    wide = np.asarray(grey).astype(np.int16)
    for image, filter in [(rgb, LANCZOS), (grey, Image.Resampling.NEAREST)]:
        assert resample._source(image, filter) is None
        assert resized_bytes(image, (32, 32), filter) == pillows(image, (32, 32), filter)
    assert resample._source(wide, LANCZOS) is None
    monkeypatch.setattr(resample, "_resample", None)  # as from a zip: no extension
    assert resized_bytes(grey, (32, 32), BOX) == pillows(grey, (32, 32), BOX)
    assert resized_bytes(np.asarray(grey), (17, 9), LANCZOS) == pillows(grey, (17, 9), LANCZOS)


def test_an_image_of_several_blocks_is_resized_by_pillow():
    # Pillow stores an image over its block size (16 MB) in several blocks: no single run of
    # rows to read, so Pillow resizes it
    side = int((Image.core.get_block_size() * 1.3) ** 0.5)
    grey = Image.linear_gradient("L").resize((side, side)).rotate(17)
    assert resample._source(grey, LANCZOS) is None
    assert resized_bytes(grey, (32, 32), LANCZOS) == pillows(grey, (32, 32), LANCZOS)


@pytest.mark.parametrize("size", [(0, 32), (32, -1)])
def test_a_bad_size_fails_as_in_pillow(size):
    grey = noise(40, 30)
    with pytest.raises(ValueError, match="height and width must be > 0"):
        grey.resize(size, LANCZOS)
    with pytest.raises(ValueError, match="height and width must be > 0"):
        resample.resized(grey, size, LANCZOS)


def test_a_bad_region_fails_as_in_pillow():
    grey = noise(40, 30)
    for box, message in [((-1, 0, 10, 10), "negative"), ((0, 0, 41, 30), "exceed")]:
        with pytest.raises(ValueError, match=message):
            grey.resize((8, 8), LANCZOS, box)
        with pytest.raises(ValueError, match=message):
            resample.resized(grey, (8, 8), LANCZOS, box)


def with_keys(grey: Image.Image) -> list[Image.Image]:
    """`grey` as is, on a black backdrop, in a plain frame and under a white box: images whose
    keys (backdrop, trimmed, unboxed) are made, each from its own resizes."""
    boxed = grey.copy()
    boxed.paste(255, (grey.width // 8, grey.height // 10, grey.width // 2, grey.height // 3))
    return [grey, ImageOps.expand(grey.resize((grey.width // 2, grey.height // 2)), 120, 0),
            ImageOps.expand(grey, grey.width // 5, 190), boxed]  # fmt: skip


def test_hashes_descriptors_and_keys_as_with_pillows_resize(monkeypatch):
    images = [im for name in PHOTO_NAMES for im in with_keys(skimage_photo(name).convert("L"))]
    images += [skimage_photo("astronaut").convert("RGBA")]  # transparent: the renderings' keys
    images[-1].putalpha(Image.linear_gradient("L").resize(images[-1].size))

    def read_all() -> list[tuple]:
        return [(p.hash, p.descriptor, p.keys) for p in map(phash.read_image, images)]

    in_c = read_all()
    monkeypatch.setattr(resample, "_resample", None)
    assert read_all() == in_c
    assert sum(bool(keys) for _, _, keys in in_c) >= len(PHOTO_NAMES)  # the keys were made


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "box",
    [
        (NAN, 0, 40, 30),
        (0, NAN, 40, 30),
        (0, 0, NAN, 30),
        (0, 0, 40, NAN),
        (NAN,) * 4,
        (0, 0, 40, INF),
        (-INF, 0, 40, 30),
        (0, 0, 40, 1e300),
        (1e300, 0, 40, 30),
    ],  # fmt: skip
)
def test_a_box_of_nan_or_beyond_any_image_is_pillows_answer(box):
    """NaN passed every check of the box and its windows ran off the buffer (a crash): such a
    box is Pillow's to resize, and the C code refuses it if called directly."""
    grey = noise(40, 30)
    try:
        expected = np.asarray(grey.resize((8, 8), LANCZOS, box))
    except ValueError as e:
        with pytest.raises(ValueError, match=str(e)):
            resample.resized(grey, (8, 8), LANCZOS, box)
    else:
        assert np.array_equal(resample.resized(grey, (8, 8), LANCZOS, box), expected)
    code = (
        (
            "import numpy as np\nfrom phashdb import _resample\n"
            f"try: _resample.resample(np.zeros((30, 40), np.uint8), 40, 30, (8, 8), 1, {box})\n"
            "except ValueError as e: print(e)"
        )
        .replace("nan", "float('nan')")
        .replace("inf", "float('inf')")
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr  # in a subprocess: a crash is seen as one
    assert done.stdout.strip() in ("box must be finite numbers", "box can't be empty")


@pytest.mark.parametrize("side", [(3, 3), (960, 640), (1001, 333), (4000, 3), (131, 4097)])
def test_the_four_edge_strips_in_one_call_are_pillows_resize_of_each(side, monkeypatch):
    """resample.edges: the strips along the four edges reduced by BOX in one call into C, the
    bytes Pillow's resize gives each strip's box; and without the C code, Pillow's own."""
    grey = noise(*side, seed=side[0])
    width, height = side
    for size in [(min(128, width), min(128, height)), (min(256, width), min(256, height)),
                 (min(3, width), min(2, height))]:  # fmt: skip
        w, h = size
        fx, fy = width / w, height / h
        boxes = [((w, 1), (0, 0, width, fy)), ((w, 1), (0, height - fy, width, height)),
                 ((1, h), (0, 0, fx, height)), ((1, h), (width - fx, 0, width, height))]  # fmt: skip
        want = b"".join(pillows(grey, s, Image.Resampling.BOX, b) for s, b in boxes)
        assert resample.edges(grey, size).tobytes() == want, size
        with monkeypatch.context() as m:
            m.setattr(resample, "_resample", None)
            assert resample.edges(grey, size).tobytes() == want, size


def test_the_windows_boxes_in_one_call_with_and_without_the_c_code(monkeypatch):
    """The windows' boxes of landscape, portrait and square pictures (as phashdb.windows reads
    them: BILINEAR to 32x32): Pillow's bytes, in C and without it; a box outside the picture
    fails as Pillow's resize does."""
    for side in [(128, 96), (171, 96), (96, 144), (100, 100), (1600, 1200)]:
        grey = noise(*side, seed=side[0])
        boxes = list(windows.boxes(*side).values())
        want = b"".join(pillows(grey, (32, 32), windows.FILTER, box) for box in boxes)
        assert resample._source(grey, windows.FILTER) is not None
        assert resample.resized_boxes(grey, (32, 32), windows.FILTER, boxes).tobytes() == want
        with monkeypatch.context() as m:
            m.setattr(resample, "_resample", None)
            got = resample.resized_boxes(grey, (32, 32), windows.FILTER, boxes)
            assert got.tobytes() == want
    with pytest.raises(ValueError, match="exceed"):
        resample.resized_boxes(noise(40, 30), (8, 8), LANCZOS, [(0, 0, 10, 10), (0, 0, 41, 30)])
