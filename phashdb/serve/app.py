"""The HTTP API and the review page: FastAPI routes that parse, call the library, format.

(No `from __future__ import annotations` here: FastAPI reads the routes' annotations at run
time, and local names such as `bearer` cannot be resolved from strings.)

Every index call runs in `IndexWorkers` (threads that each own an index). Uploads are streamed
to a file first (`body.receive`), then hashed from it, and either stored in the uploads folder
or deleted. Errors are one JSON shape, `{"error": message}`, with a 4xx status for anything the
client sent wrong (never a 500).
"""

import base64
import hmac
import os
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ..decode import DEFAULT_MAX_PIXELS
from ..errors import Error, ImageError, StoreError
from ..index import open as open_index
from ..keep import KEEP_RULES, Plan, plans
from ..records import Image
from .actions import GroupActions, group_version
from .body import NO_SPACE, BodyError, incoming_folder, receive, remove_incoming
from .docs import offline_docs
from .guard import Guard, is_loopback  # noqa: F401 (is_loopback: used by .server)
from .names import JSON, FileNamePaths, query_id
from .uploads import admit, content_id
from .workers import IndexWorkers

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # above any camera's JPEG or HEIC; a guard, not a quota


@dataclass(frozen=True)
class ServeConfig:
    """What a server needs, read once: the index, where uploads go, and its limits."""

    db: str | None = None  # the index URL or folder (None: $PHASHDB_URL or the default)
    uploads: Path | None = None  # where admitted uploads are kept; None: only their hashes
    token: str | None = None  # bearer token every /v1 call must carry, when set
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = min(8, 2 * (os.cpu_count() or 1))
    rule: str = "best"  # the keeper rule of the groups shown
    body_timeout: float = 30.0  # seconds an upload may send nothing before it is refused (408)


class OnDuplicate(str, Enum):
    keep = "keep"
    reject = "reject"


class Pairs(BaseModel):
    """Pairs of stored image ids, each marked not a duplicate of the other; with the group's
    `members` and `version` as /v1/duplicates gave them, refused (409) if the group changed."""

    pairs: list[tuple[str, str]] = Field(min_length=1, max_length=10_000)
    members: list[str] | None = Field(default=None, max_length=10_000)
    version: str | None = Field(default=None, max_length=100)


class TrashRequest(BaseModel):
    """Images to move to the trash, and the image of their group that stays; with the group's
    `members` and `version` as /v1/duplicates gave them, refused (409) if the group changed."""

    ids: list[str] = Field(min_length=1, max_length=10_000)
    keeper: str
    members: list[str] | None = Field(default=None, max_length=10_000)
    version: str | None = Field(default=None, max_length=100)


def token_cookie(request: Request) -> str:
    # Cookies are per host, not per port: two servers on 127.0.0.1 must not share one.
    return f"phashdb-token-{request.scope['server'][1]}"


