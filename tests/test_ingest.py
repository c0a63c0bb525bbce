"""Bulk ingest over folders as users have them: links that lead nowhere, folders that cannot be
read, files that vanish, runs that are killed or overlap. Every good photo is stored, every bad
entry is reported by name, and the counts say what this run did."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import phashdb
import phashdb.ingest
from phashdb.ingest import ingest


@pytest.fixture
def folder(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("camera", "rocket", "coffee"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
    return folder


def no_traceback(result):
    return "Traceback" not in result.stderr + result.stdout


def test_a_dangling_link_and_a_link_loop_fail_alone(run, folder):
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    result = run("ingest", "--json", folder)
    assert result.returncode == 2 and no_traceback(result)
    report = json.loads(result.stdout)
    assert report["added"] == 3
    failed = {f["path"]: f["error"] for f in report["failed"]}
    assert set(failed) == {str(folder / "dangling.jpg"), str(folder / "loop.jpg")}
    assert "No such file" in failed[str(folder / "dangling.jpg")]
    assert "symbolic links" in failed[str(folder / "loop.jpg")]
    assert json.loads(run("stats", "--json").stdout)["images"] == 3


def test_a_file_gone_between_listing_and_reading_fails_alone(tmp_path, folder, monkeypatch):
    gone = str(folder / "gone.jpg")
    listed = phashdb.ingest.find_images
    monkeypatch.setattr(
        phashdb.ingest, "find_images", lambda folders, failed=None: [*listed(folders), gone]
    )
    with phashdb.open(tmp_path / "index") as index:
        report = ingest(index, [folder], workers=1)
        assert report.added == 3 and len(index) == 3
    assert [p for p, _ in report.failed] == [gone]
    assert "No such file" in report.failed[0][1] and gone in report.failed[0][1]


def test_an_unreadable_subfolder_is_reported_as_failed(tmp_path, folder, monkeypatch, photos):
    locked = folder / "locked"
    locked.mkdir()
    shutil.copy(photos["chelsea"], locked / "chelsea.jpg")
    scandir = os.scandir

    def refusing(path="."):  # what the kernel says to a user without read permission
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with phashdb.open(tmp_path / "index") as index:
        report = ingest(index, [folder], workers=1)
    assert report.added == 3
    assert report.failed == [(str(locked), f"{locked}: cannot list the folder (Permission denied)")]


class Clock:
    """A monotonic clock that moves 10 s at every look."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 10
        return self.now


def test_a_killed_ingest_of_few_files_keeps_what_it_had_stored(tmp_path, folder, monkeypatch):
    hashed = []
    real = phashdb.ingest.hash_file

    def hash_then_die(path, max_pixels):
        if len(hashed) == 2:
            raise KeyboardInterrupt  # killed while hashing the third file
        hashed.append(path)
        return real(path, max_pixels)

    monkeypatch.setattr(phashdb.ingest, "hash_file", hash_then_die)
    monkeypatch.setattr(phashdb.ingest, "time", Clock(), raising=False)
    with phashdb.open(tmp_path / "index") as index, pytest.raises(KeyboardInterrupt):
        ingest(index, [folder], workers=1)
    with phashdb.open(tmp_path / "index") as index:
        assert len(index) == 2  # far fewer than a batch, stored as time passed


def test_overlapping_ingests_count_only_what_each_stored(tmp_path, folder, monkeypatch):
    with phashdb.open(tmp_path / "index") as first, phashdb.open(tmp_path / "index") as second:
        listed = phashdb.ingest.pending_files(second, [folder])  # before the first one stores
        assert ingest(first, [folder], workers=1).added == 3
        monkeypatch.setattr(phashdb.ingest, "pending_files", lambda *a, **k: listed)
        report = ingest(second, [folder], workers=1)
        assert report.added == 0 and len(second) == 3
