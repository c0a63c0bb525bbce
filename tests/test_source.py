"""phashdb.source: one road from a source to an Image record, the bytes read once and their
SHA-256 taken on the way; `Index.add`, `Index.check` and ingest all take it."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest
from PIL import Image as PILImage

import phashdb.source
from phashdb import ImageError, decode, phash
from phashdb.ingest import hash_file
from phashdb.source import content_id, read_source


def pipe_of(data: bytes):
    """A pipe's reading end as a binary file object (not seekable), fed `data` by a thread:
    the writer blocks once the pipe's buffer is full, until the reader takes more."""
    r, w = os.pipe()

    def write():
        with os.fdopen(w, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    return os.fdopen(r, "rb"), writer


def test_a_pipe_is_checked_and_added_reading_it_once(index, photos):
    data = photos["astronaut"].read_bytes()  # larger than a pipe's 64 kB buffer
    assert len(data) > 1 << 16
    pipe, writer = pipe_of(data)
    with pipe:
        assert not pipe.seekable()
        verdict = index.check(pipe)
    writer.join()
    assert verdict.id == content_id(hashlib.sha256(data).hexdigest()) == index.check(data).id
    assert verdict.hash == phash.hash_image(data) and not verdict.duplicate
    index.add(data)
    pipe, writer = pipe_of(data)
    with pipe:
        again = index.add(pipe, id="piped")
    writer.join()
    assert again.duplicate and not again.added
    assert [m.id for m in again.matches] == [verdict.id]


def test_every_kind_of_source_gives_one_record(photos, tmp_path):
    path = photos["rocket"]
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    from_path = read_source(path).image
    assert from_path.id == from_path.path == str(path)
    assert from_path.digest == digest and from_path.size == len(data)
    assert from_path.ino == os.stat(path).st_ino
    pipe, writer = pipe_of(data)
    with pipe, open(path, "rb") as file:
        others = [
            read_source(s).image for s in (data, bytearray(data), io.BytesIO(data), file, pipe)
        ]
    writer.join()
    for image in others:
        assert image.id == content_id(digest) and image.path is None and image.digest == digest
        assert (image.hash, image.width, image.height, image.descriptor) == (
            from_path.hash, from_path.width, from_path.height, from_path.descriptor,
        )  # fmt: skip
    with PILImage.open(path) as img:
        img.load()
        pil = read_source(img).image
        assert pil.digest is None
        assert pil.id == content_id(hashlib.sha256(img.tobytes()).hexdigest())


def test_a_seekable_file_object_is_read_from_its_start_streamed_or_whole(photos, monkeypatch):
    data = photos["coffee"].read_bytes()
    whole = read_source(io.BytesIO(data)).image
    monkeypatch.setattr(phashdb.source, "WHOLE_BYTES", -1)  # every source streams
    for at in (0, 100, len(data)):
        f = io.BytesIO(data)
        f.seek(at)
        streamed = read_source(f).image
        assert streamed == whole and streamed.digest == hashlib.sha256(data).hexdigest()


def test_ingest_and_add_make_the_same_record(reopen, photos):
    path = str(photos["chelsea"])
    _, ingested = hash_file(path)
    with reopen() as index:
        added = index.add(path).image
    assert ingested == added
    assert ingested.digest == hashlib.sha256(photos["chelsea"].read_bytes()).hexdigest()


def test_the_descriptor_is_computed_only_when_asked(photos):
    with_descriptor = phash.read_image(photos["camera"])
    bare = phash.read_image(photos["camera"], descriptor=False)
    assert bare.hash == with_descriptor.hash and bare.variants == bare.keys == ()
    assert bare.descriptor is None and with_descriptor.descriptor is not None
    assert read_source(photos["camera"], descriptor=False).image.descriptor is None


def test_bad_sources_fail_naming_the_source(tmp_path):
    with pytest.raises(ImageError, match="^<bytes>: empty file"):
        read_source(b"")
    pipe, writer = pipe_of(b"hello, world\n")
    with pipe, pytest.raises(ImageError, match="^<file object>: not an image"):
        read_source(pipe)
    writer.join()
    closed = io.BytesIO(b"x")
    closed.close()
    with pytest.raises(ImageError, match="^<file object>: cannot read"):
        read_source(closed)
    with pytest.raises(TypeError, match="'source' must be a path, bytes"):
        read_source(io.StringIO("text"))
    with pytest.raises(ValueError, match="'max_pixels' must be a positive int"):
        read_source(b"", max_pixels=0)


@pytest.mark.parametrize("brand", sorted(decode.HEIF_BRANDS))
def test_one_heif_brand_list_for_uploads_and_decoding(brand, monkeypatch):
    from phashdb.serve.uploads import format_suffix

    heif = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1heic" + bytes(100)
    assert format_suffix(heif[: decode.HEAD]) == ".heic"
    monkeypatch.delitem(PILImage.OPEN, "HEIF", raising=False)
    monkeypatch.setattr(decode, "register_heif", lambda: False)
    with pytest.raises(ImageError, match=r"^<bytes>: HEIC/HEIF needs pillow-heif"):
        phash.hash_image(heif)


def test_uploads_and_the_index_name_the_same_bytes_alike(photos):
    from phashdb.serve.body import Received
    from phashdb.serve.uploads import content_id as upload_id

    data = photos["coffee"].read_bytes()
    got = Received(
        path=None, size=len(data), sha256=hashlib.sha256(data).hexdigest(), filename=None
    )
    assert upload_id(got) == read_source(data).image.id
