"""The service under load: `phashdb serve` (its own process) against the same work done by the
library in one process, in the same run.

    ../shared/photos/build.sh /tmp/photos     # ~230 real photos
    python benchmarks/serve_load.py /tmp/photos [--connections 8 32] [--rounds 2] [--turn 8]

For each number of concurrent connections (a bounded asyncio client on loopback, a fixed count
of requests), prints requests/s and p50/p99 latency of POST /v1/check (every photo checked
against an index holding half of them, `--rounds` times) and POST /v1/images (every photo
uploaded once into a fresh index and uploads folder), then the library doing the same: check
from the bytes, and add (the bytes written to a file, then `Index.add`), in one process with as
many threads as the server has index workers (each thread its own index), and one by one.
The library (both ways) and the service take turns, `--turn` requests a connection at a time,
in a rotating order: on a shared machine the load moves by the second, and each side gets its
share of every moment.
Beside the rates, the CPU time of each request: the server process's, the client's, and one
library call's, which the machine's load moves far less than it moves rates. The load average
is printed at the start and the end.

The client writes each request on a kept-alive connection and reads the response with asyncio
streams: httpx cost 2.7 ms of CPU a request here (about a sixth of the work itself), taken from
the same two cores the server runs on; this one costs less than a tenth of that.
Last, sets of near-identical uploads (one photo re-encoded at as many qualities as there are
connections) are sent all at once, a set at a time: exactly one of each must be admitted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

import phashdb
from phashdb.serve.app import ServeConfig
from phashdb.serve.workers import IndexWorkers

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def photos(folder: Path) -> list[bytes]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
    return [p.read_bytes() for p in files]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Server:
    """`phashdb serve` in a subprocess over `db`, uploads kept in `uploads`."""

    def __init__(self, db: Path, uploads: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "phashdb", "--db", str(db), "serve", "--port",
                   str(self.port), "--uploads", str(uploads), "--workers", str(workers)]  # fmt: skip
        self.log = open(db.parent / f"{db.name}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise SystemExit(f"the server on {self.url} did not start: see {self.log.name}")
            time.sleep(0.1)

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def tail(self) -> str:
        self.log.flush()
        return "".join(open(self.log.name).readlines()[-30:])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


async def load(url: str, path: str, bodies: list[bytes], connections: int):
    """Send every body (POST url+path) on `connections` kept-alive connections at once;
    returns (seconds, latencies, statuses)."""
    where = urlsplit(url)
    latencies, statuses = [], []
    queue = list(reversed(bodies))

    async def connection():
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        try:
            while queue:
                body = queue.pop()
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\n"
                    "Content-Type: application/octet-stream\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                t = time.perf_counter()
                writer.write(head)
                writer.write(body)
                await writer.drain()
                status = int((await reader.readline()).split()[1])
                length = None
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length is None:
                    raise ConnectionError(f"{path}: a response without Content-Length")
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                statuses.append(status)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - start, latencies, statuses


class Library:
    """The same work by the library in this process, without HTTP: `threads` threads, each
    with its own index (the server's IndexWorkers; one thread: one by one)."""

    def __init__(self, db: Path, uploads: Path, threads: int, work: str) -> None:
        self.uploads, self.work = uploads, work
        self.workers = IndexWorkers(lambda: phashdb.open(db), threads)
        self.workers.start()

    def run(self, bodies: list[bytes], first: int):
        """Every body checked or added (numbered from `first`); returns (seconds, each call's
        seconds, CPU seconds)."""
        latencies = []

        def one(n, data):
            def call(index):
                t = time.perf_counter()
                if self.work == "check":
                    index.check(io.BytesIO(data), f"q{n}")
                else:
                    path = self.uploads / f"{n}.img"
                    path.write_bytes(data)
                    index.add(path, f"u{n}")
                latencies.append(time.perf_counter() - t)

            return call

        async def everything():
            calls = (self.workers.run(one(first + n, data)) for n, data in enumerate(bodies))
            await asyncio.gather(*calls)

        cpu = own_cpu_seconds()
        start = time.perf_counter()
        asyncio.run(everything())
        return time.perf_counter() - start, latencies, own_cpu_seconds() - cpu

    def close(self) -> None:
        self.workers.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def near_identical(data: bytes, count: int) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        out = []
        for n in range(count):
            buffer = io.BytesIO()
            img.save(buffer, "JPEG", quality=95 - n)
            out.append(buffer.getvalue())
    return out


@dataclass
class Tally:
    """What one (connections, work) measure saw: seconds and CPU seconds of each side, the
    service's latencies and statuses, each library call's seconds, and per near-identical set
    how many were admitted."""

    took: dict = field(default_factory=lambda: {"threaded": 0.0, "single": 0.0, "service": 0.0})
    cpu: dict = field(default_factory=lambda: {"threaded": 0.0, "single": 0.0, "service": 0.0})
    client_cpu: float = 0.0
    latencies: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    calls: dict = field(default_factory=lambda: {"threaded": [], "single": []})
    rivals: list = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="build.sh's output folder")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=2, help="check passes over the photos")
    parser.add_argument("--turn", type=int, default=8, help="requests a turn, per connection")
    parser.add_argument("--sets", type=int, default=10, help="near-identical upload sets")
    parser.add_argument("--workers", type=int, default=ServeConfig.workers)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    every = photos(args.photos)
    # The last photos make the near-identical sets: they must not be stored before.
    bodies, spare = every[: -args.sets], every[-args.sets :]
    half = bodies[::2]
    checks = bodies * args.rounds
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{len(bodies)} photos ({sum(map(len, bodies)) / 1e6:.0f} MB), server workers "
          f"{args.workers}, library threads {args.workers}, {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"  # the index checks run against: half of the photos
        with phashdb.open(base) as index:
            for n, data in enumerate(half):
                index.add(io.BytesIO(data), f"h{n}")
        runs = iter(range(1_000_000))

        def fresh(work: str) -> tuple[Path, Path]:
            """An index (a copy of `base` to check against, or a new one) and uploads folder."""
            n = next(runs)
            db, uploads = tmp / f"index-{n}", tmp / f"uploads-{n}"
            if work == "check":
                shutil.copytree(base, db)
            uploads.mkdir()
            return db, uploads

        for connections in args.connections:
            for work, path, sent in (("check", "/v1/check", checks), ("add", "/v1/images", bodies)):
                threaded = Library(*fresh(work), args.workers, work)
                single = Library(*fresh(work), 1, work)
                server = Server(*fresh(work), args.workers)
                tally = Tally()
                try:
                    take_turns(tally, sent, path, connections, args.turn, threaded, single, server)
                    if work == "add":
                        for data in spare:
                            copies = near_identical(data, connections)
                            _, _, got = asyncio.run(load(server.url, path, copies, connections))
                            tally.rivals.append(got.count(201))
                except OSError as e:
                    raise SystemExit(f"{path}: {e!r}; the server's log:\n" + server.tail()) from e
                finally:
                    server.stop()
                    threaded.close()
                    single.close()
                expected = {200} if work == "check" else {201}
                assert set(tally.statuses) == expected, set(tally.statuses)
                report(tally, work, path, len(sent), connections, args.workers)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def take_turns(tally, sent, path, connections, turn_size, threaded, single, server) -> None:
    """Sends `sent`: the library both ways and the service, `turn_size` requests a connection
    at a time each."""
    size = turn_size * connections
    for turn, first in enumerate(range(0, len(sent), size)):
        chunk = sent[first : first + size]
        # Each in turn, in a rotating order: the machine's load moves by the
        # second, and each side gets its share of every moment.
        order = ["threaded", "single", "service"]
        for side in order[turn % 3 :] + order[: turn % 3]:
            if side == "service":
                before, mine = server.cpu(), own_cpu_seconds()
                seconds, lat, got = asyncio.run(load(server.url, path, chunk, connections))
                tally.cpu[side] += server.cpu() - before
                tally.client_cpu += own_cpu_seconds() - mine
                tally.latencies += lat
                tally.statuses += got
            else:
                library = threaded if side == "threaded" else single
                seconds, lat, used = library.run(chunk, first)
                tally.cpu[side] += used
                tally.calls[side] += lat
            tally.took[side] += seconds


