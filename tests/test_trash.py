"""The trash and the index never disagree: a trashed image is no match, a restored one is stored
again under its id; files are deleted only by `empty`. Library on every backend, then the CLI."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager

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
        str(tmp_path / "d1" / "same.jpg"),
        str(tmp_path / "d2" / "same.jpg"),
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
        str(folder / "camera.jpg"),
        str(folder / "rocket.jpg"),
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


# --- restore trusts trashed.json only to say where, and never replaces anything ----------


def edit_entry(index, item, **changes):
    info = index.trash / item.id / "trashed.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), **changes}))


@pytest.mark.parametrize("original", ["../../escaped.jpg", "relative/x.jpg", "/tmp/a/../b.jpg", ""])
def test_restore_refuses_an_original_that_is_not_a_plain_absolute_path(
    index, stored, tmp_path, monkeypatch, original
):
    _, copy = stored
    item = move_to_trash(copy, index.trash, index=index)
    edit_entry(index, item, original=original)
    monkeypatch.chdir(index.trash / item.id)
    with pytest.raises(TrashError, match="not the absolute path of a file"):
        restore(index.trash, item.id, index=index)
    assert (index.trash / item.id / copy.name).exists()
    assert not (tmp_path / "escaped.jpg").exists() and not (tmp_path / "relative").exists()


def test_restore_moves_only_the_file_inside_the_entry(index, stored, tmp_path):
    _, copy = stored
    item = move_to_trash(copy, index.trash, index=index)
    victim, target = tmp_path / "victim.txt", tmp_path / "elsewhere" / "moved.txt"
    victim.write_text("not in the trash")
    edit_entry(index, item, path=str(victim), original=str(target))
    with pytest.raises(TrashError, match="missing"):
        restore(index.trash, item.id, index=index)
    assert victim.read_text() == "not in the trash" and not target.exists()


def test_restore_refuses_an_entry_that_is_a_link_out_of_the_trash(index, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.jpg").write_text("not in the trash")
    (outside / "trashed.json").write_text(json.dumps(
        {"original": str(tmp_path / "moved.jpg"), "path": str(outside / "victim.jpg"),
         "when": 0, "image_id": None, "size": 1}
    ))  # fmt: skip
    index.trash.mkdir(parents=True, exist_ok=True)
    (index.trash / "evil").symlink_to(outside)
    with pytest.raises(TrashError, match="no entry 'evil'"):
        restore(index.trash, "evil", index=index)
    assert (outside / "victim.jpg").exists() and not (tmp_path / "moved.jpg").exists()


def test_restore_never_replaces_a_file_that_appeared_after_any_check(index, stored, monkeypatch):
    import phashdb.trash

    _, copy = stored
    item = move_to_trash(copy, index.trash, index=index)
    copy.write_bytes(b"arrived meanwhile")
    # As if the file arrived between a check and the move: checks see nothing there.
    monkeypatch.setattr(phashdb.trash.os.path, "lexists", lambda p: False)
    monkeypatch.setattr(phashdb.trash.os.path, "exists", lambda p: False)
    with pytest.raises(TrashError, match="exists; move it away"):
        restore(index.trash, item.id, index=index)
    assert copy.read_bytes() == b"arrived meanwhile"
    assert (index.trash / item.id / copy.name).exists()


def test_trash_restore_all_asks_on_a_terminal(run, tmp_path, photos, near_copies):
    import os
    import pty
    import subprocess

    from conftest import PHASHDB

    run("add", photos["camera"])
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    run("add", "--on-duplicate", "trash", upload)
    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}
    primary, secondary = pty.openpty()
    with open(primary, "wb", buffering=0) as keyboard:
        keyboard.write(b"n\n")
        result = subprocess.run(
            [PHASHDB, "trash", "restore", "--all"], check=False, stdin=secondary, capture_output=True,
            text=True, env=env, timeout=120,
        )  # fmt: skip
        os.close(secondary)
    assert "Restore all 1 files" in result.stderr and result.returncode != 0
    assert not upload.exists()
    assert run("trash", "restore", "--all", "--yes").returncode == 0 and upload.exists()


def test_trash_entries_are_absolute_when_the_index_path_is_relative(tmp_path, photos, near_copies):
    import os
    import subprocess

    from conftest import PHASHDB

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    env = {k: v for k, v in os.environ.items() if k != "PHASHDB_URL"}

    def run_in(folder, *args):
        return subprocess.run(
            [PHASHDB, *map(str, args)], check=False, cwd=folder, capture_output=True, text=True, env=env,
            timeout=120,
        )  # fmt: skip

    run_in(tmp_path / "a", "--db", "idx", "add", photos["camera"])
    run_in(tmp_path / "a", "--db", "idx", "add", "--on-duplicate", "trash", upload)
    [entry] = json.loads(run_in(tmp_path, "--db", "a/idx", "trash", "list", "--json").stdout)
    assert os.path.isabs(entry["path"]) and os.path.exists(entry["path"])
    restored = run_in(tmp_path / "b", "--db", "../a/idx", "trash", "restore", entry["id"])
    assert restored.returncode == 0, restored.stderr
    assert upload.read_bytes() == near_copies["camera"].read_bytes()


# --- what a crash leaves: empty goes on, fsck finds and repairs ---------------------------


def test_empty_goes_on_past_an_entry_it_cannot_delete_and_names_it(index, stored, monkeypatch):
    import phashdb.trash

    photo, copy = stored
    first = move_to_trash(photo, index.trash, index=index)
    second = move_to_trash(copy, index.trash, index=index)
    real = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if str(path).endswith(first.id):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(phashdb.trash.shutil, "rmtree", rmtree)
    with pytest.raises(TrashError, match=f"cannot delete 1 trash entries: .*{first.id}") as e:
        empty(index.trash)
    assert [t.id for t in e.value.deleted] == [second.id]
    assert [t.id for t in list_trash(index.trash)] == [first.id]


def test_empty_deletes_an_entry_a_crash_left_with_an_empty_trashed_json(index, stored):
    _, copy = stored
    item = move_to_trash(copy, index.trash, index=index)
    (index.trash / item.id / "trashed.json").write_text("")
    assert list_trash(index.trash) == []
    empty(index.trash)
    assert not (index.trash / item.id).exists()


@contextmanager
def trashed_but_indexed(run, tmp_path, photos):
    """A photo added by the CLI and moved to the trash, its record put back when the block
    ends, as if killed between the move and the removal: yields (the photo, its entry, the
    index)."""
    import phashdb

    photo = tmp_path / "photo.jpg"
    shutil.copy(photos["camera"], photo)
    run("add", photo)
    with phashdb.open(tmp_path / "index") as index:
        record = index.get(str(photo))
        item = move_to_trash(photo, index.trash, index=index)
        yield photo, item, index
        index.insert([record])


def test_fsck_repairs_a_trashed_image_left_in_the_index(run, tmp_path, photos):
    with trashed_but_indexed(run, tmp_path, photos) as (photo, item, _):
        pass
    found = run("fsck")
    assert (
        found.returncode == 1 and "trashed" in found.stdout and "still in the index" in found.stdout
    )
    assert run("fsck", "--repair").returncode == 0
    assert json.loads(run("stats", "--json").stdout)["images"] == 0
    assert run("fsck").returncode == 0
    assert run("trash", "restore", item.id).returncode == 0 and photo.exists()
    assert json.loads(run("stats", "--json").stdout)["images"] == 1


def test_fsck_repairs_entries_a_crash_left_half_made(run, tmp_path, photos):
    with trashed_but_indexed(run, tmp_path, photos) as (photo, item, index):
        shutil.move(item.path, photo)  # as if killed before the move: an entry, no file
        (index.trash / "20260101-000000-deadbeef").mkdir()  # killed before trashed.json
    found = run("fsck")
    assert found.returncode == 1 and found.stdout.count("trash: ") == 2
    assert "without its file" in found.stdout and "half-made" in found.stdout
    assert run("fsck", "--repair").returncode == 0
    assert list((tmp_path / "index" / "trash").iterdir()) == []
    assert photo.exists() and json.loads(run("stats", "--json").stdout)["images"] == 1


def test_trash_empty_deletes_entries_a_crash_left_unreadable(run, tmp_path, photos, near_copies):
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    run("add", photos["camera"])
    run("add", "--on-duplicate", "trash", upload)
    [entry] = (tmp_path / "index" / "trash").iterdir()
    (entry / "trashed.json").write_text("")  # as a kill mid-write of the old code left it
    emptied = run("trash", "empty", "--yes")
    assert emptied.returncode == 0 and "deleted 1 files" in emptied.stdout
    assert not entry.exists()
