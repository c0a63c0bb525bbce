"""dedupe's groups kept in the index folder: answered from the file while the index is the same,
found again (and equal to a fresh dedupe) after any change, here or in another process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from PIL import Image as PILImage

import phashdb
from phashdb import group_cache


@pytest.fixture
def stored(tmp_path, photos, near_copies):
    """An embedded index holding the photos and their near copies (three groups and more)."""
    location = tmp_path / "index"
    with phashdb.open(location) as index:
        for name in ("chelsea", "coffee", "rocket", "camera"):
            index.add(photos[name], name)
            index.add(near_copies[name], f"{name}-copy", keep_duplicate=True)
    return location


def counted(index):
    """`index` whose link search counts its calls (the search itself, not the kept answer):
    each call's `touching` (None: every image searched)."""
    calls = []
    search = index.links

    def links(*args, **kwargs):
        calls.append(kwargs.get("touching"))
        return search(*args, **kwargs)

    index.links = links
    return calls


def test_the_groups_are_kept_and_answered_while_nothing_changes(stored):
    with phashdb.open(stored) as index:
        fresh = index.dedupe()
        calls = counted(index)
        assert group_cache.dedupe(index) == fresh
        assert calls == [None] and (stored / group_cache.FILE).is_file()
    with phashdb.open(stored) as index:  # another process's view: a new connection
        calls = counted(index)
        index.store.images = None  # answered from the file: no stored record read
        assert group_cache.dedupe(index) == fresh
        assert calls == []


def mirrored(path, folder):
    """The photo flipped left to right: linked to it by a stored variant only."""
    out = folder / f"{path.stem}-mirrored.png"
    with PILImage.open(path) as img:
        img.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT).save(out)
    return out


def replaced(index, photos):
    """`coffee` stored again under its id with another photo's hash and descriptor (what
    ingest stores when a file is overwritten by another picture)."""
    other = index.check(photos["astronaut"], "coffee").image
    index.store.put([replace(index.get("coffee"), hash=other.hash, descriptor=other.descriptor)])


@pytest.mark.parametrize(
    ("change", "searched", "differs"),
    [
        (lambda index, photos, near, tmp: index.remove("coffee-copy"), [], True),
        (
            lambda index, photos, near, tmp: index.add(photos["astronaut"], "astronaut"),
            [{"astronaut"}],
            False,
        ),
        (  # linked from the side of the images stored before (as-is: the larger id's search)
            lambda index, photos, near, tmp: index.add(
                near["camera"], "a-copy", keep_duplicate=True
            ),
            [{"a-copy"}],
            True,
        ),
        (
            lambda index, photos, near, tmp: index.add(
                mirrored(photos["chelsea"], tmp), "mirror", keep_duplicate=True
            ),
            [{"mirror"}],
            True,
        ),
        (lambda index, photos, near, tmp: replaced(index, photos), [{"coffee"}], True),
        (
            lambda index, photos, near, tmp: index.mark_not_duplicates(
                [("chelsea", "chelsea-copy")]
            ),
            [],
            True,
        ),
        (
            lambda index, photos, near, tmp: index.store.write_settings({"threshold": 4}),
            [None],
            False,
        ),
    ],
    ids=["remove", "add", "add-linked", "add-mirrored", "replace", "decision", "settings"],
)
def test_a_change_searches_only_what_changed_and_groups_as_a_full_search(
    stored, photos, near_copies, tmp_path, change, searched, differs
):
    with phashdb.open(stored) as index:
        before = group_cache.dedupe(index)
    with phashdb.open(stored) as other:
        change(other, photos, near_copies, tmp_path)
    with phashdb.open(stored) as index:
        calls = counted(index)
        found = group_cache.dedupe(index)
        assert calls == searched  # the images changed, and those alone; or all, new settings
        assert found == index.dedupe()
        assert (found != before) == differs


def test_a_change_by_another_process_is_seen(stored, near_copies):
    with phashdb.open(stored) as index:
        before = group_cache.dedupe(index)
        script = (
            "import sys, phashdb\n"
            "with phashdb.open(sys.argv[1]) as index: index.remove('rocket-copy')\n"
        )
        subprocess.run([sys.executable, "-c", script, str(stored)], check=True)
        after = group_cache.dedupe(index)
        assert after != before and after == index.dedupe()


