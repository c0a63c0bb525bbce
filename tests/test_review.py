"""The review page in a real browser (Debian's Chromium driven by Playwright), and the commands
around it: `phashdb decisions` and `phashdb review`."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest
from conftest import REPO

import phashdb
from phashdb.trash import list_trash


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


# --- the review page in Chromium ----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def browser():
    """Debian's Chromium, headless, driven by Playwright (which downloads no browser of its
    own here: it is pointed at the system's)."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the browser test needs chromium (apt-get install chromium)")
        pytest.skip("no chromium: the browser test is skipped (CI=true makes this fail)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def collection(tmp_path, photos, near_copies):
    """Three photos, each with a near copy the user kept: three groups."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    with phashdb.open(tmp_path / "index") as index:
        for name in ("astronaut", "chelsea", "coffee"):
            shutil.copy(photos[name], folder / f"{name}.jpg")
            shutil.copy(near_copies[name], folder / f"{name}-copy.jpg")
            index.add(folder / f"{name}.jpg")
            index.add(folder / f"{name}-copy.jpg", keep_duplicate=True)
    return folder


def test_the_review_page_trashes_decides_and_undoes_in_a_real_browser(
    browser, collection, tmp_path
):
    """One reviewer's session, step after step in one page (long on purpose: each step acts on
    what the one before left on the page, as a person's clicks do)."""
    from phashdb.serve import Running, ServeConfig

    ARTIFACTS.mkdir(exist_ok=True)
    db = tmp_path / "index"
    problems = []
    with Running(ServeConfig(db=str(db), workers=2)) as server:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-loaded='1']")
        page.wait_for_function(
            "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth)"
        )

        def shown():
            """(group count, ids of each group) as the page shows them."""
            return page.eval_on_selector_all(
                "section.group", "s => s.map(g => [...g.querySelectorAll('figure')]"
                ".map(f => f.dataset.id))",
            )  # fmt: skip

        def press(key, step):
            page.keyboard.press(key)
            page.wait_for_function(f"document.body.dataset.done === '{step}'")
            page.screenshot(path=ARTIFACTS / f"review-{step}-{key}.png")
            return page.inner_text("#status")

        def state():
            with phashdb.open(db) as index:
                return {i.id for i in index.images()}, index.decisions(), list_trash(index.trash)

        keys = page.inner_text("#keys")
        for said in ("j/k next / previous group", "t trash", "n the image is not a duplicate",
                     "u undo"):  # fmt: skip
            assert said in keys
        page.screenshot(path=ARTIFACTS / "review-0.png")
        before = shown()
        assert len(before) == 3 and all(len(g) == 2 for g in before)
        # Each group says why its keeper (shown first) was chosen: the copies are smaller.
        why = page.eval_on_selector_all("section.group .why", "s => s.map(e => e.textContent)")
        assert why == ["kept: most pixels"] * 3
        stored, decided, trashed = state()
        assert len(stored) == 6 and decided == [] and trashed == []

        # 1. Trash the second image of the first group (l: next image, t: trash).
        first_group = before[0]
        page.keyboard.press("l")
        assert page.get_attribute(".current figure.selected", "data-id") == first_group[1]
        assert "trashed" in press("t", 1)
        stored, decided, trashed = state()
        assert first_group[1] not in stored and len(stored) == 5
        assert [t.image_id for t in trashed] == [first_group[1]]
        assert not os.path.exists(first_group[1]) and os.path.exists(trashed[0].path)
        assert shown() == before[1:]

        # 2. Mark the (new) first group's pair not duplicates (n, on the selected image).
        pair = shown()[0]
        assert "not a duplicate" in press("n", 2)
        stored, decided, trashed = state()
        assert [(d.a, d.b) for d in decided] == [tuple(sorted(pair))] and len(stored) == 5
        assert shown() == before[2:]

        # 3. Undo twice (u): the decision is forgotten, then the trashed image restored.
        assert "undone" in press("u", 3)
        stored, decided, trashed = state()
        assert decided == [] and len(stored) == 5 and len(trashed) == 1
        assert shown() == before[1:]
        assert "undone" in press("u", 4)
        stored, decided, trashed = state()
        assert len(stored) == 6 and first_group[1] in stored and trashed == []
        assert os.path.exists(first_group[1])
        assert shown() == before

        # 5. Another reviewer trashes the current group's keeper, keeping the other image; the
        # page, still showing the group as it was, is told the group changed: nothing moves.
        keeper, other = page.eval_on_selector(
            "section.group.current", "g => [...g.querySelectorAll('figure')].map(f => f.dataset.id)"
        )
        other_reviewer = {"keeper": other, "ids": [keeper]}
        assert httpx.post(server.url + "/v1/trash", json=other_reviewer).status_code == 200
        said = press("A", 5)
        assert f"the keeper {keeper!r} is no longer in the index" in said
        assert os.path.exists(other) and not os.path.exists(keeper)
        stored, decided, trashed = state()
        assert keeper not in stored and other in stored and len(trashed) == 1
    problems = [p for p in problems if "409" not in p]  # the refusal, as the console logs it
    assert problems == []


def test_phashdb_review_serves_the_page_on_a_free_loopback_port(pair, tmp_path):
    import signal
    import subprocess
    import urllib.error
    import urllib.request

    from conftest import PHASHDB

    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}
    process = subprocess.Popen(
        [PHASHDB, "review", "--no-browser"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("review page: http://127.0.0.1:"), line
        url = line.split()[2]
        # The address carries the server's own token once; the page keeps it in a cookie.
        base = url.split("?")[0]
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(base + "v1/duplicates", timeout=30)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(url, timeout=30) as page:
            assert "phashdb review" in page.read().decode() and page.url == base
        with browser.open(base + "v1/duplicates", timeout=30) as answer:
            assert json.loads(answer.read())["total"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
