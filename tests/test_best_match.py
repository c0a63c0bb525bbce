"""Matches come best first: the very same file, then as-is before flipped or rotated, then by
the second stage's score, the distance, the id; a stored file that is the file checked (the
same inode) is named as such (`same_file`, in the JSON too)."""

from __future__ import annotations

import json
import os
import shutil

from PIL import Image as PILImage
from PIL import ImageOps

import phashdb


def test_a_reencoded_copy_names_an_as_is_match_first_never_the_mirror(tmp_path, photos, run):
    folder = tmp_path / "c"
    folder.mkdir()
    # Named so that the mirror comes first by name (the former order: distance, then id).
    with PILImage.open(photos["astronaut"]) as img:
        ImageOps.mirror(img).save(folder / "a-mirror.jpg", quality=92)
        img.save(folder / "q-reencoded.jpg", quality=60)
    shutil.copy(photos["astronaut"], folder / "b-original.jpg")
    shutil.copy(photos["astronaut"], folder / "c-identical.jpg")
    with phashdb.open(tmp_path / "index") as index:
        for name in ("a-mirror.jpg", "b-original.jpg", "c-identical.jpg"):
            index.add(folder / name, keep_duplicate=True)
        matches = index.check(folder / "q-reencoded.jpg").matches
        variants = {os.path.basename(m.path): m.variant for m in matches}
        assert variants == {"a-mirror.jpg": "mirrored", "b-original.jpg": "as-is",
                            "c-identical.jpg": "as-is"}  # fmt: skip
        assert [os.path.basename(m.path) for m in matches][-1] == "a-mirror.jpg"
        assert matches == tuple(sorted(matches, key=lambda m: m.rank()))
        assert not any(m.same_file for m in matches)
        # add gives the same order.
        added = index.add(folder / "q-reencoded.jpg", keep_duplicate=True)
        assert added.matches == matches
    # The CLI names the best first too.
    said = json.loads(run("check", "--json", folder / "q-reencoded.jpg").stdout)[0]
    assert said["matches"][0]["variant"] == "as-is" and said["matches"][-1]["variant"] == "mirrored"


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
