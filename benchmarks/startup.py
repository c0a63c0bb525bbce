"""Whole commands from a new process, this phashdb against another tree of it, in alternating runs.

    git archive BASE_COMMIT | tar -x -C /tmp/base
    python benchmarks/startup.py SET_DIR... [--base /tmp/base] [--runs 5] [--steps a,b]

For each SET_DIR (e.g. made by benchmarks/small_sets.py): `phashdb --help`, `phashdb check` of
one of its images, `phashdb ingest DIR && phashdb dedupe --json` into a fresh index (cold) and
again over the folder already stored (re-run; and each of its two commands alone). --steps
picks some of them by name (the cold run of 1,200 files takes seconds a turn). Each is run with `python -m phashdb`, once with
this tree and once with the --base tree on PYTHONPATH, in turns, so that the machine's load
falls on both alike; prints the medians of wall and CPU time (user + system, of every process
of the command: the steadier figure on a loaded machine), the ratios and the load average.

Both trees run from compiled bytecode (compiled first into a folder of the run's own, through
PYTHONPYCACHEPREFIX), as an installed phashdb does: with PYTHONDONTWRITEBYTECODE set, as in
some shells and containers, every phashdb module would be compiled again in every process
(~20-40 ms each). --as-is runs them with the environment as it is.

--split also takes `phashdb check` of one image apart, in a new process each run (both trees
in turns): the interpreter with site (`python -c pass`), then the CPU time of each import group,
opening the index, reading and hashing the image (the Pillow plugins it imports included),
searching and the output line, each timed inside one process as the command does them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
WARM = "import phashdb.cli, phashdb.index, phashdb.phash, phashdb.source, phashdb.ingest, "
WARM += "phashdb.tables, phashdb.group_cache, multiprocessing.pool, PIL.Image, tempfile"


def run(tree: Path, index: Path, script: str, bytecode: Path | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the processes: user + system, workers included)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PHASHDB_URL": str(index)}
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    cpu = _children_cpu()
    t = time.perf_counter()
    # Run elsewhere: -m puts the working folder first on sys.path, and this tree's is `phashdb`.
    done = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, check=False, cwd=index.parent.parent
    )
    took = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise SystemExit(f"{script!r} failed in {tree}: {done.stderr.decode()[-400:]}")
    return took, _children_cpu() - cpu


# `phashdb check IMAGE` step by step in one new process: prints "name cpu_seconds" lines.
SPLIT = """
import sys, time
index_path, image_path = sys.argv[1:3]
last = time.process_time()
def step(name, modules=()):
    global last
    for m in modules:
        __import__(m)
    now = time.process_time()
    print(name, now - last)
    last = now
step("start (in the interpreter)")
step("argparse (click in trees before issue 25)", ["argparse"])
step("phashdb.cli (commands)", ["phashdb.cli"])
step("numpy", ["numpy"])
step("Pillow (PIL.Image)", ["PIL.Image"])
step("phashdb library", ["phashdb.source", "phashdb.index", "phashdb.embedded.live",
     "phashdb.embedded.keys", "phashdb.tables", "phashdb.matching"])
