"""The 30-line peer of issue 25: imagehash's pHash on a process pool, then every pair within
the threshold grouped (numpy, all pairs). Prints the groups as JSON.

    python benchmarks/imagehash_peer.py DIR [THRESHOLD]
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import imagehash
import numpy as np
from PIL import Image

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def phash(path: str) -> int:
    with Image.open(path) as img:
        return int(str(imagehash.phash(img)), 16)


def groups(paths: list[str], hashes: list[int], threshold: int) -> list[list[str]]:
    h = np.array(hashes, dtype=np.uint64)
    close = np.bitwise_count(h[:, None] ^ h[None, :]) <= threshold
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(*np.nonzero(np.triu(close, 1))):
        parent[root(a)] = root(b)
    found: dict[int, list[str]] = {}
    for i, p in enumerate(paths):
        found.setdefault(root(i), []).append(p)
    return [g for g in found.values() if len(g) > 1]


if __name__ == "__main__":
    folder, threshold = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
    paths = sorted(
        os.path.join(d, n) for d, _, names in os.walk(folder) for n in names
        if n.lower().endswith(SUFFIXES)
    )  # fmt: skip
    with ProcessPoolExecutor() as pool:
        hashes = list(pool.map(phash, paths, chunksize=16))
    print(json.dumps(groups(paths, hashes, threshold)))
