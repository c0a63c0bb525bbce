"""The trash and the index never disagree: a trashed image is no match, a restored one is stored
again under its id; files are deleted only by `empty`. Library on every backend, then the CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from phashdb import TrashError
from phashdb.trash import empty, list_trash, move_to_trash, restore


@pytest.fixture
def stored(tmp_path, index, photos, near_copies):
    """An index holding a photo and its near copy (in a folder of their own)."""
    folder = tmp_path / "stored"
    folder.mkdir()
    photo, copy = folder / "coffee.jpg", folder / "coffee-copy.jpg"
    shutil.copy(photos["coffee"], photo)
    shutil.copy(near_copies["coffee"], copy)
    index.add(photo)
    index.add(copy, keep_duplicate=True)
    return photo, copy


def test_a_trashed_image_leaves_the_index_and_comes_back_on_restore(index, stored):
    photo, copy = stored
    item = move_to_trash(copy, index.trash, index=index)
    assert not copy.exists() and item.image_id == str(copy) and str(copy) not in index
    assert [m.id for m in index.check(photo).matches] == [str(photo)]
    assert list_trash(index.trash) == [item]

    back = restore(index.trash, item.id, index=index)
    assert back.original == str(copy) and copy.exists()
    assert index.get(str(copy)).path == str(copy)
    assert {m.id for m in index.check(photo).matches} == {str(photo), str(copy)}
    assert list_trash(index.trash) == []


def test_trashing_a_file_that_was_never_stored_touches_no_record(index, stored, tmp_path):
    photo, _ = stored
    upload = tmp_path / "upload.jpg"
    shutil.copy(photo, upload)
    item = move_to_trash(upload, index.trash, index=index)
    assert item.image_id is None and len(index) == 2
    restore(index.trash, item.id, index=index)
    assert upload.exists() and len(index) == 2


def test_restore_refuses_to_overwrite_and_empty_deletes_for_good(index, stored):
    _, copy = stored
    item = move_to_trash(copy, index.trash, index=index)
    copy.write_bytes(b"something new")
    with pytest.raises(TrashError, match="exists; move it away"):
        restore(index.trash, item.id, index=index)
    assert copy.read_bytes() == b"something new" and str(copy) not in index
    with pytest.raises(TrashError, match="no entry 'nope'"):
        restore(index.trash, "nope", index=index)
    with pytest.raises(TrashError, match="no entry"):
        restore(index.trash, "..", index=index)
    assert [t.id for t in empty(index.trash)] == [item.id]
    assert list_trash(index.trash) == [] and not (index.trash / item.id).exists()


def test_two_files_of_one_name_are_both_kept(index, tmp_path, photos):
    for n in (1, 2):
        (tmp_path / f"d{n}").mkdir()
        shutil.copy(photos["camera"], tmp_path / f"d{n}" / "same.jpg")
        move_to_trash(tmp_path / f"d{n}" / "same.jpg", index.trash, index=index)
    assert sorted(t.original for t in list_trash(index.trash)) == [
        str(tmp_path / "d1" / "same.jpg"), str(tmp_path / "d2" / "same.jpg")
    ]


def test_trash_commands(run, tmp_path, photos, near_copies):
    folder = tmp_path / "up"
    folder.mkdir()
    for name in ("camera", "rocket"):
        shutil.copy(near_copies[name], folder / f"{name}.jpg")
        run("add", photos[name])
    result = run("add", "--on-duplicate", "trash", folder / "camera.jpg", folder / "rocket.jpg")
    assert result.returncode == 1 and "phashdb trash restore " in result.stdout

    listed = json.loads(run("trash", "list", "--json").stdout)
    assert sorted(t["original"] for t in listed) == [
        str(folder / "camera.jpg"), str(folder / "rocket.jpg")
    ]
    assert "2 files" in run("trash", "list").stdout

    camera = next(t for t in listed if t["original"].endswith("camera.jpg"))
    restored = run("trash", "restore", camera["id"])
    assert restored.returncode == 0 and (folder / "camera.jpg").exists()
    assert run("trash", "restore").returncode == 2  # neither IDs nor --all
    missing = run("trash", "restore", "no-such-entry")
    assert missing.returncode == 2 and "no entry 'no-such-entry'" in missing.stderr

    refused = run("trash", "empty", input="n\n")
    assert refused.returncode != 0 and len(json.loads(run("trash", "list", "--json").stdout)) == 1
    emptied = run("trash", "empty", "--yes")
    assert emptied.returncode == 0 and "deleted 1 files" in emptied.stdout
    assert json.loads(run("trash", "list", "--json").stdout) == []
    assert not (folder / "rocket.jpg").exists()
    assert "the trash is empty" in run("trash", "empty").stdout


def test_trash_restore_all_stores_images_again(run, tmp_path, photos, near_copies):
    folder = tmp_path / "c"
    folder.mkdir()
    for name in ("camera", "rocket"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
        shutil.copy(near_copies[name], folder / f"{name}-copy.jpg")
    run("ingest", folder)
    applied = run("dedupe", "--apply", "trash")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(run("stats", "--json").stdout)["images"] == 2
    assert run("trash", "restore", "--all").returncode == 0
    assert json.loads(run("stats", "--json").stdout)["images"] == 4
    assert all((folder / f"{n}-copy.jpg").exists() for n in ("camera", "rocket"))
