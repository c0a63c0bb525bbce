"""One verdict everywhere (phashdb.grouping): the groups of a dedupe, on both backends and as
the MapReduce job, are those that a check of each image confirms (mirrored, rotated and
captioned copies, near-blank pages); a pair marked not duplicates is never in one group (the
bounds of a dedupe and damaged descriptors: test_grouping_bounds.py)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest
from conftest import run_cli, skimage_photo
from PIL import Image as PILImage
from PIL import ImageDraw

import phashdb
from phashdb.descriptor import SIZE, STORED_SIZE
from phashdb.grouping import connected_groups
from phashdb.mr import run as mr
from phashdb.serve import Running, ServeConfig

# What each planted copy is a copy of (a check confirms each; see test_checks_confirm_...).
PLANTED = {
    "astronaut-mirrored": "astronaut",
    "coffee-mirrored": "coffee",
    "camera-rotated": "camera",
    "chelsea-captioned": "chelsea",
}
# Pages of one grey each (two of them white): identical pHashes, never matched (near-blank).
BLANKS = ("white", "white-large", "grey", "black")


def caption(img: PILImage.Image) -> PILImage.Image:
    """A black bar with white words burned in along the bottom (1/16 of the height)."""
    img = img.convert("RGB")
    bar = img.height // 16
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, img.height - bar, img.width, img.height), fill=(0, 0, 0))
    draw.text((10, img.height - bar * 2 // 3), "Holiday 2024 - do not share", fill=(255, 255, 255))
    return img


@pytest.fixture(scope="module")
def edited(tmp_path_factory) -> dict:
    """Photos, their mirrored, rotated and captioned copies, and blank pages, as JPEG files."""
    folder = tmp_path_factory.mktemp("edited")
    made = {name: skimage_photo(name) for name in
            ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field")}  # fmt: skip
    flip, turn = PILImage.Transpose.FLIP_LEFT_RIGHT, PILImage.Transpose.ROTATE_90
    made["astronaut-mirrored"] = made["astronaut"].transpose(flip)
    made["coffee-mirrored"] = made["coffee"].transpose(flip)
    made["camera-rotated"] = made["camera"].transpose(turn)
    made["chelsea-captioned"] = caption(made["chelsea"])
    made["white"] = PILImage.new("L", (400, 300), 255)
    made["white-large"] = PILImage.new("L", (640, 480), 255)
    made["grey"] = PILImage.new("L", (400, 300), 235)
    made["black"] = PILImage.new("L", (400, 300), 10)
    out = {}
    for name, img in made.items():
        out[name] = folder / f"{name}.jpg"
        img.convert("RGB").save(out[name], quality=90)
    return out


def fill(index, files: dict) -> None:
    for name, path in files.items():
        index.add(path, id=name, keep_duplicate=True)


def checked_groups(index, files: dict) -> list[list[str]]:
    """The groups a check of each file (under its stored id) confirms: the definition."""
    links = [
        (name, m.id)
        for name, path in files.items()
        for m in index.check(path, id=name).matches
        if m.id != name
    ]
    return connected_groups(links)


def ids_of(groups) -> list[list[str]]:
    return [[i.id for i in g.images] for g in groups]


def groups_of(groups):
    return [([i.id for i in g.images], g.pairs) for g in groups]


def test_checks_confirm_the_planted_copies_and_not_the_blank_pages(index, edited):
    fill(index, edited)
    groups = checked_groups(index, edited)
    for copy, original in PLANTED.items():
        assert any({copy, original} <= set(g) for g in groups), copy
    assert not any(set(BLANKS) & set(g) for g in groups)
    assert len({index.get(name).hash for name in BLANKS}) == 1  # what the plain threshold sees


def test_dedupe_and_the_job_group_what_checks_confirm(index, edited):
    fill(index, edited)
    expected = checked_groups(index, edited)
    found = index.dedupe()
    assert ids_of(found) == expected
    assert groups_of(mr.dedupe(index, "inline")) == groups_of(found)
    # however the job splits its keys: queries reaching further than the threshold included
    job = mr.dedupe(index, "inline", bands="4,20,20,20", group_bits=3)
    assert groups_of(job) == groups_of(found)


def stored_as(location, images, size: int, version: str):
    """An index of `images` at `location` as an older version wrote it: each descriptor cut
    to its first `size` bytes and the index marked `version`."""
    with phashdb.open(location) as index:
        fill(index, images)
    db = sqlite3.connect(location / "index.sqlite3")
    db.execute("UPDATE images SET descriptor = substr(descriptor, 1, ?)", (size,))
    db.execute("UPDATE meta SET value = ? WHERE key = 'descriptor_version'", (json.dumps(version),))
    db.commit()
    db.close()
    return location


def test_rows_of_descriptor_layout_v1_are_grouped_as_is_only(tmp_path, edited):
    """An index made before the variants were stored still opens; its rows are judged as
    before (as-is, to the reach): captions are grouped, mirrors are not."""
    location = stored_as(tmp_path / "index", edited, SIZE, "dct256-q-thumb4-v1")
    with phashdb.open(location) as index:
        assert index.stats()["descriptor_version"] == "dct256-q-thumb4-v1"
        groups = ids_of(index.dedupe())
        assert ["chelsea", "chelsea-captioned"] in groups
        assert not any("astronaut-mirrored" in g for g in groups)
        assert groups == ids_of(mr.dedupe(index, "inline"))
        # a check has the pixels: it still finds the mirror
        assert "astronaut" in [m.id for m in index.check(edited["astronaut-mirrored"]).matches]


# --- the query keys: framed copies and transparent logos' exports --------------------------

# What each copy is a copy of: found by a check only through its query key (phashdb.trim,
# phashdb.backdrop), kept in its stored descriptor since layout v3.
KEYED = {
    "coffee-framed": "coffee",
    "sun-on-black": "sun",
    "sun-alpha-dropped": "sun",
}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory) -> dict:
    """Photos and a framed copy, transparent logos (PNG) and one's exports on black and with
    the alpha dropped (JPEG), as files."""
    from test_backdrop import gear, logo, on, sun
    from test_trim import framed

    folder = tmp_path_factory.mktemp("keyed")
    made = {name: skimage_photo(name).convert("RGB") for name in ("coffee", "chelsea", "rocket")}
    made["coffee-framed"] = framed(made["coffee"])
    made["sun-on-black"] = on(logo(sun), (0, 0, 0))
    made["sun-alpha-dropped"] = logo(sun).convert("RGB")
    out = {}
    for name, img in made.items():
        out[name] = folder / f"{name}.jpg"
        img.save(out[name], quality=85)
    for name, img in (("sun", logo(sun)), ("gear", logo(gear))):
        out[name] = folder / f"{name}.png"
        img.save(out[name])
    return out


def test_dedupe_and_the_job_group_framed_copies_and_exports_as_checks_do(index, keyed):
    fill(index, keyed)
    for copy, original in KEYED.items():  # what only a key finds
        found = {m.id: m.variant for m in index.check(keyed[copy], id=copy).matches}
        # the sun's exports: found by its stored key "on black" (index format 2), which is
        # closer than their own backdrop key
        assert found[original] == ("trimmed" if copy == "coffee-framed" else "on black"), copy
    expected = checked_groups(index, keyed)
    assert expected == [["sun", "sun-alpha-dropped", "sun-on-black"], ["coffee", "coffee-framed"]]
    found = index.dedupe()
    assert ids_of(found) == expected
    assert groups_of(mr.dedupe(index, "inline")) == groups_of(found)
    assert groups_of(mr.dedupe(index, "inline", bands="4,20,20,20", group_bits=3)) == groups_of(
        found
    )
    # flips not searched (the index's setting): a check still searches its keys, so does dedupe
    with phashdb.open(index.store.url, variants=False) as plain:
        assert ids_of(plain.dedupe()) == checked_groups(plain, keyed) == expected


def both_sets(edited, keyed) -> dict:
    """The edited and the keyed files, the keyed ones' ids prefixed (both sets hold the coffee,
    chelsea and rocket photos: their groups join)."""
    return {**edited, **{f"keyed-{name}": path for name, path in keyed.items()}}


def test_the_job_on_the_local_runner_groups_what_checks_confirm(tmp_path, edited, keyed):
    # One run of the jobs (their tasks real processes) over both sets.
    files = both_sets(edited, keyed)
    with phashdb.open(tmp_path / "index") as index:
        fill(index, files)
        assert ids_of(mr.dedupe(index, "local")) == checked_groups(index, files)


def test_rows_of_descriptor_layout_v2_have_no_keys_and_still_open(tmp_path, keyed):
    """An index made before the keys were stored: its rows are grouped without them (a framed
    copy is not grouped; re-adding it stores its keys), a check still finds it."""
    location = stored_as(tmp_path / "index", keyed, STORED_SIZE, "dct256-q-thumb4-variants-v2")
    with phashdb.open(location) as index:
        assert index.stats()["descriptor_version"] == "dct256-q-thumb4-variants-v2"
        assert index.damaged_descriptors() == []
        groups = ids_of(index.dedupe())
        assert not any(
            {copy, original} <= set(g) for copy, original in KEYED.items() for g in groups
        )
        assert groups == ids_of(mr.dedupe(index, "inline"))
        assert "coffee" in [m.id for m in index.check(keyed["coffee-framed"]).matches]
        index.remove("coffee-framed")
        index.add(keyed["coffee-framed"], id="coffee-framed", keep_duplicate=True)
        assert ["coffee", "coffee-framed"] in ids_of(index.dedupe())


# --- decisions hold in groups ---------------------------------------------------------------


@pytest.fixture(scope="module")
def triangle(tmp_path_factory, photos, near_copies) -> dict:
    """A photo, a near copy of it, and a third copy close to both (files)."""
    folder = tmp_path_factory.mktemp("triangle")
    out = {"a": folder / "a.jpg", "b": folder / "b.jpg", "c": folder / "c.jpg"}
    out["a"].write_bytes(photos["astronaut"].read_bytes())
    out["b"].write_bytes(near_copies["astronaut"].read_bytes())
    with PILImage.open(photos["astronaut"]) as img:
        img.resize((img.width * 9 // 10, img.height * 9 // 10)).save(out["c"], quality=70)
    return out


def test_a_pair_marked_not_duplicates_is_never_in_one_group(index, triangle):
    for name, path in triangle.items():
        index.add(path, id=name, keep_duplicate=True)
    assert {m.id for m in index.check(triangle["c"], id="c").matches} == {"a", "b", "c"}
    assert ids_of(index.dedupe()) == [["a", "b", "c"]]
    index.mark_not_duplicates([("a", "b")])
    [group] = index.dedupe()
    ids = [i.id for i in group.images]
    assert "c" in ids and not {"a", "b"} <= set(ids)
    # the link kept is c's strongest (smallest distance; ties: best score)
    close = {m.id: m for m in index.check(triangle["c"], id="c").matches if m.id != "c"}
    strongest = min(close.values(), key=lambda m: (m.distance, m.score))
    assert set(ids) == {"c", strongest.id}
    assert groups_of(mr.dedupe(index, "inline")) == groups_of([group])


def test_dedupe_apply_never_trashes_one_of_a_decided_pair_keeping_the_other(
    run, tmp_path, triangle
):
    (tmp_path / "photos").mkdir()
    triangle = {n: shutil.copy(p, tmp_path / "photos") for n, p in triangle.items()}
    triangle = {n: Path(p) for n, p in triangle.items()}
    assert run("add", "--on-duplicate", "keep", *triangle.values()).returncode == 1
    a, b = str(triangle["a"]), str(triangle["b"])
    assert run("decisions", "add", a, b).returncode == 0
    done = run("dedupe", "--apply", "trash", "--json")
    assert done.returncode == 0, done.stderr
    actions = json.loads(done.stdout)["done"]
    assert actions and all(d["error"] is None for d in actions)
    assert all({d["path"], d["keeper"]} != {a, b} for d in actions)
    assert sum(triangle[n].exists() for n in "abc") == 2  # one group of two: one trashed


def test_the_service_never_groups_a_decided_pair(tmp_path, triangle):
    with phashdb.open(tmp_path / "index") as index:
        for name, path in triangle.items():
            index.add(path, id=name, keep_duplicate=True)
    config = ServeConfig(db=str(tmp_path / "index"), uploads=tmp_path / "uploads", workers=1)
    with Running(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        members = lambda: [
            {i["id"] for i in g["images"]} for g in client.get("/v1/duplicates").json()["groups"]
        ]
        assert members() == [{"a", "b", "c"}]
        assert client.post("/v1/decisions", json={"pairs": [["a", "b"]]}).status_code == 201
        [group] = members()
        assert "c" in group and not {"a", "b"} <= group


def report_groups(run, out: Path) -> list[set[str]]:
    """The groups `phashdb report` shows, each as its files' names (the ids here)."""
    done = run("report", "--out", out)
    assert done.returncode == 0, done.stderr
    blob = re.search(r'id="groups-data">(.*?)</script>', out.read_text(), re.DOTALL).group(1)
    return [{Path(i["path"]).stem for i in g["images"]} for g in json.loads(blob)]


