"""The trash: a folder where duplicates the user throws away wait, restorable, until emptied.

Each trashed file gets a folder of its own named by a fresh id, holding the file under its
original name and `trashed.json` (where it came from, when, the image's id), so that two files
of the same name never collide and a restore knows where to put the file back.

The index and the trash never disagree: a stored image that is trashed leaves the index (its
id is kept in `trashed.json`), and is stored again, under the same id, when it is restored.
Files are deleted for good only by `empty`.

What a crash (kill -9, power loss) can leave, and `check` finds and repairs: the steps of a
move are (1) `trashed.json` written whole (a temporary file renamed into place), (2) the file
moved in (a rename; across filesystems a copy under a temporary name, renamed, then the
original unlinked), (3) the image removed from the index. Stopped after (1), an entry without
its file; inside (2), an entry whose file is also still in place; after (2), a trashed image
still in the index. A restore runs the other way: the file is linked back (never over anything),
unlinked from the trash, stored again, and the entry removed.
"""

from __future__ import annotations

import errno
import filecmp
import json
import logging
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import TrashError
from .identity import changed, refusal
from .records import Image

INFO = "trashed.json"
PARTIAL = ".phashdb-partial-"  # prefix of what a crash can leave half-written in an entry

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
    path: str | os.PathLike,
    trash: Path,
    *,
    index=None,
    id: str | None = None,
    keep: Iterable[Image] = (),
    record: Image | None = None,
) -> Trashed:
    """Move a file into the trash folder `trash`; returns where it went. With `index`, the
    image stored under `id` (default: the file's absolute path), if any, leaves the index.
    Refused (TrashError, naming the file) when the file is not the one that image's record
    (or `record`, what it was hashed as when not stored) describes, lies in the trash already,
    or is the file of one of the images to `keep` (phashdb.identity.refusal)."""
    original = os.path.abspath(path)
    if id is None:
        id = original
    stored = index.get(id) if index is not None else None
    image_id = None if stored is None else id
    if stored is not None and stored.path == original:
        record = stored
    why = refusal(original, record=record, keep=tuple(keep), home=trash)
    if why:
        raise TrashError(f"cannot move {original} to the trash: {why}")
    entry = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    # Absolute: an index opened by a relative path must still find its trash from elsewhere.
    folder = Path(os.path.abspath(trash)) / entry
    dest = folder / os.path.basename(original)
    try:
        size = os.path.getsize(original)
    except OSError as e:
        raise TrashError(f"cannot move {original} to the trash: {e.strerror or e}") from e
    item = Trashed(entry, original, str(dest), time.time(), image_id, size)
    # The note is written (whole) before the move: a file in the trash always says where it
    # came from.
    try:
        folder.mkdir(parents=True)
        _write_info(folder, item)
        _move_in(original, dest)
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise TrashError(f"cannot move {original} to the trash: {e.strerror or e}") from e
    if image_id is not None:
        try:
            index.remove(image_id)
        except BaseException:
            _move_out(dest, original)
            shutil.rmtree(folder, ignore_errors=True)
            raise
    log.info("trashed %s as %s", original, entry)
    return item


def list_trash(trash: Path) -> list[Trashed]:
    """Every file in the trash, oldest first."""
    items = []
    for folder in entries(trash):
        try:
            items.append(_read(folder))
        except TrashError as e:
            log.warning("%s", e)
    return sorted(items, key=lambda t: (t.when, t.id))


def restore(trash: Path, entry_id: str, *, index=None) -> Trashed:
    """Move a trashed file back where it came from; with `index` (the one it left), it is
    stored again under its old id. Refuses if something now exists at the original path, and
    any entry that does not name an absolute, plain path (`trashed.json` is only trusted to say
    where, never which file: that is always the one inside the entry's own folder)."""
    if (
        not isinstance(entry_id, str)
        or entry_id in ("", ".", "..")
        or os.sep in entry_id
        or (os.altsep and os.altsep in entry_id)
        or not _is_dir(folder := Path(os.path.abspath(trash)) / entry_id)
        or not (folder / INFO).is_file()
    ):
        raise TrashError(f"no entry {entry_id!r} in the trash at {trash}: see `phashdb trash list`")
    item = _read(folder)
    original = item.original
    name = os.path.basename(original)
    if (
        not os.path.isabs(original)
        or os.path.normpath(original) != original
        or name in ("", ".", "..")
    ):
        raise TrashError(
            f"cannot restore {entry_id}: {folder / INFO} gives {original!r}, not the absolute "
            "path of a file; move the file out of the trash by hand"
        )
    inside = folder / name
    try:
        mode = os.lstat(inside).st_mode
    except OSError:
        raise TrashError(f"cannot restore {entry_id}: its file {inside} is missing") from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise TrashError(f"cannot restore {entry_id}: {inside} is not a file")
    try:
        os.makedirs(os.path.dirname(original), exist_ok=True)
        _move_out(inside, original)
    except FileExistsError:
        raise TrashError(
            f"cannot restore {entry_id}: {original} exists; move it away and try again"
        ) from None
    except OSError as e:
        raise TrashError(f"cannot restore {original}: {e.strerror or e}") from e
    if index is not None and item.image_id is not None and item.image_id not in index:
        try:
            index.add(original, id=item.image_id, keep_duplicate=True)
        except BaseException:
            os.rename(original, inside)
            raise
    shutil.rmtree(folder)
    log.info("restored %s to %s", entry_id, original)
    return item


