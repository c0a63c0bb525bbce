"""Group actions of the review page and the API (keep one image, trash the rest), applied one
at a time and against the state the reviewer saw.

Two reviewers acting on one group at once ("keep A" and "keep B") must not both win: each
action takes the index's action lock (a file lock in its trash folder, so that two servers or
a server and `dedupe --apply` on one machine wait for each other too), then checks again that
its keeper is stored and its file is there, and, when the request carries the group's
`version` (the page sends the one /v1/duplicates gave), that no member changed since. A stale
action is refused whole with a 409 naming what changed; the keeper therefore always stays.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from starlette.exceptions import HTTPException

from ..apply import apply
from ..keep import Plan
from ..records import Image

LOCK = ".phashdb-actions.lock"


def group_version(images: Iterable[Image]) -> str:
    """A short token of a group's state: its members' ids, paths, sizes, times and hashes. It
    changes when any member is trashed, removed, replaced or re-ingested."""
    digest = hashlib.sha256()
    for i in sorted(images, key=lambda i: i.id):
        digest.update(repr((i.id, i.path, i.size, i.mtime, i.hash)).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


class GroupActions:
    """Trash actions on groups, serialised per index. `arrived` and `moving` are hooks for the
    tests, called with the request when it reaches the server and when, its checks passed and
    the lock held, its files are about to move (a race test holds the first there)."""

    def __init__(self) -> None:
        self.arrived: Callable[[object], None] = lambda request: None
        self.moving: Callable[[object], None] = lambda request: None

    def trash(self, index, request) -> list:
        """Keep `request.keeper`, trash `request.ids` (`phashdb.apply`'s Done per image)."""
        with _locked(index.trash):
            keeper, rest = _checked(index, request)
            self.moving(request)
            return apply(index, [Plan(keeper, rest)], "trash")


@contextmanager
def _locked(trash: Path):
    trash.mkdir(parents=True, exist_ok=True)
    fd = os.open(trash / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, and by a process that dies
        yield
    finally:
        os.close(fd)


def _checked(index, request) -> tuple[Image, tuple[Image, ...]]:
    """The keeper and the images to trash, as stored now; HTTPException 409 when they are not
    what the reviewer saw, 404/422 when the request names unknown ids or file-less images."""
    seen = request.version is not None
    members = list(dict.fromkeys([*(request.members or ()), request.keeper, *request.ids]))
    if seen and not request.members:
        raise HTTPException(422, "'members' must list the group's ids when 'version' is given")
    found = index.store.find(members)
    gone = [i for i in members if i not in found]
    if request.keeper in gone:
        raise HTTPException(409, f"the keeper {request.keeper!r} is no longer in the index "
                            "(trashed or removed since the group was shown): nothing was done")  # fmt: skip
    keeper = found[request.keeper]
    if not keeper.path:
        raise HTTPException(422, f"the keeper {keeper.id!r} is stored without a file (a server "
                            "without --uploads keeps only hashes): there are no files to trash; "
                            "DELETE /v1/images/{id} forgets an image")  # fmt: skip
    if not os.path.lexists(keeper.path):
        raise HTTPException(409, f"the keeper's file {keeper.path!r} is gone: nothing was done")
    if seen:
        _unchanged(request, [found[i] for i in members if i in found], gone)
    elif gone:
        raise HTTPException(404, f"no image with id {gone[0]!r} in the index")
    return keeper, tuple(found[i] for i in dict.fromkeys(request.ids))


def _unchanged(request, now: list[Image], gone: list[str]) -> None:
    if gone:
        names = ", ".join(repr(i) for i in gone)
        raise HTTPException(409, f"the group changed since it was shown: {names} no longer in "
                            "the index (trashed or removed): nothing was done; reload")  # fmt: skip
    if group_version(now) != request.version:
        raise HTTPException(409, "the group changed since it was shown (an image was replaced "
                            "or ingested again): nothing was done; reload")  # fmt: skip
