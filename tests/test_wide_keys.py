"""A small transparent source (an emoji or icon of at most renderings.SMALL pixels) keeps its
renderings as wide keys (confirm.WIDE_KEYS, issue 24): a JPEG export of such a figure moves
its pHash past the threshold (its bits are near-ties), so the key is searched up to the reach
and confirmed there only strictly (confirm.WIDE: score and thumbnails). Check, dedupe and the
MapReduce job give the same verdicts, on both backends; a figure of the same template is not
matched, nor is a blank export; golden vectors pin the keys (their name bytes 6 and 7). The
unboxed key (phashdb.unbox) is searched so too: a black box over a flat picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_backdrop import encoded, on
from test_grouping import checked_groups, ids_of
from test_stored_keys import exports, keys_of
from test_unbox import boxed, jpeg, unboxed

import phashdb
from phashdb import confirm, descriptor
from phashdb.mr import run as mr
from phashdb.phash import read_image
from phashdb.records import Image as Record
from phashdb.renderings import NAMES, SMALL, SMALL_NAMES

ON_BLACK = SMALL_NAMES["on black"]
LIMIT, GREYS = confirm.WIDE[ON_BLACK]
LIGHTER = (130, 70, 30, 255)  # face()'s hair, 25 grey levels lighter
# The keys of face() and its stored key bytes (name byte 6, pHash): pin phashdb.renderings'
# small sources and descriptor.KEYS' new names.
GOLDEN_FACE = {"trimmed": "a00aaaaaa020a082", "on black, small": "82282aa220a2a28a"}
GOLDEN_FACE_KEY_BYTES = "0682282aa220a2a28a"


def face(hair=(90, 50, 20, 255), size: int = 64) -> Image.Image:
    """A mirror-symmetric emoji-like face on transparency, `size` pixels wide, with `hair`:
    half its low DCT coefficients are near-ties, its JPEG export on black lies 12 bits from
    its rendering's pHash."""
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((6, 8, 57, 50), fill=hair)
    d.ellipse((12, 12, 51, 60), fill=(255, 204, 77, 255))
    d.ellipse((21, 24, 27, 32), fill=(60, 40, 30, 255))
    d.ellipse((36, 24, 42, 32), fill=(60, 40, 30, 255))
    d.arc((22, 34, 41, 50), 20, 160, fill=(120, 40, 30, 255), width=3)
    return img if size == 64 else img.resize((size, size), Image.Resampling.LANCZOS)


def wide_key() -> descriptor.Variant:
    """face()'s stored key on black."""
    (key,) = [k for k in read_image(encoded(face(), "PNG")).keys if k.name == ON_BLACK]
    return key


def test_golden_vectors_pin_a_small_sources_wide_keys():
    assert keys_of(encoded(face(), "PNG")) == GOLDEN_FACE
    picture = read_image(encoded(face(), "PNG"))
    stored = picture.descriptor
    assert len(stored) == descriptor.STORED_SIZE + sum(
        descriptor.entry_size(k.name) for k in picture.keys
    )
    # after the trimmed key's (name byte 2), before the window keys'
    key = stored[descriptor.STORED_SIZE + descriptor.KEY_SIZE :][: descriptor.KEY_SIZE]
    assert key[:9].hex() == GOLDEN_FACE_KEY_BYTES
    assert key[9 : descriptor.KEY_SIZE] == read_image(on(face(), (0, 0, 0))).variants[0].descriptor


def test_only_a_small_source_keeps_wide_keys():
    renderings = {*NAMES, *confirm.WIDE_KEYS}
    small = set(keys_of(encoded(face(size=SMALL), "PNG"))) & renderings
    larger = set(keys_of(encoded(face(size=SMALL + 1), "PNG"))) & renderings
    assert small == {ON_BLACK} and larger == {"on black"}


def test_a_wide_key_beyond_the_threshold_confirms_only_strictly():
    key = wide_key()
    export = read_image(exports(face())["on black"]).variants[0]
    distance = (key.hash ^ export.hash).bit_count()
    ok, score = confirm.judge(key.name, distance, 8, export.descriptor, key.descriptor)
    assert 8 < distance <= 16 and ok and score <= LIMIT
    # the same key under a name that is not wide: beyond the threshold it is not searched
    assert confirm.key_radius("on black", 8, 16) == 8 < confirm.key_radius(key.name, 8, 16)
    # a score between the two limits confirms within the threshold, not beyond it
    middle = (LIMIT + confirm.SCORE_LIMIT) / 2
    assert not _judged_at(key.name, 9, middle) and _judged_at(key.name, 8, middle)


def _judged_at(name: str, distance: int, score: float) -> bool:
    """`confirm.judge` of a key named `name` at `distance` against a descriptor that scores
    about `score` (256-bit distance round(score + 80), identical thumbnails) against it."""
    mine = wide_key().descriptor
    bits = round(score + confirm.CORRELATION_WEIGHT)
    flipped = int.from_bytes(mine[:32], "big") ^ ((1 << bits) - 1)
    theirs = flipped.to_bytes(32, "big") + mine[32:]
    return confirm.judge(name, distance, 8, theirs, mine)[0]


