"""File identity: what the index records of a stored file, and the one check made before
anything moves, links or deletes a file.

A record describes its file by device and inode, size, modification time in nanoseconds and
a SHA-256 of its bytes, the digest taken from the bytes read for hashing (phashdb.source), not
by a second read. Before an action, `changed` says whether a path still holds the file a record
describes, and `same_file` whether two paths are one file (the same inode, a hard or symbolic
link to the other, a path through a symlinked folder): a file is never trashed, nor replaced
by a link, as a copy of itself, and a record whose file is gone or changed is never the reason
to act on another file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace

from .decode import DEFAULT_MAX_PIXELS, open_regular_file
from .errors import ImageError
from .records import Image

CHUNK = 1 << 20


def fields(st: os.stat_result, digest: str | None = None) -> dict:
    """The Image fields that identify a file, from its stat (and the digest of its bytes)."""
    return {
        "size": st.st_size, "mtime": st.st_mtime, "dev": st.st_dev, "ino": st.st_ino,
        "mtime_ns": st.st_mtime_ns, "digest": digest,
    }  # fmt: skip


def digest_of(path: str) -> str:
    """The SHA-256 (hex) of the bytes of the file at `path`."""
    import hashlib  # here: a re-run's ingest only compares stats

    sha = hashlib.sha256()
    with open_regular_file(path, path) as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def unchanged_stat(record: Image, st: os.stat_result) -> bool:
    """Whether a stat shows the file a record was made from, without reading it: the same size
    and modification time, and the same device and inode when the record has them (records made
    before file identity was recorded have not)."""
    if record.size != st.st_size:
        return False
    if record.mtime_ns is not None:
        if record.mtime_ns != st.st_mtime_ns:
            return False
    elif record.mtime != st.st_mtime:
        return False
    return record.ino is None or (record.dev, record.ino) == (st.st_dev, st.st_ino)


def changed(
    record: Image,
    path: str | None = None,
    *,
    strict: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> str | None:
    """None if the file at `path` (default: the record's) is still the one `record` describes;
    else why not, as "PATH changed since it was stored (...)" or "PATH: no such file ...".

    The same device, inode, size and modification time is the same file. When only the inode
    or the time differ (a file restored from a backup, copied back, touched), the bytes decide:
    the same digest is the same file. `strict` reads the bytes even when the stat agrees (before
    a file is replaced by links to it). A record without identity (an older index) is judged by
    size and modification time, and by its pHash when those were not recorded or `strict`."""
    path = path or record.path
    if not path:
        return f"{record.id}: stored without a file path"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path}: no such file (moved or deleted since it was stored)"
    except OSError as e:
        return f"{path} changed since it was stored (it cannot be read: {e.strerror or e})"
    what = f"{path} changed since it was stored"
    if not stat.S_ISREG(st.st_mode):
        return f"{what} (it is not a regular file now)"
    if record.size is not None and record.size != st.st_size:
        return f"{what} (its size differs; ingest it again)"
    if record.digest is not None:
        if unchanged_stat(record, st) and not strict:
            return None
        try:
            same = digest_of(path) == record.digest
        except OSError as e:
            return f"{what} (it cannot be read: {e.strerror or e})"
        return None if same else f"{what} (its bytes differ: ingest it again)"
    if record.size is not None and record.mtime is not None:
        if record.mtime != st.st_mtime:
            return f"{what} (size or modification time differ; ingest it again)"
        if not strict:
            return None
    from .phash import hash_image  # numpy and Pillow: only when a file must be hashed again

    try:
        h = hash_image(path, max_pixels=max_pixels)
    except ImageError as e:
        return f"{what} (it no longer decodes: {e})"
    return None if h == record.hash else f"{what} (its hash differs: another picture now)"


def same_file(a: str | None, b: str | None) -> bool:
    """Whether two paths are one file: the same device and inode (a hard link, a symbolic link
    to the other, a path through a symlinked folder), or the same real path (a link to a file
    gone counts as the file it names)."""
    if not a or not b:
        return False
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def inside(path: str | os.PathLike, folder: str | os.PathLike | None) -> bool:
    """Whether `path` lies in `folder` (real paths compared: links followed)."""
    if folder is None:
        return False
    real, home = os.path.realpath(path), os.path.realpath(folder)
    return real == home or real.startswith(home.rstrip(os.sep) + os.sep)


def refusal(
    path: str,
    *,
    record: Image | None = None,
    keep: tuple[Image, ...] = (),
    home: str | os.PathLike | None = None,
    strict: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> str | None:
    """The one check before the file at `path` is moved, linked over or deleted: None when it
    may be; else the reason, naming the file. Refused: a file that is not the one its `record`
    describes (when it has one), a file in the index's own folder `home` (its trash), and a
    file that is one of `keep`'s files (an image kept must keep its bytes)."""
    if home is not None and inside(path, home):
        return f"{path}: inside the index's own folder {home}: left alone"
    why = None if record is None else changed(record, path, strict=strict, max_pixels=max_pixels)
    if why:
        return f"{why}: left alone"
    for other in keep:
        if (record is None or other.id != record.id) and same_file(path, other.path):
            return (
                f"{path}: the same file as {other.path} (kept, as {other.id}): a link or a "
                "path through a symlinked folder: left alone"
            )
    return None


def followed(record: Image, path: str, st: os.stat_result) -> Image:
    """`record` following its file to `path` (moved or renamed): its id too when it was the
    old path (the default id), its identity from `st`; the digest stays (same bytes)."""
    new_id = path if record.id == record.path else record.id
    return replace(record, id=new_id, path=path, **fields(st, record.digest))
