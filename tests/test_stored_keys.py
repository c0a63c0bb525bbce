"""Stored keys (issue 24; phashdb.renderings, Store.search_keys, index format 2): a transparent
source keeps its renderings on black and with the alpha dropped as keys; a check of an export
finds the stored source by them, on both backends; dedupe and the MapReduce job group a source
and its exports as checks do; removing or replacing an image removes its keys; an index of
format 1 is brought up to format 2."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_backdrop import encoded, on, sun
from test_grouping import checked_groups, ids_of

import phashdb
from phashdb import descriptor
from phashdb.mr import run as mr
from phashdb.phash import read_image, to_hex
from phashdb.records import Image as Record
from phashdb.renderings import NAMES
from phashdb.windows import NAMES as WINDOWS

COLOURS = [(220, 40, 40, 255), (40, 90, 220, 255), (240, 200, 30, 255)]
# The keys of banner() and hidden(sun), and the stored bytes of the banner's key (name byte 3,
# pHash, 49 compared bytes): pin phashdb.renderings and descriptor layout v3's new names.
GOLDEN_BANNER = {"on black": "fb28f782dd88d520"}
GOLDEN_HIDDEN = {
    "trimmed": "e0fd06e50ad66792", "on black": "da2b602bd62d98dc",
    "alpha dropped": "8c9572954b97cc27",
}  # fmt: skip
GOLDEN_BANNER_KEY_BYTES = "03fb28f782dd88d520"


def banner() -> Image.Image:
    """A transparent logo inside a striped frame of many colours: its black export has no
    black border (no backdrop key) and no plain frame (no trimmed key)."""
    img = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    for k, x in enumerate(range(0, 400, 25)):
        d.rectangle((x, 0, x + 24, 29), fill=COLOURS[k % 3])
        d.rectangle((x, 270, x + 24, 299), fill=COLOURS[(k + 1) % 3])
    for k, y in enumerate(range(0, 300, 25)):
        d.rectangle((0, y, 29, y + 24), fill=COLOURS[k % 3])
        d.rectangle((370, y, 399, y + 24), fill=COLOURS[(k + 2) % 3])
    d.ellipse((150, 90, 250, 190), fill=(230, 160, 20, 255))
    d.polygon([(80, 240), (200, 150), (320, 240)], fill=(30, 120, 60, 255))
    return img


def hidden(draw) -> Image.Image:
    """A transparent logo whose transparent pixels hide a grey ramp (dropping the alpha shows
    it: neither on white nor on black)."""
    img = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    draw(ImageDraw.Draw(img))
    a = np.asarray(img).copy()
    ramp = np.linspace(0, 255, a.shape[1]).astype(np.uint8)[None, :]
    for c in range(3):
        a[..., c] = np.where(a[..., 3] == 0, ramp, a[..., c])
    return Image.fromarray(a, "RGBA")


def exports(img: Image.Image) -> dict[str, bytes]:
    return {
        "on white": encoded(on(img, (255, 255, 255))),
        "on black": encoded(on(img, (0, 0, 0))),
        "alpha dropped": encoded(img.convert("RGB")),
    }


def keys_of(source) -> dict[str, str]:
    """The keys of `source` but its window keys (every picture has those: test_windows.py)."""
    return {k.name: to_hex(k.hash) for k in read_image(source).keys if k.name not in WINDOWS}


def test_golden_vectors_pin_the_renderings_keys():
    assert keys_of(encoded(banner(), "PNG")) == GOLDEN_BANNER
    assert keys_of(encoded(hidden(sun), "PNG")) == GOLDEN_HIDDEN
    picture = read_image(encoded(banner(), "PNG"))
    stored = picture.descriptor
    assert len(stored) == descriptor.STORED_SIZE + sum(
        descriptor.entry_size(k.name) for k in picture.keys
    )
    key = stored[descriptor.STORED_SIZE : descriptor.STORED_SIZE + descriptor.KEY_SIZE]
    assert key[:9].hex() == GOLDEN_BANNER_KEY_BYTES and descriptor.stored_keys(stored)
    # the key's compared bytes are those of the rendering read as an image of its own
    assert key[9:] == read_image(on(banner(), (0, 0, 0))).variants[0].descriptor


def test_opaque_images_and_blank_renderings_have_no_rendering_keys(photo_images):
    assert keys_of(photo_images["astronaut"]) == {}
    # white shapes at 30% opacity over white: on white a blank page (hashed on black then,
    # phash._flatten), the alpha dropped a white page: no key of either
    ghost = Image.new("RGBA", (400, 300), (255, 255, 255, 0))
    ImageDraw.Draw(ghost).ellipse((100, 50, 300, 250), fill=(255, 255, 255, 77))
    assert not set(keys_of(encoded(ghost, "PNG"))) & set(NAMES)


def test_a_check_of_each_export_finds_the_source_by_its_stored_keys(index):
    index.add(encoded(banner(), "PNG"), id="banner")
    index.add(encoded(hidden(sun), "PNG"), id="sun")
    found = {}
    for source, img in (("banner", banner()), ("sun", hidden(sun))):
        for name, data in exports(img).items():
            found[source, name] = [(m.id, m.variant) for m in index.check(data).matches]
    # The banner's black exports carry no key of their own but their windows (no black border,
    # no plain frame): only the source's stored key finds them (before index format 2, nothing).
    assert {k.name for k in read_image(exports(banner())["on black"]).keys} <= set(WINDOWS)
    assert found == {
        ("banner", "on white"): [("banner", "as-is")],
        ("banner", "on black"): [("banner", "on black")],
        ("banner", "alpha dropped"): [("banner", "on black")],
        ("sun", "on white"): [("sun", "as-is")],
        ("sun", "on black"): [("sun", "on black")],
        ("sun", "alpha dropped"): [("sun", "alpha dropped")],
    }


def test_a_blank_export_is_never_matched(index):
    ghost = Image.new("RGBA", (400, 300), (255, 255, 255, 0))
    ImageDraw.Draw(ghost).ellipse((100, 50, 300, 250), fill=(255, 255, 255, 77))
    index.add(encoded(ghost, "PNG"), id="ghost")
    assert [m.id for m in index.check(exports(ghost)["on black"]).matches] == ["ghost"]
    for name in ("on white", "alpha dropped"):  # white pages
        assert not index.check(exports(ghost)[name]).duplicate, name


def test_removing_or_replacing_an_image_removes_its_keys(index):
    black = exports(banner())["on black"]
    index.add(encoded(banner(), "PNG"), id="banner")
    assert [m.id for m in index.check(black).matches] == ["banner"]
    index.remove("banner")
    assert index.check(black).matches == ()
    index.add(encoded(banner(), "PNG"), id="banner")
    index.insert([Record("banner", read_image(encoded(hidden(sun), "PNG")).hash)])
    assert index.check(black).matches == ()


def test_a_record_rewritten_with_its_hash_keeps_its_keys(index):
    """A record stored again with the same hash (its file moved) is rewritten, not replaced:
    its keys stay searchable (HBase writes their cells again, with no new image in the batch)."""
    black = exports(banner())["on black"]
    index.add(encoded(banner(), "PNG"), id="banner")
    index.insert([replace(index.get("banner"), path="/elsewhere/banner.png")])
    assert index.get("banner").path == "/elsewhere/banner.png"
    assert [(m.id, m.path) for m in index.check(black).matches] == [
        ("banner", "/elsewhere/banner.png")
    ]


def test_dedupe_and_the_job_group_a_source_and_its_exports_as_checks_do(index, tmp_path):
    files = {}
    for source, img in (("banner", banner()), ("sun", hidden(sun))):
        files[source] = tmp_path / f"{source}.png"
        img.save(files[source])
        for name, data in exports(img).items():
            files[f"{source} {name}"] = tmp_path / f"{source} {name}.jpg"
            files[f"{source} {name}"].write_bytes(data)
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)
    expected = checked_groups(index, files)
    assert sorted(map(sorted, expected)) == sorted(
        sorted([s, *(f"{s} {n}" for n in ("on white", "on black", "alpha dropped"))])
        for s in ("banner", "sun")
    )
    found = index.dedupe()
    assert ids_of(found) == expected
    assert ids_of(mr.dedupe(index, "inline")) == expected


def test_an_index_of_format_1_gains_searchable_keys_when_opened(reopen):
    black = exports(banner())["on black"]
    with reopen() as index:
        index.add(encoded(banner(), "PNG"), id="banner")
        index.store.write_settings({"format": 1})
        store = index.store
        if hasattr(store, "writer"):  # HBase: an index of format 1 had no keys' cells
            from phashdb.hbase.keys import KEY_BANDS

            (number, image), = store.lookup(["banner"]).values()  # fmt: skip
            held = [k.hash for k in descriptor.stored_keys(image.descriptor)]
            store.writer.drop_entries({number}, held, KEY_BANDS)
            assert index.check(black).matches == ()
        else:  # embedded: an older database lacks the partial index of keyed rows
            db = sqlite3.connect(store.path / "index.sqlite3")
            db.execute("DROP INDEX images_keyed")
            db.commit()
            db.close()
    with reopen() as index:
        assert index.settings["format"] == phashdb.settings.FORMAT == 4
        assert [(m.id, m.variant) for m in index.check(black).matches] == [("banner", "on black")]
    with reopen() as index:
        assert index.store.read_settings()["format"] == 4


@pytest.mark.parametrize("format", [2, 3])
def test_an_index_of_format_2_or_3_is_marked_format_4_when_opened_to_write(reopen, format):
    """Formats 3 (window keys) and 4 (26-byte window keys) need nothing brought up: the images
    stored before keep their keys and are found by them (tests/test_windows.py: a format-3
    index's 58-byte windows); an older phashdb, reading format 4, refuses the index."""
    black = exports(banner())["on black"]
    with reopen() as index:
        index.add(encoded(banner(), "PNG"), id="banner")
        index.store.write_settings({"format": format})
    with reopen() as index:
        assert index.settings["format"] == 4
        assert [(m.id, m.variant) for m in index.check(black).matches] == [("banner", "on black")]


def test_an_index_of_an_unknown_format_is_refused(reopen):
    with reopen() as index:
        index.store.write_settings({"format": 5})
    with pytest.raises(phashdb.IndexMismatchError, match="format 5"):
        reopen()


@pytest.mark.hbase
def test_hbase_fsck_packs_the_keys_cells_and_takes_out_their_orphans(hbase_url):
    """The keys' band rows are band rows to `fsck --repair`: an entry a dead writer left there
    (an image number without a record) is found and taken out, the cells are packed, and the
    keys still answer."""
    from phashdb.hbase.keys import KEY_BANDS

    black = exports(banner())["on black"]
    with phashdb.open(hbase_url) as index:
        index.add(encoded(banner(), "PNG"), id="banner")
        index.add(encoded(hidden(sun), "PNG"), id="sun")
        store = index.store
        dead, tag = store.records.allocate(2)
        lost = read_image(exports(banner())["alpha dropped"]).hash
        store.writer._write_band_cells(
            np.array([lost], np.uint64), np.array([dead], np.uint64), tag, KEY_BANDS
        )
        assert store.fsck(repair=True, min_age=0) == [(f"#{dead}", lost)]
        assert store.fsck(min_age=0) == []
        _, numbers, _ = store.candidates(np.array([lost], np.uint64), 0, KEY_BANDS)
        assert dead not in numbers.tolist()
        assert [(m.id, m.variant) for m in index.check(black).matches] == [("banner", "on black")]


def test_a_transparent_source_under_a_box_keeps_its_renderings_and_its_unboxed_key(index):
    """Keys are stored in descriptor.KEYS' order whatever finds them: a transparent source
    with a black box laid over it has rendering keys and the unboxed key (the order they were
    found in once made packing its descriptor fail, and an ingest of such a folder stop)."""
    boxed = banner()
    width, height = boxed.size
    ImageDraw.Draw(boxed).rectangle((0, int(height * 0.85), width // 4, height), fill="black")
    picture = read_image(boxed)
    names = [k.name for k in picture.keys]  # then its window keys, in KEYS' order too
    assert names[:2] == ["on black", "unboxed"] and set(names[2:]) <= set(WINDOWS)
    assert names == sorted(names, key=descriptor.KEYS.index)
    assert descriptor.stored_keys(picture.descriptor) == tuple(
        map(descriptor.as_stored, picture.keys)
    )
    index.add(encoded(boxed, "PNG"), id="boxed banner")
    stored = descriptor.stored_keys(index.get("boxed banner").descriptor)
    assert [k.name for k in stored] == names
