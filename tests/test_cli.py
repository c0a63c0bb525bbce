"""The `phashdb` command as users run it: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def collection(tmp_path, photos, near_copies):
    """A folder of photos, one of them twice (a near copy in a subfolder), and one bad file."""
    folder = tmp_path / "collection"
    (folder / "sub").mkdir(parents=True)
    for _name, path in photos.items():
        shutil.copy(path, folder / path.name)
    shutil.copy(near_copies["chelsea"], folder / "sub" / "chelsea-copy.jpg")
    (folder / "broken.jpg").write_bytes(photos["coffee"].read_bytes()[:300])
    (folder / "readme.txt").write_text("not an image, and not named like one")
    return folder


def no_traceback(result):
    return "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_ingest_adds_everything_reports_bad_files_and_resumes(run, collection, photos):
    first = run("ingest", collection)
    assert "7 added, 0 skipped, 1 duplicates, 1 failed" in first.stdout
    assert "broken.jpg" in first.stderr and no_traceback(first)
    assert first.returncode == 2
    again = run("ingest", "--json", collection)
    assert json.loads(again.stdout)["skipped"] == 7
    assert json.loads(again.stdout)["added"] == 0


def test_check_gives_a_verdict_and_an_exit_code(run, collection, photos, near_copies):
    run("ingest", collection / "coffee.jpg", collection / "camera.jpg")
    unique = run("check", photos["astronaut"])
    assert unique.returncode == 0 and "unique" in unique.stdout
    dup = run("check", near_copies["coffee"])
    assert dup.returncode == 1
    assert f"duplicate of {collection / 'coffee.jpg'} (distance" in dup.stdout
    assert (
        run("stats", "--json").stdout and json.loads(run("stats", "--json").stdout)["images"] == 2
    )


def test_check_json_has_the_documented_shape(run, photos, near_copies):
    run("add", photos["rocket"])
    result = run("check", "--json", near_copies["rocket"], photos["camera"])
    doc = json.loads(result.stdout)
    assert [v["verdict"] for v in doc] == ["duplicate", "unique"]
    assert doc[0]["matches"][0]["path"] == str(photos["rocket"])
    assert isinstance(doc[0]["matches"][0]["distance"], int)
    assert all(len(v["hash"]) == 16 for v in doc)


def test_check_says_how_a_mirrored_copy_matched(run, tmp_path, photos):
    from PIL import Image, ImageOps

    run("add", photos["rocket"])
    mirrored = tmp_path / "mirrored.jpg"
    with Image.open(photos["rocket"]) as img:
        ImageOps.mirror(img).save(mirrored, quality=85)
    [doc] = json.loads(run("check", "--json", mirrored).stdout)
    [match] = doc["matches"]
    assert (match["path"], match["variant"]) == (str(photos["rocket"]), "mirrored")
    assert match["score"] <= 20 and isinstance(match["distance"], int)
    assert "mirrored" in run("check", mirrored).stdout


@pytest.mark.parametrize(
    "make,problem",
    [
        (lambda p: p.write_text("hello"), "not an image"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: None, "no such file"),
    ],
)
def test_a_bad_image_is_one_clear_line_and_exit_2(run, tmp_path, make, problem):
    bad = tmp_path / "upload.jpg"
    make(bad)
    result = run("check", bad)
    assert result.returncode == 2 and no_traceback(result)
    assert str(bad) in result.stderr and problem in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1


def test_add_trashes_a_duplicate_on_request_and_says_where(run, tmp_path, photos, near_copies):
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    assert run("add", photos["camera"]).returncode == 0
    result = run("add", "--on-duplicate", "trash", upload)
    assert result.returncode == 1 and not upload.exists()
    trashed = Path(result.stdout.split("moved to ")[1].split(" (restore")[0])
    assert trashed.read_bytes() == near_copies["camera"].read_bytes()
    assert trashed.is_relative_to(tmp_path / "index" / "trash")
    assert json.loads(run("stats", "--json").stdout)["images"] == 1


def test_add_asks_and_keeps_when_told(run, run_tty, tmp_path, photos, near_copies):
    run("add", photos["camera"])
    result = run_tty("add", near_copies["camera"], keys="keep\n")
    assert "keep it or move it to the trash?" in result.stderr
    assert near_copies["camera"].exists()
    assert json.loads(run("stats", "--json").stdout)["images"] == 2


def test_add_skip_leaves_the_file_and_stores_nothing(run, photos, near_copies):
    run("add", photos["camera"])
    result = run("add", "--on-duplicate", "skip", near_copies["camera"])
    assert result.returncode == 1 and near_copies["camera"].exists()
    assert json.loads(run("stats", "--json").stdout)["images"] == 1


def test_similar_dedupe_and_remove(run, collection, photos):
    run("ingest", collection)
    similar = run("similar", "--json", "--top", "2", photos["chelsea"])
    found = json.loads(similar.stdout)
    assert found[0]["distance"] == 0 and found[1]["path"].endswith("chelsea-copy.jpg")
    groups = json.loads(run("dedupe", "--json").stdout)
    assert len(groups) == 1 and len(groups[0]["images"]) == 2
    removed = run("remove", str(collection / "sub" / "chelsea-copy.jpg"))
    assert removed.returncode == 0
    assert json.loads(run("dedupe", "--json").stdout) == []
    missing = run("remove", "no-such-id")
    assert missing.returncode == 2 and "no-such-id" in missing.stderr


def test_help_documents_exit_codes_and_db(run):
    result = run("--help")
    assert "Exit codes" in result.stdout and "PHASHDB_URL" in result.stdout


def test_db_option_picks_the_index(run, tmp_path, photos):
    other = tmp_path / "other"
    run("--db", other, "add", photos["camera"])
    assert (other / "index.sqlite3").exists()
    assert json.loads(run("stats", "--json").stdout)["images"] == 0


def test_usage_errors_exit_2(run):
    assert run("check").returncode == 2
    assert run("add", "--on-duplicate", "burn", "x.jpg").returncode == 2