def test_a_check_of_a_small_sources_exports_finds_it_by_its_wide_keys(index):
    index.add(encoded(face(), "PNG"), id="face")
    found = {
        name: [(m.id, m.variant) for m in index.check(data).matches]
        for name, data in exports(face()).items()
    }
    assert found == {
        "on white": [("face", "as-is")],
        "on black": [("face", ON_BLACK)],
        "alpha dropped": [("face", ON_BLACK)],
    }


def test_a_figure_of_the_same_template_is_not_matched(index):
    """The same face with lighter hair: within the reach of the key and confirmed by the score,
    refused by its thumbnail (the hair's grey levels)."""
    index.add(encoded(face(), "PNG"), id="face")
    other = exports(face(hair=LIGHTER))
    key = wide_key()
    mine = read_image(other["on black"]).variants[0]
    ok, score = confirm.confirms(mine.descriptor, key.descriptor)
    assert (mine.hash ^ key.hash).bit_count() <= 16 and ok and score <= LIMIT
    assert _greys(mine.descriptor, key.descriptor) > GREYS
    for name in ("on black", "alpha dropped"):  # (on white, the default's as-is search meets it)
        assert index.check(other[name]).matches == (), name


def _greys(a: bytes, b: bytes) -> int:
    """The largest difference between two descriptors' 4x4 thumbnails' cells."""
    return max(abs(x - y) for x, y in zip(a[33:], b[33:]))


def test_a_small_blank_export_is_never_matched(index):
    ghost = Image.new("RGBA", (SMALL, SMALL), (255, 255, 255, 0))
    ImageDraw.Draw(ghost).ellipse((16, 8, 48, 56), fill=(255, 255, 255, 77))
    index.add(encoded(ghost, "PNG"), id="ghost")
    for name in ("on white", "alpha dropped"):  # white pages
        assert not index.check(exports(ghost)[name]).duplicate, name


def test_dedupe_and_the_job_group_small_sources_and_exports_as_checks_do(index, tmp_path):
    """The exports on black and alpha dropped (the same JPEG) join the source and its export
    on white only by the source's wide key (25 bits from its hash, 12 from the key)."""
    files = {"face": tmp_path / "face.png"}
    face().save(files["face"])
    for name, data in exports(face()).items():
        files[f"face {name}"] = tmp_path / f"face {name}.jpg"
        files[f"face {name}"].write_bytes(data)
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)
    expected = checked_groups(index, files)
    assert expected == [["face", "face alpha dropped", "face on black", "face on white"]]
    assert ids_of(index.dedupe()) == expected
    assert ids_of(mr.dedupe(index, "inline")) == expected


def flat_art(seed: int) -> Image.Image:
    """A flat picture of random colours: a sky gradient, three discs, a hill."""
    rng = np.random.default_rng(seed)
    w, h = 480, 320
    y = np.linspace(0, 1, h)[:, None, None]
    sky = rng.integers(0, 255, 3) * (1 - y) + rng.integers(0, 255, 3) * y
    img = Image.fromarray((sky * np.ones((1, w, 1))).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(3):
        x, y, r = rng.integers(0, w), rng.integers(0, h), rng.integers(40, 120)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.integers(0, 255, 3).tolist()))
    top = (w * rng.uniform(0.2, 0.6), h * rng.uniform(0.4, 0.7))
    d.polygon(
        [(0, h), top, (w * rng.uniform(0.6, 1), h)], fill=tuple(rng.integers(0, 255, 3).tolist())
    )
    return img


# flat_art(3) under a black box: its pHash 20 bits from the original's (past the reach), its
# unboxed key 12 (past the threshold), scoring -36 with thumbnails 1 grey level apart;
# flat_art(24)'s key 14 bits away scores -24: not strict enough.
FOUND, REFUSED = 3, 24


def test_an_unboxed_key_beyond_the_threshold_finds_a_black_boxed_flat_picture(index):
    index.add(jpeg(flat_art(FOUND)), id="art")
    copy = jpeg(boxed(flat_art(FOUND), "black"))
    key = unboxed(copy)
    original = read_image(jpeg(flat_art(FOUND)))
    assert (read_image(copy).hash ^ original.hash).bit_count() > 16
    assert 8 < (key.hash ^ original.hash).bit_count() <= 16
    assert [(m.id, m.variant) for m in index.check(copy).matches] == [("art", "unboxed")]


def test_an_unboxed_key_beyond_the_threshold_confirms_only_strictly(index):
    index.add(jpeg(flat_art(REFUSED)), id="art")
    copy = jpeg(boxed(flat_art(REFUSED), "black"))
    key, original = unboxed(copy), read_image(jpeg(flat_art(REFUSED))).variants[0]
    ok, score = confirm.confirms(key.descriptor, original.descriptor)
    assert 8 < (key.hash ^ original.hash).bit_count() <= 16 and ok
    assert confirm.WIDE["unboxed"][0] < score and _greys(key.descriptor, original.descriptor) < 8
    assert index.check(copy).matches == ()


