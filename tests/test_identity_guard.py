"""File identity (issue 21) where files would be moved, linked or deleted: the index's own folder
and its trash are never taken for the user's files, and the review API's "keep A, trash the
rest" checks each file is still the one the index recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import PHASHDB
from watch_help import Watching

import phashdb
from phashdb import identity
from phashdb.follow import admit, trash_duplicate
from phashdb.ingest import ingest
from phashdb.trash import list_trash

DEADLINE = 180


# --- the index's own folder ---------------------------------------------------------------


def test_an_index_inside_the_ingested_folder_is_never_ingested_and_apply_keeps_originals(
    tmp_path, album
):
    url = album / "index"  # the index, and its trash, inside the folder ingested
    shutil.copy(album / "camera.jpg", album / "camera-copy.jpg")
    env = {**os.environ, "PHASHDB_URL": str(url)}
    for _ in range(2):
        run = subprocess.run(
            [PHASHDB, "ingest", str(album)], check=False, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        run = subprocess.run([PHASHDB, "dedupe", "--apply", "trash"], check=False, env=env, capture_output=True,
                             text=True)  # fmt: skip
        assert run.returncode in (0, 1), run.stderr
    with phashdb.open(url) as index:
        assert not any(identity.inside(i.path, url) for i in index.images())
        assert len(list_trash(index.trash)) == 1
    assert (album / "camera.jpg").exists() or (album / "camera-copy.jpg").exists()
    kept = [p for p in ("camera.jpg", "camera-copy.jpg") if (album / p).exists()]
    assert len(kept) == 1


def test_apply_refuses_a_keeper_in_the_trash_of_an_index_that_stored_it(tmp_path, album):
    # An index made by an older phashdb may hold records of its own trash: never a keeper.
    url = album / "index"
    with phashdb.open(url) as index:
        index.add(album / "camera.jpg")
        index.trash.mkdir(parents=True)
        shutil.copy(album / "camera.jpg", index.trash / "camera.jpg")
        shutil.copy(album / "camera.jpg", album / "camera-2.jpg")
        index.add(index.trash / "camera.jpg", keep_duplicate=True)
        trashed = index.get(str(index.trash / "camera.jpg"))
        from phashdb.apply import apply
        from phashdb.keep import Plan

        done = apply(index, [Plan(trashed, (index.get(str(album / "camera.jpg")),))], "trash")
    assert done[0].error and "trash" in done[0].error
    assert (album / "camera.jpg").exists()


def test_an_index_kept_in_the_photo_folder_itself_never_takes_its_trash_for_photos(
    album, near_copies
):
    # The index's own files and its trash in the very folder watched and ingested.
    with phashdb.open(album) as index:
        ingest(index, [album], workers=1)
        trash = index.trash
    watching = Watching(album, album)
    shutil.copy(near_copies["camera"], album / "camera-copy.jpg")
    trashed = watching.next(album / "camera-copy.jpg")
    shutil.copy(near_copies["rocket"], album / "zz-last.jpg")  # a marker: seen after the trash
    last = watching.next(album / "zz-last.jpg")
    watching.close()
    assert (trashed.action, last.action) == ("trashed", "trashed")
    assert not any(identity.inside(seen.path, trash) for seen in watching.reports)
    with phashdb.open(album) as index:
        assert ingest(index, [album], workers=1).added == 0
        assert len(index) == 3 and len(list_trash(trash)) == 2


# --- the review API: keep A, trash the rest -----------------------------------------------


def test_the_library_trash_of_a_duplicate_through_a_symlinked_folder_is_refused(tmp_path, album):
    url = tmp_path / "index"
    os.symlink(album, tmp_path / "link")
    with phashdb.open(url) as index:
        index.add(album / "camera.jpg")
        verdict = admit(index, str(tmp_path / "link" / "camera.jpg"), keep_duplicate=False).verdict
        assert verdict.duplicate
        with pytest.raises(phashdb.Error, match="the same file as"):
            trash_duplicate(index, str(tmp_path / "link" / "camera.jpg"), verdict)
    assert (album / "camera.jpg").exists()


@pytest.fixture
def server(tmp_path):
    """The HTTP service over the embedded index at tmp_path/index, a real client to it."""
    import httpx

    from phashdb.serve import Running, ServeConfig

    running = Running(ServeConfig(db=str(tmp_path / "index"), workers=1))
    yield httpx.Client(base_url=running.url, timeout=60)
    running.stop()


def test_keep_a_trash_the_rest_refuses_as_own_file_through_a_symlinked_folder(
    tmp_path, album, reopen
):
    import httpx

    from phashdb.serve import Running, ServeConfig

    # A folder ingested twice, once through a symlinked path: two records, one file.
    os.symlink(album, tmp_path / "link")
    with reopen() as index:
        ingest(index, [album, tmp_path / "link"], workers=1)
        url = index.store.url
    a, b = str(album / "camera.jpg"), str(tmp_path / "link" / "camera.jpg")
    with Running(ServeConfig(db=url, workers=1)) as running:
        server = httpx.Client(base_url=running.url, timeout=60)
        done = server.post("/v1/trash", json={"keeper": a, "ids": [b, str(album / "rocket.jpg")]})
        listed = server.get("/v1/trash").json()["trash"]
    assert done.status_code == 200, done.text
    first, second = done.json()["done"]
    assert first["id"] == b and first["trash_id"] is None and "the same file as" in first["error"]
    assert second["trash_id"] is not None and second["error"] is None  # the others go on
    assert (album / "camera.jpg").read_bytes()
    assert [t["original"] for t in listed] == [str(album / "rocket.jpg")]


def test_keep_a_trash_the_rest_after_apply_symlink_refuses_the_links_target(
    tmp_path, album, server
):
    shutil.copy(album / "camera.jpg", album / "camera-copy.jpg")
    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}
    for command in (["ingest", str(album)], ["dedupe", "--apply", "symlink"]):
        run = subprocess.run(
            [PHASHDB, *command], check=False, env=env, capture_output=True, text=True
        )
        assert run.returncode in (0, 1), run.stderr
    links = [p for p in ("camera.jpg", "camera-copy.jpg") if (album / p).is_symlink()]
    assert len(links) == 1
    link = str(album / links[0])
    target = os.path.realpath(link)
    # Keep the symlink, trash "the rest": the file the symlink points to. Refused.
    done = server.post("/v1/trash", json={"keeper": link, "ids": [target]}).json()["done"]
    assert done[0]["trash_id"] is None and "the same file as" in done[0]["error"]
    assert Path(target).exists() and Path(link).read_bytes()


def test_delete_of_an_image_whose_file_was_replaced_leaves_the_new_file_alone(
    tmp_path, album, photos, server
):
    with phashdb.open(tmp_path / "index") as index:
        index.add(album / "camera.jpg")
    (tmp_path / "new.jpg").write_bytes(Path(photos["coffee"]).read_bytes())
    os.replace(tmp_path / "new.jpg", album / "camera.jpg")
    response = server.delete("/v1/images/" + quote(str(album / "camera.jpg"), safe=""))
    assert response.status_code == 409, response.text
    assert "changed since it was stored" in response.json()["error"]
    assert (album / "camera.jpg").read_bytes() == Path(photos["coffee"]).read_bytes()
