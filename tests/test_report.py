"""The duplicate report: its content (keeper, order, bytes, placeholders) read from the page,
and the page as a real browser shows it (headless Chromium)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from phashdb import keep, report
from phashdb.records import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def duplicates(tmp_path, photos, near_copies):
    """A collection with duplicate groups: every photo with its near copy, one photo three times
    (a PNG of it too), a copy whose file has since gone and one that is no longer an image."""
    folder = tmp_path / "collection"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket", "camera"):
        shutil.copy(photos[name], folder / photos[name].name)
        shutil.copy(near_copies[name], folder / near_copies[name].name)
    from PIL import Image as PILImage

    with PILImage.open(photos["rocket"]) as img:
        img.save(folder / "rocket-again.png")
    os.utime(folder / "rocket.jpg", (1_000_000, 1_000_000))  # the original, long before
    shutil.copy(photos["hubble_deep_field"], folder / "unique.jpg")
    return folder


def page_data(path: Path) -> list[dict]:
    text = path.read_text()
    blob = re.search(
        r'<script type="application/json" id="groups-data">(.*?)</script>', text, re.DOTALL
    )
    return json.loads(blob.group(1))


def test_report_shows_every_group_keeper_first_most_bytes_first(run, duplicates, tmp_path):
    run("ingest", duplicates)
    (duplicates / "coffee-copy.jpg").unlink()
    (duplicates / "camera-copy.jpg").write_text("no longer an image")
    out = tmp_path / "report.html"
    result = run("report", "--out", out)
    assert result.returncode == 0, result.stderr
    groups = page_data(out)
    assert len(groups) == 5 and "unique.jpg" not in out.read_text()
    freed = [g["freed"] for g in groups]
    assert freed == sorted(freed, reverse=True)
    assert f"{report.human_bytes(sum(freed))} reclaimable" in out.read_text()
    assert f"{report.human_bytes(sum(freed))} reclaimable" in result.stdout
    rocket = next(g for g in groups if any("rocket" in i["path"] for i in g["images"]))
    # Same pixels as its PNG copy (a larger file, which the former default kept), and older:
    # the original is kept, and the page says why.
    assert rocket["images"][0]["path"].endswith("/rocket.jpg")
    assert rocket["why"] == "kept: most pixels, oldest" and rocket["why"] in out.read_text()
    assert [i["role"] for i in rocket["images"]] == ["keep", "remove", "remove"]
    assert {p[0] for p in rocket["pairs"]} <= {"A", "B"} and len(rocket["pairs"]) == 3
    coffee = next(g for g in groups if any("coffee" in i["path"] for i in g["images"]))
    assert [(i["role"], i["missing"]) for i in coffee["images"]] == [
        ("keep", None),
        ("missing", "file missing"),
    ]
    assert coffee["freed"] == 0
    camera = next(g for g in groups if any("camera" in i["path"] for i in g["images"]))
    broken = next(i for i in camera["images"] if i["path"].endswith("camera-copy.jpg"))
    assert broken["thumb"] is None and broken["missing"] == "unreadable"
    assert all(i["thumb"].startswith("data:image/jpeg;base64,") for i in rocket["images"])


def test_the_keeper_rules():
    old_small = Image("a", 0, "/a", size=900, mtime=1.0, width=100, height=100, added=5.0)
    new_big = Image("b", 0, "/b", size=500, mtime=9.0, width=200, height=200, added=6.0)
    same_big_larger_file = Image(
        "c", 0, "/c", size=800, mtime=5.0, width=200, height=200, added=7.0
    )
    group = [old_small, new_big, same_big_larger_file]
    # Nothing exists on disk here: the rule alone decides, all are "missing" alike.
    assert keep.plan(group, "pixels").keeper == same_big_larger_file  # the former default
    assert keep.plan(group).keeper == same_big_larger_file  # most pixels, then the oldest
    assert keep.plan(group, "oldest").keeper == old_small
    assert keep.plan(group, "newest").keeper == new_big
    assert keep.plan(group, "largest").keeper == old_small
    with pytest.raises(ValueError, match="'rule' must be one of"):
        keep.plan(group, "prettiest")


def test_keeper_is_a_file_that_exists_and_links_free_nothing(tmp_path):
    real, gone, link = tmp_path / "real.jpg", tmp_path / "gone.jpg", tmp_path / "link.jpg"
    real.write_bytes(b"x" * 100)
    os.link(real, link)
    other = tmp_path / "other.jpg"
    other.write_bytes(b"y" * 40)
    images = [
        Image("gone", 0, str(gone), size=10_000, width=999, height=999),
        Image("real", 0, str(real), size=100, width=10, height=10, added=1.0),
        Image("link", 0, str(link), size=100, width=10, height=10, added=9.0),
        Image("other", 0, str(other), size=40, width=10, height=10),
    ]
    p = keep.plan(images)
    assert p.keeper.id == "real"
    assert [i.id for i in p.missing] == ["gone"] and [i.id for i in p.linked] == ["link"]
    assert [i.id for i in p.rest] == ["other"] and p.freed == 40


def test_thumbnail_of_a_missing_or_broken_file_is_none(tmp_path, photos):
    assert report.thumbnail(tmp_path / "nope.jpg") is None
    (tmp_path / "bad.jpg").write_bytes(photos["camera"].read_bytes()[:200])
    assert report.thumbnail(tmp_path / "bad.jpg") is None
    assert report.thumbnail(photos["camera"]).startswith("data:image/jpeg;base64,")


# Injected at the top of <head> of a copy of the page: records script errors, failed loads and
# console errors, then waits for every thumbnail to load and writes what it found (naturalWidth
# is 0 for an image that did not decode) into the DOM, where --dump-dom shows it.
PROBE = """<script>
window.__problems = [];
addEventListener("error", e => __problems.push("error: " + (e.message || (e.target && e.target.tagName))), true);
addEventListener("unhandledrejection", e => __problems.push("rejection: " + e.reason));
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { __problems.push(level + ": " + args.join(" ")); original.apply(console, args); };
}
addEventListener("load", async () => {
  const images = [...document.images];
  for (const img of images) {
    img.scrollIntoView();  // lazy images load once near the viewport
    // (not img.decode(): its promise waits for a frame, which --dump-dom's run never paints)
    if (!img.complete) await new Promise(done => { img.onload = img.onerror = done; });
  }
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    widths: images.map(i => i.naturalWidth),
    placeholders: document.querySelectorAll(".placeholder").length,
    groups: document.querySelectorAll("section.group").length,
    problems: __problems,
  });
  document.body.append(out);
});
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", *args,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_report_renders_in_a_real_browser(run, duplicates, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the browser test needs chromium (apt-get install chromium)")
        pytest.skip("no chromium: the browser test is skipped (CI=true makes this fail)")
    run("ingest", duplicates)
    (duplicates / "coffee-copy.jpg").unlink()
    out = tmp_path / "report.html"
    assert run("report", "--out", out).returncode == 0
    thumbs = [i for g in page_data(out) for i in g["images"] if i["thumb"]]

    probed = tmp_path / "probed.html"
    probed.write_text(out.read_text().replace("<head>", "<head>" + PROBE, 1))
    shown = chromium(
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
        probed.as_uri(), profile=tmp_path / "profile",
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', shown.stdout, re.DOTALL)
    assert found, f"the page did not finish loading:\n{shown.stderr[-2000:]}"
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["problems"] == []
    assert len(probe["widths"]) == len(thumbs) and all(w > 0 for w in probe["widths"])
    assert probe["groups"] == 5 and probe["placeholders"] == 1
    # Each group says why its keeper was chosen, as the browser built it from the data.
    reasons = re.findall(r'<span class="why muted">(kept: [^<]+)</span>', shown.stdout)
    assert len(reasons) == 5 and "kept: most pixels, oldest" in reasons
    # Whatever the page logs to the console (errors, warnings, blocked loads) Chromium logs here.
    assert [line for line in shown.stderr.splitlines() if ":CONSOLE" in line] == []

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    taken = chromium(
        f"--screenshot={shot}", "--window-size=1200,900", "--hide-scrollbars",
        out.as_uri(), profile=tmp_path / "profile",
    )  # fmt: skip
    assert shot.exists() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
