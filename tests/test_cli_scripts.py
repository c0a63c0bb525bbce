"""The `phashdb` command in scripts, cron jobs and pipes, and for a first-time user (issue 22,
items 13-17): no question without a terminal, quiet ends of pipes, clear one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import PHASHDB
from PIL import Image

import phashdb
from phashdb.bands import BandLayout
from phashdb.hbase import DEFAULT_BANDS


def one_clear_line(result) -> str:
    """The one line a failed command wrote (and no traceback, no "unexpected" crash)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "unexpected" not in result.stderr and result.stdout == "", result
    return lines[0]


def at(db, *args, **popen):
    """`phashdb --db DB ARGS` (DB and ARGS may be bytes or non-UTF-8 names)."""
    return subprocess.run(
        [PHASHDB, "--db", os.fsdecode(db), *map(os.fsdecode, args)], check=False,
        capture_output=True, text=True, errors="surrogateescape", timeout=300,
        stdin=subprocess.DEVNULL, **popen,
    )  # fmt: skip


# --- 13: output into a closed reader, the report's folders ------------------------------------


def into_closed_pipe(run_args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run phashdb with stdout a pipe whose reader is already gone: its first write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [PHASHDB, *run_args], check=False, stdout=write, stderr=subprocess.PIPE, text=True,
            env=env, timeout=300,
        )  # fmt: skip
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "command", [["dedupe"], ["stats"], ["check", "{a}", "{b}"], ["dedupe", "--json"]]
)
def test_output_into_a_closed_reader_ends_quietly_with_exit_0(tmp_path, photos, command):
    db = tmp_path / "index"
    with phashdb.open(db) as index:
        index.add(photos["camera"])
        index.add(photos["camera"], id="again", keep_duplicate=True)
    env = {**os.environ, "PHASHDB_URL": str(db)}
    args = [a.format(a=photos["camera"], b=photos["coffee"]) for a in command]
    result = into_closed_pipe(args, env)
    assert (result.returncode, result.stderr) == (0, "")


