"""The unboxed key (phashdb.unbox): a flat artwork under a caption box is found as the picture
without the box."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from phashdb import descriptor
from phashdb.mr import run as mr
from phashdb.phash import read_image, to_hex
from phashdb.unbox import NAME, fill, find_box, unboxed_variant
from phashdb.windows import NAMES as WINDOWS

# The unboxed key of the JPEG of artwork() under a white caption box, and the stored
# descriptor's bytes up to that key (layout v3, the key's name byte 5: after backdrop, trimmed,
# "on black", "alpha dropped"; the window keys after it are pinned in test_windows.py): pin the
# definition (phashdb.unbox) and the stored layout.
GOLDEN_BOXED_KEY = "9ac52798c7936c66"
GOLDEN_BOXED_STORED = "cc2328f9c8e6bff61a6caaa502035c8af86ea6218d1872c0dae144f3b20ca9a7"


def artwork() -> Image.Image:
    """A flat picture: a sky gradient, three discs, a hill."""
    w, h = 480, 320
    y = np.linspace(0, 1, h)[:, None, None]
    sky = np.array([184, 83, 60]) * (1 - y) + np.array([252, 45, 81]) * y
    img = Image.fromarray((sky * np.ones((1, w, 1))).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((244, 173, 244 + 149, 173 + 149), fill=(222, 12, 100))
    d.ellipse((217, 96, 217 + 114, 96 + 114), fill=(95, 10, 27))
    d.ellipse((206, 105, 206 + 194, 105 + 194), fill=(61, 217, 65))
    d.polygon([(0, h), (w * 0.3, h * 0.55), (w * 0.7, h)], fill=(36, 47, 101))
    return img


def boxed(img: Image.Image, colour: str = "white") -> Image.Image:
    """A caption box of 1/4 of the width and 15% of the height, bottom left, with its text."""
    out = img.copy()
    w, h = img.width // 4, round(img.height * 0.15)
    x, y = img.width // 40, img.height - h - img.height // 40
    d = ImageDraw.Draw(out)
    d.rectangle((x, y, x + w, y + h), fill=colour)
    ink = "black" if colour == "white" else "white"
    d.text((x + w // 12, y + h // 4), "caption", fill=ink, font_size=h // 3)
    return out


def stickered(img: Image.Image, colour="white", ink="red", size: float = 0.3) -> Image.Image:
    """A round sticker (a badge) of `size` of the shorter side, right of the middle, near the
    top, black-rimmed, with its word: a sticker as people lay one, not the benchmark's."""
    out = img.copy()
    d = round(min(img.size) * size)
    x, y = round(img.width * 0.6), round(img.height * 0.2)
    draw = ImageDraw.Draw(out)
    draw.ellipse((x, y, x + d, y + d), fill=colour, outline="black", width=max(1, d // 20))
    draw.text((x + d * 0.2, y + d * 0.35), "SALE", fill=ink, font_size=d // 4)
    return out


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def unboxed(source):
    return {k.name: k for k in read_image(source).keys}.get(NAME)


def test_the_unboxed_key_is_pinned():
    copy = jpeg(boxed(artwork()))
    picture = read_image(copy)
    key = unboxed(copy)
    assert key is not None and to_hex(key.hash) == GOLDEN_BOXED_KEY
    assert unboxed(boxed(artwork())) == unboxed_variant(boxed(artwork()).convert("L"))
    stored = picture.descriptor
    assert stored[descriptor.STORED_SIZE] == descriptor.KEYS.index(NAME) + 1 == 5
    head = stored[: descriptor.STORED_SIZE + descriptor.KEY_SIZE]
    assert hashlib.sha256(head).hexdigest() == GOLDEN_BOXED_STORED
    assert (
        descriptor.stored_keys(stored) == tuple(map(descriptor.as_stored, picture.keys))
        and picture.keys[0] == key
    )
    assert {k.name for k in picture.keys[1:]} <= set(WINDOWS)


def test_the_unboxed_key_is_the_picture_without_its_box():
    stored = read_image(artwork()).hash
    copy = jpeg(boxed(artwork()))
    assert (read_image(copy).hash ^ stored).bit_count() > 16  # past the reach
    assert (unboxed(copy).hash ^ stored).bit_count() <= 8


def test_the_box_is_found_where_it_is():
    """On the 64-pixel reduction: rows 53..62 and columns 1..17 of the box drawn at rows
    0.825..0.975 and columns 0.025..0.275 of the image (its text closed over)."""
    copy = boxed(artwork()).convert("L").resize((64, 64), Image.Resampling.BOX)
    top, left, bottom, right = find_box(np.asarray(copy, dtype=np.int16))
    assert 52 <= top <= 54 and 61 <= bottom <= 64 and left <= 2 and 17 <= right <= 19


# A white badge with a red word, a black one with a white word (not the benchmark's yellow).
STICKERS = [("white", "red", 0.3), ((20, 20, 20), "white", 0.4)]


@pytest.mark.parametrize("colour, ink, size", STICKERS)
def test_a_round_sticker_is_the_picture_without_it(colour, ink, size, monkeypatch):
    """A disc does not fill its rectangle as a box does (79%): it is seen as round, and filled
    in from around its rectangle as a box is; the same key without the C regions (as the
    MapReduce tasks read an image)."""
    from phashdb import unbox

    stored = read_image(jpeg(artwork())).hash
    copy = jpeg(stickered(artwork(), colour, ink, size))
    assert (read_image(copy).hash ^ stored).bit_count() > 16  # past the reach
    key = unboxed(copy)
    assert (key.hash ^ stored).bit_count() <= 4
    monkeypatch.setattr(unbox, "_regions", None)
    assert unboxed(copy) == key


def test_the_sticker_is_found_where_it_is():
    """On the 64-pixel reduction: the disc drawn at rows 0.2..0.5 and columns 0.6..0.8 of the
    image, its rim and word closed over."""
    copy = stickered(artwork()).convert("L").resize((64, 64), Image.Resampling.BOX)
    top, left, bottom, right = find_box(np.asarray(copy, dtype=np.int16))
    assert 12 <= top <= 15 and 30 <= bottom <= 33 and 38 <= left <= 40 and 50 <= right <= 53


def test_only_round_shapes_are_taken_for_stickers():
    """A shape of one level that fills 75-90% of its rectangle is a sticker only if it is
    round there (not an L-shaped patch, nor a ground with a hole), small beside the picture
    (not a sun filling a fifth of it) and inside it (not cut by its border)."""
    a = np.tile(np.linspace(40, 120, 64), (64, 1)).astype(np.int16)  # a gradient
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 25.5) ** 2 + (xx - 40.5) ** 2 <= 7.5**2
    assert find_box(np.where(disc, 230, a)) == (19, 34, 33, 48)
    sun = (yy - 30.5) ** 2 + (xx - 32.5) ** 2 <= 14.5**2  # 29x29: 21% of the image
    assert find_box(np.where(sun, 230, a)) is None
    edge = ((yy - 14) / 11.5) ** 2 + ((xx - 2) / 2.5) ** 2 <= 1  # a round patch on the border
    assert find_box(np.where(edge, 230, 20 + (yy + xx) * 1.2).astype(np.int16)) is None
    ell = a.copy()
    ell[18:34, 33:49] = 230
    ell[26:34, 41:49] = a[26:34, 41:49]  # 75% of its rectangle, not round
    assert find_box(ell) is None
    ring = a.copy()
    ring[18:34, 33:49] = 230
    ring[22:30, 37:45] = a[22:30, 37:45]  # 75%, round outside, a hole in its middle
    assert find_box(ring) is None


def test_a_box_is_filled_from_around_it():
    a = np.tile(np.arange(10, dtype=np.float64) * 10, (6, 1))  # columns 0, 10, ... 90
    box = a.copy()
    box[1:4, 3:7] = 255
    assert np.allclose(fill(box, 1, 3, 4, 7), a)  # a gradient is continued exactly
    edge = a.copy()
    edge[3:, 3:7] = 0  # on the bottom border: rows continued from the pixels above
    assert np.allclose(fill(edge, 3, 3, 6, 7), a)


def test_photos_and_plain_pictures_have_no_unboxed_key(photo_images):
    for name in ("astronaut", "camera", "chelsea", "coffee", "rocket"):
        assert unboxed(photo_images[name]) is None, name
    assert unboxed(artwork()) is None
    assert unboxed(Image.new("RGB", (300, 200), "white")) is None
    # a box on a blank page leaves a blank page: near-constant, never matched
    page = Image.new("RGB", (300, 200), (90, 90, 90))
    ImageDraw.Draw(page).rectangle((20, 140, 95, 170), fill="white")
    assert unboxed(page) is None


def test_a_boxed_artwork_is_found_as_unboxed(index, photo_images):
    """A white caption box moves the artwork's pHash past the reach: only the unboxed key
    finds it, on both backends."""
    index.add(jpeg(artwork()), id="artwork")
    index.add(photo_images["coffee"], id="coffee")
    found = index.check(jpeg(boxed(artwork())))
    assert [(m.id, m.variant) for m in found.matches] == [("artwork", "unboxed")]


def test_dedupe_and_the_job_group_a_boxed_artwork_with_its_original(index, photo_images):
    """The key is kept in the stored descriptor: a batch pass searches it as a check does
    (and so does a check, since index format 2: the original added after its boxed copy is
    its duplicate, kept here as a user keeps one)."""
    index.add(jpeg(boxed(artwork())), id="boxed")
    assert index.add(jpeg(artwork()), id="artwork", keep_duplicate=True).matches[0].id == "boxed"
    index.add(photo_images["coffee"], id="coffee")
    found = index.dedupe()
    assert [sorted(i.id for i in g.images) for g in found] == [["artwork", "boxed"]]
    job = mr.dedupe(index, "inline")
    assert [([i.id for i in g.images], g.pairs) for g in job] == [
        ([i.id for i in g.images], g.pairs) for g in found
    ]


@pytest.mark.parametrize("colour, ink, size", STICKERS)
def test_a_stickered_artwork_is_found_as_unboxed(index, photo_images, colour, ink, size):
    """A round sticker moves the artwork's pHash past the reach: the unboxed key finds it, on
    both backends, and a batch pass and the MapReduce job group it as the check does."""
    index.add(jpeg(artwork()), id="artwork")
    index.add(photo_images["coffee"], id="coffee")
    copy = jpeg(stickered(artwork(), colour, ink, size))
    assert [(m.id, m.variant) for m in index.check(copy).matches] == [("artwork", "unboxed")]
    index.add(copy, id="sticker", keep_duplicate=True)
    groups = index.dedupe()
    assert [sorted(i.id for i in g.images) for g in groups] == [["artwork", "sticker"]]
    job = mr.dedupe(index, "inline")
    assert [([i.id for i in g.images], g.pairs) for g in job] == [
        ([i.id for i in g.images], g.pairs) for g in groups
    ]


def regions_by_search(m: np.ndarray) -> np.ndarray:
    """The definition of unbox._components, by a search from each pixel in order."""
    labels = np.full(m.shape, m.size, dtype=np.int64)
    planes, h, w = m.shape
    for start in range(m.size):
        if not m.flat[start] or labels.flat[start] != m.size:
            continue
        todo = [np.unravel_index(start, m.shape)]
        labels[todo[0]] = start
        while todo:
            k, y, x = todo.pop()
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and m[k, ny, nx] and labels[k, ny, nx] == m.size:
                    labels[k, ny, nx] = start
                    todo.append((k, ny, nx))
    return labels


def test_regions_are_labelled_by_their_smallest_pixel_within_their_plane():
    """In C (phashdb._regions) and in numpy (where the C is not built: the MapReduce tasks)."""
    from phashdb import _regions
    from phashdb.unbox import _components, _propagated

    rng = np.random.default_rng(7)
    for _ in range(60):
        planes, h, w = (int(v) for v in rng.integers(1, 12, 3))
        m = rng.random((planes, h, w)) < rng.random()
        expected = regions_by_search(m)
        assert np.array_equal(_components(m), expected)
        assert np.array_equal(_propagated(m), expected)
    with pytest.raises(ValueError, match="'mask'"):
        _regions.label(b"\x01\x00", 1, 2, 2)


def crafted_images(rng: np.random.Generator):
    """Reduced images a box is looked for on: plain boxes touching the border or not, on
    grounds of several levels, with text-like gaps, tiny and thin ones, and noise."""
    for h, w in ((64, 64), (64, 40), (9, 64), (8, 8), (12, 9), (3, 64), (64, 1), (1, 1)):
        for _ in range(6):
            ground = np.linspace(*rng.integers(0, 256, 2), w)[None] + rng.normal(0, 15, (h, w))
            a = np.clip(ground, 0, 255).astype(np.int16)  # a gradient with noise
            for _ in range(int(rng.integers(1, 5))):  # plain rectangles, some on the border
                bh, bw = (max(1, int(n * rng.uniform(0.1, 0.6))) for n in (h, w))
                top, left = int(rng.integers(-2, h - bh + 3)), int(rng.integers(-2, w - bw + 3))
                top, left = min(max(top, 0), h - bh), min(max(left, 0), w - bw)
                bottom, right = top + bh, left + bw
                a[top:bottom, left:right] = int(rng.integers(0, 256))
                gaps = rng.random((bottom - top, right - left)) < 0.1  # its caption's text
                a[top:bottom, left:right][gaps] = int(rng.integers(0, 256))
            yield a
    a = np.full((64, 64), 40, dtype=np.int16)
    a[:, 32:] = 200  # two grounds, a box on each touching two sides
    a[50:, :10], a[:12, 54:] = 250, 0
    yield a
    yy, xx = np.mgrid[:64, :64]
    for r in (5.5, 9.5):  # round stickers with a word in them, on a diagonal gradient
        a = (20 + (yy + xx) * 1.2).astype(np.int16)
        a[(yy - 30) ** 2 + (xx - 40) ** 2 <= r**2] = 220
        a[29:31, 36:44:2] = 20
        yield a


def test_the_box_s_regions_are_the_same_in_c_and_in_numpy():
    """phashdb._regions.regions and numpy's _large_regions_numpy (the MapReduce tasks' zip has
    no C): the same regions, sizes and rectangles, so the same box, on random masks and on
    crafted images."""
    from phashdb import _regions, unbox

    rng = np.random.default_rng(25)
    for _ in range(120):  # up to 64 columns a row is a word in C; more, a byte a pixel
        planes, h, w = (int(v) for v in rng.integers(1, [6, 70, 140]))
        m = rng.random((planes, h, w)) < rng.random()
        least = float(rng.integers(1, 12))
        c = _regions.regions(m.tobytes(), planes, h, w, unbox.GAP, least)
        assert c == unbox._large_regions_numpy(m, least)
    boxes = []
    for a in crafted_images(rng):
        with_c = find_box(a)
        unbox._regions = None
        try:
            assert find_box(a) == with_c
        finally:
            unbox._regions = _regions
        boxes.append(with_c)
    assert sum(b is not None for b in boxes) >= 10  # boxes were found, not only their absence
    with pytest.raises(ValueError, match="'mask'"):
        _regions.regions(b"\x01\x00", 1, 2, 2, 2, 1.0)


@pytest.mark.parametrize(
    "call",
    [  # sizes whose product wraps around to the buffer's length: the loops walked past it
        "label(b'\\x00' * 131073, 1, 65537, 65537 + 65535 * 2**32)",
        "regions(b'', 2**62, 4, 1, 1, 1.0)",
        "label(b'', 1, 2**32 + 1, 0)",
        "regions(b'', 0, 2**20, 2**20, 1, 1.0)",
    ],
)
def test_hostile_mask_sizes_are_refused_not_a_crash(call):
    """In a subprocess, so that a crash is seen as one: a clean ValueError, or no regions."""
    code = f"from phashdb import _regions\ntry: print(_regions.{call})\nexcept ValueError as e: print(e)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("'mask' must be planes * rows * columns bytes", "[]")
