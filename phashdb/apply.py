"""Carrying out dedupe plans: the images other than each group's keeper are moved to the trash,
or replaced by a hard or symbolic link to the keeper.

Trashed images leave the index (see `phashdb.trash`); a linked image stays, its record now
describing the link (the keeper's picture), so resumable ingest does not hash it again.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from .errors import Error
from .identity import changed, fields, inside, refusal
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

    def to_json(self) -> dict:
        """The outcome as the API shows it (`POST /v1/trash`): the image, the trash entry its
        file went to (None when none), and the error (None when done)."""
        return {
            "id": self.image.id, "path": self.image.path, "trash_id": self.detail or None,
            "error": self.error,
        }  # fmt: skip


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
        # A keeper that is no longer what was stored may be another picture now: linking or
        # trashing its copies could destroy the last copy of the original. Its bytes are read
        # again (its digest, or its hash in older indexes) only when files are about to be
        # replaced by links to it.
        changed = _keeper_changed(plan.keeper, index, strict=action != "trash" and not dry_run)
        for image in plan.rest:
            if changed:
                problem = f"{image.path or image.id}: left alone: its keeper {changed}"
                out.append(Done(image, plan.keeper, action, error=problem))
            else:
                out.append(_one(index, image, plan.keeper, action, dry_run))
        if progress:
            progress(1)
    return out


def _keeper_changed(keeper: Image, index, *, strict: bool) -> str | None:
    if keeper.path and inside(keeper.path, index.trash):
        return f"{keeper.path} is in the index's trash (the index's own folder)"
    return changed(keeper, strict=strict, max_pixels=index.max_pixels)


def _one(index, image: Image, keeper: Image, action: str, dry_run: bool) -> Done:
    try:
        if not image.path or not keeper.path:
            raise Error(f"{image.id}: stored without a file path, nothing to {action}")
        if not os.path.lexists(image.path):
            raise Error(f"{image.path}: no such file (already moved?)")
        # The one check (phashdb.identity): still the file stored, not in the index's trash,
        # not the keeper's own file under another record (a link, a symlinked folder).
        why = refusal(
            image.path,
            record=image,
            keep=(keeper,),
            home=index.trash,
            max_pixels=index.max_pixels,
        )
        if why:
            raise Error(why)
        if dry_run:
            return Done(image, keeper, action)
        if action == "trash":
            moved = move_to_trash(
                image.path, index.trash, index=index, id=image.id, keep=(keeper,), record=image
            )
            return Done(image, keeper, action, moved.id)
        _link(keeper.path, image.path, hard=action == "hardlink")
        st = os.stat(image.path)
        index.insert([
            replace(keeper, id=image.id, path=image.path, added=image.added, **fields(st, keeper.digest))
        ])  # fmt: skip
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
    under a temporary name and renamed over it, so `path` never stops existing (a crash leaves
    at worst a stray `.phashdb-link-` file beside it, never a lost copy)."""
    temporary = f"{path}.phashdb-link-{uuid.uuid4().hex[:8]}"
    if hard:
        os.link(target, temporary)
    else:
        os.symlink(os.path.abspath(target), temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