def empty(trash: Path) -> list[Trashed]:
    """Delete every file in the trash for good (entries a crash left unreadable too); returns
    what was deleted. An entry that cannot be deleted does not stop the others: TrashError
    names every one at the end (its `deleted` holds what was)."""
    gone, failed = [], []
    for folder in entries(trash):
        try:
            item = _read(folder)
        except TrashError:
            item = Trashed(folder.name, "?", str(folder), 0.0)
        try:
            shutil.rmtree(folder)
        except OSError as e:
            failed.append(f"{folder}: {e.strerror or e}")
            continue
        gone.append(item)
    if failed:
        error = TrashError(f"cannot delete {len(failed)} trash entries: {'; '.join(failed)}")
        error.deleted = gone
        raise error
    return gone


def check(trash: Path, *, index=None, repair: bool = False) -> list[str]:
    """What a crash left inconsistent between the trash and `index`, one line each; with
    `repair`, each is set right (a half-done move is finished or undone, never losing a file):

    - an entry folder without a readable `trashed.json` that holds no file: removed;
    - an entry whose file is not there: removed (if the file is at its original place, the move
      never happened);
    - an entry whose file is also still at its original place (a copy across filesystems that
      did not finish): the copy in the trash is removed;
    - a trashed image still in the index: removed from the index.
    """
    problems = []

    def found(text: str, fix) -> None:
        problems.append(text + (": repaired" if repair else ""))
        if repair:
            fix()

    for folder in entries(trash):
        try:
            item = _read(folder)
        except TrashError as e:
            leftovers = [p for p in folder.iterdir() if not p.name.startswith((INFO, PARTIAL))]
            if leftovers:
                problems.append(f"{e}; it holds files: left alone")
            else:
                found(f"{folder}: half-made trash entry", lambda f=folder: shutil.rmtree(f))
            continue
        inside = folder / os.path.basename(item.original)
        at_home = os.path.isabs(item.original) and os.path.lexists(item.original)
        if not os.path.lexists(inside):
            why = "the move never happened" if at_home else "nothing to restore"
            found(
                f"{folder}: trash entry without its file ({why})", lambda f=folder: shutil.rmtree(f)
            )
            continue
        if at_home and _same_bytes(inside, item.original):
            found(
                f"{folder}: {item.original} is both in place and in the trash (a move that did "
                "not finish)",
                lambda f=folder: shutil.rmtree(f),
            )
            continue
        record = index.get(item.image_id) if index is not None and item.image_id else None
        if (
            record is not None
            and record.path == item.original
            and changed(record, item.original) is not None
        ):
            found(
                f"{item.image_id}: trashed ({folder}) but still in the index",
                lambda i=item.image_id: index.remove(i),
            )
    return problems


def entries(trash: Path) -> list[Path]:
    """Every entry folder in the trash, readable or not (a crash may have left one without a
    whole `trashed.json`)."""
    trash = Path(os.path.abspath(trash))
    if not trash.is_dir():
        return []
    return sorted(p for p in trash.iterdir() if _is_dir(p))


def _is_dir(path: Path) -> bool:
    """A real folder, not a symbolic link to one (an entry must lie inside the trash)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False


def _write_info(folder: Path, item: Trashed) -> None:
    """`trashed.json`, whole or not at all: written under another name, synced, renamed."""
    partial = folder / f"{PARTIAL}{INFO}"
    with open(partial, "w", encoding="utf-8") as f:  # json escapes what UTF-8 cannot hold
        json.dump(item.to_json(), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, folder / INFO)


def _move_in(source: str, dest: Path) -> None:
    """Move a file into a fresh trash entry; across filesystems, a copy that only takes its
    name once complete, then the original is unlinked."""
    try:
        os.rename(source, dest)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    partial = dest.with_name(PARTIAL + dest.name)
    if os.path.islink(source):
        os.symlink(os.readlink(source), partial)
    else:
        shutil.copy2(source, partial)
    os.rename(partial, dest)
    os.unlink(source)


def _move_out(inside: Path, original: str) -> None:
    """Move a file out of the trash to `original`, never replacing anything there: a hard link
    (which fails if `original` exists), then the trash's name is unlinked; across filesystems
    (or where hard links are refused) an exclusive-create copy."""
    try:
        os.link(inside, original, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        if os.path.islink(inside):
            os.symlink(os.readlink(inside), original)
        else:
            with open(inside, "rb") as src, open(original, "xb") as dst:
                try:
                    shutil.copyfileobj(src, dst)
                except BaseException:
                    os.unlink(original)
                    raise
            shutil.copystat(inside, original)
    os.unlink(inside)


def _same_bytes(a: Path, b: str) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _read(folder: Path) -> Trashed:
    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
        if not isinstance(info["original"], str) or not isinstance(info["path"], str):
            raise TypeError("'original' and 'path' must be strings")
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
