"""The threads that run index calls for the server, each with an index of its own.

Why not one shared index: an embedded index holds an SQLite connection, which belongs to the
thread that opened it, and in-memory band tables it updates as it reads. Why not a lock around
one index: hashing an upload (decoding a JPEG) is most of the work of a check or an add and
releases the GIL, so several threads hash at once. Admission stays atomic across the threads as
it is across processes: the store's claim (SQLite's write lock, HBase's claims) serialises it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class IndexWorkers:
    """`threads` threads, each holding an index made by `open_index()`; `run(fn)` calls
    `fn(index)` in one of them. Every index is opened by `start` (its errors raised there) and
    closed by `close`, each in its own thread."""

    def __init__(self, open_index: Callable[[], Any], threads: int) -> None:
        if threads < 1:
            raise ValueError(f"'threads' must be at least 1, got {threads}")
        self._open = open_index
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"phashdb-index-{n}", daemon=True)
            for n in range(threads)
        ]
        self._opened: queue.SimpleQueue = queue.SimpleQueue()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        errors = [e for e in (self._opened.get() for _ in self._threads) if e is not None]
        if errors:
            self.close()
            raise errors[0]

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        """`fn(index)` in a worker thread, awaited."""
        future: Future = Future()
        self._jobs.put((fn, future))
        return await asyncio.wrap_future(future)

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """`fn(index)` in a worker thread, waited for (from a thread that is not a worker)."""
        future: Future = Future()
        self._jobs.put((fn, future))
        return future.result()

    def close(self) -> None:
        for thread in self._threads:
            if thread.is_alive():
                self._jobs.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _work(self) -> None:
        try:
            index = self._open()
        except BaseException as e:  # noqa: BLE001 (handed to start(), which raises it)
            self._opened.put(e)
            return
        self._opened.put(None)
        try:
            while (job := self._jobs.get()) is not None:
                fn, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn(index))
                except BaseException as e:  # noqa: BLE001 (raised in the caller's thread)
                    future.set_exception(e)
        finally:
            index.close()