def create_app(config: ServeConfig) -> FastAPI:
    """The ASGI application over the index `config.db` (opened once per worker thread when
    the application starts, closed when it stops)."""
    workers = IndexWorkers(
        lambda: open_index(config.db, max_pixels=config.max_pixels), config.workers
    )
    incoming = incoming_folder(config.uploads)

    @asynccontextmanager
    async def lifespan(app):
        try:
            workers.start()
            yield
        finally:
            workers.close()
            remove_incoming(incoming, config.uploads)

    app = FastAPI(
        title="phashdb",
        summary="Near-duplicate image detection: check and admit uploads, review duplicates.",
        version=_version(),
        lifespan=lifespan,
        default_response_class=JSON,
        docs_url=None,
    )
    # Without a token, only requests naming loopback are answered (no DNS rebinding).
    app.add_middleware(Guard, loopback_only=config.token is None)
    app.add_middleware(FileNamePaths)
    app.state.workers = workers
    app.state.actions = actions = GroupActions()
    bearer = HTTPBearer(auto_error=False, description="Needed when the server has a token.")

    # async: a plain `def` dependency is run in a thread of its own, a hop on every request.
    async def authorised(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ):
        if config.token is None:
            return
        # The page's cookie (set from its address, see review_page) or the bearer token.
        given = credentials.credentials if credentials else request.cookies.get(
            token_cookie(request), ""
        )
        if not hmac.compare_digest(given.encode(), config.token.encode()):
            raise HTTPException(401, "a valid bearer token is needed (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    v1 = [Depends(authorised)]

    # --- errors: one JSON shape ---------------------------------------------------------

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return _error(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg')}")

    @app.exception_handler(BodyError)
    async def bad_body(request, e: BodyError):
        return _error(e.status, str(e))

    # Messages about an upload name the server's file of it: say "the upload" instead.
    hidden = re.compile(re.escape(str(config.uploads or incoming)) + r"/[^\s:]+")

    @app.exception_handler(ImageError)
    async def bad_image(request, e: ImageError):
        return _error(422, hidden.sub("the upload", str(e)))

    @app.exception_handler(StoreError)
    async def store_down(request, e: StoreError):
        return _error(503, str(e))

    @app.exception_handler(Error)
    async def conflict(request, e: Error):
        return _error(409, hidden.sub("the upload", str(e)))

    @app.exception_handler(OSError)
    async def os_error(request, e: OSError):
        if e.errno in NO_SPACE:
            return _error(507, "no space left on the server's disk: " + hidden.sub(
                "the upload", str(e)))  # fmt: skip
        return _error(500, f"the server failed: {hidden.sub('the upload', str(e))}")

    # --- checking and admitting uploads -------------------------------------------------

    @app.post("/v1/check", dependencies=v1, tags=["images"])
    async def check(request: Request, threshold: Annotated[int | None, Query(ge=0, le=64)] = None):
        """The verdict on an image sent as the body (or the file of a multipart form): the JSON
        of `phashdb check --json` for one image. Nothing is stored."""
        got = await receive(
            request, incoming, max_bytes=config.max_bytes, idle=config.body_timeout
        )

        def check(index):
            with open(got.path, "rb") as file:
                return index.check(file, content_id(got), threshold=threshold)

        try:
            return JSON((await workers.run(check)).to_json())
        finally:
            os.unlink(got.path)

    @app.post("/v1/images", dependencies=v1, tags=["images"], status_code=201, responses={
        201: {"description": "Stored: unique, or a duplicate kept (on_duplicate=keep)."},
        409: {"description": "A duplicate refused (on_duplicate=reject): the verdict, and an "
              "error; or the id is already stored."},
    })  # fmt: skip
    async def upload(
        request: Request,
        on_duplicate: OnDuplicate = OnDuplicate.reject,
        id: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
        threshold: Annotated[int | None, Query(ge=0, le=64)] = None,
    ):
        """Admit an image as `phashdb add` does: stored if unique (or if kept), atomically (of
        concurrent near-identical uploads exactly one is admitted). The file is kept in the
        server's uploads folder, named by its SHA-256; `id` defaults to `sha256:` and its
        first 32 hex digits."""
        got = await receive(
            request, incoming, max_bytes=config.max_bytes, idle=config.body_timeout
        )
        keep = on_duplicate is OnDuplicate.keep
        verdict = await workers.run(
            lambda index: admit(index, got, id, keep, threshold, config.uploads)
        )
        body = verdict.to_json()
        if verdict.added:
            return JSON(body, status_code=201)
        best = verdict.matches[0]
        return JSON(
            {
                **body,
                "path": None,
                "error": f"a duplicate of {best.id} (distance {best.distance}): not stored",
            },
            status_code=409,
        )

    # --- stored images ------------------------------------------------------------------

    @app.get("/v1/images/{id:path}", dependencies=v1, tags=["images"])
    async def get_image(id: str):
        """The stored record of an image."""
        return _image_json(await workers.run(lambda index: _known(index, id)))

    @app.delete("/v1/images/{id:path}", dependencies=v1, tags=["images"])
    async def delete_image(id: str):
        """Forget an image; its file (if any) goes to the trash, restorable."""

        def delete(index):
            from ..trash import move_to_trash

            image = _known(index, id)
            if image.path and os.path.lexists(image.path):
                moved = move_to_trash(image.path, index.trash, index=index, id=image.id)
                return {"id": id, "trash_id": moved.id}
            index.remove(id)
            return {"id": id, "trash_id": None}

        return await workers.run(delete)

    @app.get("/v1/thumbnails/{id:path}", dependencies=v1, tags=["images"],
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})  # fmt: skip
    async def thumbnail(id: str):
        """A JPEG thumbnail of a stored image (160 pixels on the longer side)."""
        from ..report import thumbnail as make

        image = await workers.run(lambda index: _known(index, id))
        uri = await workers.run(lambda _: make(image.path))
        if uri is None:
            raise HTTPException(404, f"image {id!r} has no readable file to preview")
        data = base64.b64decode(uri.split(",", 1)[1])
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})

    # --- duplicates, decisions, the trash ------------------------------------------------

    found_groups: dict = {}  # a worker's index -> (its version, the threshold, the groups)

    @app.get("/v1/duplicates", dependencies=v1, tags=["duplicates"])
    async def duplicates(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        threshold: Annotated[int | None, Query(ge=0, le=64)] = None,
    ):
        """The duplicate groups, as the report orders them (most bytes freed first), a page at a
        time; in each, the keeper first (the rule `best`) and the close pairs."""

        def groups(index):
            # A dedupe is a pass over the whole index: its groups are kept, per worker (each
            # its own index and version), until the index changes or another threshold is asked.
            version = index.version()
            kept = found_groups.get(index)
            if version is not None and kept and kept[:2] == (version, threshold):
                found = kept[2]
            else:
                try:
                    found = index.dedupe(threshold)
                except ValueError as e:  # a threshold beyond the reach: too many pairs
                    raise HTTPException(422, str(e)) from None
                found_groups[index] = (version, threshold, found)
            return index.threshold, plans(found, config.rule)

        used, found = await workers.run(groups)
        page = found[offset : offset + limit]
        return {
            "total": len(found),
            "offset": offset,
            "limit": limit,
            "threshold": used if threshold is None else threshold,
            "rule": config.rule,
            "groups": [_group_json(p) for p in page],
        }

    @app.post("/v1/decisions", dependencies=v1, tags=["decisions"], status_code=201)
    async def decide(request: Pairs):
        """Mark pairs of stored images as not duplicates: from then on they are no match of each
        other, in every check, upload and group (`phashdb decisions forget` undoes it)."""

        def mark(index):
            for a, b in request.pairs:
                _known(index, a), _known(index, b)
                if a == b:
                    raise HTTPException(422, f"a pair needs two different ids, got {a!r} twice")
            return index.mark_not_duplicates(request.pairs)

        decided = await workers.run(lambda index: actions.decide(index, request, mark))
        return {"decisions": [d.to_json() for d in decided]}

    @app.get("/v1/decisions", dependencies=v1, tags=["decisions"])
    async def list_decisions():
        """Every pair marked not duplicates, oldest first."""
        found = await workers.run(lambda index: index.decisions())
        return {"decisions": [d.to_json() for d in found]}

    @app.delete("/v1/decisions", dependencies=v1, tags=["decisions"])
    async def forget(request: Request, a: str, b: str):
        """Forget that `a` and `b` are not duplicates."""
        a, b = (query_id(request, name) for name in ("a", "b"))
        if a == b:
            raise HTTPException(422, f"a pair needs two different ids, got {a!r} twice")
        if not await workers.run(lambda index: index.forget_decisions([(a, b)])):
            raise HTTPException(404, f"no decision about {a!r} and {b!r}")
        return {"forgotten": {"a": min(a, b), "b": max(a, b)}}

    @app.post("/v1/trash", dependencies=v1, tags=["trash"])
    async def trash(request: TrashRequest):
        """Move images of a group to the trash, keeping `keeper`: what `dedupe --apply trash`
        does with a group. Each image's outcome is listed (a file already gone is an error
        there, the others go on). Actions are applied one at a time; one whose keeper has gone
        meanwhile, or (given `members` and `version`) whose group changed, is refused with a
        409 and nothing is done."""
        if request.keeper in request.ids:
            raise HTTPException(422, f"the keeper {request.keeper!r} is among the ids to trash")
        actions.arrived(request)
        done = await workers.run(lambda index: actions.trash(index, request))
        return {"done": [
            {"id": d.image.id, "path": d.image.path, "trash_id": d.detail or None, "error": d.error}
            for d in done
        ]}  # fmt: skip

    @app.get("/v1/trash", dependencies=v1, tags=["trash"])
    async def trash_list():
        """What is in the trash, oldest first."""
        from ..trash import list_trash

        return {"trash": [t.to_json() for t in await workers.run(lambda i: list_trash(i.trash))]}

    @app.post("/v1/trash/{entry}/restore", dependencies=v1, tags=["trash"])
    async def restore(entry: str):
        """Put a trashed file back where it was, and into the index under its old id."""
        from ..trash import list_trash
        from ..trash import restore as put_back

        def run(index):
            if entry not in {t.id for t in list_trash(index.trash)}:
                raise HTTPException(404, f"no entry {entry!r} in the trash")
            return put_back(index.trash, entry, index=index)

        return (await workers.run(run)).to_json()

    # --- the page, health, and the rest ---------------------------------------------------

    page = _review_html(config)  # the page is the same for everyone: the data come from /v1

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def review_page(request: Request, token: str | None = None):
        """The page; `/?token=...` (the address `phashdb review` opens) keeps the token in a
        cookie the page's requests carry, and sends the browser on to `/` (the token out of
        the address bar and the history)."""
        if token is None or config.token is None:
            return HTMLResponse(page)
        if not hmac.compare_digest(token.encode(), config.token.encode()):
            raise HTTPException(401, "the token in the address is not this server's")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(token_cookie(request), token, httponly=True, samesite="strict")
        return response

    offline_docs(app)

    @app.get("/healthz", tags=["health"])
    async def healthz():
        """Whether the server answers and its index can be read (no token needed)."""
        count = await workers.run(len)
        return {"status": "ok", "images": count}

    return app


