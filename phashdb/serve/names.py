"""File names over HTTP. Ids and paths are Python strings that may hold the lone surrogates
os.fsdecode gives the bytes of a name that is not UTF-8 (README, "File names are bytes"): they
go out in JSON as `\\udcxx` escapes, as `phashdb ... --json` prints them, and come back in a
URL as their bytes (`%E9`), which is how the review page sends them."""

from __future__ import annotations

import json
import os
from typing import Annotated
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from starlette.requests import Request


class JSON(JSONResponse):
    """JSON in ASCII: UTF-8 cannot encode a lone surrogate, an escape can."""

    def render(self, content) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class FileNamePaths:
    """ASGI middleware: a percent-encoded path read as file names are (os.fsdecode), so an id
    holding the escapes of a name that is not UTF-8 is found under its bytes (%E9 for the
    Latin-1 é the review page sends); uvicorn reads them as UTF-8, replacing what is not."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        raw = scope.get("raw_path")
        if scope["type"] == "http" and raw and b"%" in raw and not scope.get("root_path"):
            scope = {**scope, "path": os.fsdecode(unquote_to_bytes(raw))}
        return await self.app(scope, receive, send)


def query_id(request: Request, name: str) -> str:
    """The query parameter `name` read as a file name is (see FileNamePaths)."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    found = dict(parse_qsl(query, keep_blank_values=True, errors="surrogateescape"))
    return found[name]


def _file_name(id: str) -> str:
    # JSON may carry any lone surrogate; only \udc80-\udcff stand for a byte of a name.
    try:
        id.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        bad = id[e.start]
        raise ValueError(
            f"{id!r} is no id: {bad!r} is a lone surrogate that no file name's byte gives "
            "(only \\udc80-\\udcff stand for one)"
        ) from None
    return id


# An id in a JSON body: what a stored id can be, a str os.fsdecode could have made (a 422
# naming it otherwise, not the store's UnicodeEncodeError).
Id = Annotated[str, AfterValidator(_file_name)]