def test_another_threshold_or_reach_is_another_answer(stored):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        assert group_cache.dedupe(index, 0) == index.dedupe(0)
        assert group_cache.dedupe(index, reach=16) == index.dedupe(reach=16)
        assert group_cache.dedupe(index) == index.dedupe()


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"key": [1], "groups": 3}', b"[]"])
def test_a_damaged_file_is_found_again_and_replaced(stored, damage):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        kept = stored / group_cache.FILE
        key = json.loads(kept.read_text())["key"]
        kept.write_bytes(damage)
        calls = counted(index)
        found = group_cache.dedupe(index)
        assert calls == []  # grouped again from the kept links: nothing changed, nothing searched
        assert found == index.dedupe()
        assert json.loads(kept.read_text())["key"] == key


def test_groups_kept_before_a_write_never_answer_after_it(stored):
    # The key holds the index's version: the file as it was before the write is not used.
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        kept = (stored / group_cache.FILE).read_bytes()
        index.remove("camera-copy")
        (stored / group_cache.FILE).write_bytes(kept)
        assert group_cache.dedupe(index) == index.dedupe()
        assert not any("camera-copy" in [i.id for i in g.images] for g in group_cache.dedupe(index))


@pytest.mark.parametrize("damage", [b"{not json", b'{"key": 1}', b"[]", b"{}"])
def test_damaged_links_are_searched_again_in_full(stored, damage):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        key = json.loads((stored / group_cache.LINKS).read_text())["key"]
        (stored / group_cache.LINKS).write_bytes(damage)
        index.remove("rocket-copy")
        calls = counted(index)
        found = group_cache.dedupe(index)
        assert calls == [None]
        assert found == index.dedupe()
        assert json.loads((stored / group_cache.LINKS).read_text())["key"] == key


def test_kept_links_of_wrong_shape_are_searched_again_in_full(stored):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        kept = json.loads((stored / group_cache.LINKS).read_text())
        kept["links"] = [["a", "b"]]
        (stored / group_cache.LINKS).write_text(json.dumps(kept))
        index.remove("rocket-copy")
        calls = counted(index)
        found = group_cache.dedupe(index)
        assert calls == [None]
        assert found == index.dedupe()


def test_the_json_answer_is_kept_and_follows_every_change(stored):
    with phashdb.open(stored) as index:
        fresh = json.dumps([g.to_json() for g in index.dedupe()])
        assert group_cache.dedupe_json(index) == fresh
        calls = counted(index)
        index.store.images = None  # answered from the kept text: no stored record read
        assert group_cache.dedupe_json(index) == fresh
        assert calls == []
    with phashdb.open(stored) as index:
        index.remove("chelsea-copy")
        after = group_cache.dedupe_json(index)
        assert after != fresh and after == json.dumps([g.to_json() for g in index.dedupe()])
        assert group_cache.dedupe_json(index, 0) == group_cache.to_json(index.dedupe(0))


def test_dedupe_json_prints_the_same_bytes_kept_or_found(stored):
    run = [sys.executable, "-m", "phashdb", "--db", str(stored), "dedupe", "--json"]
    first = subprocess.run(run, capture_output=True, check=True).stdout
    assert (stored / group_cache.TEXT).is_file()
    again = subprocess.run(run, capture_output=True, check=True).stdout
    with phashdb.open(stored) as index:
        assert first == again == (json.dumps([g.to_json() for g in index.dedupe()]) + "\n").encode()


def test_the_hashes_kept_of_each_search_are_those_of_its_queries(stored, tmp_path):
    """search_hashes reads them from a stored descriptor without making the queries: the same
    hashes, in the same order, for every layout (keys, v2, v1), a damaged one and none."""
    from test_backdrop import logo, sun
    from test_trim import framed

    from phashdb.descriptor import SIZE, STORED_SIZE
    from phashdb.grouping import queries, search_hashes

    with PILImage.open(near_copies_of(stored)) as img:
        framed(img.convert("RGB")).save(tmp_path / "framed.jpg", quality=85)
    logo(sun).convert("RGB").save(tmp_path / "alpha-dropped.jpg", quality=85)
    with phashdb.open(stored) as index:
        for name in ("framed.jpg", "alpha-dropped.jpg"):
            index.add(tmp_path / name, name, keep_duplicate=True)
        images = list(index.store.images())
    longest = max(len(i.descriptor) for i in images)
    assert longest > STORED_SIZE  # keys are among them
    for image in images:
        d = image.descriptor
        for stored_as in (d, d[:STORED_SIZE], d[:SIZE], d[: SIZE + 1], None):
            for variants in (True, False):
                asked = queries("x", image.hash, stored_as, 8, 12, variants)
                assert search_hashes(image.hash, stored_as, variants) == [q.hash for q in asked]


