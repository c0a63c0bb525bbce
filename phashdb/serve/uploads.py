"""What becomes of an upload once received: kept in the uploads folder and stored in the
index if admitted (the flow of `phashdb add`), deleted if not."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import Error
from ..ingest import IMAGE_SUFFIXES
from ..uploaded import Busy, held, lock, upload_name
from .body import Received

log = logging.getLogger(__name__)

# The leading bytes of each format an upload may be stored as -> its suffix (so `ingest` of the
# folder sees it). Read from the file's first bytes rather than by opening it with Pillow, which
# for a WebP sets up a decoder: a third of a millisecond to two thirds, on every upload.
MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF87a", ".gif"),
         (b"GIF89a", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))  # fmt: skip
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def admit(index, got: Received, id: str | None, keep: bool, threshold, uploads: Path | None):
    """The upload flow of `phashdb add` for one received file: stored as a file in the uploads
    folder (named by its digest) and in the index, or deleted."""
    id = id or content_id(got)
    if uploads is None:  # only the hash is kept: a record without a file
        try:
            with open(got.path, "rb") as file:
                return index.add(file, id, keep_duplicate=keep, threshold=threshold)
        finally:
            os.unlink(got.path)
    final = uploads / upload_name(got.sha256, _suffix(got))
    with open(got.path, "rb") as received:
        # Locked before it is linked: the file under its final name is locked from the start,
        # until admitted or deleted (another admission of the same bytes sees it in flight).
        lock(received.fileno())
        try:
            _link(got.path, final, index)
        finally:
            os.unlink(got.path)
        try:
            verdict = index.add(final, id, keep_duplicate=keep, threshold=threshold)
        except BaseException:
            os.unlink(final)
            raise
        if not verdict.added:
            os.unlink(final)
        return verdict


def _link(received: Path, final: Path, index) -> None:
    """A link, not a rename: it fails rather than replace a file an earlier upload owns. A file
    there with no record is what a kill left mid-admission: replaced (its name says its bytes
    are these), the upload goes on."""
    try:
        os.link(received, final)
        return
    except FileExistsError:
        pass
    with held(final):  # Busy (409) while another admission holds it
        if str(final) in index.files():
            raise Error(f"the same bytes were already uploaded, as {final.name}") from None
        log.warning("%s: an upload left without a record (a kill?): taken over", final)
        os.unlink(final)
    try:
        os.link(received, final)
    except FileExistsError:  # another admission of these bytes came in between
        raise Busy("the same bytes are being uploaded right now") from None


def _suffix(got: Received) -> str:
    """The suffix to store an upload under: the client's, if an image's, else its format's."""
    given = Path(got.filename or "").suffix.lower()
    if given in IMAGE_SUFFIXES:
        return given
    with open(got.path, "rb") as file:
        return format_suffix(file.read(16))


def format_suffix(head: bytes) -> str:
    """The suffix of the image format whose file starts with `head` (16 bytes); ".img" when
    it is none of them (not an image: `index.add` says so, naming the upload)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return ".heic"
    return next((suffix for magic, suffix in MAGIC if head.startswith(magic)), ".img")


def content_id(got: Received) -> str:
    # The id `Index.add` gives bytes: checking and uploading the same bytes name one image.
    return "sha256:" + got.sha256[:32]
