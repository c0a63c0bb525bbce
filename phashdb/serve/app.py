"""The HTTP API and the review page: the application, made of the routers of serve.routes_*
(each a file of one idea), the errors' table (serve.errors), and the guard and file-name
middleware, over state every route reads from `app.state.served` (serve.state).

Every index call runs in `IndexWorkers` (threads that each own an index). Errors are one JSON
shape, `{"error": message}`, with a 4xx status for anything the client sent wrong (never a 500).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from ..index import open as open_index
from . import errors, routes_admin, routes_images, routes_review, routes_trash
from .actions import GroupActions
from .body import incoming_folder, remove_incoming
from .docs import offline_docs
from .guard import Guard
from .names import JSON, FileNamePaths
from .state import DEFAULT_MAX_BYTES, ServeConfig, Served
from .workers import IndexWorkers

__all__ = ["DEFAULT_MAX_BYTES", "ServeConfig", "create_app"]


def create_app(config: ServeConfig) -> FastAPI:
    """The ASGI application over the index `config.db` (opened once per worker thread when
    the application starts, closed when it stops)."""
    served = Served(
        config=config,
        workers=IndexWorkers(
            lambda: open_index(config.db, max_pixels=config.max_pixels), config.workers
        ),
        actions=GroupActions(),
        incoming=incoming_folder(config.uploads),
        page=routes_review.review_html(config),
    )
    app = FastAPI(
        title="phashdb",
        summary="Near-duplicate image detection: check and admit uploads, review duplicates.",
        version=_version(),
        lifespan=lifespan,
        default_response_class=JSON,
        docs_url=None,
        redoc_url=None,  # a page of a CDN's script: blank offline; /docs is served here
    )
    # Without a token, only requests naming loopback are answered (no DNS rebinding).
    app.add_middleware(Guard, loopback_only=config.token is None)
    app.add_middleware(FileNamePaths)
    app.state.served = served
    app.state.actions = served.actions  # the tests' hooks (Running.app.state.actions)
    errors.install(app, uploads=str(config.uploads or served.incoming))
    for routes in (routes_images, routes_review, routes_trash):
        app.include_router(routes.router)
    app.include_router(routes_review.page)
    offline_docs(app)
    app.include_router(routes_admin.router)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI):
    """The indexes are opened when the application starts, closed when it stops."""
    served = app.state.served
    try:
        served.workers.start()
        yield
    finally:
        served.workers.close()
        remove_incoming(served.incoming, served.config.uploads)


def _version() -> str:
    from .. import __version__

    return __version__