def near_copies_of(location):
    """A photo file the `stored` index holds."""
    with phashdb.open(location) as index:
        return next(i.path for i in index.store.images() if i.path)


def phashdb_cli(location, *args, check=True) -> subprocess.CompletedProcess:
    """`phashdb --db location -q ARGS` as its own process, with the modules it imported
    (python -X importtime) on stderr."""
    run = [sys.executable, "-X", "importtime", "-m", "phashdb", "--db", str(location), "-q"]
    return subprocess.run([*run, *map(str, args)], capture_output=True, check=check)


def imported(done: subprocess.CompletedProcess) -> set[str]:
    lines = done.stderr.decode().splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def from_scratch(location, threshold=None) -> bytes:
    """`dedupe --json`'s output as a search of everything finds it (nothing kept used)."""
    with phashdb.open(location) as index:
        return (group_cache.to_json(index.dedupe(threshold)) + "\n").encode()


def copied(folder, photos, near_copies, names) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        for path in (photos[name], near_copies[name]):
            (folder / path.name).write_bytes(path.read_bytes())


def test_the_dedupe_after_an_ingest_only_reads_and_prints(tmp_path, photos, near_copies):
    location, folder = tmp_path / "index", tmp_path / "album"
    answers = []
    for names in (("chelsea", "coffee"), ("rocket", "camera")):  # fresh, then files added
        copied(folder, photos, near_copies, names)
        phashdb_cli(location, "ingest", folder)
        done = phashdb_cli(location, "dedupe", "--json")
        assert not {"numpy", "PIL"} & imported(done)  # nothing searched, no image read
        assert done.stdout == from_scratch(location)
        answers.append(done.stdout)
    assert answers[0] != answers[1] and b"rocket-copy" in answers[1]


def test_an_ingest_into_a_much_larger_index_leaves_the_search_to_dedupe(
    tmp_path, photos, near_copies
):
    location, folder = tmp_path / "index", tmp_path / "album"
    copied(folder, photos, near_copies, ("chelsea", "coffee", "rocket"))
    phashdb_cli(location, "ingest", folder)
    copied(folder, photos, near_copies, ("camera",))  # 2 of 8: the dedupe after it searches
    phashdb_cli(location, "ingest", folder)
    done = phashdb_cli(location, "dedupe", "--json")
    assert {"numpy"} & imported(done) and b"camera-copy" in done.stdout
    assert done.stdout == from_scratch(location)


def test_what_an_ingest_kept_is_checked_against_the_index(tmp_path, photos, near_copies):
    location, folder = tmp_path / "index", tmp_path / "album"
    copied(folder, photos, near_copies, ("chelsea", "coffee", "rocket"))
    camera = (photos["camera"], near_copies["camera"])
    phashdb_cli(location, "ingest", folder)
    kept = phashdb_cli(location, "dedupe", "--json").stdout
    with phashdb.open(location) as index:  # another process's removal, then an add
        index.remove(next(i.id for i in index.store.images() if "coffee-copy" in i.id))
    added = phashdb_cli(location, "add", "--on-duplicate", "keep", *camera, check=False)
    assert b"duplicate" in added.stdout  # exit status 1: a duplicate, kept as asked
    after = phashdb_cli(location, "dedupe", "--json").stdout
    assert after != kept and after == from_scratch(location)
    assert b"coffee-copy" not in after and b"camera-copy" in after
    for threshold in ("0", "12"):  # other settings: found again, not the kept answer
        done = phashdb_cli(location, "dedupe", "--json", "--threshold", threshold)
        assert done.stdout == from_scratch(location, int(threshold))
    text = phashdb_cli(location, "dedupe").stdout
    for name in (group_cache.FILE, group_cache.LINKS, group_cache.TEXT):
        (location / name).unlink()
    assert text == phashdb_cli(location, "dedupe").stdout


def test_refresh_keeps_the_answer_only_where_it_can_be_kept(index, photos, near_copies):
    for name in ("chelsea", "coffee"):
        index.add(photos[name], name)
        index.add(near_copies[name], f"{name}-copy", keep_duplicate=True)
    calls = counted(index)
    group_cache.refresh(index, 1)  # one of four: a small write into a larger index
    assert calls == []  # left to the next dedupe
    group_cache.refresh(index, 4)
    keeps = getattr(index.store, "path", None) is not None  # the embedded index: HBase keeps none
    assert calls == ([None] if keeps else [])  # no search an HBase dedupe would not reuse
    del index.links
    assert group_cache.dedupe_json(index) == group_cache.to_json(index.dedupe())
