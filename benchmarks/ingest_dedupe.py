"""`phashdb ingest DIR && phashdb dedupe --json` into a fresh index, timed whole and by part,
alternating between two source trees (before and after a change); medians.

    python benchmarks/ingest_dedupe.py RUNS BEFORE_TREE AFTER_TREE DIR...

Each tree is put first on PYTHONPATH (a `git archive` of the base commit, with the built C
extensions copied in); compile both (`python -m compileall -q phashdb`) and unset
PYTHONDONTWRITEBYTECODE first. The load average is printed beside every figure.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict) -> tuple[float, float]:
    cpu, start = children_cpu(), time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd="/")
    return time.perf_counter() - start, children_cpu() - cpu


def one_run(tree: str, folder: str, scratch: str) -> tuple[float, ...]:
    """(ingest wall, dedupe wall, whole wall, whole CPU) of one run into a fresh index."""
    index = os.path.join(scratch, "index")
    shutil.rmtree(index, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": tree}
    run = [sys.executable, "-m", "phashdb", "--db", index]
    ingest = timed([*run, "-q", "ingest", folder], env)
    dedupe = timed([*run, "dedupe", "--json"], env)
    return ingest[0], dedupe[0], ingest[0] + dedupe[0], ingest[1] + dedupe[1]


def main(runs: int, trees: dict[str, str], folders: list[str]) -> None:
    for folder in folders:
        load = os.getloadavg()[0]
        times: dict[str, list] = {name: [] for name in trees}
        with tempfile.TemporaryDirectory() as scratch:
            for _ in range(runs):
                for name, tree in trees.items():
                    times[name].append(one_run(tree, folder, scratch))
        print(f"{folder} ({runs} alternating runs, load {load:.2f} -> {os.getloadavg()[0]:.2f})")
        for name, rows in times.items():
            ing, ded, whole, cpu = (statistics.median(x) for x in zip(*rows))
            print(f"  {name:6} ingest {ing:.3f} s  dedupe --json {ded:.3f} s  "
                  f"whole {whole:.3f} s wall, {cpu:.3f} s CPU")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]), {"before": sys.argv[2], "after": sys.argv[3]}, sys.argv[4:])
