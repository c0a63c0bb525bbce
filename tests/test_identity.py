"""File identity (issue 21): the index records what identifies each stored file, checks it
before anything moves, links or deletes a file, and follows files that move or are replaced.

Each "Why" case of issue 21 about files is a test here; no assertion depends on timing (watch
tests wait on what the watch reports, with a deadline only to bound the wait)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from conftest import PHASHDB
from watch_help import Watching

import phashdb
from phashdb import identity, source
from phashdb.cli.cleanup import _seenverdict_line
from phashdb.hbase import keys
from phashdb.ingest import hash_file, ingest
from phashdb.records import Image
from phashdb.trash import list_trash


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_identity(record: Image, path) -> None:
    st = os.stat(path)
    assert (record.dev, record.ino, record.size, record.mtime_ns) == (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    assert record.digest == sha256(path) and record.path == str(path)


# --- what is recorded, and how it is stored -------------------------------------------------


def test_add_ingest_and_the_mapreduce_mapper_record_the_files_identity(reopen, album):
    with reopen() as index:
        index.add(album / "camera.jpg")
        ingest(index, [album], workers=1)
        for name in ("astronaut", "camera", "rocket"):
            assert_identity(index.get(str(album / f"{name}.jpg")), album / f"{name}.jpg")
    # The MapReduce ingest's mappers make their records with hash_file.
    _, image = hash_file(str(album / "rocket.jpg"))
    assert_identity(image, album / "rocket.jpg")


def test_the_mapreduce_ingest_job_records_the_files_identity(tmp_path, album):
    from phashdb.mr import run as mr

    with phashdb.open(tmp_path / "index") as index:
        assert mr.ingest(index, [album], "inline").added == 3
        for name in ("astronaut", "camera", "rocket"):
            assert_identity(index.get(str(album / f"{name}.jpg")), album / f"{name}.jpg")


def test_the_digest_is_of_every_byte_whatever_the_decoder_reads(tmp_path, photos):
    # Bytes after the image's end (a JPEG's trailer) are not read by the decoder: still hashed.
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(Path(photos["coffee"]).read_bytes() + b"\0trailer" * 1000)
    picture, known = source.read_file(str(padded))
    assert known["digest"] == sha256(padded)
    assert picture.hash == phashdb.hash_image(photos["coffee"])


# Golden vectors: the record cell's bytes are a stored format (HBase's `T_images`).
GOLDEN_IMAGE = Image(
    "/p/a.jpg",
    0x0123456789ABCDEF,
    "/p/a.jpg",
    1234,
    1700000000.5,
    640,
    480,
    1700000100.25,
    b"\x01\x02\x03",
    2049,
    131075,
    1700000000500000000,
    "ab" * 32,
)
GOLDEN_V2 = (
    b'["/p/a.jpg","0123456789abcdef","/p/a.jpg",1234,1700000000.5,640,480,1700000100.25,'
    b'"AQID",2049,131075,1700000000500000000,"' + b"ab" * 32 + b'"]'
)


def test_hbase_records_carry_identity_and_every_older_layout_is_read():
    assert keys.encode_record(GOLDEN_IMAGE) == GOLDEN_V2
    assert keys.decode_record(GOLDEN_V2) == GOLDEN_IMAGE
    no_descriptor = Image(
        "x", 5, "/x.jpg", 1, 2.0, dev=3, ino=4, mtime_ns=2_000_000_000, digest="cd"
    )
    raw = keys.encode_record(no_descriptor)
    assert raw == b'["x","0000000000000005","/x.jpg",1,2.0,null,null,null,null,3,4,2000000000,"cd"]'
    assert keys.decode_record(raw) == no_descriptor
    # Layout 1 as written before the second stage, and with a descriptor: read as they are.
    assert keys.decode_record(b'["x","0000000000000005","/x.jpg",1,2.0,3,4,9.5]') == Image(
        "x", 5, "/x.jpg", 1, 2.0, 3, 4, 9.5
    )
    assert keys.decode_record(b'["x","0000000000000005",null,null,null,null,null,9.5,"AQID"]') == (
        Image("x", 5, added=9.5, descriptor=b"\x01\x02\x03")
    )
    # Records without identity keep the bytes they always had (bulk loads compare them).
    assert keys.encode_record(Image("x", 5, added=9.5)) == (
        b'["x","0000000000000005",null,null,null,null,null,9.5]'
    )


def test_records_with_identity_round_trip_whatever_the_device_and_inode_numbers(reopen):
    # Overlay file systems give inode numbers with the top bit set.
    images = [
        GOLDEN_IMAGE,
        Image("big", 7, "/b.jpg", 1, 2.0, None, None, 9.0, None, 2**63, 2**64 - 1, 3, "ef"),
    ]
    with reopen() as index:
        index.insert(images)
        index.insert(images)  # stored exactly so: kept as it is
        assert [index.get(i.id) for i in images] == images
        assert index.files()["/b.jpg"] == (1, 2.0, 2**63, 2**64 - 1, 3)


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, hash INTEGER NOT NULL,
    path TEXT, size INTEGER, mtime REAL, width INTEGER, height INTEGER, added REAL NOT NULL,
    descriptor BLOB);
"""


