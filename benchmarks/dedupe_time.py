"""Index.dedupe's time on generated hashes, bare or carrying descriptors.

    python benchmarks/dedupe_time.py [--count 1000000] [--descriptors]

Hashes: clusters of near-duplicates among random ones (near_copies, which
benchmarks/hadoop_dedupe.py uses too) in an embedded index. With --descriptors each row also
gets a random descriptor of layout v2 (not near-constant): the searches and judging a dedupe
does for photos, on hashes.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

import phashdb
from phashdb.records import Image


def near_copies(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random hashes, a fifth of them near-copies (each bit flipped with chance 5%) of
    an earlier one."""
    hashes = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    copies = rng.random(count) < 0.2  # a fifth are near-copies of an earlier hash
    source = rng.integers(0, count, count) % np.maximum(np.arange(count), 1)
    hashes[copies] = hashes[source[copies]]
    for bit in range(64):
        hashes[copies & (rng.random(count) < 0.05)] ^= np.uint64(1 << bit)
    return hashes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--descriptors", action="store_true")
    args = parser.parse_args()
    count, rng = args.count, np.random.default_rng(7)
    hashes = near_copies(count, rng)
    with tempfile.TemporaryDirectory() as tmp, phashdb.open(tmp) as index:
        if args.descriptors:
            from phashdb.descriptor import STORED_SIZE

            blobs = rng.integers(0, 256, (count, STORED_SIZE), dtype=np.uint8)
            blobs[:, 32] = 100  # the quality byte: not near-constant
            index.insert(
                Image(f"i{n}", int(h), descriptor=blobs[n].tobytes()) for n, h in enumerate(hashes)
            )
        else:
            index.add_hashes((f"i{n}", int(h)) for n, h in enumerate(hashes))
        t = time.perf_counter()
        groups = index.dedupe()
        took = time.perf_counter() - t
    kind = "with descriptors" if args.descriptors else "bare"
    print(f"{count} hashes {kind}: Index.dedupe {took:.1f} s, {len(groups)} groups, "
          f"{sum(len(g.pairs) for g in groups)} pairs")  # fmt: skip


if __name__ == "__main__":
    main()
