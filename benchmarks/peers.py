"""phashdb against its peers on whole jobs, from a cold start, in alternating runs (issue 25).

    python benchmarks/peers.py PHOTOS_DIR [--runs 5] [--sets 250,1200] [--large 36]

For each set: `phashdb ingest DIR && phashdb dedupe --json` into a fresh index (cold), the same
again over the folder already stored (the daily re-run), `czkawka_cli image -d DIR` with an empty
cache (when czkawka_cli is on PATH) and benchmarks/imagehash_peer.py (imagehash + numpy on a
process pool). The tools take turns run by run, so that the machine's load falls on all alike;
medians are printed with the ratio to phashdb's cold run, the recall of the planted copies (the
share found in one group with their original) and `uptime`'s load average. The sets are made by
benchmarks/small_sets.py (small photos, <= 1920 px, with planted copies); `--large N` adds N
distinct 12-megapixel JPEGs (benchmarks/large_set.py: the photos upscaled, then collages of four
of them, up to 1,000 and more), each with a planted copy at 1600 px. The sets are made in a
temporary folder, or with `--keep DIR` once into DIR and reused from there on later runs (a set
is there when its `<name>.planted.json` is: it is written last). `--runs 0` only makes them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHASHDB = str(Path(sys.executable).with_name("phashdb"))


def timed(argv: list[str], env: dict | None = None, ok=(0, 1)) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    took = time.perf_counter() - t
    if done.returncode not in ok:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]}")
    return took, done.stdout


def phashdb_job(folder: Path, index: Path, *, fresh: bool) -> tuple[float, list[list[str]]]:
    if fresh:
        shutil.rmtree(index, ignore_errors=True)
    env = {**os.environ, "PHASHDB_URL": str(index)}
    script = f"{PHASHDB} -q ingest {folder} >/dev/null && {PHASHDB} dedupe --json"
    took, out = timed(["sh", "-c", script], env)
    return took, [[i["path"] for i in g["images"]] for g in json.loads(out)]


def czkawka_job(folder: Path, work: Path) -> tuple[float, list[list[str]]]:
    shutil.rmtree(work / "cache", ignore_errors=True)  # cold: czkawka keeps hashes in its cache
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"), "XDG_CONFIG_HOME": str(work)}
    took, out = timed(
        ["czkawka_cli", "image", "-d", str(folder)], env, ok=(0, 11)
    )  # 11: found some
    groups, group = [], []
    for line in out.splitlines():
        m = re.match(r'^"?(/[^"]+?)"?\s+-\s', line)
        if m:
            group.append(m.group(1))
        elif group:
            groups.append(group)
            group = []
    return took, groups + ([group] if group else [])


def imagehash_job(folder: Path) -> tuple[float, list[list[str]]]:
    took, out = timed([sys.executable, str(HERE / "imagehash_peer.py"), str(folder)])
    return took, json.loads(out)


def recall(groups: list[list[str]], planted: dict[str, str]) -> float:
    where = {p: n for n, g in enumerate(groups) for p in g}
    found = sum(1 for c, o in planted.items() if c in where and where.get(o) == where[c])
    return found / len(planted) if planted else 1.0


def kept(folder: Path, make) -> tuple[Path, dict[str, str]]:
    """The set in folder, made by make(folder) unless an earlier run finished it there."""
    listing = folder.with_name(folder.name + ".planted.json")
    if not listing.exists():
        shutil.rmtree(folder, ignore_errors=True)  # half made by a run that was stopped
        listing.write_text(json.dumps(make(folder), indent=1))
    return folder, json.loads(listing.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sets", default="250,1200")
    parser.add_argument("--large", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="make the sets once into this folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="phashdb-peers-"))
    where = args.keep.resolve() if args.keep else work
    sets = {}
    sys.path.insert(0, str(HERE))
    import large_set
    import small_sets

    for count in (int(c) for c in args.sets.split(",") if c):
        sets[f"{count} small"] = kept(
            where / f"s{count}", lambda f, n=count: small_sets.make(args.photos, f, n)
        )
    if args.large:
        sets[f"{args.large * 2} 12 MP"] = kept(
            where / f"large{args.large}", lambda f: large_set.make(args.photos, f, args.large)
        )
    tools = {
        "phashdb": lambda f: phashdb_job(f, work / "index", fresh=True),
        "phashdb re-run": lambda f: phashdb_job(f, work / "index", fresh=False),
        "imagehash script": imagehash_job,
    }
    if shutil.which("czkawka_cli"):
        tools["czkawka_cli"] = lambda f: czkawka_job(f, work)
    else:
        print("czkawka_cli is not on PATH: `cargo install czkawka_cli` to compare with it")
    for name, (folder, planted) in sets.items() if args.runs else ():
        times = {tool: [] for tool in tools}
        found = {}
        for _ in range(args.runs):
            for tool, job in tools.items():  # in turn: phashdb's re-run follows its cold run
                took, groups = job(folder)
                times[tool].append(took)
                found[tool] = recall(groups, planted)
        base = statistics.median(times["phashdb"])
        print(f"\n{name} ({len(planted)} planted copies), load {os.getloadavg()[0]:.2f}")
        for tool, ts in times.items():
            m = statistics.median(ts)
            print(f"  {tool:18} {m:7.3f} s  {m / base:5.2f}x phashdb's cold time  "
                  f"recall {found[tool]:.0%}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
