"""A transparent source's key "on black" confirms no image darker than it (descriptor.DARKER,
issue 24): on black each pixel shows its colour times its opacity, the darkest any export of
the source shows it. Two icons of one template (a page with another emblem) are within the
threshold of each other on black and the second stage's score confirmed them; the other icon's
black export is darker than the key where its emblem is, and is not matched, by a check either
way round, by dedupe or by the MapReduce job, on both backends; the icon's own exports are."""

from __future__ import annotations

from PIL import Image, ImageDraw
from test_backdrop import encoded
from test_grouping import checked_groups, ids_of
from test_stored_keys import banner, exports

from phashdb import descriptor
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


def key_on_black(img: Image.Image) -> descriptor.Variant:
    (key,) = [k for k in read_image(encoded(img, "PNG")).keys if k.name == "on black"]
    return key


def test_the_other_icons_black_export_is_darker_than_the_key_where_its_emblem_is():
    key = key_on_black(icon(LIGHT))
    for name in ("on black", "alpha dropped"):
        other = read_image(exports(icon(DARK))[name]).variants[0]
        distance = (other.hash ^ key.hash).bit_count()
        # what confirmed it before: within the threshold, a score well under the limit
        ok, score = descriptor.confirms(other.descriptor, key.descriptor)
        assert distance <= 8 and ok and score < -40, name
        below = max(k - o for k, o in zip(key.descriptor[33:], other.descriptor[33:]))
        assert below > descriptor.DARKER["on black"], name
        # refused whichever side holds the key; the icon's own export is not
        assert descriptor.judge("on black", distance, 8, other.descriptor, key.descriptor,
                                keyed="theirs") == (False, score)  # fmt: skip
        assert not descriptor.judge("on black", distance, 8, key.descriptor, other.descriptor)[0]
        own = read_image(exports(icon(LIGHT))[name]).variants[0]
        d = (own.hash ^ key.hash).bit_count()
        assert descriptor.judge("on black", d, 8, own.descriptor, key.descriptor, "theirs")[0]
        assert descriptor.judge("on black", d, 8, key.descriptor, own.descriptor)[0]


def test_a_check_finds_the_icons_own_exports_and_not_the_other_icons(index):
    index.add(encoded(icon(LIGHT), "PNG"), id="light")
    found = {
        (who, name): [(m.id, m.variant) for m in index.check(data).matches]
        for who, img in (("own", icon(LIGHT)), ("other", icon(DARK)))
        for name, data in exports(img).items()
        if name != "on white"  # (on white, another picture to the hash: 22 bits away)
    }
    assert found == {
        ("own", "on black"): [("light", "on black")],
        ("own", "alpha dropped"): [("light", "on black")],
        ("other", "on black"): [],
        ("other", "alpha dropped"): [],
    }


def test_a_check_of_the_icon_finds_its_own_stored_black_export_not_the_others(index):
    index.add(exports(icon(DARK))["on black"], id="dark on black")
    assert index.check(encoded(icon(LIGHT), "PNG")).matches == ()
    # (the two black exports are one to the default, as-is: a false match it makes already)
    index.add(exports(icon(LIGHT))["on black"], id="light on black", keep_duplicate=True)
    found = [(m.id, m.variant) for m in index.check(encoded(icon(LIGHT), "PNG")).matches]
    assert found == [("light on black", "on black")]


def test_dedupe_and_the_job_group_a_source_with_its_own_export_only(index, tmp_path):
    # the light icon beside the dark one's exports (not the dark icon itself nor the light
    # one's exports: the default links the two icons on white, and their two black exports,
    # as-is), and another source with its black export
    files = {"light": tmp_path / "light.png", "banner": tmp_path / "banner.png"}
    icon(LIGHT).save(files["light"])
    banner().save(files["banner"])
    files["banner on black"] = tmp_path / "banner on black.jpg"
    files["banner on black"].write_bytes(exports(banner())["on black"])
    for name in ("on black", "alpha dropped"):
        files[f"dark {name}"] = tmp_path / f"dark {name}.jpg"
        files[f"dark {name}"].write_bytes(exports(icon(DARK))[name])
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)
    expected = checked_groups(index, files)
    assert sorted(map(sorted, expected)) == [
        ["banner", "banner on black"], ["dark alpha dropped", "dark on black"]
    ]  # fmt: skip
    found = index.dedupe()
    assert ids_of(found) == expected
    assert ids_of(mr.dedupe(index, "inline")) == expected
