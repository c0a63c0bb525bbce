"""Brute force over integer rows, and the threads the search's C loops run in.

`scan` is the search's definition (every row within the radius, exactly); the band tables are
an optimisation of it and fall back to it when probing would read more than a scan.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .. import _hamming

if TYPE_CHECKING:  # imported when a search first needs threads: a `check` does not
    from concurrent.futures import ThreadPoolExecutor

# Fewer hashes than this are scanned in one thread: starting another would cost more.
SCAN_SHARE = 1 << 16
# Read once: os.cpu_count() reads a file in /sys, a twentieth of a small query's time.
CORES = os.cpu_count() or 1


def scan(hashes: np.ndarray, queries: np.ndarray, radius: int):
    """Brute force: (query numbers, row numbers, distances) of every row within `radius`."""
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    if len(hashes) == 0 or len(queries) == 0:
        return empty()

    def share(lo: int, hi: int) -> np.ndarray:
        triples = triples_of([_hamming.scan(hashes[lo:hi], queries, radius)])
        triples[:, 1] += lo
        return triples

    return in_threads(share, len(hashes), SCAN_SHARE)


def in_threads(share, n: int, least: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`share(lo, hi)` over 0..n cut into one piece per core (pieces of at least `least`),
    run at once in threads (the C loops release the GIL), as (query numbers, row numbers,
    distances)."""
    workers = max(1, min(CORES, n // least))
    cuts = [n * w // workers for w in range(workers + 1)]
    if workers > 1:
        parts = list(threads().map(share, cuts[:-1], cuts[1:]))
    else:
        parts = [share(0, n)]
    triples = np.concatenate(parts)
    return triples[:, 0], triples[:, 1], triples[:, 2].astype(np.int8)


def triples_of(found: list[bytes]) -> np.ndarray:
    """The (query, row, distance) triples that _hamming returned, as one writable array."""
    return np.frombuffer(b"".join(found), dtype=np.int64).reshape(-1, 3).copy()


_pool: tuple[int, ThreadPoolExecutor] | None = None


def threads() -> ThreadPoolExecutor:
    """One thread per core, kept for the life of the process (threads made afresh for every
    query scanned slower by a third); a forked child makes its own."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(CORES))
    return _pool[1]


def empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8)