def test_check_piped_into_head_ends_quietly(tmp_path, photos):
    # More lines than a pipe holds: `head -1` leaves while phashdb is still writing.
    small = tmp_path / "small.png"
    with Image.open(photos["camera"]) as img:
        img.resize((64, 64)).save(small)
    db = tmp_path / "index"
    phashdb.open(db).close()
    pipeline = f"'{PHASHDB}' --db '{db}' check {' '.join([str(small)] * 1500)} | head -1"
    result = subprocess.run(
        ["bash", "-c", pipeline + "; echo \"status ${PIPESTATUS[0]}\""],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.stdout.splitlines() == [f"{small}: unique", "status 0"]
    assert result.stderr == ""


def test_report_on_an_index_whose_folder_name_is_not_utf8(tmp_path, photos, near_copies):
    db = os.fsencode(tmp_path) + b"/caf\xe9-index"
    assert at(db, "add", photos["rocket"], near_copies["rocket"]).returncode == 1
    result = at(db, "report", "--out", tmp_path / "report.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "caf\\xe9-index" in page and "1 groups" in result.stdout


def test_report_into_a_missing_folder_is_one_clear_line(run, tmp_path, photos):
    run("add", photos["rocket"])
    out = tmp_path / "no-such-folder" / "report.html"
    result = run("report", "--out", out)
    assert result.returncode == 2
    assert one_clear_line(result) == (
        f"phashdb: error: cannot write the report to {out}: no folder {out.parent}"
    )
    assert not out.parent.exists()


# --- 14: what --db may name -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "stats", "add", "ingest"])
def test_db_naming_a_folder_of_other_files_is_refused(tmp_path, photos, command):
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    shutil.copy(photos["camera"], pictures / "camera.png")
    args = {"check": [photos["camera"]], "add": [photos["camera"]], "ingest": [pictures]}
    result = at(pictures, command, *args.get(command, []))
    assert result.returncode == 2
    line = one_clear_line(result)
    assert line == f"phashdb: error: not a phashdb index: {pictures} (it holds other files)"
    assert [p.name for p in pictures.iterdir()] == ["camera.png"]


def test_db_naming_a_file_is_one_clear_line(tmp_path, photos):
    result = at(photos["camera"], "add", photos["coffee"])
    assert result.returncode == 2
    assert one_clear_line(result) == (
        f"phashdb: error: not a phashdb index: {photos['camera']} (a file, not a folder)"
    )


@pytest.mark.parametrize("command", ["check", "stats"])
def test_reading_commands_never_create_an_index(tmp_path, photos, command):
    missing = tmp_path / "typo"
    result = at(missing, command, *([photos["camera"]] if command == "check" else []))
    assert result.returncode == 2
    assert one_clear_line(result).startswith(f"phashdb: error: no index at {missing}: create it")
    assert not missing.exists()
    (tmp_path / "empty").mkdir()
    assert at(tmp_path / "empty", command, photos["camera"]).returncode == 2
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("command", ["add", "ingest", "init"])
def test_storing_commands_create_the_index_in_a_missing_or_empty_folder(tmp_path, photos, command):
    args = {"add": [photos["camera"]], "ingest": [photos["camera"].parent]}.get(command, [])
    (tmp_path / "empty").mkdir()
    for db in (tmp_path / "new" / "index", tmp_path / "empty"):
        result = at(db, command, *args)
        assert result.returncode == 0, result.stderr
        assert (db / "index.sqlite3").is_file()
        again = at(db, "stats", "--json")  # an index now: used as it is
        assert again.returncode == 0, again.stderr
        assert (json.loads(again.stdout)["images"] > 0) == bool(args)


# --- 15: no question without a terminal ----------------------------------------------------


def test_add_without_a_terminal_keeps_and_goes_on(run, photos, near_copies):
    run("add", photos["camera"])
    result = run("add", near_copies["camera"], photos["coffee"], stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "?" not in result.stderr and "Aborted" not in result.stderr
    kept, unique = result.stdout.splitlines()
    assert kept.startswith(f"{near_copies['camera']}: duplicate of {photos['camera']}")
    assert kept.endswith("(kept)") and unique == f"{photos['coffee']}: unique (added)"
    assert json.loads(run("stats", "--json").stdout)["images"] == 3
    assert "keep when stdin is not one" in " ".join(run("add", "--help").stdout.split())


def test_add_ask_without_a_terminal_is_one_clear_line(run, photos, near_copies):
    run("add", photos["camera"])
    result = run("add", "--on-duplicate", "ask", near_copies["camera"], input="keep\n")
    assert result.returncode == 2
    assert "needs a terminal" in one_clear_line(result)
    assert json.loads(run("stats", "--json").stdout)["images"] == 1


def test_trash_empty_without_a_terminal_refuses_without_yes(run, tmp_path, photos, near_copies):
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    run("add", photos["camera"])
    run("add", "--on-duplicate", "trash", upload)
    result = run("trash", "empty", stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "--yes" in one_clear_line(result)
    assert len(json.loads(run("trash", "list", "--json").stdout)) == 1
    assert run("trash", "empty", "--yes", stdin=subprocess.DEVNULL).returncode == 0
    assert json.loads(run("trash", "list", "--json").stdout) == []


# --- 16: what add says, once, in order; the trash id for scripts ---------------------------


def test_add_json_carries_the_trash_id_to_undo_with(run, tmp_path, photos, near_copies):
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    run("add", photos["camera"])
    result = run("add", "--json", "--on-duplicate", "trash", upload, photos["coffee"])
    trashed, unique = json.loads(result.stdout)
    [entry] = json.loads(run("trash", "list", "--json").stdout)
    assert (trashed["verdict"], trashed["action"], trashed["trash_id"]) == (
        "duplicate",
        "trashed",
        entry["id"],
    )
    assert "trash_id" not in unique and "action" not in unique
    assert run("trash", "restore", trashed["trash_id"]).returncode == 0 and upload.exists()


@pytest.mark.parametrize(
    "answer,said",
    [("skip", "skipped (left where it is"), ("keep", "kept (stored as a known duplicate)"),
     ("trash", "moved to ")],
)  # fmt: skip
def test_interactive_add_prints_the_verdict_once_then_its_action(
    run, run_tty, tmp_path, photos, near_copies, answer, said
):
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    run("add", photos["camera"])
    result = run_tty("add", upload, keys=f"{answer}\n")
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and result.stdout.count("duplicate of") == 1, result.stdout
    assert lines[0].startswith(f"{upload}: duplicate of {photos['camera']}")
    assert lines[1].startswith(f"{upload}: {said}")
    assert "keep it or move it to the trash?" in result.stderr and result.returncode == 1
    assert upload.exists() == (answer != "trash")
    images = json.loads(run("stats", "--json").stdout)["images"]
    assert images == (2 if answer == "keep" else 1)


# --- 17: what a first-time user reads ---------------------------------------------------------


def test_init_help_gives_the_real_default_bands(run):
    widths = BandLayout.even(DEFAULT_BANDS).widths
    text = " ".join(run("init", "--help").stdout.split())
    assert f"default {len(widths)} bands: {','.join(map(str, widths))}" in text


def test_ingest_of_a_folder_without_images_says_so(run, tmp_path):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "readme.txt").write_text("no image here")
    result = run("ingest", folder)
    assert result.returncode == 0 and "0 added" in result.stdout
    assert result.stderr.strip() == f"phashdb: no image files found under {folder}"


def test_a_truncated_jpeg_is_said_to_be_truncated(run, tmp_path, photos):
    jpeg = next(p for p in photos.values() if p.suffix == ".jpg")
    cut = tmp_path / "x.jpg"
    cut.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    result = run("check", cut)
    line = one_clear_line(result)
    assert line == (
        f"phashdb: error: {cut}: truncated or corrupt image data (the file ends before the "
        "image does)"
    )
    assert result.returncode == 2
