"""What the watch tests share: the library's watch run in a thread, its reports collected."""

from __future__ import annotations

import queue
import threading

import phashdb
from phashdb.watch import watch

DEADLINE = 180


class Watching:
    """The library's watch over `folder` in a thread (the index belongs to it, as in the CLI);
    what it reports arrives on `seen`, and every report so far is in `reports`."""

    def __init__(self, url, folder, on_duplicate="trash"):
        self.stop, ready, self.seen = threading.Event(), threading.Event(), queue.Queue()
        self.summary, self.reports = {}, []

        def run():
            with phashdb.open(url) as index:
                self.summary["s"] = watch(
                    index, folder, stop=self.stop, on_duplicate=on_duplicate,
                    report=self.seen.put, ready=ready.set, give_up=2.0,
                )  # fmt: skip

        self.thread = threading.Thread(target=run)
        self.thread.start()
        assert ready.wait(DEADLINE)

    def next(self, path):
        """The next report about `path` (reports of other paths are skipped, kept in
        `reports`)."""
        while True:
            seen = self.seen.get(timeout=DEADLINE)
            self.reports.append(seen)
            if seen.path == str(path):
                return seen

    def close(self):
        self.stop.set()
        self.thread.join(DEADLINE)
        while not self.seen.empty():
            self.reports.append(self.seen.get())
        return self.summary["s"]
