"""The band tables: the search structure over integer rows (what a row stands for is kept beside
them, tables/ids.py; their file on disk is tables/file.py).

For every band, `orders[b]` lists the rows sorted by that band's value and `starts[b][v]` is
where value v begins in that list (a counting sort), so a probe is two array reads, and a whole
batch of probes is a handful of numpy operations. The C loops check every start and row number
they read, whatever a file said, and raise `Damaged` instead of reading outside an array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _hamming
from ..bands import BandLayout, probe_plan
from .scan import empty, in_threads, scan, triples_of

# The rows' numbers are int32 in the band orders.
MAX_ROWS = 2**31 - 1
# The damage that loading, `search` and reading ids refuse (raised by the C loops too).
Damaged = _hamming.Damaged
# Beyond this many bits a band's start table (4 bytes per value) costs more memory than it saves.
MAX_TABLE_BITS = 24
# What a probe and a candidate cost, in units of a scan's per-hash work (the scan reads 10M
# hashes in 3 ms on 2 cores; a probe, a cache miss, costs ~50 ns; a candidate ~1 ns): fitted by
# least squares to forced probing at radii 8 to 16 on 10M uniform and clustered hashes. Only the
# ratios matter, for the probe-or-scan choice.
PROBE_COST, CANDIDATE_COST = 157.0, 4.0


@dataclass
class BandTables:
    """Rows 0..n-1 (`hashes[i]` is row i's hash) indexed by every band of `layout`."""

    layout: BandLayout
    hashes: np.ndarray  # uint64, one per row
    orders: list[np.ndarray]  # per band: row numbers sorted by band value
    starts: list[np.ndarray]  # per band: 2**width + 1 offsets into orders[b]
    # Per band: the hashes in orders[b]'s order, so that the candidates of a probe are read
    # from one contiguous run instead of gathered from all over `hashes`.
    sorted_hashes: list[np.ndarray]

    @classmethod
    def build(cls, hashes: np.ndarray, layout: BandLayout) -> BandTables:
        """Tables over `hashes`, row i being hashes[i]."""
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        orders, starts, sorted_hashes = [], [], []
        for order, start, sorted_band in band_arrays(hashes, layout):
            orders.append(order)
            starts.append(start)
            sorted_hashes.append(sorted_band)
        return cls(layout, hashes, orders, starts, sorted_hashes)

    def __len__(self) -> int:
        return len(self.hashes)

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
            return empty()
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
            ]  # fmt: skip
            triples = triples_of(found)
            triples[:, 0] += lo
            return triples

        return in_threads(share, len(queries), 1)


def band_arrays(hashes: np.ndarray, layout: BandLayout):
    """Each band's (order, starts, sorted hashes) over `hashes` (uint64), one band at a time:
    a caller may write a band away before the next is made (tables/file.py's `save_built`)."""
    if max(layout.widths) > MAX_TABLE_BITS:
        raise ValueError(
            f"'bands' of the embedded index must be at most {MAX_TABLE_BITS} bits wide, "
            f"got {list(layout.widths)}"
        )
    # One band at a time, not layout.split of all: at 10^8 hashes its uint64 temporaries of
    # every band at once took 5 GB.
    for width, shift in zip(layout.widths, layout.shifts):
        values = ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.uint32)
        order = np.argsort(values, kind="stable").astype(np.int32)
        counts = np.bincount(values, minlength=1 << width)
        del values
        yield order, np.concatenate(([0], np.cumsum(counts))).astype(np.int32), hashes[order]
