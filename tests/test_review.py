"""The review page in a real browser (Debian's Chromium driven by Playwright), and the commands
around it: `phashdb decisions` and `phashdb review`."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.fixture
def pair(run, tmp_path, photos, near_copies):
    """An index (the `run` fixture's) holding a photo and its near copy, kept: one group."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    a, b = folder / "a.jpg", folder / "a-copy.jpg"
    shutil.copy(photos["astronaut"], a)
    shutil.copy(near_copies["astronaut"], b)
    assert run("add", a).returncode == 0
    assert run("add", "--on-duplicate", "keep", b).returncode == 1
    return str(a), str(b)


def test_decisions_on_the_command_line_reach_dedupe_and_report(run, pair, tmp_path):
    a, b = pair
    assert len(json.loads(run("dedupe", "--json").stdout)) == 1
    assert run("decisions", "add", b, a).returncode == 0
    listed = json.loads(run("decisions", "list", "--json").stdout)
    assert [(d["a"], d["b"]) for d in listed] == [(min(a, b), max(a, b))]
    assert json.loads(run("dedupe", "--json").stdout) == []
    out = tmp_path / "report.html"
    assert "0 groups" in run("report", "--out", out).stdout
    forgot = run("decisions", "forget", a, b)
    assert forgot.returncode == 0 and "forgot 1 decision" in forgot.stdout
    assert len(json.loads(run("dedupe", "--json").stdout)) == 1
    again = run("decisions", "forget", a, b)
    assert again.returncode == 2 and "no decision about" in again.stderr
    assert run("decisions", "forget", a).returncode == 2  # a pair, or --all
    run("decisions", "add", a, b)
    assert "forgot 1 decision" in run("decisions", "forget", "--all").stdout
    unknown = run("decisions", "add", a, "nope")
    assert unknown.returncode == 2 and "no image with id 'nope'" in unknown.stderr
