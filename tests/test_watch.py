"""`phashdb watch`: every image file that arrives in a folder gets its verdict once written, and
the duplicate is dealt with; a stop (SIGINT, SIGTERM, the stop event) ends it cleanly.

No assertion depends on timing: deadlines only bound how long a test waits for output."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PHASHDB

import phashdb
from phashdb.watch import watch

DEADLINE = 180  # seconds: generous, only to bound a wait for output that never comes


class Watcher:
    """`phashdb watch` as a subprocess, its stdout lines collected as they come."""

    def __init__(self, env: dict, *args: str):
        self.process = subprocess.Popen(
            [PHASHDB, "watch", *args], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        ready = self.process.stderr.readline()
        assert ready.startswith("watching "), ready + self.process.stderr.read()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, count: int) -> list[str]:
        """The first `count` lines (waiting for them, up to the deadline)."""
        end = time.monotonic() + DEADLINE
        while len(self.seen) < count and time.monotonic() < end:
            try:
                self.seen.append(self.lines.get(timeout=1))
            except queue.Empty:
                assert self.process.poll() is None, self.process.stderr.read()
        assert len(self.seen) >= count, f"only {len(self.seen)} lines: {self.seen}"
        return self.seen[:count]

    def stop(self, sig=signal.SIGINT) -> tuple[int, list[str], str]:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=DEADLINE)
        self.reader.join(DEADLINE)  # it has read to the end of the output
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return code, rest, self.process.stderr.read()


@pytest.fixture
def env(tmp_path, run, photos):
    """The environment of an index holding three photos."""
    for name in ("astronaut", "camera", "chelsea"):
        assert run("add", photos[name]).returncode == 0
    return {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}


def write_slowly(source: Path, dest: Path) -> None:
    """Write a file in small chunks, with a long pause halfway: the watcher tries it then,
    cannot decode it, and must try again later."""
    data = source.read_bytes()
    with open(dest, "wb") as f:
        for _n, start in enumerate(range(0, len(data), 8192)):
            f.write(data[start : start + 8192])
            f.flush()
            time.sleep(1.5 if start <= len(data) // 2 < start + 8192 else 0.05)


def test_watch_gives_every_arrival_a_verdict_and_trashes_duplicates(
    env, tmp_path, photos, near_copies
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher = Watcher(env, str(inbox), "--on-duplicate", "trash")

    shutil.copy(photos["coffee"], inbox / "coffee.jpg")  # unique
    shutil.copy(near_copies["astronaut"], inbox / "astronaut-copy.jpg")  # duplicates
    shutil.copy(near_copies["camera"], inbox / "camera-copy.jpg")
    shutil.copy(photos["rocket"], tmp_path / "rocket.part")  # moved in when complete
    os.rename(tmp_path / "rocket.part", inbox / "rocket.jpg")
    (inbox / "notes.txt").write_text("not an image: not looked at")
    burst = [inbox / f"chelsea-{n:03d}.jpg" for n in range(100)]
    for path in burst:
        shutil.copy(near_copies["chelsea"], path)
    write_slowly(photos["hubble_deep_field"], inbox / "hubble.jpg")

    lines = watcher.wait_for(105)
    code, rest, stderr = watcher.stop()
    assert code == 0, stderr
    assert rest == ["stopped: 3 unique, 102 duplicates (0 kept, 102 trashed, 0 skipped), 0 failed"]
    verdicts = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines}
    assert len(verdicts) == 105
    for name in ("coffee.jpg", "rocket.jpg", "hubble.jpg"):
        assert verdicts.pop(str(inbox / name)) == "unique (added)"
        assert (inbox / name).exists()
    stored = {"astronaut-copy.jpg": "astronaut", "camera-copy.jpg": "camera"}
    stored.update({p.name: "chelsea" for p in burst})
    for name, original in stored.items():
        verdict = verdicts.pop(str(inbox / name))
        assert verdict.startswith(f"duplicate of {photos[original]} (distance ")
        assert ", moved to the trash (restore: phashdb trash restore " in verdict
        assert not (inbox / name).exists()
    assert verdicts == {}

    trashed = json.loads(subprocess.run(
        [PHASHDB, "trash", "list", "--json"], env=env, capture_output=True, text=True
    ).stdout)  # fmt: skip
    assert sorted(t["original"] for t in trashed) == sorted(str(inbox / n) for n in stored)
    assert all(Path(t["path"]).read_bytes() == near_copies[stored[Path(t["original"]).name]]
               .read_bytes() for t in trashed)  # fmt: skip
    with phashdb.open(env["PHASHDB_URL"]) as index:
        assert len(index) == 6 and all(
            str(inbox / n) in index for n in ("coffee.jpg", "hubble.jpg")
        )
    assert sorted(p.name for p in inbox.iterdir()) == [
        "coffee.jpg",
        "hubble.jpg",
        "notes.txt",
        "rocket.jpg",
    ]


def test_sigterm_stops_it_cleanly_too(env, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    code, rest, _ = Watcher(env, str(inbox)).stop(signal.SIGTERM)
    assert code == 0 and rest == [
        "stopped: 0 unique, 0 duplicates (0 kept, 0 trashed, 0 skipped), 0 failed"
    ]


def test_the_library_watch_keeps_duplicates_and_stops_on_its_event(tmp_path, photos, near_copies):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    stop, ready, seen, result = threading.Event(), threading.Event(), queue.Queue(), {}

    def run():
        # The index belongs to the thread that watches (as the CLI's main thread does).
        with phashdb.open(tmp_path / "index") as index:
            index.add(photos["rocket"])
            result["summary"] = watch(
                index, inbox, stop=stop, report=seen.put, ready=ready.set, give_up=2.0
            )

    worker = threading.Thread(target=run)
    worker.start()
    assert ready.wait(DEADLINE)
    shutil.copy(near_copies["rocket"], inbox / "again.jpg")
    (inbox / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    got = {s.path: s for s in (seen.get(timeout=DEADLINE), seen.get(timeout=DEADLINE))}
    stop.set()
    worker.join(DEADLINE)
    again = got[str(inbox / "again.jpg")]
    assert again.action == "kept" and again.verdict.matches[0].path == str(photos["rocket"])
    assert got[str(inbox / "broken.png")].action == "failed"
    assert result["summary"].kept == 1 and result["summary"].failed == 1
    with phashdb.open(tmp_path / "index") as index:
        assert str(inbox / "again.jpg") in index and (inbox / "again.jpg").exists()
