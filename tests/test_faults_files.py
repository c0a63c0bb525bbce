"""Faults from the file system and from kill -9: special files, odd names, crashes in the
middle of moving photos to the trash, damaged image bytes. Nothing hangs, nothing is lost, and
what a crash leaves is set right by `phashdb fsck --repair`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PHASHDB

import phashdb


def phashdb_cmd(tmp_path, *args, timeout=120):
    """`phashdb ARGS` with a timeout: a command that hangs fails the test instead. The index
    is made first: reading commands refuse a missing one."""
    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}
    phashdb.open(tmp_path / "index").close()
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


# --- file names as Linux allows them: any bytes but / and NUL ------------------------------


@pytest.fixture
def odd_names(tmp_path, photos, near_copies):
    """A folder with a photo under a name that is not UTF-8, its near copy under a name
    holding a newline, and a plain one."""
    folder = tmp_path / "odd"
    folder.mkdir()
    latin1 = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")  # Latin-1, not UTF-8
    shutil.copy(photos["coffee"], latin1)
    shutil.copy(near_copies["coffee"], folder / "new\nline.jpg")
    shutil.copy(photos["camera"], folder / "camera.jpg")
    return folder, os.fsdecode(latin1), str(folder / "new\nline.jpg")


def test_a_name_that_is_not_utf8_is_stored_and_named_in_sqlite_and_json(tmp_path, odd_names):
    folder, latin1, newline = odd_names
    added = phashdb_cmd(
        tmp_path, "add", "--json", "--on-duplicate", "keep", latin1, folder / "camera.jpg"
    )
    assert added.returncode == 0, added.stderr
    doc = json.loads(added.stdout)
    assert [v["path"] for v in doc] == [latin1, str(folder / "camera.jpg")]
    assert os.fsencode(doc[0]["path"]).endswith(b"/caf\xe9.jpg")  # the bytes come back
    checked = phashdb_cmd(tmp_path, "check", "--json", newline)
    assert json.loads(checked.stdout)[0]["matches"][0]["path"] == latin1
    with phashdb.open(tmp_path / "index") as index:
        assert index.get(latin1).path == latin1 and latin1 in index.files()
        assert [m.id for m in index.check(newline).matches] == [latin1]


def test_ingest_stores_a_name_that_is_not_utf8_with_the_rest(tmp_path, odd_names):
    folder, latin1, _ = odd_names
    result = phashdb_cmd(tmp_path, "ingest", "--json", folder)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 3
    again = phashdb_cmd(tmp_path, "ingest", "--json", folder)
    assert json.loads(again.stdout)["skipped"] == 3  # found again by its stored path
    groups = json.loads(phashdb_cmd(tmp_path, "dedupe", "--json").stdout)
    assert latin1 in [i["path"] for i in groups[0]["images"]]


def test_odd_names_stay_on_one_line_of_human_output(tmp_path, odd_names):
    folder, latin1, newline = odd_names
    phashdb_cmd(tmp_path, "add", latin1)
    result = phashdb_cmd(tmp_path, "check", newline, folder / "camera.jpg")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == f"{folder}/new\\nline.jpg: duplicate of {folder}/caf\\xe9.jpg (distance 2)"
    bad = folder / "bad\nname.jpg"
    bad.write_text("not an image")
    failed = phashdb_cmd(tmp_path, "ingest", folder)
    assert len(failed.stderr.splitlines()) == 1 and "bad\\nname.jpg" in failed.stderr


def test_dedupe_apply_trash_and_restore_a_name_that_is_not_utf8(tmp_path, odd_names):
    folder, latin1, newline = odd_names
    os.unlink(newline)
    shutil.copy(latin1, folder / "coffee.jpg")
    os.utime(latin1, (2_000_000, 2_000_000))
    os.utime(folder / "coffee.jpg", (1_000_000, 1_000_000))
    phashdb_cmd(tmp_path, "ingest", folder)
    applied = phashdb_cmd(tmp_path, "dedupe", "--apply", "trash", "--keep", "oldest")
    assert applied.returncode == 0, applied.stderr
    assert not os.path.exists(latin1) and "caf\\xe9.jpg" in applied.stdout
    [entry] = json.loads(phashdb_cmd(tmp_path, "trash", "list", "--json").stdout)
    assert entry["original"] == latin1
    assert phashdb_cmd(tmp_path, "trash", "restore", entry["id"]).returncode == 0
    assert os.path.exists(latin1)
    assert json.loads(phashdb_cmd(tmp_path, "stats", "--json").stdout)["images"] == 3


# --- memory: a large image costs its decoded size and little more --------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM")
def test_hashing_a_large_rgba_png_takes_little_more_than_its_decoded_pixels(tmp_path):
    from PIL import Image, ImageDraw

    side = 6000
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((500, 800, 3500, 3000), fill=(200, 30, 30, 180))
    img.save(tmp_path / "big.png")
    del img

    def peak_growth(statement):
        """How much a fresh process's peak resident memory grows running `statement`."""
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
        measure = (
            "import re, sys, phashdb, phashdb.phash\n"  # imports are not hashing's memory
            "from PIL import Image\n"
            "peak = lambda: int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n"
            "before = peak()\n"
            f"{statement}\n"
            "print(peak() - before)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", measure, tmp_path / "big.png"], capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        return int(result.stdout) * 1024  # kB

    decoding = peak_growth("Image.open(sys.argv[1]).load()")  # what Pillow alone needs
    hashing = peak_growth("phashdb.hash_image(sys.argv[1])")
    # The documented bound: the decoded pixels, a greyscale copy, a strip (before: 2.4x more).
    assert hashing <= decoding + 1.5 * side * side + 16 * 2**20, (hashing, decoding)
    # With the descriptor and a transparent source's keys (phashdb.renderings): one full-size
    # rendering at a time beside the greyscale copy (all at once: 4.1 bytes a pixel).
    keyed = peak_growth("phashdb.phash.read_image(sys.argv[1])")
    assert keyed <= decoding + 2.5 * side * side + 16 * 2**20, (keyed, decoding)