import phashdb
from phashdb.cli.common import verdict_line
index = phashdb.open(index_path)
step("open the index")
image, variants = index._read(image_path, None)
step("read and hash (plugins too)")
found = index._confirmed(image, variants, index.threshold)
step("search")
verdict = index.check(image_path)  # the same again, warm: for the verdict line
line = verdict_line(image_path, verdict)
index.close()
last = time.process_time()
verdict_line(image_path, verdict)
step("output line")
"""


def split(trees: dict[str, Path], index: dict[str, Path], image: Path, runs: int, bytecode):
    """Medians of each step of SPLIT (and of the interpreter) per tree, in alternating runs."""
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(runs):
        for tree, path in trees.items():
            env = {**os.environ, "PYTHONPATH": str(path)}
            if bytecode is not None:
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = str(bytecode)
            before = _children_cpu()
            cwd = index[tree].parent  # not this tree: -c puts the working folder on sys.path
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, cwd=cwd)
            cpu.setdefault(("interpreter and site", tree), []).append(_children_cpu() - before)
            argv = [sys.executable, "-c", SPLIT, str(index[tree]), str(image)]
            out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, cwd=cwd)
            for line in out.stdout.splitlines():
                name, took = line.rsplit(" ", 1)
                cpu.setdefault((name, tree), []).append(float(took))
    print(f"\n`phashdb check {image}` step by step (CPU ms, medians of {runs})")
    for name in dict.fromkeys(n for n, _ in cpu):
        b, a = (statistics.median(cpu[name, t]) * 1000 for t in ("before", "after"))
        print(f"  {name:28} {b:7.1f} -> {a:7.1f}")


def _children_cpu() -> float:
    # On a loaded machine the wall time mostly measures the others; CPU time much less so.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", help="comma-separated step names (default: all)")
    parser.add_argument("--as-is", action="store_true", help="bytecode as the environment says")
    parser.add_argument("--split", action="store_true", help="take a check apart, step by step")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="phashdb-startup-"))
    bytecode = None if args.as_is else work / "bytecode"
    if bytecode is not None:  # both trees and what they import, before anything is timed
        for tree in (HERE, args.base):
            env = {**os.environ, "PYTHONPYCACHEPREFIX": str(bytecode)}
            compile_all = [sys.executable, "-m", "compileall", "-q", str(tree / "phashdb")]
            subprocess.run(compile_all, env=env, check=True, capture_output=True)
            # the standard library's and numpy's bytecode is looked for under the prefix too
            env["PYTHONPATH"] = str(tree)
            subprocess.run([sys.executable, "-c", WARM], env=env, check=True, capture_output=True)
    p = f"{sys.executable} -m phashdb"
    trees = {"after": HERE, "before": args.base}
    for folder in args.sets:
        image = next(f for f in sorted(folder.iterdir()) if f.suffix == ".jpg")
        dedupe = f"{p} -q ingest {folder} && {p} dedupe --json"
        steps = {  # {index} is the index folder of the tree
            "--help": f"{p} --help",
            "check one image": f"{p} check {image}",
            "ingest+dedupe cold": f"rm -rf {{index}}; {dedupe}",
            "ingest+dedupe re-run": dedupe,
            "ingest re-run": f"{p} -q ingest {folder}",
            "dedupe re-run": f"{p} dedupe --json",
        }
        if args.steps:
            steps = {s: steps[s] for s in args.steps.split(",")}
        load = os.getloadavg()
        times = {(s, t): [] for s in steps for t in trees}
        for _ in range(args.runs):
            for step, script in steps.items():
                for tree, path in trees.items():
                    index = work / tree / folder.name
                    if "cold" not in step and not index.exists():
                        run(path, index, dedupe, bytecode)  # stored, and dedupe's groups kept
                    took = run(path, index, script.format(index=index), bytecode)
                    times[step, tree].append(took)
        if args.split:
            for tree, path in trees.items():
                if not (work / tree / folder.name).exists():
                    run(path, work / tree / folder.name, dedupe, bytecode)
            split(trees, {t: work / t / folder.name for t in trees}, image, args.runs, bytecode)
        loads = f"load {load[0]:.2f} -> {os.getloadavg()[0]:.2f} (1 min)"
        print(f"\n{folder} ({sum(1 for _ in folder.iterdir())} files), {loads}")
        for step in steps:
            (bw, bc), (aw, ac) = (
                [statistics.median(x) for x in zip(*times[step, t])] for t in ("before", "after")
            )
            print(
                f"  {step:22} wall {bw:6.3f} -> {aw:6.3f} s ({bw / aw:4.2f}x)   "
                f"CPU {bc:6.3f} -> {ac:6.3f} s ({bc / ac:4.2f}x)"
            )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
