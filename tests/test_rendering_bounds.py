"""A transparent source's key "on black" confirms only an image that lies, cell by cell of the
thumbnails, between the key and the source's own picture on white (confirm.BETWEEN, issue
24): any export of the source shows each pixel between its colour times its opacity (on black)
and that on white. Two icons of one template (a page with a light or a dark emblem) are within
the threshold of each other on black and the second stage's score confirmed them; the dark
icon's export is darker than the light one's key where its emblem is, the light icon's export
lighter than the dark one's picture: neither is matched to the other icon, by a check either
way round, by dedupe or by the MapReduce job, on both backends; each icon's own exports are."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw
from test_backdrop import encoded
from test_grouping import checked_groups, ids_of
from test_stored_keys import banner, exports

from phashdb import confirm, descriptor
from phashdb.mr import run as mr
from phashdb.phash import read_image

LIGHT, DARK = (250, 250, 250, 255), (40, 40, 40, 255)


def icon(emblem) -> Image.Image:
    """A light page with a folded corner and a line of text on transparency, an `emblem`
    disc on it (Oxygen's mimetype icons are such a template)."""
    img = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.polygon([(48, 16), (168, 16), (208, 56), (208, 240), (48, 240)], fill=(235, 235, 235, 255))
    d.polygon([(168, 16), (168, 56), (208, 56)], fill=(180, 180, 180, 255))
    d.rectangle((70, 200, 186, 214), fill=(120, 120, 120, 255))
    d.ellipse((96, 96, 160, 160), fill=emblem)
    return img


def key_and_picture(emblem) -> tuple[descriptor.Variant, bytes]:
    """icon(emblem)'s key on black and its stored descriptor (its picture on white)."""
    picture = read_image(encoded(icon(emblem), "PNG"))
    (key,) = [k for k in picture.keys if k.name == "on black"]
    return key, picture.descriptor


@pytest.mark.parametrize(
    "mine, other, bound", [(LIGHT, DARK, "below the key"), (DARK, LIGHT, "above the picture")]
)
def test_the_other_icons_export_lies_outside_the_bounds_the_own_exports_within(mine, other, bound):
    key, picture = key_and_picture(mine)
    below_most, above_most = confirm.BETWEEN["on black"]
    for name in ("on black", "alpha dropped"):
        theirs = read_image(exports(icon(other))[name]).variants[0]
        distance = (theirs.hash ^ key.hash).bit_count()
        # what confirmed it before: within the threshold, a score well under the limit
        ok, score = confirm.confirms(theirs.descriptor, key.descriptor)
        assert distance <= 8 and ok and score < -40, name
        below = max(k - t for k, t in zip(key.descriptor[33:], theirs.descriptor[33:]))
        above = max(t - p for t, p in zip(theirs.descriptor[33:], picture[33:49]))
        assert (below > below_most, above > above_most) == (
            bound == "below the key",
            bound == "above the picture",
        ), name
        # refused whichever side holds the key; the icon's own exports are not
        assert not _judged(key, theirs, distance, picture), name
        own = read_image(exports(icon(mine))[name]).variants[0]
        assert _judged(key, own, (own.hash ^ key.hash).bit_count(), picture), name


def _judged(key, other, distance: int, source: bytes) -> bool:
    """`confirm.judge` of `other` against the key on black, the key on either side; the
    two verdicts must agree."""
    theirs = confirm.judge(
        "on black", distance, 8, other.descriptor, key.descriptor, "theirs", source
    )  # fmt: skip
    mine = confirm.judge("on black", distance, 8, key.descriptor, other.descriptor, "mine", source)
    assert theirs == mine
    return theirs[0]


@pytest.mark.parametrize("mine, other", [(LIGHT, DARK), (DARK, LIGHT)])
def test_a_check_finds_the_icons_own_exports_and_not_the_other_icons(index, mine, other):
    index.add(encoded(icon(mine), "PNG"), id="mine")
    found = {
        (who, name): [(m.id, m.variant) for m in index.check(data).matches]
        for who, img in (("own", icon(mine)), ("other", icon(other)))
        for name, data in exports(img).items()
        if name != "on white"  # (on white, another picture to the hash: 22 bits away)
    }
    assert found == {
        ("own", "on black"): [("mine", "on black")],
        ("own", "alpha dropped"): [("mine", "on black")],
        ("other", "on black"): [],
        ("other", "alpha dropped"): [],
    }


@pytest.mark.parametrize("mine, other", [(LIGHT, DARK), (DARK, LIGHT)])
def test_a_check_of_the_icon_finds_its_own_stored_black_export_not_the_others(index, mine, other):
    index.add(exports(icon(other))["on black"], id="other on black")
    assert index.check(encoded(icon(mine), "PNG")).matches == ()
    # (the two black exports are one to the default, as-is: a false match it makes already)
    index.add(exports(icon(mine))["on black"], id="own on black", keep_duplicate=True)
    found = [(m.id, m.variant) for m in index.check(encoded(icon(mine), "PNG")).matches]
    assert found == [("own on black", "on black")]


@pytest.mark.parametrize("mine, other", [(LIGHT, DARK), (DARK, LIGHT)])
def test_dedupe_and_the_job_group_a_source_with_its_own_export_only(index, tmp_path, mine, other):
    # one icon beside the other one's exports (not the other icon itself nor the first one's
    # exports: the default links the two icons on white, and their two black exports, as-is),
    # and another source with its black export
    files = {"icon": tmp_path / "icon.png", "banner": tmp_path / "banner.png"}
    icon(mine).save(files["icon"])
    banner().save(files["banner"])
    files["banner on black"] = tmp_path / "banner on black.jpg"
    files["banner on black"].write_bytes(exports(banner())["on black"])
    for name in ("on black", "alpha dropped"):
        files[f"other {name}"] = tmp_path / f"other {name}.jpg"
        files[f"other {name}"].write_bytes(exports(icon(other))[name])
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)
    expected = checked_groups(index, files)
    assert sorted(map(sorted, expected)) == [
        ["banner", "banner on black"], ["other alpha dropped", "other on black"]
    ]  # fmt: skip
    found = index.dedupe()
    assert ids_of(found) == expected
    assert ids_of(mr.dedupe(index, "inline")) == expected
    # a key and its image's home in different reducers: the key's bounds go with it
    assert ids_of(mr.dedupe(index, "inline", group_bits=13)) == expected
