"""Faults from the file system and from kill -9: special files, odd names, crashes in the
middle of moving photos to the trash, damaged image bytes. Nothing hangs, nothing is lost, and
what a crash leaves is set right by `phashdb fsck --repair`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import PHASHDB


def phashdb_cmd(tmp_path, *args, timeout=120):
    """`phashdb ARGS` with a timeout: a command that hangs fails the test instead."""
    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}
    return subprocess.run(
        [PHASHDB, *map(os.fsdecode, args)], capture_output=True, text=True, env=env,
        timeout=timeout, check=False, errors="surrogateescape",
    )  # fmt: skip


@pytest.mark.parametrize("command", ["check", "add"])
def test_a_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path, photos, command):
    fifo = tmp_path / "a.jpg"
    os.mkfifo(fifo)
    result = phashdb_cmd(tmp_path, command, fifo, photos["camera"], timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip() == f"phashdb: error: {fifo}: cannot read (not a regular file: a FIFO)"
    )
    assert f"{photos['camera']}: unique" in result.stdout  # the run went on


def test_ingest_reports_a_fifo_and_goes_on(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos["camera"], folder / "camera.jpg")
    os.mkfifo(folder / "a.jpg")
    result = phashdb_cmd(tmp_path, "ingest", "--json", folder, timeout=60)
    report = json.loads(result.stdout)
    assert report["added"] == 1
    assert report["failed"] == [
        {
            "path": str(folder / "a.jpg"),
            "error": f"{folder / 'a.jpg'}: cannot read (not a regular file: a FIFO)",
        }
    ]
