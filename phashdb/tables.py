"""In-memory band tables: the embedded index's search structure, and its file on disk.

For every band, `orders[b]` lists the rows sorted by that band's value and `starts[b][v]` is
where value v begins in that list (a counting sort), so a probe is two array reads, and a whole
batch of probes is a handful of numpy operations. The file is one flat binary that is memory-
mapped on open: opening a 10M-hash index reads a header, not 10M rows.
"""

from __future__ import annotations

import json
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import _hamming
from .bands import BandLayout, flip_masks

MAGIC = b"PHDBTAB2"
# Every array starts on a cache line, so the C loops read aligned words.
ALIGN = 64
# Beyond this many bits a band's start table (4 bytes per value) costs more memory than it saves.
MAX_TABLE_BITS = 24
# What a probe and a candidate cost, in units of a scan's per-hash work (the scan reads 10M
# hashes in 3 ms on 2 cores; a probe, a cache miss, costs ~50 ns; a candidate ~1 ns): fitted by
# least squares to forced probing at radii 8 to 16 on 10M uniform and clustered hashes. Only the
# ratios matter, for the probe-or-scan choice.
PROBE_COST, CANDIDATE_COST = 157.0, 4.0
# Fewer hashes than this are scanned in one thread: starting another would cost more.
SCAN_SHARE = 1 << 16
# Read once: os.cpu_count() reads a file in /sys, a twentieth of a small query's time.
CORES = os.cpu_count() or 1