def old_index(folder: Path, path: Path) -> None:
    """An embedded index as phashdb wrote it before file identity: one record, of `path`."""
    folder.mkdir()
    db = sqlite3.connect(folder / "index.sqlite3")
    db.executescript(OLD_SCHEMA)
    settings = {"format": 1, "hash_version": "phash-dct64-v2", "threshold": 8,
                "descriptor_version": phashdb.descriptor.DESCRIPTOR_VERSION}  # fmt: skip
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in settings.items()]
    )
    st = os.stat(path)
    h = phashdb.hash_image(path)
    db.execute(
        "INSERT INTO images (seq, id, hash, path, size, mtime, added) VALUES (1, ?, ?, ?, ?, ?, 1.0)",
        (str(path), h - (1 << 64) if h >= 1 << 63 else h, str(path), st.st_size, st.st_mtime),
    )
    db.commit()
    db.close()


def test_an_index_made_before_file_identity_opens_and_reads_both_layouts(tmp_path, album):
    old_index(tmp_path / "old", album / "camera.jpg")
    with phashdb.open(tmp_path / "old") as index:
        assert index.settings["record_version"] == 2
        record = index.get(str(album / "camera.jpg"))
        assert record.ino is None and record.size == os.path.getsize(album / "camera.jpg")
        # Its old record is checked by size and mtime; resumable ingest skips it as before.
        assert identity.changed(index.get(str(album / "camera.jpg"))) is None
        report = ingest(index, [album], workers=1)
        assert (report.added, report.skipped) == (2, 1)
        assert_identity(index.get(str(album / "rocket.jpg")), album / "rocket.jpg")


# --- the one check ----------------------------------------------------------------------


def test_changed_and_same_file_see_links_symlinked_folders_and_rewrites(tmp_path, album, photos):
    with phashdb.open(tmp_path / "index") as index:
        record = index.add(album / "camera.jpg").image
    path = str(album / "camera.jpg")
    assert identity.changed(record) is None
    os.utime(path, ns=(1, 1))  # touched: the bytes decide, and they are the same
    assert identity.changed(record) is None
    os.link(path, tmp_path / "hard.jpg")
    os.symlink(path, tmp_path / "soft.jpg")
    os.symlink(album, tmp_path / "through")
    for other in ("hard.jpg", "soft.jpg", "through/camera.jpg"):
        assert identity.same_file(str(tmp_path / other), path), other
    assert not identity.same_file(str(album / "rocket.jpg"), path)
    shutil.copy(photos["coffee"], tmp_path / "new.jpg")
    os.replace(tmp_path / "new.jpg", path)  # another picture under the stored name
    assert "changed since it was stored" in identity.changed(record)
    os.unlink(path)
    assert "no such file" in identity.changed(record)


# --- renames: the record follows ------------------------------------------------------------


def test_a_rename_in_watch_with_trash_moves_the_record_and_trashes_nothing(reopen, album):
    with reopen() as index:
        ingest(index, [album], workers=1)
        url = index.store.url
    watching = Watching(url, album)
    os.rename(album / "camera.jpg", album / "camera-2024.jpg")
    (album / "sub").mkdir()
    os.rename(album / "rocket.jpg", album / "sub" / "rocket.jpg")
    first = watching.next(album / "camera-2024.jpg")
    second = watching.next(album / "sub" / "rocket.jpg")
    summary = watching.close()
    assert (first.action, second.action) == ("moved", "moved")
    assert summary.trashed == 0 and summary.moved == 2
    assert (album / "camera-2024.jpg").exists() and (album / "sub" / "rocket.jpg").exists()
    with phashdb.open(url) as index:
        assert list_trash(index.trash) == []
        assert str(album / "camera.jpg") not in index
        assert_identity(index.get(str(album / "camera-2024.jpg")), album / "camera-2024.jpg")
        assert_identity(index.get(str(album / "sub" / "rocket.jpg")), album / "sub" / "rocket.jpg")
        assert len(index) == 3


def run_add(url, *args):
    env = {**os.environ, "PHASHDB_URL": str(url)}
    return subprocess.run(
        [PHASHDB, "add", *args], check=False, env=env, capture_output=True, text=True
    )


def test_add_with_trash_of_a_renamed_file_follows_it_and_keeps_decisions(reopen, album):
    with reopen() as index:
        ingest(index, [album], workers=1)
        url = index.store.url
        index.mark_not_duplicates([(str(album / "camera.jpg"), str(album / "rocket.jpg"))])
    os.rename(album / "camera.jpg", album / "renamed.jpg")
    done = run_add(url, "--on-duplicate", "trash", str(album / "renamed.jpg"))
    assert done.returncode == 0, done.stderr
    assert "its record follows it" in done.stdout and "moved to the trash" not in done.stdout
    assert (album / "renamed.jpg").exists()
    with phashdb.open(url) as index:
        assert list_trash(index.trash) == []
        assert str(album / "camera.jpg") not in index
        assert_identity(index.get(str(album / "renamed.jpg")), album / "renamed.jpg")
        assert [(d.a, d.b) for d in index.decisions()] == [
            (str(album / "renamed.jpg"), str(album / "rocket.jpg"))
        ]


