"""Group actions of the review page and the API (keep one image, trash the rest; not
duplicates), applied one at a time and against the state the reviewer saw.

Two reviewers acting on one group at once ("keep A" and "keep B") must not both win: each
action takes the index's action lock (a file lock in its trash folder, so that two servers or
a server and `dedupe --apply` on one machine wait for each other too), then checks again that
its keeper is stored and its file is there, and, when the request carries the group's
`version` (the page sends the one /v1/duplicates gave), that no member changed since. A stale
action is refused whole with a 409 naming what changed; the keeper therefore always stays.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from starlette.exceptions import HTTPException

from ..apply import apply
from ..keep import Plan, group_version
from ..records import Image

LOCK = ".phashdb-actions.lock"


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

    def decide(self, index, request, mark: Callable):
        """Mark `request.pairs` not duplicates with `mark(index)`, under the same lock and, given
        the group's `members` and `version`, only if the group is as the reviewer saw it."""
        with _locked(index.trash):
            named = [i for pair in request.pairs for i in pair]
            if request.version is not None:
                as_seen(request, index.store.find([*(request.members or ()), *named]), named)
            return mark(index)


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
    wanted = list(dict.fromkeys([*(request.members or ()), request.keeper, *request.ids]))
    found = index.store.find(wanted)
    if request.keeper not in found:
        raise HTTPException(409, f"the keeper {request.keeper!r} is no longer in the index "
                            "(trashed or removed since the group was shown): nothing was done")  # fmt: skip
    keeper = found[request.keeper]
    if not keeper.path:
        raise HTTPException(422, f"the keeper {keeper.id!r} is stored without a file (a server "
                            "without --uploads keeps only hashes): there are no files to trash; "
                            "DELETE /v1/images/{id} forgets an image")  # fmt: skip
    if not os.path.lexists(keeper.path):
        raise HTTPException(409, f"the keeper's file {keeper.path!r} is gone: nothing was done")
    if not as_seen(request, found, [request.keeper, *request.ids]):
        gone = [i for i in request.ids if i not in found]
        if gone:
            raise HTTPException(404, f"no image with id {gone[0]!r} in the index")
    return keeper, tuple(found[i] for i in dict.fromkeys(request.ids))


def as_seen(request, found: dict[str, Image], named: list[str]) -> bool:
    """Whether the request carries the group as the reviewer saw it (`members`, `version`);
    if so, HTTPException 409 unless every member is stored as it was then (422 unless the
    ids `named` are among the members)."""
    if request.version is None:
        return False
    members = list(dict.fromkeys(request.members or ()))
    if not set(named) <= set(members):
        raise HTTPException(422, "'members' must list the group's ids (every id named) when "
                            "'version' is given")  # fmt: skip
    gone = [i for i in members if i not in found]
    if gone:
        names = ", ".join(repr(i) for i in gone)
        raise HTTPException(409, f"the group changed since it was shown: {names} no longer in "
                            "the index (trashed or removed): nothing was done; reload")  # fmt: skip
    if group_version(found[i] for i in members) != request.version:
        raise HTTPException(409, "the group changed since it was shown (an image was replaced "
                            "or ingested again): nothing was done; reload")  # fmt: skip
    return True
