"""What the routes share: the server's configuration, read once, and the state built from it
when the application is made, kept on the application (`app.state.served`) and handed to each
route by the `Shared` dependency (no route reaches it through a closure or a global)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from ..decode import DEFAULT_MAX_PIXELS
from ..records import Image
from .actions import GroupActions
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


@dataclass
class Served:
    """One application's state: its configuration, the threads holding its indexes, the
    group actions (their test hooks), the folder uploads are received in, and the page."""

    config: ServeConfig
    workers: IndexWorkers
    actions: GroupActions
    incoming: Path
    page: str  # the review page: the same for everyone, the data come from /v1
    # A worker's index -> (its version, the threshold, its groups): see routes_review.duplicates.
    groups: dict = field(default_factory=dict)


# async: a plain `def` dependency is run in a thread of its own, a hop on every request.
async def served(request: Request) -> Served:
    return request.app.state.served


Shared = Annotated[Served, Depends(served)]


def known(index, id: str) -> Image:
    """The stored record of `id`; HTTPException 404 when there is none."""
    image = index.get(id)
    if image is None:
        raise HTTPException(404, f"no image with id {id!r} in the index")
    return image
