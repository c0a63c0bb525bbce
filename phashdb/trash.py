"""The trash: a folder where duplicates the user throws away wait, restorable, until emptied.

Each trashed file gets a folder of its own named by a fresh id, holding the file under its
original name and `trashed.json` (where it came from, when, the image's id), so that two files
of the same name never collide and a restore knows where to put the file back.

The index and the trash never disagree: a stored image that is trashed leaves the index (its
id is kept in `trashed.json`), and is stored again, under the same id, when it is restored.
Files are deleted for good only by `empty`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import TrashError

INFO = "trashed.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trashed:
    """One file in the trash."""

    id: str  # the trash entry's id (its folder name)
    original: str  # where the file was
    path: str  # where it is now
    when: float
    image_id: str | None = None  # the id it was stored under in the index, if it was stored
    size: int | None = None  # bytes

    def to_json(self) -> dict:
        return asdict(self)


def move_to_trash(
    path: str | os.PathLike, trash: Path, *, index=None, id: str | None = None
) -> Trashed:
    """Move a file into the trash folder `trash`; returns where it went. With `index`, the
    image stored under `id` (default: the file's absolute path), if any, leaves the index."""
    original = os.path.abspath(path)
    if id is None:
        id = original
    image_id = id if index is not None and id in index else None
    entry = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    folder = Path(trash) / entry
    dest = folder / os.path.basename(original)
    try:
        size = os.path.getsize(original)
    except OSError as e:
        raise TrashError(f"cannot move {original} to the trash: {e.strerror or e}") from e
    item = Trashed(entry, original, str(dest), time.time(), image_id, size)
    # The note is written before the move: a file in the trash always says where it came from.
    folder.mkdir(parents=True)
    (folder / INFO).write_text(json.dumps(item.to_json()))
    try:
        shutil.move(original, dest)
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise TrashError(f"cannot move {original} to the trash: {e.strerror or e}") from e
    if image_id is not None:
        try:
            index.remove(image_id)
        except BaseException:
            shutil.move(dest, original)
            shutil.rmtree(folder, ignore_errors=True)
            raise
    log.info("trashed %s as %s", original, entry)
    return item


def list_trash(trash: Path) -> list[Trashed]:
    """Every file in the trash, oldest first."""
    trash = Path(trash)
    if not trash.is_dir():
        return []
    items = []
    for folder in trash.iterdir():
        if folder.is_dir():
            try:
                items.append(_read(folder))
            except TrashError as e:
                log.warning("%s", e)
    return sorted(items, key=lambda t: (t.when, t.id))


def restore(trash: Path, entry_id: str, *, index=None) -> Trashed:
    """Move a trashed file back where it came from; with `index` (the one it left), it is
    stored again under its old id. Refuses if something now exists at the original path."""
    folder = Path(trash) / entry_id
    if os.sep in entry_id or entry_id in ("", ".", "..") or not (folder / INFO).is_file():
        raise TrashError(f"no entry {entry_id!r} in the trash at {trash}: see `phashdb trash list`")
    item = _read(folder)
    if os.path.lexists(item.original):
        raise TrashError(
            f"cannot restore {entry_id}: {item.original} exists; move it away and try again"
        )
    if not os.path.lexists(item.path):
        raise TrashError(f"cannot restore {entry_id}: its file {item.path} is missing")
    try:
        os.makedirs(os.path.dirname(item.original), exist_ok=True)
        shutil.move(item.path, item.original)
    except OSError as e:
        raise TrashError(f"cannot restore {item.original}: {e.strerror or e}") from e
    if index is not None and item.image_id is not None and item.image_id not in index:
        try:
            index.add(item.original, id=item.image_id, keep_duplicate=True)
        except BaseException:
            shutil.move(item.original, item.path)
            raise
    shutil.rmtree(folder)
    log.info("restored %s to %s", entry_id, item.original)
    return item


def empty(trash: Path) -> list[Trashed]:
    """Delete every file in the trash for good; returns what was deleted."""
    gone = list_trash(trash)
    for item in gone:
        try:
            shutil.rmtree(Path(trash) / item.id)
        except OSError as e:
            raise TrashError(f"cannot delete {item.path}: {e.strerror or e}") from e
    return gone


def _read(folder: Path) -> Trashed:
    try:
        info = json.loads((folder / INFO).read_text())
        return Trashed(
            folder.name,
            info["original"],
            info["path"],
            info["when"],
            info.get("image_id"),
            info.get("size"),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrashError(f"{folder / INFO}: unreadable trash entry ({e})") from e
