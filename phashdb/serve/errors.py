"""What the service answers to each error: one table from exception class to HTTP status and
message, its handlers registered once. Every error is one JSON shape, `{"error": message}`,
with a 4xx status for anything the client sent wrong (never a 500 for bad input).

The routes raise and never build an error response: `HTTPException` for the service's own
refusals (401, 404, 409, 422 with a message), `BodyError` for an upload that cannot be taken,
and the library's errors (phashdb.errors) come through as they are raised.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ..errors import Error, ImageError, StoreError
from .body import NO_SPACE, BodyError
from .names import JSON

# A message about an upload names the server's file of it: `hide` says "the upload" instead.
Hide = Callable[[str], str]


def _invalid(e: RequestValidationError, hide: Hide) -> tuple[int, str]:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return 422, f"{where}: {first.get('msg')}"


def _os_error(e: OSError, hide: Hide) -> tuple[int, str]:
    if e.errno in NO_SPACE:
        return 507, "no space left on the server's disk: " + hide(str(e))
    return 500, f"the server failed: {hide(str(e))}"


# Class -> (status, message); the most specific class of an error is the one used.
STATUS: dict[type, Callable[[Exception, Hide], tuple[int, str]]] = {
    HTTPException: lambda e, hide: (e.status_code, str(e.detail)),  # the service's own refusals
    RequestValidationError: _invalid,  # a parameter or a JSON body not as declared
    BodyError: lambda e, hide: (e.status, str(e)),  # 400, 408, 413, 507 (serve.body)
    ImageError: lambda e, hide: (422, hide(str(e))),  # not an image, truncated, too large
    StoreError: lambda e, hide: (503, str(e)),  # the index's storage is out of reach
    Error: lambda e, hide: (409, hide(str(e))),  # the rest: a conflict with what is stored
    OSError: _os_error,
}


def install(app: FastAPI, uploads: str) -> None:
    """Register the table's handlers on `app`; `uploads` is the folder whose file names are
    hidden from messages."""
    hide = hider(uploads)

    async def handle(request: Request, e: Exception) -> JSON:
        status, message = answer(e, hide)
        headers = e.headers if isinstance(e, HTTPException) else None  # WWW-Authenticate
        return JSON({"error": message}, status_code=status, headers=headers)

    for kind in STATUS:
        app.add_exception_handler(kind, handle)


def hider(folder: str) -> Hide:
    """What hides the names of files in `folder` from a message (says "the upload")."""
    hidden = re.compile(re.escape(folder) + r"/[^\s:]+")
    return lambda message: hidden.sub("the upload", message)


def answer(e: Exception, hide: Hide = str) -> tuple[int, str]:
    """The status and message of error `e`: the table's row of its most specific class."""
    row = next((STATUS[c] for c in type(e).__mro__ if c in STATUS), None)
    if row is None:
        raise ValueError(f"'e' must be one of the table's errors, got {type(e).__name__}")
    return row(e, hide)