# --- replacements, and records whose file is gone -------------------------------------------


def test_a_file_replaced_under_a_stored_name_is_hashed_again_and_a_copy_of_the_old_photo_kept(
    reopen, tmp_path, album, photos, near_copies
):
    with reopen() as index:
        ingest(index, [album], workers=1)
        url = index.store.url
    staging = tmp_path / "staging"
    staging.mkdir()
    watching = Watching(url, album)
    shutil.copy(photos["coffee"], staging / "new.jpg")
    os.rename(staging / "new.jpg", album / "camera.jpg")  # mv new.jpg camera.jpg
    replaced = watching.next(album / "camera.jpg")
    shutil.copy(near_copies["camera"], album / "camera-copy.jpg")  # the overwritten photo
    copy = watching.next(album / "camera-copy.jpg")
    summary = watching.close()
    assert replaced.action == "stored" and "replaced" in replaced.detail
    assert "(replaced the record of" in _seenverdict_line(replaced)  # what `phashdb watch` says
    assert copy.action == "stored" and not copy.verdict.duplicate
    assert (album / "camera-copy.jpg").exists() and summary.trashed == 0
    with phashdb.open(url) as index:
        assert index.get(str(album / "camera.jpg")).hash == phashdb.hash_image(photos["coffee"])
        assert list_trash(index.trash) == []


def test_a_file_written_over_in_place_is_hashed_again_by_watch(tmp_path, album, photos):
    url = tmp_path / "index"
    with phashdb.open(url) as index:
        ingest(index, [album], workers=1)
    watching = Watching(url, album, on_duplicate="keep")
    shutil.copyfile(photos["coffee"], album / "rocket.jpg")  # the same inode, written over
    seen = watching.next(album / "rocket.jpg")
    watching.close()
    assert seen.action == "stored" and "replaced" in seen.detail
    with phashdb.open(url) as index:
        assert_identity(index.get(str(album / "rocket.jpg")), album / "rocket.jpg")


def test_a_duplicate_of_an_image_whose_file_is_gone_is_kept_not_trashed(
    tmp_path, album, near_copies
):
    url = tmp_path / "index"
    with phashdb.open(url) as index:
        ingest(index, [album], workers=1)
    os.unlink(album / "astronaut.jpg")
    shutil.copy(near_copies["astronaut"], tmp_path / "astronaut-copy.jpg")
    done = run_add(url, "--on-duplicate", "trash", str(tmp_path / "astronaut-copy.jpg"))
    assert done.returncode == 1, done.stderr  # still a duplicate of a stored image...
    assert "duplicate of" in done.stdout and "file gone or changed" in done.stdout
    assert (tmp_path / "astronaut-copy.jpg").exists()  # ...but kept, and stored
    with phashdb.open(url) as index:
        assert list_trash(index.trash) == [] and str(tmp_path / "astronaut-copy.jpg") in index


def test_ingest_hashes_again_a_file_whose_inode_changed_with_the_same_size_and_mtime(
    tmp_path, photos
):
    folder = tmp_path / "f"
    folder.mkdir()
    a, b = Path(photos["camera"]).read_bytes(), Path(photos["coffee"]).read_bytes()
    size = max(len(a), len(b))
    (folder / "x.jpg").write_bytes(a.ljust(size, b"\0"))  # padded: decoders stop at the end
    os.utime(folder / "x.jpg", ns=(10**18, 10**18))
    with phashdb.open(tmp_path / "index") as index:
        ingest(index, [folder], workers=1)
        (tmp_path / "y.jpg").write_bytes(b.ljust(size, b"\0"))
        os.utime(tmp_path / "y.jpg", ns=(10**18, 10**18))
        os.replace(tmp_path / "y.jpg", folder / "x.jpg")
        report = ingest(index, [folder], workers=1)
        assert (report.added, report.skipped) == (1, 0)
        assert index.get(str(folder / "x.jpg")).hash == phashdb.hash_image(photos["coffee"])


# --- the index's own folder, inside a watched one ----------------------------------------


def test_watch_ignores_the_index_folder_inside_the_watched_one(tmp_path, album, near_copies):
    url = album / "index"
    with phashdb.open(url) as index:
        ingest(index, [album], workers=1)
    watching = Watching(url, album)
    shutil.copy(near_copies["camera"], album / "camera-copy.jpg")
    trashed = watching.next(album / "camera-copy.jpg")
    shutil.copy(near_copies["rocket"], album / "zz-last.jpg")  # a marker: seen after the trash
    last = watching.next(album / "zz-last.jpg")
    summary = watching.close()
    assert trashed.action == "trashed" and last.action == "trashed"
    assert not any(identity.inside(seen.path, url) for seen in watching.reports)
    assert summary.failed == 0