@pytest.mark.parametrize(
    "mode", ["RGBA", "LA", "PA", "P", "RGB", "CMYK", "L", "1", "I;16", "I", "F"]
)
def test_converting_in_strips_gives_the_same_pixels(photo_images, mode, monkeypatch):
    from PIL import Image

    from phashdb import phash as hashing

    photo = photo_images["astronaut"].convert("RGBA")
    photo.putalpha(photo.getchannel("R"))  # transparency that varies
    if mode in ("I;16", "I", "F"):
        img = Image.fromarray(
            (np.asarray(photo.convert("L"), dtype=np.float64) * 57 - 3000).astype(
                {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
            )
        )
        if mode == "I;16":
            img = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 250)
    elif mode in ("P", "PA"):
        img = photo.convert("RGB").quantize(64)
        img.info["transparency"] = 3
        if mode == "PA":
            img = photo.convert("PA")
    else:
        img = photo.convert(mode)
    whole = hashing._greyscale(img, "x")
    monkeypatch.setattr(hashing, "STRIP_PIXELS", 7 * img.width + 5)  # ragged last strip
    strips = hashing._greyscale_in_strips(img, "x")
    assert strips.mode == "L" and np.array_equal(np.asarray(strips), np.asarray(whole))


# --- kill -9 while photos move to the trash: fsck --repair, and nothing is lost ------------

TRIALS = 4  # per command; each kills one run at a seeded random moment


def build_collection(folder, photos, near_copies):
    """Four photos, each with a near copy and three exact copies (older first): 20 files,
    16 of them duplicates."""
    folder.mkdir()
    when = 1_000_000
    for name in ("camera", "rocket", "coffee", "chelsea"):
        for n, source in enumerate([photos[name], near_copies[name], *[photos[name]] * 3]):
            path = folder / f"{name}-{n}.jpg"
            shutil.copy(source, path)
            os.utime(path, (when, when))
            when += 1
    return {str(p): p.read_bytes() for p in folder.iterdir()}


def check_nothing_lost_and_consistent(index_dir, originals):
    """Every original's bytes are in place or in the trash entry that names it; the index
    holds no trashed image and no image whose file is gone; every trash entry is whole."""
    from phashdb.trash import check, list_trash

    with phashdb.open(index_dir) as index:
        assert check(index.trash, index=index) == []
        trashed = {t.original: t for t in list_trash(index.trash)}
        for path, data in originals.items():
            if os.path.exists(path):
                assert Path(path).read_bytes() == data, path
            else:
                assert path in trashed, f"{path} is neither in place nor in the trash"
                assert Path(trashed[path].path).read_bytes() == data, path
        for t in trashed.values():
            assert t.image_id is None or t.image_id not in index, t
        for image in index.images():
            assert os.path.exists(image.path), image
        return len(index), len(trashed)


