"""`dedupe --apply`: each group's keeper stays, the rest go to the trash or become links to it;
--dry-run touches nothing. The keeper and the bytes freed are the report's."""

from __future__ import annotations

import json
import os
import shutil

import pytest


@pytest.fixture
def collection(tmp_path, photos, near_copies):
    """Two photos, each with a near copy (smaller) and an exact copy (newer)."""
    folder = tmp_path / "c"
    folder.mkdir()
    for name in ("camera", "rocket"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
        shutil.copy(near_copies[name], folder / f"{name}-small.jpg")
        shutil.copy(photos[name], folder / f"{name}-newer.jpg")
        os.utime(folder / f"{name}.jpg", (1_000_000, 1_000_000))
        os.utime(folder / f"{name}-small.jpg", (2_000_000, 2_000_000))
        os.utime(folder / f"{name}-newer.jpg", (3_000_000, 3_000_000))
    return folder


def files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_dry_run_says_what_and_how_much_and_touches_nothing(run, collection, tmp_path):
    run("ingest", collection)
    before = files(collection)
    result = run("dedupe", "--apply", "trash", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert files(collection) == before
    assert result.stdout.count("would trash ") == 4
    assert json.loads(run("stats", "--json").stdout)["images"] == 6
    report = run("report", "--out", tmp_path / "r.html")
    reclaimable = report.stdout.split(", ")[-1].removesuffix(" reclaimable\n")
    assert f"would free {reclaimable}" in result.stdout
    doc = json.loads(run("dedupe", "--apply", "trash", "--dry-run", "--json").stdout)
    assert doc["dry_run"] and len(doc["done"]) == 4 and files(collection) == before


def test_trash_keeps_the_best_and_the_rest_leave_the_index(run, collection):
    run("ingest", collection)
    result = run("dedupe", "--apply", "trash")
    assert result.returncode == 0, result.stderr
    # No EXIF, same pixels: the best rule keeps the oldest file (the former default kept the
    # exact copy made later: same pixels and size, first by name).
    assert sorted(p.name for p in collection.iterdir()) == ["camera.jpg", "rocket.jpg"]
    assert json.loads(run("stats", "--json").stdout)["images"] == 2
    assert json.loads(run("dedupe", "--json").stdout) == []
    assert len(json.loads(run("trash", "list", "--json").stdout)) == 4


def test_keep_newest_and_oldest(run, collection):
    run("ingest", collection)
    run("dedupe", "--apply", "trash", "--keep", "newest")
    assert sorted(p.name for p in collection.iterdir()) == ["camera-newer.jpg", "rocket-newer.jpg"]
    run("trash", "restore", "--all")
    run("dedupe", "--apply", "trash", "--keep", "oldest")
    assert sorted(p.name for p in collection.iterdir()) == ["camera.jpg", "rocket.jpg"]


def test_hardlink_replaces_the_rest_by_the_keeper_and_frees_nothing_twice(run, collection):
    run("ingest", collection)
    result = run("dedupe", "--apply", "hardlink", "--keep", "oldest")
    assert result.returncode == 0, result.stderr
    for name in ("camera", "rocket"):
        keeper = (collection / f"{name}.jpg").stat()
        for other in (f"{name}-small.jpg", f"{name}-newer.jpg"):
            st = (collection / other).stat()
            assert (st.st_ino, st.st_dev) == (keeper.st_ino, keeper.st_dev)
    assert json.loads(run("stats", "--json").stdout)["images"] == 6
    again = run("dedupe", "--apply", "hardlink", "--keep", "oldest")
    assert "freed 0 B" in again.stdout and "hardlinked" not in again.stdout
    assert "0 added, 6 skipped" in run("ingest", collection).stdout  # nothing to hash again


def test_symlink_points_the_rest_at_the_keeper(run, collection):
    run("ingest", collection)
    assert run("dedupe", "--apply", "symlink", "--keep", "oldest").returncode == 0
    for name in ("camera", "rocket"):
        for other in (f"{name}-small.jpg", f"{name}-newer.jpg"):
            assert (collection / other).is_symlink()
            assert os.readlink(collection / other) == str(collection / f"{name}.jpg")


def test_keep_and_dry_run_need_apply(run):
    assert run("dedupe", "--keep", "oldest").returncode == 2
    assert run("dedupe", "--dry-run").returncode == 2


# --- Nothing is replaced or trashed unless every file involved is what the index recorded ---


def change_keeping_size_and_mtime(path):
    """Another picture in the same bytes count and modification time: only a re-hash tells."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(255 - b for b in data[middle : middle + 2000])
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("action", ["hardlink", "symlink", "trash"])
def test_apply_leaves_alone_a_copy_changed_since_it_was_stored(run, collection, photos, action):
    run("ingest", collection)
    changed = collection / "camera-small.jpg"
    shutil.copy(photos["coffee"], changed)  # same path, another photo now
    result = run("dedupe", "--apply", action, "--keep", "oldest", "--json")
    assert result.returncode == 2
    assert changed.read_bytes() == photos["coffee"].read_bytes() and not changed.is_symlink()
    doc = json.loads(result.stdout)
    [error] = [d["error"] for d in doc["done"] if d["error"]]
    assert str(changed) in error and "changed since it was stored" in error
    assert str(changed) in result.stderr
    assert sum(1 for d in doc["done"] if not d["error"]) == 3  # the other copies were handled


@pytest.mark.parametrize("action", ["hardlink", "symlink", "trash"])
def test_apply_leaves_a_group_alone_when_its_keeper_changed(run, collection, photos, action):
    run("ingest", collection)
    before = files(collection)
    keeper = collection / "camera.jpg"  # the oldest
    shutil.copy(photos["coffee"], keeper)
    before["camera.jpg"] = keeper.read_bytes()
    result = run("dedupe", "--apply", action, "--keep", "oldest")
    assert result.returncode == 2
    for name in ("camera-small.jpg", "camera-newer.jpg"):
        assert (collection / name).read_bytes() == before[name]
        assert not (collection / name).is_symlink()
        assert f"{collection / name}: left alone: its keeper {keeper} changed" in result.stderr
    assert "2 failed" in result.stdout


@pytest.mark.parametrize("action", ["hardlink", "symlink"])
def test_a_keeper_changed_in_place_with_the_same_size_and_mtime_is_not_linked_to(
    run, collection, action
):
    run("ingest", collection)
    before = files(collection)
    change_keeping_size_and_mtime(collection / "rocket.jpg")
    result = run("dedupe", "--apply", action, "--keep", "oldest")
    assert result.returncode == 2
    for name in ("rocket-small.jpg", "rocket-newer.jpg"):
        assert (collection / name).read_bytes() == before[name]
        assert not (collection / name).is_symlink()
    assert "rocket.jpg changed" in result.stderr