def report(tally: Tally, work: str, path: str, n: int, connections: int, workers: int) -> None:
    took, cpu, calls, rivals = tally.took, tally.cpu, tally.calls, tally.rivals
    rate = {side: n / seconds for side, seconds in took.items()}
    best = max(rate["threaded"], rate["single"])
    p50, p99 = quantile(tally.latencies, 0.5), quantile(tally.latencies, 0.99)
    l50, l99 = quantile(calls["single"], 0.5), quantile(calls["single"], 0.99)
    t50, t99 = quantile(calls["threaded"], 0.5), quantile(calls["threaded"], 0.99)
    print(
        f"POST {path:10s} {connections:2d} connections: {rate['service']:5.1f}/s, "
        f"p50 {ms(p50)}, p99 {ms(p99)} (p99/p50 {p99 / p50:.1f}) | library "
        f"{rate['threaded']:.1f}/s with {workers} threads, {rate['single']:.1f}/s "
        f"one by one (a call: p50 {ms(l50)}, p99 {ms(l99)}, p99/p50 {l99 / l50:.1f}) "
        f"| service/library {rate['service'] / best:.2f}"
    )
    print(
        f"  a library call with {workers} threads: p50 {ms(t50)}, p99 {ms(t99)}, "
        f"p99/p50 {t99 / t50:.1f}"
    )
    print(
        f"  CPU a request: server {cpu['service'] / n * 1000:.1f} ms + client "
        f"{tally.client_cpu / n * 1000:.1f} ms; library {cpu['threaded'] / n * 1000:.1f} ms "
        f"with {workers} threads, {cpu['single'] / n * 1000:.1f} ms one by one"
    )
    if work == "add":
        print(
            f"  near-identical sets of {connections} sent at once, admitted per set: "
            f"{rivals} ({'exactly one each' if set(rivals) == {1} else 'NOT exactly one'})"
        )


if __name__ == "__main__":
    main()
