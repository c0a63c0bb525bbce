"""In-memory band tables: the embedded index's search structure, and its file on disk.

For every band, `orders[b]` lists the rows sorted by that band's value and `starts[b][v]` is
where value v begins in that list (a counting sort), so a probe is two array reads, and a whole
batch of probes is a handful of numpy operations. The file is one flat binary that is memory-
mapped on open: opening a 10M-hash index reads a header, not 10M rows.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bands import BandLayout, flip_masks

MAGIC = b"PHDBTAB1"
# Beyond this many bits a band's start table (4 bytes per value) costs more memory than it saves.
MAX_TABLE_BITS = 24
# What a probe and a candidate cost, in units of a scan's per-hash work (the threaded scan reads
# 10M hashes in 6.5 ms on 2 cores; a probe costs ~70 ns, a candidate ~15 ns): fitted to the
# 10M-hash benchmark at radii 10 to 16. Only the ratios matter, for the probe-or-scan choice.
PROBE_COST, CANDIDATE_COST = 108.0, 23.0
CACHE_CANDIDATES = 1 << 16


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
        distances). Probes the bands or scans all rows, whichever costs less: first by the
        estimate for uniform hashes, then by the candidates the probes would really read
        (clustered hashes make some band values far fuller than others). `strategy` "probe"
        or "scan" forces one (the tests check both against each other)."""
        queries = np.asarray(queries, dtype=np.uint64)
        layout, n = self.layout, len(self)
        if n == 0 or len(queries) == 0:
            return _empty()
        if strategy == "scan":
            return scan(self.hashes, queries, radius)
        probes = layout.probe_count(radius)
        expected = layout.expected_candidates(radius, n)
        auto = strategy == "auto"
        if auto and PROBE_COST * probes + CANDIDATE_COST * expected >= n:
            return scan(self.hashes, queries, radius)
        # Many queries at once are taken a few at a time: the candidates of a few fit in the
        # CPU's cache, those of thousands do not, and each element would cost more.
        step = max(1, int(CACHE_CANDIDATES / max(expected + probes, 1)))
        if len(queries) > step:
            parts = [
                self.search(queries[lo : lo + step], radius, strategy=strategy)
                for lo in range(0, len(queries), step)
            ]
            return (
                np.concatenate([q + lo for (q, _, _), lo in zip(parts, range(0, len(queries), step))]),
                np.concatenate([r for _, r, _ in parts]),
                np.concatenate([d for _, _, d in parts]),
            )
        runs = self._runs(queries, radius)
        candidates = sum(int(counts.sum()) for _, counts, _ in runs)
        if auto and PROBE_COST * probes + CANDIDATE_COST * candidates / len(queries) >= n:
            return scan(self.hashes, queries, radius)
        qidx, rows, d = self._verify(runs, queries, radius)
        # A row close in several bands is found once per band: keep one of each pair.
        pair = qidx.astype(np.int64) * n + rows
        _, first = np.unique(pair, return_index=True)
        return qidx[first], rows[first], d[first]

    def _runs(self, queries: np.ndarray, radius: int) -> list:
        """Per probed band: where each non-empty probe's rows start in the band's order, how
        many there are, and which query probed."""
        runs = []
        radii = self.layout.probe_radii(radius)
        for band, (width, r, values) in enumerate(
            zip(self.layout.widths, radii, self.layout.split(queries))
        ):
            if r < 0:
                continue
            masks = flip_masks(width, r)
            probes = (values[:, None] ^ masks[None, :]).ravel()
            lo = self.starts[band][probes]
            counts = self.starts[band][probes + 1] - lo
            hit = np.flatnonzero(counts)
            runs.append((band, counts[hit], (lo[hit], hit // len(masks))))
        return runs

    def _verify(self, runs: list, queries: np.ndarray, radius: int):
        """(query numbers, row numbers, distances) of the candidates the runs cover that lie
        within `radius`."""
        qparts, rparts, dparts = [], [], []
        for band, counts, (lo, owner) in runs:
            # Each [lo, lo + count) run into its positions, without a Python loop.
            ends = np.cumsum(counts)
            flat = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts - lo, counts)
            q = np.repeat(owner, counts)
            d = np.bitwise_count(self.sorted_hashes[band][flat] ^ queries[q])
            keep = np.flatnonzero(d <= radius)
            qparts.append(q[keep])
            rparts.append(self.orders[band][flat[keep]].astype(np.int64))
            dparts.append(d[keep].astype(np.int8))
        if not rparts:
            return _empty()
        return np.concatenate(qparts), np.concatenate(rparts), np.concatenate(dparts)

    def ids(self, rows: np.ndarray) -> list[str]:
        """The ids of some rows."""
        blob, lengths = id_slices(self.id_blob, self.id_ends, rows)
        data, ends = blob.tobytes(), np.cumsum(lengths).tolist()
        return [data[a:b].decode() for a, b in zip([0, *ends[:-1]], ends)]

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
            offset += a.nbytes
        head = json.dumps(header).encode()
        base = len(MAGIC) + 8 + len(head)
        base += -base % 64
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(MAGIC + len(head).to_bytes(8, "little") + head)
            f.write(b"\0" * (base - f.tell()))
            for a in arrays.values():
                f.write(np.ascontiguousarray(a).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> tuple[BandTables, dict]:
        """Memory-map tables written by `save`; returns them and the `extra` saved with them."""
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise ValueError(f"{path} is not a phashdb band table file")
            head_len = int.from_bytes(f.read(8), "little")
            head = json.loads(f.read(head_len))
        base = len(MAGIC) + 8 + head_len
        base += -base % 64
        arrays = {}
        for name, (dtype, length, offset) in head["arrays"].items():
            arrays[name] = (
                np.memmap(path, dtype=dtype, mode="r", offset=base + offset, shape=(length,))
                if length
                else np.empty(0, dtype)
            )
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


def encode_ids(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids as (blob, ends), the layout BandTables keeps them in."""
    encoded = [i.encode() for i in ids]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, np.cumsum([len(e) for e in encoded], dtype=np.int64)


def id_slices(blob: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of some rows' ids, end to end, and each one's length (no Python loop)."""
    rows = np.asarray(rows, dtype=np.int64)
    stop = ends[rows]
    start = np.where(rows > 0, ends[np.maximum(rows - 1, 0)], 0)
    lengths = stop - start
    total = np.cumsum(lengths)
    flat = np.arange(total[-1] if len(total) else 0) - np.repeat(total - lengths - start, lengths)
    return blob[flat], lengths


def scan(hashes: np.ndarray, queries: np.ndarray, radius: int, chunk: int = 1 << 19):
    """Brute force: (query numbers, row numbers, distances) of every row within `radius`.
    Chunks stay in cache; on several cores they are shared out to threads (numpy's array
    operations run without the GIL)."""
    queries = np.asarray(queries, dtype=np.uint64)
    if len(hashes) == 0 or len(queries) == 0:
        return _empty()

    def part(lo: int) -> list:
        block, out = hashes[lo : lo + chunk], []
        for qi, q in enumerate(queries):
            d = np.bitwise_count(block ^ q)
            rows = np.flatnonzero(d <= radius)
            if len(rows):
                out.append((np.full(len(rows), qi, np.int64), rows + lo, d[rows].astype(np.int8)))
        return out

    starts = range(0, len(hashes), chunk)
    workers = min(os.cpu_count() or 1, len(starts))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = [p for ps in pool.map(part, starts) for p in ps]
    else:
        parts = [p for lo in starts for p in part(lo)]
    if not parts:
        return _empty()
    return tuple(np.concatenate(column) for column in zip(*parts))


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8)
