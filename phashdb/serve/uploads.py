"""What becomes of an upload once received: kept in the uploads folder and stored in the
index if admitted (the flow of `phashdb add`), deleted if not."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..decode import HEAD, IMAGE_SUFFIXES, format_suffix
from ..errors import Error
from ..source import content_id as digest_id
from ..uploaded import Busy, held, lock, named_by_its_bytes, upload_name
from .body import Received

log = logging.getLogger(__name__)


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
    with held(final) as fd:  # Busy (409) while another admission holds it
        if str(final) in index.files():
            raise Error(f"the same bytes were already uploaded, as {final.name}") from None
        if not named_by_its_bytes(fd, final):  # not what a kill left: not ours to replace
            raise Error(
                f"{final.name} in the uploads folder is no upload (its bytes are not its "
                "name's): left alone, move it away"
            )
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
        return format_suffix(file.read(HEAD))


def content_id(got: Received) -> str:
    # The id `Index.add` gives bytes: checking and uploading the same bytes name one image.
    return digest_id(got.sha256)
