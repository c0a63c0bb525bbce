"""The CPU a worker spends on each file of a folder, this phashdb against another tree of it, in
alternating runs.

    git archive BASE_COMMIT | tar -x -C /tmp/base   (and its built phashdb/*.so copied in)
    python benchmarks/per_image.py FOLDER --base /tmp/base [--runs 7]

Each run is a new process with one tree on PYTHONPATH (the trees take turns, the order swapped
every run, so that the machine's load falls on both alike), which hashes every file of FOLDER
as `phashdb ingest`'s workers do (`ingest.hash_file`: read, digest, decode, hash, descriptor
and keys) once to warm up, then again, timing each file's CPU (this thread's). Prints the
medians over the runs of the mean CPU per file, by kind (JPEG, PNG, other), the ratio base/this,
and the load average. Whether both trees give every file the same record is checked (the runs print
a digest of the records, and say whether they are the same: a change of what is stored, as a
new key, makes them differ).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

RUN = """
import hashlib, json, os, sys, time
from phashdb.ingest import hash_file
folder = sys.argv[1]
files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
for path in files:
    hash_file(path)
cpu, records = {}, hashlib.sha256()
for path in files:
    t = time.thread_time()
    _, image = hash_file(path)
    took = time.thread_time() - t
    kind = os.path.splitext(path)[1].lower().lstrip(".") or "other"
    kind = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}.get(kind, "other")
    cpu.setdefault(kind, []).append(took)
    records.update(repr(image if isinstance(image, str) else (image.hash, image.descriptor)).encode())
print(json.dumps({"cpu": {k: sum(v) / len(v) for k, v in cpu.items()},
                  "count": {k: len(v) for k, v in cpu.items()}, "records": records.hexdigest()}))
"""


def run(tree: Path, folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(folder)], env=env, capture_output=True, text=True,
        check=False, cwd=folder,  # not this tree's folder: `-c` puts the cwd first on sys.path
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr[-800:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    trees = {"this": HERE, "base": args.base}
    got: dict[str, list[dict]] = {"this": [], "base": []}
    for r in range(args.runs):
        for name in ("this", "base") if r % 2 else ("base", "this"):
            got[name].append(run(trees[name], args.folder))
    digests = {name: {g["records"] for g in runs} for name, runs in got.items()}
    same = digests["this"] == digests["base"] and len(digests["this"]) == 1
    print(f"{args.folder}: {args.runs} runs each, load {os.getloadavg()[0]:.2f}")
    print(f"the same records (hash, descriptor) in both trees: {'yes' if same else 'no'}")
    for kind, count in sorted(got["this"][0]["count"].items()):
        this = statistics.median(g["cpu"][kind] for g in got["this"]) * 1000
        base = statistics.median(g["cpu"][kind] for g in got["base"]) * 1000
        print(f"  {kind:6} {count:5} files  base {base:6.3f} ms  this {this:6.3f} ms  "
              f"base/this {base / this:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
