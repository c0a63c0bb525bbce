"""What the embedded index's stored-key search (Store.search_keys) costs with every image keyed.

    python benchmarks/keys_search.py [--size 1000000] [--keys 9] [--turns 3]

Stores --size random hashes (Index.add_hashes), then gives every row a descriptor of layout v3
holding --keys random keys (window names, as phashdb.windows keeps them) in one SQL statement.
Then, taking turns, each in a new process (as a `phashdb check` is):

- before: the keys as branch `windows` kept them (phashdb/embedded/keys.py at 0c7ca2f: every
  keyed row's descriptor read into memory, the keys' hashes scanned);
- after: the keys' band tables (keys.bin, built once beforehand, loaded by each process);

the time of the process's first search_keys (one query, radius 8: a stored key with 3 bits
flipped), the median of the 20 searches after it, and the process's peak resident memory.
Prints medians over the turns and their ratios (the machine may be shared: the ratio is the
figure).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import phashdb
from phashdb import descriptor
from phashdb.embedded import EmbeddedStore

BEFORE = "0c7ca2f"  # branch windows: StoredKeys holding the keyed rows' descriptors
RADIUS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=9)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("WAY", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], Path(args.one[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "index"
        t = time.perf_counter()
        make(folder, args.size, args.keys)
        print(f"stored {args.size:,} images x {args.keys} keys: {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        store = EmbeddedStore(folder)
        store.search_keys(np.zeros(1, np.uint64), RADIUS)  # builds keys.bin
        store.close()
        print(f"keys.bin built once: {time.perf_counter() - t:.1f} s")
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for turn in range(args.turns):
            for way in ("before", "after") if turn % 2 == 0 else ("after", "before"):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", way, str(folder)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs[way].append(json.loads(out.stdout))
                print(way, runs[way][-1], flush=True)
        report(runs)


def make(folder: Path, size: int, keys: int) -> None:
    """`size` images of random hashes, each with `keys` random window keys."""
    rng = np.random.default_rng(8)
    hashes = rng.integers(0, 2**64, size, dtype=np.uint64)
    with phashdb.open(folder) as index:
        index.add_hashes(zip((f"i{i:07d}" for i in range(size)), hashes.tolist()))
    names = range(len(descriptor.KEYS) - keys + 1, len(descriptor.KEYS) + 1)
    key_sql = " || ".join(f"x'{n:02x}' || randomblob({descriptor.KEY_SIZE - 1})" for n in names)
    db = sqlite3.connect(folder / "index.sqlite3")
    # || makes text of blobs: cast back, as the descriptor column holds blobs.
    stored = f"CAST(randomblob({descriptor.STORED_SIZE}) || {key_sql} AS BLOB)"
    db.execute(f"UPDATE images SET descriptor = {stored}")
    db.commit()
    db.close()


def one(way: str, folder: Path) -> dict:
    """A new process's first search_keys and the median of the next 20 (seconds)."""
    store = EmbeddedStore(folder)
    seq, stored = store._db.sql(
        "SELECT seq, descriptor FROM images ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    key = int.from_bytes(stored[descriptor.STORED_SIZE + 1 : descriptor.STORED_SIZE + 9], "big")
    query = np.array([key ^ 0b10110], dtype=np.uint64)
    search = store.search_keys if way == "after" else old_keys(store).search
    t = time.perf_counter()
    found = search(query, RADIUS)
    first = time.perf_counter() - t
    times = []
    for _ in range(20):
        t = time.perf_counter()
        again = search(query, RADIUS)
        times.append(time.perf_counter() - t)
    assert len(found[0]) >= 1 and sorted(found[1].tolist()) == sorted(again[1].tolist())
    store.close()
    return {"first": first, "next": statistics.median(times), "peak_mb": peak_mb()}


def peak_mb() -> int:
    """This process's peak resident memory: VmHWM, not getrusage's ru_maxrss, which a child
    inherits from the parent it was forked from (the 2.4 GB of the parent's store)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def old_keys(store: EmbeddedStore):
    """StoredKeys as branch `windows` had it, loaded from git beside the current package."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{BEFORE}:phashdb/embedded/keys.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    spec = importlib.util.spec_from_loader("phashdb.embedded.keys_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "phashdb.embedded"
    exec(compile(source, "keys_before.py", "exec"), module.__dict__)
    return module.StoredKeys(store._db)


def report(runs: dict[str, list[dict]]) -> None:
    med = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in runs.items()}
    for what in ("first", "next"):
        b, a = med["before"][what], med["after"][what]
        print(f"{what} search: before {b * 1e3:.2f} ms, after {a * 1e3:.2f} ms, ratio {b / a:.1f}x")
    b, a = med["before"]["peak_mb"], med["after"]["peak_mb"]
    print(f"peak memory: before {b:.0f} MB, after {a:.0f} MB")


if __name__ == "__main__":
    main()