# --- inside ------------------------------------------------------------------------------------


def _known(index, id: str) -> Image:
    image = index.get(id)
    if image is None:
        raise HTTPException(404, f"no image with id {id!r} in the index")
    return image


def _image_json(image: Image) -> dict:
    return {
        "id": image.id, "hash": f"{image.hash:016x}", "path": image.path, "size": image.size,
        "mtime": image.mtime, "width": image.width, "height": image.height, "added": image.added,
    }  # fmt: skip


def _group_json(plan: Plan) -> dict:
    roles = [(plan.keeper, "keep"), *((i, "remove") for i in plan.rest),
             *((i, "linked") for i in plan.linked), *((i, "missing") for i in plan.missing)]  # fmt: skip
    return {
        "keeper": plan.keeper.id,
        "why": plan.why,
        "version": group_version(i for i, _ in roles),
        "freed": plan.freed,
        "images": [{**_image_json(i), "role": role} for i, role in roles],
        "pairs": [{"a": a, "b": b, "distance": d} for a, b, d in plan.pairs],
    }


def _error(status: int, message: str, headers=None) -> JSONResponse:
    return JSON({"error": message}, status_code=status, headers=headers)


def _review_html(config: ServeConfig) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("phashdb", "templates"), autoescape=select_autoescape(["html"])
    )
    return env.get_template("review.html").render(rule=config.rule, keep_rules=KEEP_RULES)


def _version() -> str:
    from .. import __version__

    return __version__