@dataclass
class BandTables:
    """Rows (`keys`, `hashes`, ids) indexed by every band of `layout`."""

    layout: BandLayout
    keys: np.ndarray  # int64, one per row
    hashes: np.ndarray  # uint64, one per row
    orders: list[np.ndarray]  # per band: row numbers sorted by band value
    starts: list[np.ndarray]  # per band: 2**width + 1 offsets into orders[b]
    # Per band: the hashes in orders[b]'s order, so that the candidates of a probe are read
    # from one contiguous run instead of gathered from all over `hashes`.
    sorted_hashes: list[np.ndarray]
    # The rows' ids, UTF-8, end to end; row i's id ends at id_ends[i]. Kept here so that a
    # query answers with ids without a database read per match.
    id_blob: np.ndarray  # uint8
    id_ends: np.ndarray  # int64, one per row

    @classmethod
    def build(
        cls, keys: np.ndarray, hashes: np.ndarray, layout: BandLayout,
        id_blob: np.ndarray, id_ends: np.ndarray,
    ) -> BandTables:
        if max(layout.widths) > MAX_TABLE_BITS:
            raise ValueError(
                f"'bands' of the embedded index must be at most {MAX_TABLE_BITS} bits wide, "
                f"got {list(layout.widths)}"
            )
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        orders, starts = [], []
        for width, values in zip(layout.widths, layout.split(hashes)):
            orders.append(np.argsort(values, kind="stable").astype(np.int32))
            counts = np.bincount(values, minlength=1 << width)
            starts.append(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))
        sorted_hashes = [hashes[order] for order in orders]
        return cls(layout, keys, hashes, orders, starts, sorted_hashes, id_blob, id_ends)

    def __len__(self) -> int:
        return len(self.keys)

    def search(
        self, queries: np.ndarray, radius: int, *, strategy: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row within `radius` of each query, exactly: (query numbers, row numbers,
        distances). Each query probes the bands or scans all rows, whichever costs less: first
        by the estimate for uniform hashes, then by the candidates its probes would really read
        (clustered hashes make some band values far fuller than others). `strategy` "probe"
        or "scan" forces one (the tests check both against each other)."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        n = len(self)
        if n == 0 or len(queries) == 0:
            return _empty()
        if strategy == "scan":
            return scan(self.hashes, queries, radius)
        values = self.layout.split(queries)
        dense = np.zeros(len(queries), dtype=bool)
        if strategy == "auto":
            probes = PROBE_COST * self.layout.probe_count(radius)
            if probes + CANDIDATE_COST * self.layout.expected_candidates(radius, n) >= n:
                return scan(self.hashes, queries, radius)
            dense = probes + CANDIDATE_COST * self._candidates(values, radius) >= n
        if not dense.any():
            return self._probe(queries, values, radius)
        parts = [
            self._probe(queries[~dense], values[:, ~dense], radius),
            scan(self.hashes, queries[dense], radius),
        ]
        numbers = [np.flatnonzero(~dense), np.flatnonzero(dense)]
        return (
            np.concatenate([number[q] for number, (q, _, _) in zip(numbers, parts)]),
            np.concatenate([rows for _, rows, _ in parts]),
            np.concatenate([d for _, _, d in parts]),
        )

    def _candidates(self, values: np.ndarray, radius: int) -> np.ndarray:
        """How many rows the probes of each query (its band `values`) would read."""
        total = np.zeros(values.shape[1], dtype=np.int64)
        for band, masks, _, _ in probe_plan(self.layout, radius):
            _hamming.count(values[band], masks, self.starts[band], total)
        return total

    def _probe(
        self, queries: np.ndarray, values: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`search` by probing the bands: each probed band's rows with a band value within the
        band's probe radius of the query's, those within `radius` of the query kept once."""
        plan = probe_plan(self.layout, radius)

        def share(lo: int, hi: int) -> np.ndarray:
            found = [
                _hamming.probe(
                    queries[lo:hi], np.ascontiguousarray(values[band, lo:hi]), masks,
                    self.starts[band], self.orders[band], self.sorted_hashes[band], radius,
                    earlier, earlier_radii,
                )
                for band, masks, earlier, earlier_radii in plan
            ]
            triples = _triples(found)
            triples[:, 0] += lo
            return triples

        return _in_threads(share, len(queries), 1)

    def ids(self, rows: np.ndarray) -> list[str]:
        """The ids of some rows: copied out end to end by C, decoded as one string and split
        at the NULs put after each; only when an id holds a NUL itself (no path can) is each
        decoded on its own."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        ids = _hamming.ids(self.id_blob, self.id_ends, rows).decode(*UTF8).split("\0")
        if len(ids) == len(rows) + 1:
            return ids[:-1]
        return decode_ids(*id_slices(self.id_blob, self.id_ends, rows))

    def save(self, path: Path, extra: dict) -> None:
        """Write the tables to `path` atomically (a reader sees the old file or the new one)."""
        arrays = {"keys": self.keys, "hashes": self.hashes}
        arrays["id_blob"], arrays["id_ends"] = self.id_blob, self.id_ends
        for b, (order, start, sh) in enumerate(zip(self.orders, self.starts, self.sorted_hashes)):
            arrays[f"order{b}"], arrays[f"start{b}"], arrays[f"sorted{b}"] = order, start, sh
        header = {"widths": list(self.layout.widths), "extra": extra, "arrays": {}}
        offset = 0
        for name, a in arrays.items():
            header["arrays"][name] = [str(a.dtype), len(a), offset]
            offset += a.nbytes + -a.nbytes % ALIGN
        head = json.dumps(header).encode()
        base = len(MAGIC) + 8 + len(head)
        base += -base % ALIGN
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(MAGIC + len(head).to_bytes(8, "little") + head)
            f.write(b"\0" * (base - f.tell()))
            for a in arrays.values():
                f.write(np.ascontiguousarray(a).tobytes() + b"\0" * (-a.nbytes % ALIGN))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> tuple[BandTables, dict]:
        """Memory-map tables written by `save`; returns them and the `extra` saved with them."""
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise ValueError(f"{path} is not a phashdb band table file of this version")
            head_len = int.from_bytes(f.read(8), "little")
            head = json.loads(f.read(head_len))
            base = len(MAGIC) + 8 + head_len
            base += -base % ALIGN
            whole = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        arrays = {
            name: np.frombuffer(whole, dtype=dtype, count=length, offset=base + offset)
            for name, (dtype, length, offset) in head["arrays"].items()
        }
        layout = BandLayout(tuple(head["widths"]))
        count = len(layout.widths)
        tables = cls(
            layout,
            arrays["keys"],
            arrays["hashes"],
            [arrays[f"order{b}"] for b in range(count)],
            [arrays[f"start{b}"] for b in range(count)],
            [arrays[f"sorted{b}"] for b in range(count)],
            arrays["id_blob"],
            arrays["id_ends"],
        )
        return tables, head["extra"]


@lru_cache(maxsize=256)
def probe_plan(layout: BandLayout, radius: int) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """What a query at `radius` probes, band by band: (band, its XOR masks, the bit masks and
    probe radii of the bands probed before it). Made once per radius, not once per query."""
    probed = [(b, r) for b, r in enumerate(layout.probe_radii(radius)) if r >= 0]
    plan = []
    for i, (band, r) in enumerate(probed):
        earlier = np.array([layout.masks[b] for b, _ in probed[:i]], dtype=np.uint64)
        earlier_radii = np.array([r for _, r in probed[:i]], dtype=np.int32)
        earlier.flags.writeable = earlier_radii.flags.writeable = False  # shared by all callers
        plan.append((band, flip_masks(layout.widths[band], r), earlier, earlier_radii))
    return plan


# Ids are file paths, which need not be UTF-8: such bytes travel as os.fsdecode gives them.
UTF8 = ("utf-8", "surrogateescape")


def encode_ids(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids as (blob, ends), the layout BandTables keeps them in."""
    encoded = [i.encode(*UTF8) for i in ids]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, np.cumsum([len(e) for e in encoded], dtype=np.int64)


def decode_ids(blob: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Ids laid end to end (`blob`, each one's length) back into strings. A large answer is
    thousands of ids, so they are decoded as one string and split at NULs put between them;
    only when an id holds a NUL itself (no path can) is each decoded on its own."""
    if not (blob == 0).any():
        joined = np.zeros(len(blob) + len(lengths), np.uint8)
        joined[np.arange(len(blob)) + np.repeat(np.arange(len(lengths)), lengths)] = blob
        return joined.tobytes().decode(*UTF8).split("\0")[:-1]
    data, ends = blob.tobytes(), np.cumsum(lengths).tolist()
    return [data[a:b].decode(*UTF8) for a, b in zip([0, *ends[:-1]], ends)]


def id_slices(blob: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of some rows' ids, end to end, and each one's length (no Python loop)."""
    rows = np.asarray(rows, dtype=np.int64)
    stop = ends[rows]
    start = np.where(rows > 0, ends[np.maximum(rows - 1, 0)], 0)
    lengths = stop - start
    total = np.cumsum(lengths)
    flat = np.arange(total[-1] if len(total) else 0) - np.repeat(total - lengths - start, lengths)
    return blob[flat], lengths


def scan(hashes: np.ndarray, queries: np.ndarray, radius: int):
    """Brute force: (query numbers, row numbers, distances) of every row within `radius`."""
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    if len(hashes) == 0 or len(queries) == 0:
        return _empty()

    def share(lo: int, hi: int) -> np.ndarray:
        triples = _triples([_hamming.scan(hashes[lo:hi], queries, radius)])
        triples[:, 1] += lo
        return triples

    return _in_threads(share, len(hashes), SCAN_SHARE)


def _in_threads(share, n: int, least: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`share(lo, hi)` over 0..n cut into one piece per core (pieces of at least `least`),
    run at once in threads (the C loops release the GIL), as (query numbers, row numbers,
    distances)."""
    workers = max(1, min(CORES, n // least))
    cuts = [n * w // workers for w in range(workers + 1)]
    if workers > 1:
        parts = list(_threads().map(share, cuts[:-1], cuts[1:]))
    else:
        parts = [share(0, n)]
    triples = np.concatenate(parts)
    return triples[:, 0], triples[:, 1], triples[:, 2].astype(np.int8)


def _triples(found: list[bytes]) -> np.ndarray:
    """The (query, row, distance) triples that _hamming returned, as one writable array."""
    return np.frombuffer(b"".join(found), dtype=np.int64).reshape(-1, 3).copy()


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _threads() -> ThreadPoolExecutor:
    """One thread per core, kept for the life of the process (threads made afresh for every
    query scanned slower by a third); a forked child makes its own."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(CORES))
    return _pool[1]


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8)
