"""One check as a whole process against the same check through `phashdb serve`, in alternating runs.

    python benchmarks/serve_check.py SET_DIR [--stored 1000] [--runs 20]

Stores up to --stored images of SET_DIR (e.g. a set of benchmarks/small_sets.py, or the photos)
in a fresh embedded index, starts `phashdb serve` on it (loopback, a free port), then in turns:
`python -m phashdb --db INDEX check IMG --json` as a new process, and `POST /v1/check` of the
same image's bytes to the running server (one HTTP connection per call, as an upload service
without keep-alive makes). The images checked go round the set. Prints the medians of wall time
and of CPU time (the process's user + system; for the server, its process's CPU over the call,
read from /proc), their ratios (process / server: what the service saves per check), and the
load average.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import phashdb
from phashdb.ingest import find_images

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """Seconds of CPU (user + system) process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "phashdb", "--db", str(index), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not answer /healthz within a minute")


def by_process(index: Path, image: Path) -> tuple[float, float]:
    cpu, t0 = children_cpu(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "phashdb", "--db", str(index), "check", str(image), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return time.perf_counter() - t0, children_cpu() - cpu


def by_server(server: subprocess.Popen, port: int, image: Path) -> tuple[float, float]:
    body = image.read_bytes()
    cpu, t0 = cpu_of(server.pid), time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/v1/check", body=body, headers={"Content-Type": "image/jpeg"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    wall = time.perf_counter() - t0
    if answer.status != 200:
        raise SystemExit(f"POST /v1/check of {image} answered {answer.status}")
    return wall, cpu_of(server.pid) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--stored", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    images = sorted(find_images([args.set_dir]))[: args.stored]
    if not images:
        raise SystemExit(f"no images in {args.set_dir}")
    with tempfile.TemporaryDirectory(prefix="serve-check-") as tmp:
        index = Path(tmp) / "index"
        with phashdb.open(index) as db:
            for path in images:
                db.add(path)
        port = free_port()
        server = start_server(index, port)
        try:
            by_server(server, port, Path(images[0]))  # the workers' first index open
            process, served = [], []
            for n in range(args.runs):
                image = Path(images[n * 7 % len(images)])
                process.append(by_process(index, image))
                served.append(by_server(server, port, image))
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(process, served, len(images))


def report(process: list, served: list, stored: int) -> None:
    wall_p, cpu_p = (statistics.median(x) for x in zip(*process))
    wall_s, cpu_s = (statistics.median(x) for x in zip(*served))
    print(f"{stored} images stored, {len(process)} checks each way, alternating")
    print(f"{'':28} {'wall ms':>9} {'CPU ms':>9}")
    print(f"{'phashdb check (a process)':28} {wall_p * 1e3:9.1f} {cpu_p * 1e3:9.1f}")
    print(f"{'POST /v1/check (serve)':28} {wall_s * 1e3:9.1f} {cpu_s * 1e3:9.1f}")
    print(f"process / serve: wall {wall_p / wall_s:.1f}x, CPU {cpu_p / max(cpu_s, 1e-3):.1f}x")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
