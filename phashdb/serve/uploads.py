"""What becomes of an upload once received: kept in the uploads folder and stored in the
index if admitted (the flow of `phashdb add`), deleted if not."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import Error
from ..ingest import IMAGE_SUFFIXES
from .body import Received

# PIL format name -> the suffix an upload is stored under (so `ingest` of the folder sees it).
SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
            "BMP": ".bmp", "TIFF": ".tif", "HEIF": ".heic"}  # fmt: skip


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
    final = uploads / (got.sha256[:32] + _suffix(got))
    try:
        # A link, not a rename: it fails rather than replace a file an earlier upload owns.
        os.link(got.path, final)
    except FileExistsError:
        raise Error(f"the same bytes were already uploaded, as {final.name}") from None
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


def _suffix(got: Received) -> str:
    """The suffix to store an upload under: the client's, if an image's, else its format's."""
    given = Path(got.filename or "").suffix.lower()
    if given in IMAGE_SUFFIXES:
        return given
    from PIL import Image as PILImage

    try:
        with PILImage.open(got.path) as img:
            return SUFFIXES.get(img.format, ".img")
    except Exception:  # noqa: BLE001 (not an image: index.add says so, naming the upload)
        return ".img"


def content_id(got: Received) -> str:
    # The id `Index.add` gives bytes: checking and uploading the same bytes name one image.
    return "sha256:" + got.sha256[:32]