def test_the_report_never_shows_a_decided_pair_in_one_group(run, tmp_path, triangle):
    with phashdb.open(tmp_path / "index") as index:
        for name, path in triangle.items():
            index.add(path, id=name, keep_duplicate=True)
    assert report_groups(run, tmp_path / "r.html") == [{"a", "b", "c"}]
    with phashdb.open(tmp_path / "index") as index:
        index.mark_not_duplicates([("a", "b")])
    [group] = report_groups(run, tmp_path / "r.html")
    assert "c" in group and not {"a", "b"} <= group


def test_the_report_and_the_service_show_the_groups_of_dedupe(run, tmp_path, edited):
    """One verdict everywhere: `phashdb report` and /v1/duplicates (what the review page
    shows) give Index.dedupe's groups: the planted copies in, the blank pages out."""
    with phashdb.open(tmp_path / "index") as index:
        fill(index, edited)
        expected = sorted(sorted(g) for g in ids_of(index.dedupe()))
    assert all(any({c, o} <= set(g) for g in expected) for c, o in PLANTED.items())
    assert sorted(map(sorted, report_groups(run, tmp_path / "r.html"))) == expected
    config = ServeConfig(db=str(tmp_path / "index"), uploads=tmp_path / "uploads", workers=1)
    with Running(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        shown = client.get("/v1/duplicates").json()["groups"]
    assert sorted(sorted(i["id"] for i in g["images"]) for g in shown) == expected


@pytest.mark.hadoop
@pytest.mark.hbase
def test_the_job_on_yarn_groups_what_checks_confirm(
    edited, keyed, hbase_url, hadoop_conf, monkeypatch
):
    # The suite's one dedupe on YARN (its jobs are several applications, minutes on the test
    # cluster), asked everything at once: over both sets, through the CLI's --runner, over what
    # an HBase index holds (hashes, descriptors with their keys), the groups checks confirm
    # and, pair for pair, the index's own dedupe.
    monkeypatch.setenv("MRJOB_CONF", str(hadoop_conf))
    files = both_sets(edited, keyed)
    with phashdb.open(hbase_url) as index:
        fill(index, files)
        expected = checked_groups(index, files)
        found = [g.to_json() for g in index.dedupe()]
    result = run_cli("dedupe", "--runner", "hadoop", "--json", env_url=hbase_url, timeout=None)
    assert result.returncode == 0, result.stderr[-2000:]
    job = json.loads(result.stdout)
    assert [[i["id"] for i in g["images"]] for g in job] == expected
    assert job == found
