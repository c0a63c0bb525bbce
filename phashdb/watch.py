"""Watching a folder: every image file that arrives in it gets its verdict, as `phashdb add`.

A file is taken once its write has finished: its size and modification time have not changed
for `settle` seconds and it decodes. A file still being written (or a copy that paused) fails
to decode and is tried again, until it has been left unchanged for `give_up` seconds.

Watchdog's observer thread only puts paths on a queue; the hashing and storing happen in the
caller's thread, the one worker, which is also the thread that opened the index (SQLite
connections belong to their thread) and the one that gets signals, so a stop is prompt and
never interrupts a write to the index halfway.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .decode import IMAGE_SUFFIXES
from .errors import Error, ImageError
from .follow import admit, moved, trash_duplicate
from .records import Verdict

ON_DUPLICATE = ("keep", "trash", "skip")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seen:
    """What happened to one arrived file. `action`: "stored" (unique), "moved" (a stored
    image moved or renamed: its record followed), "kept" (a duplicate stored as such),
    "trashed", "skipped" (a duplicate left alone) or "failed"."""

    path: str
    action: str
    verdict: Verdict | None = None
    detail: str = ""  # the trash entry's id, or why it failed


@dataclass
class WatchSummary:
    """Counts of what a watch did, by action; `pending` files were still arriving at the stop."""

    stored: int = 0
    moved: int = 0  # stored images moved or renamed: their records followed them
    kept: int = 0
    trashed: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0

    @property
    def duplicates(self) -> int:
        return self.kept + self.trashed + self.skipped


@dataclass
class _Arriving:
    signature: tuple[int, int]  # (size, mtime in ns): changes while the file is written
    since: float  # when the signature was last seen to change
    tried: float | None = None  # when it was last tried and did not decode
    source: str | None = None  # where it was moved from, when it came by a rename


def watch(
    index,
    folder: str | os.PathLike,
    *,
    stop: threading.Event,
    on_duplicate: str = "keep",
    report: Callable[[Seen], None] | None = None,
    ready: Callable[[], None] | None = None,
    settle: float = 0.5,
    give_up: float = 30.0,
) -> WatchSummary:
    """Give every image file created in or moved into `folder` (and its subfolders) its verdict
    by `index.add`, until `stop` is set; a duplicate is kept, moved to the trash or skipped by
    `on_duplicate`. `report(seen)` is called once per file; `ready()` once the watch is on:
    files that arrive from then on are all seen. Files there before are left alone."""
    folder = _checked(folder, on_duplicate)
    from watchdog.observers import Observer

    # (path, where it was moved from or None)
    arrived: queue.Queue[tuple[str, str | None]] = queue.Queue()
    # The index's own folder (its trash above all) is never watched, wherever the user put
    # it; only its trash, when the user asked to watch that folder itself (as ingest does).
    trash = Path(index.trash).resolve()
    own = trash if folder.is_relative_to(trash.parent) else trash.parent

    summary = WatchSummary()
    observer = Observer()
    observer.schedule(_enqueuer(arrived, own), str(folder), recursive=True)
    observer.start()
    log.info("watching %s", folder)
    if ready:
        ready()
    arriving: dict[str, _Arriving] = {}
    try:
        while not stop.is_set():
            _take(arrived, arriving, timeout=min(settle / 5, 0.1))
            for path in list(arriving):
                if stop.is_set():
                    break
                seen = _try(index, path, arriving[path], on_duplicate, settle, give_up)
                if seen is None:
                    continue
                del arriving[path]
                if seen.action != "gone":
                    setattr(summary, seen.action, getattr(summary, seen.action) + 1)
                    if report:
                        report(seen)
    finally:
        observer.stop()
        observer.join()
    summary.pending = len(arriving) + arrived.qsize()
    return summary


def _checked(folder: str | os.PathLike, on_duplicate: str) -> Path:
    """The folder to watch, resolved, once the arguments and watchdog are there."""
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(
            f"'on_duplicate' must be one of {', '.join(ON_DUPLICATE)}, got {on_duplicate!r}"
        )
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise Error(f"{folder}: not a folder, nothing to watch")
    try:
        import watchdog.observers  # noqa: F401
    except ImportError as e:
        raise Error(f"watching needs watchdog: pip install 'phashdb[watch]' ({e})") from e
    return folder


def _enqueuer(arrived: queue.Queue, own: Path):
    """A watchdog handler that puts each image file created, written or moved in, outside
    `own` (the index's folder), on `arrived` as (path, where it was moved from or None)."""
    from watchdog.events import FileSystemEventHandler

    class Enqueue(FileSystemEventHandler):
        # Runs in the observer's thread: nothing slow here, or events pile up in the kernel.
        def on_created(self, event):
            self._arrived(event.src_path, event.is_directory)

        def on_modified(self, event):  # written over in place: a replacement, if stored
            self._arrived(event.src_path, event.is_directory)

        def on_moved(self, event):
            self._arrived(event.dest_path, event.is_directory, os.fsdecode(event.src_path))

        def _arrived(self, path, is_directory, source=None):
            path = os.fsdecode(path)
            image = not is_directory and Path(path).suffix.lower() in IMAGE_SUFFIXES
            if image and not Path(path).is_relative_to(own):
                arrived.put((path, source))

    return Enqueue()


def _take(arrived: queue.Queue, arriving: dict[str, _Arriving], timeout: float) -> None:
    """Moves what has arrived (waiting up to `timeout` for the first) into `arriving`."""
    try:
        path, source = arrived.get(timeout=timeout)
        while True:
            state = arriving.setdefault(path, _Arriving((-1, -1), time.monotonic()))
            state.source = source or state.source
            path, source = arrived.get_nowait()
    except queue.Empty:
        pass


def _try(index, path: str, state: _Arriving, on_duplicate: str, settle: float, give_up: float):
    """The file's outcome, or None while it is still arriving (or waiting for a retry)."""
    now = time.monotonic()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        log.info("%s: gone before it was read (a temporary file?)", path)
        return Seen(path, "gone")
    except OSError as e:
        return Seen(path, "failed", detail=f"{path}: {e.strerror or e}")
    signature = (st.st_size, st.st_mtime_ns)
    if signature != state.signature:
        state.signature, state.since, state.tried = signature, now, None
        return None
    if now - state.since < settle or (state.tried is not None and now - state.tried < settle):
        return None
    try:
        if state.source and (record := moved(index, state.source, path)):
            return Seen(path, "moved", detail=f"renamed from {state.source}, record {record.id}")
        admitted = admit(index, path, keep_duplicate=on_duplicate == "keep")
    except ImageError as e:
        if now - state.since < give_up:
            log.info("%s: not readable yet, will retry (%s)", path, e)
            state.tried = now
            return None
        return Seen(path, "failed", detail=str(e))
    except Error as e:
        if state.source is None and index.get(os.path.abspath(path)) is not None:
            return Seen(path, "gone")  # a stored file touched in place, still the one recorded
        return Seen(path, "failed", detail=str(e))
    verdict = admitted.verdict
    if admitted.moved_from is not None:
        return Seen(path, "moved", verdict, f"moved from {admitted.moved_from.path}")
    note = f"replaced the record of {path}'s previous file" if admitted.replaced else ""
    if not verdict.duplicate:
        return Seen(path, "stored", verdict, note)
    if on_duplicate == "keep":
        return Seen(path, "kept", verdict, note)
    if on_duplicate == "skip":
        return Seen(path, "skipped", verdict, note)
    try:
        trashed = trash_duplicate(index, path, verdict)
    except Error as e:
        return Seen(path, "failed", verdict, str(e))
    if isinstance(trashed, str):
        return Seen(path, "kept", verdict, trashed)
    return Seen(path, "trashed", verdict, trashed.id)
