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