def kill_at_random_moments(tmp_path, seed, prepare, args, finish):
    """Run `phashdb ARGS` TRIALS times, each killed (SIGKILL) at a seeded random moment while
    it moves files to the trash; after each kill, `fsck --repair`, the checks, then `finish`
    (the command run again to its end) and the checks again. Fails naming every trial that did
    not survive; prints (pytest -s) what each kill left and what fsck repaired."""
    import random
    import time

    rng = random.Random(seed)
    failures = []
    for trial in range(1, TRIALS + 1):
        home = tmp_path / f"trial{trial}"
        home.mkdir()
        originals = prepare(home)
        env = {**os.environ, "PHASHDB_URL": str(home / "index")}
        process = subprocess.Popen(
            [PHASHDB, *args(home)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # A random point of the work that matters: once the k-th trash entry is begun, a few
        # random milliseconds on (its folder, trashed.json, the move and the index each take
        # a fraction of a millisecond).
        k, trash = rng.randint(1, 16), home / "index" / "trash"
        while process.poll() is None:
            if trash.exists() and sum(1 for _ in trash.iterdir()) >= k:
                time.sleep(rng.uniform(0, 0.004))
                process.kill()
                break
            time.sleep(0.0005)
        process.wait(timeout=300)
        left = sum(1 for _ in trash.iterdir()) if trash.exists() else 0
        try:
            repaired = phashdb_cmd(home, "fsck", "--repair")
            assert repaired.returncode == 0, repaired.stdout + repaired.stderr
            fixed = [line for line in repaired.stdout.splitlines() if line.startswith("trash: ")]
            print(f"{args(home)[0]} kill {trial}: {left} trash entries, repaired {fixed}")
            check_nothing_lost_and_consistent(home / "index", originals)
            finish(home)
            assert check_nothing_lost_and_consistent(home / "index", originals) == (4, 16)
        except AssertionError as e:
            failures.append(f"kill {trial}: {e}")
    print(f"{args(home)[0]}: {TRIALS} kills, {TRIALS - len(failures)} survived")
    assert not failures


def test_kill_9_during_dedupe_apply_trash_loses_nothing(tmp_path, photos, near_copies):
    from phashdb.ingest import ingest

    def prepare(home):
        originals = build_collection(home / "photos", photos, near_copies)
        with phashdb.open(home / "index") as index:
            ingest(index, [home / "photos"], workers=1)
        return originals

    def finish(home):
        done = phashdb_cmd(home, "dedupe", "--apply", "trash", "--keep", "oldest")
        assert done.returncode == 0, done.stderr

    kill_at_random_moments(
        tmp_path, 14, prepare, lambda home: ["dedupe", "--apply", "trash", "--keep", "oldest"],
        finish,
    )  # fmt: skip


def test_kill_9_during_add_on_duplicate_trash_loses_nothing(tmp_path, photos, near_copies):
    def prepare(home):
        return build_collection(home / "photos", photos, near_copies)

    def add_all(home):
        return ["add", "--on-duplicate", "trash", *sorted(map(str, (home / "photos").iterdir()))]

    def finish(home):
        with phashdb.open(home / "index") as index:
            stored = {i.path for i in index.images()}
        left = [p for p in add_all(home)[3:] if p not in stored]
        if left:
            phashdb_cmd(home, "add", "--on-duplicate", "trash", *left)

    kill_at_random_moments(tmp_path, 15, prepare, add_all, finish)


# --- the decoder over damaged real images: a hash or an ImageError, nothing else -----------


@pytest.fixture(scope="module")
def small_encodings(tmp_path_factory):
    """A real photo, small, in every format the decoder reads."""
    import io

    from conftest import skimage_photo
    from PIL import Image

    photo = skimage_photo("astronaut").resize((48, 40))
    out = []
    for fmt, mode in [("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("WEBP", "RGB"),
                      ("BMP", "RGB"), ("TIFF", "RGB"), ("PNG", "P")]:  # fmt: skip
        buffer = io.BytesIO()
        image = photo.convert("RGBA" if mode == "RGBA" else "RGB")
        (image.convert("P") if mode == "P" else image).save(buffer, fmt)
        out.append(buffer.getvalue())
    assert all(Image.open(io.BytesIO(b)).size == (48, 40) for b in out)
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on odd TIFF tags
def test_damaged_image_bytes_give_a_hash_or_an_image_error(small_encodings):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from phashdb import ImageError
    from phashdb.phash import read_image

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        which=st.integers(0, len(small_encodings) - 1),
        edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
        cut=st.one_of(st.none(), st.floats(0, 1)),
    )
    def property(which, edits, cut):
        data = bytearray(small_encodings[which])
        for where, value in edits:
            data[min(int(where * len(data)), len(data) - 1)] = value
        if cut is not None:
            data = data[: int(cut * len(data))]
        try:
            picture = read_image(bytes(data), max_pixels=1_000_000)
        except ImageError:
            return
        assert 0 <= picture.hash < 1 << 64 and picture.width * picture.height <= 1_000_000

    property()


def test_a_name_that_is_not_utf8_round_trips_through_the_index(index, tmp_path, photos):
    name = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.jpg")
    shutil.copy(photos["coffee"], name)
    verdict = index.add(name)
    assert verdict.added and verdict.id == name and verdict.path == name
    assert index.get(name).path == name and name in index
    assert [m.id for m in index.check(photos["coffee"]).matches] == [name]
    assert [m.path for m in index.matches([verdict.hash])[0]] == [name]
    assert name in index.files() and [i.id for i in index.images()] == [name]
    assert index.remove(name) and name not in index and len(index) == 0
