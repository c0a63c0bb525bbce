"""An uploaded image, streamed from the request to a file: the raw body, or the first file of a
multipart form. Never held in memory whole; refused as soon as it passes the size limit."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import stat
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ..processes import gone


class BodyError(Exception):
    """The request's body cannot be taken: `status` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Received:
    """An upload written to `path`: its size, SHA-256, and the file name the client gave."""

    path: Path
    size: int
    sha256: str
    filename: str | None


INCOMING = ".incoming-"  # the prefix of a file being received
TEMPORARY = "phashdb-incoming-"  # + pid + "-": a server's folder for them without --uploads
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def incoming_folder(uploads: Path | None) -> Path:
    """The folder uploads are received in, private to the server's user (mode 0700): the
    uploads folder's `.incoming`, emptied of what a killed server left there; without an
    uploads folder, a new temporary one (removed by `remove_incoming`; those of killed
    servers are removed first)."""
    if uploads is None:
        return _temporary_folder()
    folder = uploads / ".incoming"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for left in folder.glob(INCOMING + "*"):
        if left.is_file() and not left.is_symlink():
            left.unlink(missing_ok=True)
    return folder


def _temporary_folder() -> Path:
    """A new temporary folder named after this process; those servers killed before they could
    remove theirs left (their process gone) are removed first."""
    for left in Path(tempfile.gettempdir()).glob(TEMPORARY + "*-*"):
        if _abandoned(left):
            shutil.rmtree(left, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{TEMPORARY}{os.getpid()}-"))


def _abandoned(folder: Path) -> bool:
    """Whether `folder` is a temporary folder of this user's servers whose process is gone (a
    process id used again keeps it: left, never wrongly removed)."""
    pid = folder.name.removeprefix(TEMPORARY).split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        st = folder.lstat()
    except OSError:  # gone meanwhile
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and gone(int(pid))


def remove_incoming(folder: Path, uploads: Path | None) -> None:
    if uploads is None:
        shutil.rmtree(folder, ignore_errors=True)


async def receive(
    request: Request, folder: Path, *, max_bytes: int, idle: float = 30.0
) -> Received:
    """Write the image in `request` to a new file in `folder` (mode 0600). Raises BodyError:
    413 past `max_bytes` (by Content-Length at once, else as the bytes come), 400 for an empty
    body or a form without a file, 400 when the client went away mid-upload, 408 when no byte
    came for `idle` seconds, 507 when the disk is full."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyError(
            413, f"the body is {int(declared):,} bytes, over the limit of {max_bytes:,}"
        )
    kind, params = parse_options_header(request.headers.get("content-type"))
    path = folder / f"{INCOMING}{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        # Writes of a chunk to the page cache take microseconds: a thread hop each would cost more.
        with os.fdopen(fd, "wb") as out:
            chunks = _chunks(request, idle)
            if kind == b"multipart/form-data":
                filename = await _multipart(chunks, params.get(b"boundary"), out, digest, max_bytes)
            else:
                filename = request.query_params.get("filename")
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BodyError(413, f"the body is over the limit of {max_bytes:,} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            size = out.tell()
        if size == 0:
            raise BodyError(400, "the body is empty: send the image's bytes (or a multipart form)")
    except ClientDisconnect:
        os.unlink(path)
        raise BodyError(400, "the client went away before the whole image arrived") from None
    except asyncio.TimeoutError:  # (TimeoutError itself from Python 3.11 on)
        os.unlink(path)
        raise BodyError(408, f"no part of the body came for {idle:g} seconds: sent too slowly "
                        "or stalled") from None  # fmt: skip
    except OSError as e:
        os.unlink(path)
        if e.errno in NO_SPACE:
            raise BodyError(507, "no space left on the server's disk for the upload") from None
        raise
    except BaseException:
        os.unlink(path)
        raise
    return Received(path, size, digest.hexdigest(), filename)


async def _chunks(request: Request, idle: float):
    """The body's chunks; asyncio.TimeoutError when none comes for `idle` seconds. The deadline
    is per chunk: a slow upload goes on, a stalled one ends."""
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), idle)
        except StopAsyncIteration:
            return
        yield chunk


async def _multipart(chunks, boundary: bytes | None, out, digest, max_bytes: int):
    """Stream the first file of a form (a part with a file name) into `out`."""
    if not boundary:
        raise BodyError(400, "a multipart/form-data body needs a boundary in its Content-Type")
    state = {"part": 0, "taking": False, "done": False, "headers": {}, "field": b"", "name": None}

    def on_part_begin():
        state["part"] += 1
        state["headers"] = {}

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        key = state["field"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end():
        state["field"] = b""

    def on_headers_finished():
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition"))
        filename = disposition.get(b"filename")
        state["taking"] = not state["done"] and filename is not None
        if state["taking"]:
            state["name"] = filename.decode(errors="replace")

    def on_part_data(data, start, end):
        if state["taking"]:
            digest.update(data[start:end])
            out.write(data[start:end])

    def on_part_end():
        if state["taking"]:
            state["taking"], state["done"] = False, True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })  # fmt: skip
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise BodyError(413, f"the body is over the limit of {max_bytes:,} bytes")
            parser.write(chunk)
        parser.finalize()
    except ValueError as e:  # python-multipart's parse errors
        raise BodyError(400, f"the multipart body is malformed: {e}") from None
    if not state["done"]:
        raise BodyError(
            400,
            "the multipart form has no complete file part (one with a filename): send the "
            "image as one",
        )
    return state["name"]
