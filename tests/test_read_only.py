"""Reading commands on an index the user may not write (issue 22, item 12): an index made
before the second stage is read as it is, nothing written on open."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

import phashdb


@pytest.fixture
def read_only_view(tmp_path):
    """`make(folder)`: a read-only bind mount of `folder` (root ignores file modes, not a
    read-only mount); skipped where mounting is not allowed."""
    mounts = []

    def make(folder):
        view = tmp_path / f"read-only-{len(mounts)}"
        view.mkdir()
        for args in (["--bind", folder, view], ["-o", "remount,ro,bind", view]):
            done = subprocess.run(["mount", *args], check=False, capture_output=True, text=True)
            if done.returncode != 0:
                if mounts or args[0] != "--bind":
                    subprocess.run(["umount", view], check=False)
                pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
        mounts.append(view)
        return view

    yield make
    for view in mounts:
        subprocess.run(["umount", "-l", view], check=True)


def test_an_index_made_before_the_second_stage_is_read_from_read_only_storage(
    tmp_path, photos, near_copies, read_only_view, run
):
    location = tmp_path / "index"
    with phashdb.open(location) as index:
        index.add(photos["astronaut"], id="old")
        index.add(photos["coffee"], id="other")
    db = sqlite3.connect(location / "index.sqlite3")  # as phashdb 0.1 left it
    db.execute("DROP INDEX images_keyed")  # (index format 2's, of keyed rows)
    db.execute("ALTER TABLE images DROP COLUMN descriptor")
    db.execute("DELETE FROM meta WHERE key = 'descriptor_version'")
    db.execute("UPDATE meta SET value = '\"phash-dct64-v1\"' WHERE key = 'hash_version'")
    db.execute("PRAGMA journal_mode=DELETE")
    db.commit()
    db.close()
    before = {p.name: p.read_bytes() for p in location.iterdir()}
    view = read_only_view(location)
    with phashdb.open(view) as index:
        assert index.store.read_only
        assert index.get("old").descriptor is None and len(index) == 2
        [match] = index.check(near_copies["astronaut"]).matches
        assert match.id == "old" and match.score is None  # the plain threshold: no descriptor
    checked = run("--db", view, "check", near_copies["astronaut"])
    assert checked.returncode == 1 and str(photos["astronaut"]) in checked.stdout, checked.stderr
    assert run("--db", view, "stats").returncode == 0
    assert {p.name: p.read_bytes() for p in location.iterdir()} == before
