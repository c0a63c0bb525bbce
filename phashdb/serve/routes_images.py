"""Checking and admitting uploads, and the stored images: /v1/check, /v1/images,
/v1/thumbnails. Every index call runs in the server's IndexWorkers; an upload is streamed to a
file first (`body.receive`), then hashed from it, and either kept in the uploads folder or
deleted."""

from __future__ import annotations

import base64
import os
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from .auth import V1
from .body import receive
from .names import JSON, query_id
from .state import Shared, known
from .uploads import admit, content_id

router = APIRouter(prefix="/v1", dependencies=V1, tags=["images"])

Threshold = Annotated[int | None, Query(ge=0, le=64)]


class OnDuplicate(str, Enum):
    keep = "keep"
    reject = "reject"


@router.post("/check")
async def check(request: Request, served: Shared, threshold: Threshold = None):
    """The verdict on an image sent as the body (or the file of a multipart form): the JSON
    of `phashdb check --json` for one image. Nothing is stored."""
    config = served.config
    got = await receive(
        request, served.incoming, max_bytes=config.max_bytes, idle=config.body_timeout
    )

    def check(index):
        with open(got.path, "rb") as file:
            return index.check(file, content_id(got), threshold=threshold)

    try:
        return JSON((await served.workers.run(check)).to_json())
    finally:
        os.unlink(got.path)


@router.post("/images", status_code=201, responses={
    201: {"description": "Stored: unique, or a duplicate kept (on_duplicate=keep)."},
    409: {"description": "A duplicate refused (on_duplicate=reject): the verdict, and an "
          "error; or the id is already stored."},
})  # fmt: skip
async def upload(
    request: Request,
    served: Shared,
    on_duplicate: OnDuplicate = OnDuplicate.reject,
    id: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
    threshold: Threshold = None,
):
    """Admit an image as `phashdb add` does: stored if unique (or if kept), atomically (of
    concurrent near-identical uploads exactly one is admitted). The file is kept in the
    server's uploads folder, named by its SHA-256; `id` defaults to `sha256:` and its
    first 32 hex digits."""
    config = served.config
    id = None if id is None else query_id(request, "id")  # bytes as in paths (names.py)
    got = await receive(
        request, served.incoming, max_bytes=config.max_bytes, idle=config.body_timeout
    )
    keep = on_duplicate is OnDuplicate.keep
    verdict = await served.workers.run(
        lambda index: admit(index, got, id, keep, threshold, config.uploads)
    )
    body = verdict.to_json()
    if verdict.added:
        return JSON(body, status_code=201)
    # Not an error raised: the verdict is the answer, with its matches; 409 says not stored.
    best = verdict.matches[0]
    return JSON(
        {
            **body,
            "path": None,
            "error": f"a duplicate of {best.id} (distance {best.distance}): not stored",
        },
        status_code=409,
    )


@router.get("/images/{id:path}")
async def get_image(id: str, served: Shared):
    """The stored record of an image."""
    return (await served.workers.run(lambda index: known(index, id))).to_json()


@router.delete("/images/{id:path}")
async def delete_image(id: str, served: Shared):
    """Forget an image; its file (if any) goes to the trash, restorable."""

    def delete(index):
        from ..trash import move_to_trash

        image = known(index, id)
        if image.path and os.path.lexists(image.path):
            moved = move_to_trash(image.path, index.trash, index=index, id=image.id)
            return {"id": id, "trash_id": moved.id}
        index.remove(id)
        return {"id": id, "trash_id": None}

    return await served.workers.run(delete)


@router.get("/thumbnails/{id:path}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})  # fmt: skip
async def thumbnail(id: str, served: Shared):
    """A JPEG thumbnail of a stored image (160 pixels on the longer side)."""
    from ..report import thumbnail as make

    image = await served.workers.run(lambda index: known(index, id))
    uri = await served.workers.run(lambda _: make(image.path))
    if uri is None:
        raise HTTPException(404, f"image {id!r} has no readable file to preview")
    data = base64.b64decode(uri.split(",", 1)[1])
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})
