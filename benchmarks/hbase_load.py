"""Online load rate on the real HBase test cluster: this tree against another, in one run.

    python benchmarks/hbase_load.py --baseline DIR [--size 1000000] [--preload 100000] [--rounds 2]

DIR is another phashdb source tree (e.g. `git worktree add /tmp/base main`, with its
`phashdb/_hamming*.so` built or copied in). One cluster (tests/hbase/cluster.sh, full JIT, 3 GB
heap) serves every load; after a warm-up load, each round loads the same N uniform random hashes
with `Index.add_hashes` into fresh tables, first with the baseline tree and then with this one,
each in its own Python process. With --preload M, M other hashes are loaded first, untimed, so
that the timed load meets stored ids (the id lookup runs); without, the tables are empty. Prints
hashes/s, the client's CPU and the cluster JVM's CPU per load, and the ratios of this tree's to
the baseline's medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hbase_search import control, cpu_seconds, started_cluster

HERE = Path(__file__).resolve().parent.parent

LOAD = """
import json, resource, sys, time
# The tree on PYTHONPATH, not the editable install's finder
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
import numpy as np
import phashdb
url, size, preload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(3)
hashes = rng.integers(0, 2**64, size + preload, dtype=np.uint64, endpoint=False).tolist()
pairs = [(f"img{i:08d}", h) for i, h in enumerate(hashes)]
with phashdb.open(url) as index:
    if preload:
        index.add_hashes(pairs[size:])
    print("go", flush=True)
    sys.stdin.readline()
    t = time.perf_counter()
    r = resource.getrusage(resource.RUSAGE_SELF)
    index.add_hashes(pairs[:size])
    wall = time.perf_counter() - t
    r2 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r2.ru_utime + r2.ru_stime - r.ru_utime - r.ru_stime
    assert len(index) == size + preload
print(json.dumps({"wall": wall, "cpu": cpu, "tree": phashdb.__file__}), flush=True)
"""


def load(tree: Path, url: str, size: int, preload: int, pid: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(
        [sys.executable, "-c", LOAD, url, str(size), str(preload)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tree,  # `-c` puts the working folder first on sys.path
    )
    assert proc.stdout.readline().strip() == "go"
    server = cpu_seconds(pid)
    proc.stdin.write("\n")
    proc.stdin.flush()
    out = json.loads(proc.stdout.readline())
    out["server"] = cpu_seconds(pid) - server
    if proc.wait() != 0:
        raise RuntimeError(f"the load with {tree} failed")
    if not out["tree"].startswith(str(tree)):
        raise RuntimeError(f"{out['tree']} was loaded, not the tree {tree}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--preload", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from phashdb.hbase.schema import create_tables, drop_tables

    trees = {"baseline": args.baseline.resolve(), "this": HERE}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    with started_cluster() as (info, _):
        base = f"hbase://127.0.0.1:{info['thrift2_port']}"
        runs = [("warm", "this")] + [(f"r{k}", name) for k in range(args.rounds) for name in trees]
        for n, (label, name) in enumerate(runs):
            url = f"{base}/load{n}"
            create_tables(url, regions_per_band=6)
            control(info, "balance")
            size = min(args.size, 200_000) if label == "warm" else args.size
            out = load(trees[name], url, size, args.preload, info["pid"])
            drop_tables(url)
            if label != "warm":
                results[name].append(out)
            print(
                f"{label} {name:>8}: {size / out['wall']:>9,.0f} hashes/s, client CPU "
                f"{out['cpu']:.1f} s, cluster CPU {out['server']:.1f} s",
                flush=True,
            )

    def median(name, key):
        return float(np.median([r[key] for r in results[name]]))

    print(
        f"{args.size:,} hashes into {'empty tables' if not args.preload else f'tables of {args.preload:,}'}"
        f", medians of {args.rounds} rounds:"
    )
    for name in trees:
        print(
            f"  {name:>8}: {args.size / median(name, 'wall'):>9,.0f} hashes/s, client CPU "
            f"{median(name, 'cpu'):.1f} s, cluster CPU {median(name, 'server'):.1f} s"
        )
    print(
        f"this/baseline: load rate {median('baseline', 'wall') / median('this', 'wall'):.2f}x, "
        f"client CPU {median('this', 'cpu') / median('baseline', 'cpu'):.2f}x, "
        f"cluster CPU {median('this', 'server') / median('baseline', 'server'):.2f}x"
    )


if __name__ == "__main__":
    main()
