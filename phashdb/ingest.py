"""Bulk ingest on one machine: hash every image under some folders on all cores and store them.

Resumable: a file whose path, size and modification time (and device and inode, when recorded)
are already stored is skipped without being read. Every image is stored, duplicates included
(they are the collection as it is; the report and `dedupe` deal with them); an image counts as
a duplicate when it is within the threshold of one stored before it.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import chain
from pathlib import Path

from . import hdfs
from .decode import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from .errors import ImageError
from .identity import inside, unchanged_stat
from .records import Image

BATCH = 1000
# A batch is also stored once this many seconds have passed since the last: a run killed early
# keeps what it hashed, whatever the count (a commit costs milliseconds).
COMMIT_SECONDS = 2.0
# Worker processes are started only for more work than this: spawning them and importing
# numpy and Pillow in each costs ~0.3 s of wall time on 2 cores, as much as hashing 250 small
# photos (~2 ms each) in this process; 12-megapixel JPEGs (~13 ms each, ~4 MB) pass the byte
# count first. Either way the hashes are the same: only where they are computed changes.
POOL_MIN_FILES = 256
POOL_MIN_BYTES = 128 << 20
# Forked workers (see _pool) start in milliseconds with all that imported: a few dozen files
# pay for them.
FORK_MIN_FILES = 32
CHUNK = 24  # files handed to a worker at a time, at most (see _chunk)


@dataclass
class IngestReport:
    """What an ingest did: counts, and each file that failed with the reason."""

    added: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
        }


def find_images(
    folders: Iterable[str | os.PathLike],
    failed: list[tuple[str, str]] | None = None,
    *,
    exclude: str | os.PathLike | None = None,
) -> list[str]:
    """Absolute paths of the image files (by suffix) under the folders (or files), sorted.
    Symbolic links are listed as they are (a dangling one fails when it is read); a folder that
    cannot be listed is appended to `failed` as (path, reason). Nothing in the folder `exclude`
    (the index's own, its trash above all, wherever the user put it) is listed."""

    def unlisted(e: OSError) -> None:
        if failed is not None:
            where = os.path.abspath(e.filename or "?")
            failed.append((where, f"{where}: cannot list the folder ({e.strerror or e})"))

    found = set()
    for folder in folders:
        if hdfs.is_hdfs(folder):  # hdfs:// URLs: files and the members of packs
            found.update(hdfs.listing(folder, IMAGE_SUFFIXES))
            continue
        folder = Path(folder)
        if inside(folder, exclude):
            continue
        if not folder.is_dir():
            found.add(os.path.abspath(folder))
            continue
        for dirpath, dirnames, filenames in os.walk(folder, onerror=unlisted):
            dirnames[:] = [
                d for d in dirnames
                if not d.startswith(".") and not inside(os.path.join(dirpath, d), exclude)
            ]  # fmt: skip
            for name in filenames:
                if _suffix(name) in IMAGE_SUFFIXES:
                    found.add(os.path.abspath(os.path.join(dirpath, name)))
    return sorted(found)


def _suffix(name: str) -> str:
    """`Path(name).suffix.lower()` without making a Path: a re-run lists every file."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def pending_files(
    index, folders: Iterable[str | os.PathLike], failed: list[tuple[str, str]] | None = None
) -> tuple[list[str], int]:
    """The image files under `folders` not stored yet with the same size and modification
    time (and device and inode, when recorded), and how many are skipped as stored. A file that
    cannot be looked at (gone since it was listed, a dangling link) is pending: reading it says
    why it fails. The index's own folder is never looked in; the index is asked only about the
    files found, not for every stored record."""
    folders = list(folders)
    own = _own_folders(index, folders)
    found = [p for p in find_images(folders, failed) if not _in_folder(os.path.dirname(p), own)]
    known = index.files(found)
    todo, skipped = [], 0
    for path in found:
        try:
            same = _unchanged(known.get(path), path)
        except OSError:
            same = False
        skipped += same
        if not same:
            todo.append(path)
    return todo, skipped


def _own_folders(index, folders: list) -> tuple[str, ...]:
    """The folders of the index's own never ingested: its trash, and its whole folder unless
    the user asked for that folder (or one inside it) by name."""
    home, local = str(index.trash.parent), [f for f in folders if not hdfs.is_hdfs(f)]
    named = any(inside(f, home) for f in local)
    return (str(index.trash),) if named else (str(index.trash), home)


@lru_cache(maxsize=4096)
def _in_folder(folder: str, own: tuple[str, ...]) -> bool:
    # Once per folder, not per file: real paths cost a system call per path component.
    return any(inside(folder, o) for o in own)


def _unchanged(stored: tuple | None, path: str) -> bool:
    """Whether the file at `path` is the one stored as (size, mtime, dev, ino, mtime_ns)."""
    if stored is None:
        return False
    if hdfs.is_hdfs(path):
        return tuple(stored[:2]) == hdfs.stat(path)
    size, mtime, dev, ino, mtime_ns = stored
    record = Image("", 0, path, size, mtime, dev=dev, ino=ino, mtime_ns=mtime_ns)
    return unchanged_stat(record, os.stat(path))


def hash_file(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, Image | str]:
    """(path, the record of the image file: phashdb.source) or (path, the reason it could not
    be hashed)."""
    from .source import read_source  # numpy and Pillow: only where files are hashed

    try:
        return path, read_source(path, max_pixels=max_pixels).image
    except ImageError as e:
        return path, str(e)
    except OSError as e:  # gone since it was listed, a dangling link, a loop of links
        return path, f"{path}: cannot read ({e.strerror or e})"


def _hash_piece(hash_one: Callable, paths: list[str]) -> list[tuple[str, Image | str]]:
    """`hash_one` of each of `paths`: a piece of the work a worker is handed at once."""
    return [hash_one(path) for path in paths]


def ingest(
    index,
    folders: Iterable[str | os.PathLike],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Hash and store every image under `folders` into `index`, on `workers` processes
    (default: all cores). `progress(n)` is called as files are done; returns an IngestReport."""
    report = IngestReport()
    todo, report.skipped = pending_files(index, folders, report.failed)
    if progress and report.skipped:
        progress(report.skipped)
    workers = workers or os.cpu_count() or 1
    hash_one = partial(hash_file, max_pixels=index.max_pixels)
    fork = safe_to_fork()
    if workers == 1 or len(todo) < 2 or not worth_a_pool(todo, forked=fork):
        results = map(hash_one, todo)
        _store(index, results, report, progress)
    else:
        with _pool(workers, fork) as pool:
            pieces = pool.imap_unordered(partial(_hash_piece, hash_one), _pieces(todo, workers))
            _store(index, chain.from_iterable(pieces), report, progress)
    return report


def safe_to_fork() -> bool:
    """Whether worker processes may be forked from this one: on Linux (macOS's system libraries
    are not fork-safe) with no other thread running, whose locks a child could inherit held.
    The index's open handles are inherited too, but a worker only hashes files: never uses them."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _pool(workers: int, fork: bool):
    """A pool of `workers` processes that hash files: forked when that is safe (`fork`),
    inheriting numpy, Pillow and phashdb already imported (a spawned worker imports them again,
    ~0.3 s of wall time on 2 cores before the first file is done), else spawned."""
    import multiprocessing  # ~40 ms of imports a re-run does not need

    if not fork:
        return multiprocessing.get_context("spawn").Pool(workers)
    from . import source  # noqa: F401 (imported once, here, for every worker)

    gc.freeze()  # the workers' collections then do not copy every page of the parent's objects
    try:
        return multiprocessing.get_context("fork").Pool(workers)
    finally:
        gc.unfreeze()


def _chunk(files: int, workers: int) -> int:
    """How many files a worker is given at a time: each handing over costs the parent ~0.5 ms
    of CPU (0.8 s for 1,200 small photos two at a time, 0.3 s 24 at a time), taken from the
    workers on 2 cores. At most CHUNK, and ~8 pieces for each worker, so that none is left
    hashing a long last piece alone."""
    return max(2, min(CHUNK, files // (workers * 8)))


def _pieces(paths: list[str], workers: int) -> list[list[str]]:
    """`paths` in pieces of `_chunk` files, smaller towards the end (a quarter of what is left
    for 2 workers, down to 2 files): the workers then finish within a few files of each other,
    where pieces of 24 small photos left one hashing ~50 ms alone."""
    most, pieces, start = _chunk(len(paths), workers), [], 0
    while start < len(paths):
        left = len(paths) - start
        size = max(2, min(most, -(-left // (workers * 2))))
        pieces.append(paths[start : start + size])
        start += size
    return pieces


def worth_a_pool(paths: list[str], *, forked: bool = False) -> bool:
    """Whether hashing `paths` is enough work to pay for starting worker processes (`forked`:
    by forking this one)."""
    if len(paths) > (FORK_MIN_FILES if forked else POOL_MIN_FILES):
        return True
    total = 0
    for path in paths:
        try:
            total += 0 if hdfs.is_hdfs(path) else os.stat(path).st_size
        except OSError:
            continue  # reading it will say why it fails
        if total > POOL_MIN_BYTES:
            return True
    return False


def _store(index, results: Iterable[tuple[str, Image | str]], report, progress) -> None:
    batch: list[Image] = []
    last = time.monotonic()
    for path, result in results:
        if isinstance(result, str):
            report.failed.append((path, result))
        else:
            batch.append(result)
        if len(batch) >= BATCH or (batch and time.monotonic() - last >= COMMIT_SECONDS):
            _store_batch(index, batch, report)
            batch, last = [], time.monotonic()
        if progress:
            progress(1)
    if batch:
        _store_batch(index, batch, report)


def _store_batch(index, batch: list[Image], report: IngestReport) -> None:
    # What this run stored: another ingest of the same folder may have stored some meanwhile.
    report.added += index.insert(batch)
    report.duplicates += count_duplicates(index, batch)


def count_duplicates(index, images: list[Image]) -> int:
    """How many of `images` (just stored, in this order) are within the threshold of an image
    stored before them: earlier in the list, or before the list."""
    position = {image.id: n for n, image in enumerate(images)}
    found = index.matches([image.hash for image in images])
    return sum(
        any(m.id != image.id and position.get(m.id, -1) < n for m in matches)
        for n, (image, matches) in enumerate(zip(images, found))
    )
