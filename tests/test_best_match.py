"""Matches come best first: the very same file, then as-is before flipped or rotated, then by
the second stage's score, the distance, the id; a stored file that is the file checked (the
same inode) is named as such (`same_file`, in the JSON too)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from PIL import Image as PILImage
from PIL import ImageOps
from watch_help import Watching

import phashdb


@pytest.fixture
def stored(tmp_path, photos):
    """An index at tmp_path/index of a photo, a byte-identical copy and a mirror of it, and a
    re-encoded copy of the photo (not stored) to check: its folder."""
    folder = tmp_path / "c"
    folder.mkdir()
    # Named so that the mirror comes first by name (the former order: distance, then id).
    with PILImage.open(photos["astronaut"]) as img:
        ImageOps.mirror(img).save(folder / "a-mirror.jpg", quality=92)
        img.save(tmp_path / "q-reencoded.jpg", quality=60)
    shutil.copy(photos["astronaut"], folder / "b-original.jpg")
    shutil.copy(photos["astronaut"], folder / "c-identical.jpg")
    with phashdb.open(tmp_path / "index") as index:
        for name in ("a-mirror.jpg", "b-original.jpg", "c-identical.jpg"):
            index.add(folder / name, keep_duplicate=True)
    return folder


def names(matches) -> list[str]:
    return [os.path.basename(m["path"] if isinstance(m, dict) else m.path) for m in matches]


def test_a_reencoded_copy_names_an_as_is_match_first_never_the_mirror(tmp_path, stored, run):
    query = tmp_path / "q-reencoded.jpg"
    with phashdb.open(tmp_path / "index") as index:
        matches = index.check(query).matches
        variants = {os.path.basename(m.path): m.variant for m in matches}
        assert variants == {"a-mirror.jpg": "mirrored", "b-original.jpg": "as-is",
                            "c-identical.jpg": "as-is"}  # fmt: skip
        assert names(matches)[-1] == "a-mirror.jpg"
        assert matches == tuple(sorted(matches, key=lambda m: m.rank()))
        assert not any(m.same_file for m in matches)
        # add gives the same order.
        added = index.add(query, keep_duplicate=True)
        assert added.matches == matches
    # The CLI names the best first too.
    said = json.loads(run("check", "--json", query).stdout)[0]
    assert said["matches"][0]["variant"] == "as-is" and said["matches"][-1]["variant"] == "mirrored"


def test_every_backend_names_the_same_match_first(reopen, tmp_path, stored):
    query = tmp_path / "q-reencoded.jpg"
    with phashdb.open(tmp_path / "index") as embedded:
        expected = embedded.check(query).matches
    with reopen() as index:  # on the embedded backend, the very index `stored` made
        for name in ("a-mirror.jpg", "b-original.jpg", "c-identical.jpg"):
            if str(stored / name) not in index:
                index.add(stored / name, keep_duplicate=True)
        assert index.check(query).matches == expected
    assert [m.variant for m in expected] == ["as-is", "as-is", "mirrored"]


def test_watch_and_the_service_name_the_match_check_names_first(tmp_path, stored, start):
    """Issue 21 saw the mirror named first in `watch` and `/v1/check` too."""
    query = tmp_path / "q-reencoded.jpg"
    with phashdb.open(tmp_path / "index") as index:
        expected = names(index.check(query).matches)
    assert expected[-1] == "a-mirror.jpg"
    _, client = start()
    checked = client.post("/v1/check", files={"image": ("q.jpg", query.read_bytes())})
    assert checked.status_code == 200, checked.text
    assert names(checked.json()["matches"]) == expected
    watching = Watching(tmp_path / "index", stored, on_duplicate="keep")
    shutil.copy(query, stored / "q-reencoded.jpg")
    seen = watching.next(stored / "q-reencoded.jpg")
    watching.close()
    assert seen.verdict.duplicate and names(seen.verdict.matches) == expected


def test_a_stored_file_that_is_the_file_checked_is_named_so_and_first(tmp_path, photos, run):
    original, link = tmp_path / "z-photo.jpg", tmp_path / "b-link.jpg"
    shutil.copy(photos["camera"], original)
    shutil.copy(photos["camera"], tmp_path / "a-copy.jpg")  # the same bytes, another file
    with phashdb.open(tmp_path / "index") as index:
        index.add(original)
        index.add(tmp_path / "a-copy.jpg", keep_duplicate=True)
    os.link(original, link)
    result = run("check", "--json", link)
    assert result.returncode == 1, result.stderr
    matches = json.loads(result.stdout)[0]["matches"]
    assert [(os.path.basename(m["path"]), m["same_file"]) for m in matches] == [
        ("z-photo.jpg", True),
        ("a-copy.jpg", False),
    ]
    said = run("check", link).stdout
    assert f"duplicate of {original} (distance 0, the same file) and 1 more" in said
