"""The service under load: `phashdb serve` (its own process) against the same work done by the
library in one process, in the same run.

    /work/shared/photos/build.sh /tmp/photos     # ~230 real photos
    python benchmarks/serve_load.py /tmp/photos [--connections 8 32] [--rounds 2]

For each number of concurrent connections (a bounded asyncio client on loopback, a fixed count
of requests), prints requests/s and p50/p99 latency of POST /v1/check (every photo checked
against an index holding half of them, `--rounds` times) and POST /v1/images (every photo
uploaded once into a fresh index and uploads folder), then the library doing the same: check
from the bytes, and add (the bytes written to a file, then `Index.add`), in one process with as
many threads as the server has index workers (each thread its own index), and one by one.
Last, sets of near-identical uploads (one photo re-encoded at as many qualities as there are
connections) are sent all at once, a set at a time: exactly one of each must be admitted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
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
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise SystemExit(f"the server on {self.url} did not start: see {self.log.name}")
            time.sleep(0.1)

    def tail(self) -> str:
        self.log.flush()
        return "".join(open(self.log.name).readlines()[-30:])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


async def load(url: str, path: str, bodies: list[bytes], connections: int):
    """Send every body (POST url+path) on at most `connections` connections at once; returns
    (seconds, latencies, statuses)."""
    # Idle connections are dropped well before the server's keep-alive timeout, so that no
    # request is sent on a connection the server is closing at that moment.
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2
    )
    latencies, statuses = [], []
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker():
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                response = await client.post(path, content=body)
                latencies.append(time.perf_counter() - t)
                statuses.append(response.status_code)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return time.perf_counter() - start, latencies, statuses


def library(db: Path, uploads: Path, bodies: list[bytes], threads: int, work: str):
    """The same work by the library in this process, without HTTP: `threads` threads, each
    with its own index (the server's IndexWorkers; one thread: one by one). Returns (seconds,
    each call's seconds)."""
    latencies = []

    def one(n, data):
        def call(index):
            t = time.perf_counter()
            if work == "check":
                index.check(io.BytesIO(data), f"q{n}")
            else:
                path = uploads / f"{n}.img"
                path.write_bytes(data)
                index.add(path, f"u{n}")
            latencies.append(time.perf_counter() - t)

        return call

    workers = IndexWorkers(lambda: phashdb.open(db), threads)
    workers.start()

    async def everything():
        await asyncio.gather(*(workers.run(one(n, data)) for n, data in enumerate(bodies)))

    try:
        start = time.perf_counter()
        asyncio.run(everything())
        return time.perf_counter() - start, latencies
    finally:
        workers.close()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="build.sh's output folder")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=2, help="check passes over the photos")
    parser.add_argument("--sets", type=int, default=10, help="near-identical upload sets")
    parser.add_argument("--workers", type=int, default=ServeConfig.workers)
    args = parser.parse_args()
    every = photos(args.photos)
    # The last photos make the near-identical sets: they must not be stored before.
    bodies, spare = every[: -args.sets], every[-args.sets :]
    half = bodies[::2]
    checks = bodies * args.rounds
    print(f"{len(bodies)} photos ({sum(map(len, bodies)) / 1e6:.0f} MB), server workers "
          f"{args.workers}, library threads {args.workers}, {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"  # the index checks run against: half of the photos
        with phashdb.open(base) as index:
            for n, data in enumerate(half):
                index.add(io.BytesIO(data), f"h{n}")
        runs = iter(range(1_000_000))

        def lib(work: str, threads: int) -> tuple[float, list[float]]:
            """The library's rate and call latencies, measured now (beside the service's: the
            machine's load changes over a run)."""
            n = next(runs)
            if work == "check":
                took, lat = library(base, tmp, checks, threads, "check")
                return len(checks) / took, lat
            (tmp / f"lib-up-{n}").mkdir()
            took, lat = library(tmp / f"lib-{n}", tmp / f"lib-up-{n}", bodies, threads, "add")
            return len(bodies) / took, lat

        for connections in args.connections:
            for work, path, sent in (("check", "/v1/check", checks), ("add", "/v1/images", bodies)):
                threaded, _ = lib(work, args.workers)
                single, single_lat = lib(work, 1)
                n = next(runs)
                db = tmp / f"service-{n}"
                if work == "check":
                    shutil.copytree(base, db)
                server = Server(db, tmp / f"uploads-{n}", args.workers)
                try:
                    took, lat, statuses = asyncio.run(load(server.url, path, sent, connections))
                    rivals = []
                    if work == "add":
                        for data in spare:
                            copies = near_identical(data, connections)
                            _, _, got = asyncio.run(load(server.url, path, copies, connections))
                            rivals.append(got.count(201))
                except httpx.TransportError as e:
                    raise SystemExit(f"{path}: {e!r}; the server's log:\n" + server.tail()) from e
                finally:
                    server.stop()
                rate, best = len(sent) / took, max(threaded, single)
                p50, p99 = quantile(lat, 0.5), quantile(lat, 0.99)
                l50, l99 = quantile(single_lat, 0.5), quantile(single_lat, 0.99)
                print(
                    f"POST {path:10s} {connections:2d} connections: {rate:5.1f}/s, p50 {ms(p50)}, "
                    f"p99 {ms(p99)} (p99/p50 {p99 / p50:.1f}) | library {threaded:.1f}/s with "
                    f"{args.workers} threads, {single:.1f}/s one by one (a call: p50 {ms(l50)}, "
                    f"p99 {ms(l99)}, p99/p50 {l99 / l50:.1f}) | service/library {rate / best:.2f}"
                )
                if work == "check":
                    assert set(statuses) == {200}, set(statuses)
                    continue
                print(
                    f"  {statuses.count(201)} of {len(bodies)} distinct photos admitted; "
                    f"near-identical sets of {connections} sent at once, admitted per set: "
                    f"{rivals} ({'exactly one each' if set(rivals) == {1} else 'NOT exactly one'})"
                )


if __name__ == "__main__":
    main()
