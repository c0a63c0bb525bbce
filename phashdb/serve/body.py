"""An uploaded image, streamed from the request to a file: the raw body, or the first file of a
multipart form. Never held in memory whole; refused as soon as it passes the size limit."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request


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


async def receive(request: Request, folder: Path, *, max_bytes: int) -> Received:
    """Write the image in `request` to a new file in `folder`. Raises BodyError: 413 past
    `max_bytes` (by Content-Length at once, else as the bytes come), 400 for an empty body or
    a form without a file, 400 when the client went away mid-upload."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyError(
            413, f"the body is {int(declared):,} bytes, over the limit of {max_bytes:,}"
        )
    kind, params = parse_options_header(request.headers.get("content-type"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".incoming-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    try:
        # Writes of a chunk to the page cache take microseconds: a thread hop each would cost more.
        with open(path, "wb") as out:  # noqa: ASYNC230
            if kind == b"multipart/form-data":
                filename = await _multipart(
                    request, params.get(b"boundary"), out, digest, max_bytes
                )
            else:
                filename = request.query_params.get("filename")
                async for chunk in request.stream():
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
    except BaseException:
        os.unlink(path)
        raise
    return Received(path, size, digest.hexdigest(), filename)


async def _multipart(request: Request, boundary: bytes | None, out, digest, max_bytes: int):
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
        async for chunk in request.stream():
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