def test_dedupe_and_the_job_group_a_black_boxed_flat_picture_as_checks_do(index, tmp_path):
    files = {
        "art": tmp_path / "art.jpg", "boxed": tmp_path / "boxed.jpg",
        "refused": tmp_path / "refused.jpg", "refused boxed": tmp_path / "refused boxed.jpg",
    }  # fmt: skip
    files["art"].write_bytes(jpeg(flat_art(FOUND)))
    files["boxed"].write_bytes(jpeg(boxed(flat_art(FOUND), "black")))
    files["refused"].write_bytes(jpeg(flat_art(REFUSED)))
    files["refused boxed"].write_bytes(jpeg(boxed(flat_art(REFUSED), "black")))
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)
    expected = checked_groups(index, files)
    assert expected == [["art", "boxed"]]
    assert ids_of(index.dedupe()) == expected
    assert ids_of(mr.dedupe(index, "inline")) == expected


@pytest.mark.hbase
def test_hbase_keeps_wide_keys_in_rows_of_their_own_and_reads_an_older_layout(hbase_url):
    """HBase layout 4: a wide key has entries in the wide keys' own band rows as well as in
    every key's, and a check probes those alone up to the reach (every other key's within the
    threshold). A layout-3 index has none there (written before): its wide keys are found
    by the rows of every key up to the reach, as then. Removing the image empties both."""
    from phashdb.hbase.keys import KEY_BANDS, WIDE_KEY_BANDS

    key = np.array([wide_key().hash], np.uint64)
    black = exports(face())["on black"]
    with phashdb.open(hbase_url) as index:
        index.add(encoded(face(), "PNG"), id="face")
        store = index.store
        ((number, _),) = store.lookup(["face"]).values()
        for first in (KEY_BANDS, WIDE_KEY_BANDS):
            assert store.candidates(key, 0, first)[1].tolist() == [number]
        assert [(m.id, m.variant) for m in index.check(black).matches] == [("face", ON_BLACK)]
        # as a phashdb before layout 4 left it: nothing in the wide keys' rows
        store.writer.drop_entries({number}, key.tolist(), WIDE_KEY_BANDS)
        assert index.check(black).matches == ()  # layout 4 looks for it there alone
        store.write_settings({"hbase_layout": 3})
    with phashdb.open(hbase_url) as index:
        assert [(m.id, m.variant) for m in index.check(black).matches] == [("face", ON_BLACK)]
        index.store.write_settings({"hbase_layout": 4})
        index.add(encoded(face(), "PNG"), id="face again", keep_duplicate=True)
        assert index.remove("face again") and index.remove("face")
        for first in (KEY_BANDS, WIDE_KEY_BANDS):
            assert index.store.candidates(key, 0, first)[1].tolist() == []


def test_a_key_search_with_a_reach_finds_each_key_within_its_own_radius(reopen):
    """`Store.search_keys(q, radius, reach=)`, what a check asks: every key within the radius,
    a wide key up to the reach (confirm.key_radius), by brute force over the stored keys;
    with `names`, only those."""
    rng = np.random.default_rng(7)
    query = int(rng.integers(0, 2**63))
    names = ["trimmed", "unboxed", "on black, small", "centre 80%"]  # in KEYS' order
    images = []
    for k in range(60):
        keys = b""
        for name in names:
            flipped = rng.choice(64, int(rng.integers(0, 20)), replace=False)
            key = query ^ sum(1 << int(b) for b in flipped)
            keys += bytes([descriptor.KEYS.index(name) + 1]) + key.to_bytes(8, "big")
            keys += rng.integers(0, 256, descriptor.SIZE, dtype=np.uint8).tobytes()
        head = rng.integers(0, 256, descriptor.STORED_SIZE, dtype=np.uint8).tobytes()
        images.append(Record(f"i{k}", int(rng.integers(0, 2**63)), descriptor=head + keys))
    expected = sorted(
        (i.id, key.name, d)
        for i in images
        for key in descriptor.stored_keys(i.descriptor)
        if (d := (key.hash ^ query).bit_count()) <= confirm.key_radius(key.name, 8, 16)
    )
    assert any(d > 8 for *_, d in expected) and any(d <= 8 for *_, d in expected)
    with reopen() as index:
        index.store.put(images)
        for asked in (None, confirm.WIDE_KEYS, frozenset(["centre 80%", "unboxed"])):
            _, ids, found, dists = index.store.search_keys(
                np.array([query], np.uint64), 8, names=asked, reach=16
            )
            got = sorted(zip(ids.tolist(), found.tolist(), dists.tolist()))
            assert got == [e for e in expected if asked is None or e[1] in asked], asked
