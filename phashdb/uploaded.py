"""The files the service keeps in its uploads folder (`phashdb serve --uploads DIR`): how they
are named and recognised, the lock held while one is admitted, and the check of the folder
against the index (`phashdb fsck --uploads DIR`).

An upload is stored as `DIR/<the first 32 hex digits of its SHA-256><suffix>`, linked from the
file it was received in, then stored in the index. A kill between the two leaves a file with
no record: an orphan. While an upload is admitted its file is locked (flock, which other
processes see too), so an orphan is told apart from an upload in flight.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; in-flight uploads are not told apart there
    fcntl = None

from .errors import Error, ImageError

NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,5}")
INCOMING = ".incoming"  # the folder, inside the uploads folder, uploads are received in


class Busy(Error):
    """The file is being admitted by a server right now."""


def upload_name(sha256: str, suffix: str) -> str:
    return sha256[:32] + suffix


def lock(fd: int) -> None:
    """Lock the file open as `fd` for its admission (held until the descriptor is closed);
    Busy if another admission holds it."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Busy("the same bytes are being uploaded right now") from None


@contextmanager
def held(path: str | os.PathLike) -> Iterator[int]:
    """`path` open (not following a link) and locked for as long as the block runs."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)  # a FIFO
    try:
        lock(fd)
        yield fd
    finally:
        os.close(fd)


def digest_of(fd: int) -> str:
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def named_by_its_bytes(fd: int, path: Path) -> bool:
    """Whether the file open as `fd` is a regular file whose SHA-256 begins with its name, as
    an upload's does."""
    return stat.S_ISREG(os.fstat(fd).st_mode) and digest_of(fd).startswith(path.stem)


def is_upload(path: str | os.PathLike) -> bool:
    """Whether `path` is a file the service keeps: named by its own SHA-256, in a folder that
    has the service's `.incoming` folder."""
    path = Path(path)
    if not NAME.fullmatch(path.name) or not (path.parent / INCOMING).is_dir():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return digest_of(fd).startswith(path.stem)
    finally:
        os.close(fd)


def forget(index, image) -> str | None:
    """Remove `image` (a stored Image) from the index. The service's own copy of an upload,
    still the file recorded (its bytes are its name's, its size the record's), goes to the
    trash rather than stay behind with no record; returns its trash entry, else None."""
    if image.path and is_upload(image.path) and os.path.getsize(image.path) == image.size:
        from .trash import move_to_trash

        return move_to_trash(image.path, index.trash, index=index, id=image.id).id
    index.remove(image.id)
    return None


def check(folder: str | os.PathLike, index, *, repair: bool = False) -> list[str]:
    """The uploads folder against the index: files named as uploads with no record (what a
    kill left between storing the file and the record). `repair` takes each over as the
    upload would have been (stored if unique, under the id `sha256:...`) or removes it (a
    duplicate, or not an image). Returns what was found, one line each."""
    folder = Path(folder)
    if not (folder / INCOMING).is_dir():
        raise Error(f"{folder}: not an uploads folder of `phashdb serve` (no {INCOMING} in it)")
    recorded = set(index.files())
    found = []
    for path in sorted(folder.iterdir()):
        if not NAME.fullmatch(path.name) or str(path) in recorded or not path.is_file():
            continue
        try:
            with held(path) as fd:
                if not named_by_its_bytes(fd, path):
                    found.append(f"{path}: named as an upload but its bytes are not: left alone")
                    continue
                found.append(_orphan(path, index, repair))
        except Busy:
            found.append(f"{path}: being uploaded now: left alone")
    return found


def _orphan(path: Path, index, repair: bool) -> str:
    if not repair:
        return f"{path}: an upload with no record in the index"
    from .source import content_id  # the id checking the same bytes gives

    try:
        verdict = index.add(path, content_id(path.stem))
    except ImageError as e:
        os.unlink(path)
        return f"{path}: an upload with no record, removed ({e})"
    if verdict.added:
        return f"{path}: an upload with no record, taken over as {verdict.id}"
    os.unlink(path)
    return f"{path}: an upload with no record, removed: a duplicate of {verdict.matches[0].id}"
