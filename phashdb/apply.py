"""Carrying out dedupe plans: the images other than each group's keeper are moved to the trash,
or replaced by a hard or symbolic link to the keeper.

Trashed images leave the index (see `phashdb.trash`); a linked image stays, its record now
describing the link (the keeper's picture), so resumable ingest does not hash it again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from .errors import Error
from .keep import Plan
from .records import Image
from .trash import move_to_trash

ACTIONS = ("trash", "hardlink", "symlink")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Done:
    """What happened to one image: `action` taken (or, on a dry run, to be taken) toward
    `keeper`; `error` says why it was not."""

    image: Image
    keeper: Image
    action: str
    detail: str = ""  # where a trashed file went
    error: str | None = None


def apply(
    index,
    plans: Iterable[Plan],
    action: str,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Done]:
    """Trash, hardlink or symlink the `rest` of each plan to its keeper; with `dry_run`, only
    say what would be done. An image that cannot be handled (no path, a file gone) is reported
    with its error and the others go on. `progress(n)` is called as groups are done."""
    if action not in ACTIONS:
        raise ValueError(f"'action' must be one of {', '.join(ACTIONS)}, got {action!r}")
    out = []
    for plan in plans:
        for image in plan.rest:
            out.append(_one(index, image, plan.keeper, action, dry_run))
        if progress:
            progress(1)
    return out


def _one(index, image: Image, keeper: Image, action: str, dry_run: bool) -> Done:
    try:
        if not image.path or not keeper.path:
            raise Error(f"{image.id}: stored without a file path, nothing to {action}")
        if not os.path.lexists(image.path):
            raise Error(f"{image.path}: no such file (already moved?)")
        if dry_run:
            return Done(image, keeper, action)
        if action == "trash":
            moved = move_to_trash(image.path, index.trash, index=index, id=image.id)
            return Done(image, keeper, action, moved.id)
        _link(keeper.path, image.path, hard=action == "hardlink")
        st = os.stat(image.path)
        index.insert(
            [replace(keeper, id=image.id, path=image.path, mtime=st.st_mtime, added=image.added)]
        )
        log.info("%s %s -> %s", action, image.path, keeper.path)
        return Done(image, keeper, action)
    except Error as e:
        return Done(image, keeper, action, error=str(e))
    except OSError as e:
        return Done(
            image, keeper, action, error=f"{image.path}: cannot {action}: {e.strerror or e}"
        )


def _link(target: str, path: str, *, hard: bool) -> None:
    """Replace the file at `path` by a link to `target`, atomically: the link is made beside it
    under a temporary name and renamed over it, so `path` never stops existing."""
    temporary = f"{path}.phashdb-link-{os.getpid()}"
    if hard:
        os.link(target, temporary)
    else:
        os.symlink(os.path.abspath(target), temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
