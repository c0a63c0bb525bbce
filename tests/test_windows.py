"""Window keys (phashdb.windows): a picture keeps the pHash and descriptor of the windows its
re-framed and cropped copies show (centre 16:9 ... 1:1, centre 80%, the four 90% corners). A
check of such a copy finds the stored picture through its window key, a check of the whole
picture finds a stored crop through the query's own window key, on both backends; a window is
confirmed only strictly (confirm.STRICT); dedupe and the MapReduce job group the crops with
their picture as checks do, and nothing with another picture."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_grouping import checked_groups, ids_of
from test_unbox import boxed

from phashdb import confirm, descriptor
from phashdb.mr import run as mr
from phashdb.phash import read_image, to_hex
from phashdb.windows import NAMES, boxes

# The window keys of landscape() (a 4:3 picture: no "centre 4:3" window) and the stored bytes
# of its first one (name byte 18, pHash): pin phashdb.windows and descriptor layout v4's names.
# Its "centre 16:10" window (e0c37e72db00378d, 4 bits from the 16:9 one) is left out since the
# windows are judged by the compact rule (confirm.STRICT): it confirms the 16:9 window.
GOLDEN = {
    "centre 16:9": "e0c37c7adb007789", "centre 5:4": "f0c7fe34c304216f", "centre 1:1": "fec0d73fc12c202b",
    "centre 80%": "fec03e76d31421c9", "top left 90%": "e0c77cf587016f88",
    "top right 90%": "fbc03ff2c02425cd", "bottom left 90%": "f087de34d794012f",
    "bottom right 90%": "fbc0db3fd9870021",
}  # fmt: skip
GOLDEN_FIRST_KEY_BYTES = "12e0c37c7adb007789"
# What a wallpaper-like picture is cut to: two aspect ratios, the centre, the four corners.
CROPS = ("centre 16:9", "centre 1:1", "centre 80%", *NAMES[-4:])


@cache
def landscape(seed: int = 7) -> Image.Image:
    """A detailed 1600x1200 picture: a sky gradient with a slow wave, 40 discs, 6 hills, noise
    (a pHash sees it as a photo: every window shows a picture of its own). 4:3, not 16:10: at
    1600x1000 the centre 16:9 cuts 10% of the height and the whole is 8 bits from that crop,
    found as-is, not through the window."""
    w, h = 1600, 1200
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    sky = np.array([70, 120, 200]) * (1 - y) + np.array([250, 200, 150]) * y + 30 * np.sin(6 * x)
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(40):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(20, 160)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(rng.integers(0, 256, 3).tolist()))
    for _ in range(6):
        hill = [(int(rng.integers(0, w)), int(rng.integers(h // 2, h))) for _ in range(3)]
        d.polygon(hill, fill=tuple(rng.integers(0, 256, 3).tolist()))
    noisy = np.asarray(img, np.float64) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def window(img: Image.Image, name: str) -> Image.Image:
    return img.crop(tuple(round(v) for v in boxes(*img.size)[name]))


def jpeg(img: Image.Image) -> bytes:
    """`img` shrunk to 3/4 and saved as a JPEG, as a copy on the web is."""
    buf = io.BytesIO()
    img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.Resampling.LANCZOS).save(
        buf, "JPEG", quality=85
    )
    return buf.getvalue()


def found(index, source) -> list[tuple[str, str]]:
    return [(m.id, m.variant) for m in index.check(source).matches]


def brighter(img: Image.Image) -> Image.Image:
    """30 grey levels brighter: the pHash 2 bits off, the thumbnail cells about 30 levels."""
    return Image.fromarray(np.clip(np.asarray(img, np.int16) + 30, 0, 255).astype(np.uint8))


# Copies of a window that show it only loosely: the default confirmation (score <= 20) takes
# them, STRICT does not.
LOOSE = {"brighter": brighter, "captioned": boxed}


def test_golden_vectors_pin_the_window_keys():
    picture = read_image(landscape())
    assert {k.name: to_hex(k.hash) for k in picture.keys} == GOLDEN
    stored = picture.descriptor
    assert len(stored) == descriptor.STORED_SIZE + len(GOLDEN) * descriptor.COMPACT_SIZE
    assert stored[descriptor.STORED_SIZE :][:9].hex() == GOLDEN_FIRST_KEY_BYTES
    assert descriptor.stored_keys(stored) == tuple(map(descriptor.as_stored, picture.keys))
    assert descriptor.KEYS[7:] == NAMES  # name bytes 8 to 17 (layout v3), 18 to 27 (v4)
    assert list(descriptor.COMPACT.items()) == [(n, 18 + k) for k, n in enumerate(NAMES)]


@pytest.mark.parametrize("edit", LOOSE.values(), ids=LOOSE)
def test_a_window_is_confirmed_only_strictly(edit):
    assert confirm.STRICT == dict.fromkeys(NAMES, (0.95, 8))
    key = {k.name: k for k in read_image(jpeg(landscape())).keys}["centre 16:9"]
    crop = window(landscape(), "centre 16:9")
    for copy, strict in ((crop, True), (edit(crop), False)):
        query = read_image(jpeg(copy))
        distance, mine = (query.hash ^ key.hash).bit_count(), query.variants[0].descriptor
        assert distance <= 8  # within the threshold: the descriptors decide
        verdict, score = confirm.judge("centre 16:9", distance, 8, mine, key.descriptor, "theirs")
        assert verdict is strict
        # the key as layout v4 stores it (no 256-bit hash): the same verdict and score
        stored = descriptor.as_stored(key).descriptor
        assert confirm.judge("centre 16:9", distance, 8, mine, stored, "theirs") == (
            verdict,
            score,
        )
        if strict:  # scored by the thumbnails' correlation alone, and only within the threshold
            assert -80 <= score <= -0.95 * 80
            assert not confirm.judge("centre 16:9", 9, 8, mine, stored, "theirs")[0]
        # as a flip is confirmed (score <= SCORE_LIMIT), the loose copy would be too
        assert confirm.judge("mirrored", distance, 8, mine, key.descriptor)[0]


def test_each_crop_is_found_through_its_pictures_window_key(index):
    index.add(jpeg(landscape()), id="landscape")
    index.add(jpeg(landscape(11)), id="other")
    for name in CROPS:
        assert found(index, jpeg(window(landscape(), name))) == [("landscape", name)]
        # the other picture's crops: found as its own, never as the first
        assert [i for i, _ in found(index, jpeg(window(landscape(11), name)))] == ["other"]
    for name, edit in LOOSE.items():  # confirmed by no key: not the window, not the whole
        assert found(index, jpeg(edit(window(landscape(), "centre 16:9")))) == [], name


def test_the_whole_picture_finds_its_stored_crops_through_its_own_window_keys(index):
    for name in CROPS:
        index.add(jpeg(window(landscape(), name)), id=name, keep_duplicate=True)
    assert sorted(found(index, jpeg(landscape()))) == sorted((name, name) for name in CROPS)
    assert found(index, jpeg(landscape(11))) == []


def crop_files(folder) -> tuple[dict, dict]:
    """Two pictures and crops of each (the first every window's), as JPEG files in `folder`:
    ({picture: (image, crop names)}, {id: path})."""
    pictures = {"landscape": (landscape(), CROPS), "other": (landscape(11), CROPS[:3])}
    files = {}
    for source, (img, crops) in pictures.items():
        for name, part in [(source, img), *((f"{source} {n}", window(img, n)) for n in crops)]:
            files[name] = folder / f"{name}.jpg"
            files[name].write_bytes(jpeg(part))
    return pictures, files


def test_dedupe_and_the_job_group_the_crops_with_their_picture_as_checks_do(index, tmp_path):
    pictures, files = crop_files(tmp_path)
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)
    expected = checked_groups(index, files)
    assert sorted(map(sorted, expected)) == sorted(
        sorted([s, *(f"{s} {n}" for n in crops)]) for s, (_, crops) in pictures.items()
    )
    assert ids_of(index.dedupe()) == expected
    assert ids_of(mr.dedupe(index, "inline")) == expected


def test_an_index_of_format_3_keeps_its_58_byte_windows_beside_new_26_byte_ones(reopen, tmp_path):
    """An index of format 3 (rows of descriptor layout v3: each window key in 58 bytes) opened by
    this phashdb: marked format 4 once opened to write (an older phashdb then refuses it), its
    rows kept as they are beside new rows of layout v4 (26-byte windows), and both kinds of
    window found and confirmed alike by checks, damaged by none, grouped by dedupe and the job."""
    from test_descriptor import as_v3

    from phashdb.records import Image as Record

    pictures, files = crop_files(tmp_path)
    # stored by the phashdb of format 3: one picture and a crop of each, the rest after
    old = ["landscape", "landscape centre 1:1", "other centre 16:9"]
    with reopen() as index:
        records = []
        for name in old:
            picture = read_image(files[name].read_bytes())
            assert any(k.name in NAMES for k in picture.keys)
            records.append(Record(name, picture.hash, str(files[name]), descriptor=as_v3(picture)))
        index.store.put(records)
        index.store.write_settings(
            {"format": 3, "descriptor_version": "dct256-q-thumb4-variants-keys-v3"}
        )
    with reopen() as index:
        assert index.settings["format"] == 4 and index.store.read_settings()["format"] == 4
        for name, path in files.items():
            if name not in old:
                index.add(path, id=name, keep_duplicate=True)
        stored = index.store.find(files)
        for name in files:  # each row as its phashdb wrote it: 58-byte windows, or 26-byte ones
            d, picture = stored[name].descriptor, read_image(files[name].read_bytes())
            assert d == (as_v3(picture) if name in old else picture.descriptor)
        assert index.damaged_descriptors() == [] and index.fsck() == []
        # a crop finds its picture (through its stored window, of either size, where the
        # whole is not within the threshold), and nothing of the other
        by_window = {}
        for source, (_, crops) in pictures.items():
            for name in crops:
                hits = found(index, jpeg(window(pictures[source][0], name)))
                assert source in {i for i, _ in hits} and all(
                    i.split()[0] == source for i, _ in hits
                )
                by_window[source, name] = (source, name) in hits
        assert all(by_window[s, n] for s, n in by_window if s == "landscape")  # 58-byte windows
        assert any(by_window[s, n] for s, n in by_window if s == "other")  # 26-byte ones
        expected = checked_groups(index, files)
        assert sorted(map(sorted, expected)) == sorted(
            sorted([s, *(f"{s} {n}" for n in crops)]) for s, (_, crops) in pictures.items()
        )
        assert ids_of(index.dedupe()) == expected
        assert ids_of(mr.dedupe(index, "inline")) == expected
