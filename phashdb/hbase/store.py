"""The HBase store: the index's storage seam over two HBase tables (layout in `keys`), each a
`table.Table`: the band table, searched here, and the record table (`records.RecordTable`).
Writes are `writes.Writer`'s, admission between writers `claims.Admission`'s.

A search sends every probe of every query in one Thrift2 `getMultiple` (split over the pool
only when it is large), then reads the candidates' records in a second one: two round trips
whatever the radius.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..bands import BandLayout, probe_plan
from ..confirm import WIDE_KEYS
from ..descriptor import stored_keys
from ..errors import StoreError
from ..keyrows import key_rows, named, near_keys, within_reach
from ..records import Image, file_fields
from . import keys, thrift
from .claims import Admission, orphans
from .keys import BAND_FAMILY, RECORD_FAMILY
from .pack import pack
from .records import RecordTable
from .schema import record_table
from .table import Table
from .thrift import HBaseOptions, Pool, all_of, column_prefix_filter, hamming_filter
from .writes import Writer

log = logging.getLogger(__name__)


class HBaseStore:
    """Storage of an index in HBase, reached through its Thrift2 server."""

    @classmethod
    def from_url(cls, url: str, **options) -> HBaseStore:
        return cls(HBaseOptions.from_url(url, **options))

    def __init__(self, options: HBaseOptions) -> None:
        self.options = options
        self.url = f"hbase://{options.host}:{options.server}/{options.table}"
        self._read: dict = {}  # the states the last `search` read (search_keys reuses them)
        self.home = (
            Path.home()
            / ".local"
            / "share"
            / "phashdb"
            / f"hbase-{options.host}-{options.server}-{options.table}"
        )
        self.pool = Pool(options)
        self._threads = ThreadPoolExecutor(options.pool_size, thread_name_prefix="phashdb-hbase")
        # Whether the region servers filter band entries by distance (HammingFilter); turned
        # off by the first search a cluster without phashdb's jar refuses.
        self.server_filter = bool(options.server_filter)
        try:
            self.bands = Table(options.table, BAND_FAMILY, self.pool, self._threads)
            # the old naming's record table, when the index has one (schema.record_table)
            name = record_table(self.pool, options)
            self.records = RecordTable(
                Table(name, RECORD_FAMILY, self.pool, self._threads), self.url
            )
            settings = self._checked_settings()
        except BaseException:
            self._shut()
            raise
        self.layout = BandLayout(tuple(settings["bands"]))
        self.row_bits = settings["row_bits"]
        # Whether every wide key has entries in the wide keys' own band rows (layout 4); the
        # wide keys of a layout-3 index are searched in the rows of every key, as it was.
        self.wide_rows = settings["hbase_layout"] >= 4
        self.writer = Writer(
            self.bands, self.records, self.layout, self.row_bits, options.batch_size
        )
        self.admission = Admission(self.records, self.writer, self.candidates)

    def _checked_settings(self) -> dict:
        """The settings, once both tables are known to exist and to be phashdb's."""
        for table in (self.bands, self.records.table):
            if not table.exists():
                raise StoreError(
                    f"{self.url}: table {table.name.decode()!r} does not exist: create the "
                    f"tables with `phashdb --db '{self.url}' init` or with the HBase shell "
                    "script `phashdb init --print-schema` prints"
                )
        settings = self.read_settings()
        if settings.get("hbase_layout") not in keys.READS_LAYOUTS:
            raise StoreError(
                f"{self.url}: the tables were not made by this phashdb (no band layout of "
                f"layout version {' or '.join(map(str, keys.READS_LAYOUTS))}): create new "
                "tables with `phashdb init`"
            )
        return settings

    # --- settings and decisions (the record table's) --------------------------------------

    def read_settings(self) -> dict:
        return self.records.read_settings()

    def write_settings(self, settings: dict) -> None:
        self.records.write_settings(settings)

    def decisions(self, ids: Iterable[str] | None) -> list[tuple[str, str, float]]:
        """(a, b, when made) of every decision about any of `ids` (None: every decision)."""
        return self.records.decisions(ids)

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        self.records.put_decisions(pairs, made)

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        return self.records.delete_decisions(pairs)

    # --- reads ----------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, radius: int, *, records: dict[str, Image] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances). Claims and orphans (band cells without a record) are left out. The
        candidates' records are read to tell: they go into `records` (id -> Image) if given."""
        qidx, numbers, dists = self.candidates(np.asarray(queries, dtype=np.uint64), radius)
        read = self.records.read_numbers(set(numbers.tolist()))
        self._read = read
        keep = [i for i, n in enumerate(numbers.tolist()) if read.get(n, (None,))[0] is not None]
        ids = np.array([read[n][0].id for n in numbers[keep].tolist()], dtype=object)
        if records is not None:
            records.update((r.id, r) for r, _ in read.values() if r is not None)
        return qidx[keep], ids, dists[keep]

    def probes(self, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
        """(query number, band, band value) of every probe at `radius` (bands.probe_plan's,
        as the embedded index's tables probe)."""
        out = []
        values = self.layout.split(np.asarray(queries, dtype=np.uint64))
        for band, masks, _, _ in probe_plan(self.layout, radius):
            masks = masks.tolist()
            for q, v in enumerate(values[band].tolist()):
                out.extend((q, band, v ^ m) for m in masks)
        return out

    def search_keys(
        self,
        queries: np.ndarray,
        radius: int,
        *,
        records: dict[str, Image] | None = None,
        names: frozenset[str] | None = None,
        reach: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every stored key within `radius` of each query, and a wide key (WIDE_KEYS) up to
        `reach` when given, exactly: (query numbers, ids, key names, distances); only those
        named in `names` (None: all). The keys' band cells give the candidates, in one round
        of calls: the rows of every key (keys.KEY_BANDS) probed at `radius`, the wide keys'
        own (keys.WIDE_KEY_BANDS) at the reach; their records, read to tell (into `records`
        if given), say which keys they hold now. In a layout-3 index, whose wide keys have no
        rows of their own, the rows of every key are probed at the reach."""
        queries = np.asarray(queries, dtype=np.uint64)
        far = radius if reach is None else max(radius, reach)
        wide_only = names is not None and names <= WIDE_KEYS
        if not self.wide_rows:
            plans = [(keys.KEY_BANDS, far)]
        else:
            plans = [(keys.WIDE_KEY_BANDS, far)] if far > radius or wide_only else []
            plans += [] if wide_only else [(keys.KEY_BANDS, radius)]
        _, numbers, _ = self._candidates(queries, plans)
        wanted = set(numbers.tolist())
        # A record the check's search read a moment ago (the very one in `records`) is not
        # read again: a check reads each record once, and stays one round of calls fewer.
        last = self._read
        held = records or {}
        known = {
            n: last[n] for n in wanted
            if last.get(n, (None,))[0] is not None and held.get(last[n][0].id) is last[n][0]
        }  # fmt: skip
        read = {**known, **self.records.read_numbers(wanted - set(known))}
        found = [r for r, _ in read.values() if r is not None]
        if records is not None:
            records.update((r.id, r) for r in found)
        near = near_keys(queries, far, *key_rows((r.id, r.descriptor) for r in found))
        return named(within_reach(near, radius, far), names)

    def index_keys(self) -> int:
        """Write the key band cells of every stored record with keys (an index of format 1
        has none): how many images have keys."""
        keyed = [(n, i) for n, i in self.records.scan() if stored_keys(i.descriptor)]
        for lo in range(0, len(keyed), self.options.batch_size):
            part = keyed[lo : lo + self.options.batch_size]
            self.writer.write_key_cells(part, self.records.allocate(1)[0])
        return len(keyed)

    def candidates(
        self, queries: np.ndarray, radius: int, first_band: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band entries within `radius` of each query, whatever their records say: (query
        numbers, image numbers, distances), one per (query, number); of the keys' band cells
        when `first_band` is keys.KEY_BANDS (keys.WIDE_KEY_BANDS: the wide keys')."""
        return self._candidates(np.asarray(queries, dtype=np.uint64), [(first_band, radius)])

    def _candidates(
        self, queries: np.ndarray, plans: list[tuple[int, int]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`candidates` of every (first band, radius) of `plans`, probed in one round."""
        widths = self.layout.widths
        found: dict[tuple[int, int], list] = defaultdict(list)  # (band, radius) -> hits
        for (q, band, radius), result in self._probe_all(queries, plans):
            for cell in result.columnValues or []:
                v = keys.cell_value(result.row, cell.qualifier, widths[band], self.row_bits)
                found[band, radius].append((q, v, cell.value))
        parts = []
        for (band, radius), hits in found.items():
            size = keys.entry_size(widths[band])
            counts = [len(raw) // size for _, _, raw in hits]
            raw = np.frombuffer(b"".join(r for _, _, r in hits), np.uint8).reshape(-1, size)
            values = np.repeat(np.array([v for _, v, _ in hits], np.uint64), counts)
            qidx = np.repeat(np.array([q for q, _, _ in hits], np.int64), counts)
            dists = np.bitwise_count(
                keys.decode_hashes(self.layout, band, values, raw) ^ queries[qidx]
            )
            near = np.flatnonzero(dists <= radius)
            numbers = keys.decode_numbers(raw[near]).astype(np.int64)
            parts.append((qidx[near], numbers, dists[near]))
        if not parts:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.int8)
        qidx, numbers, dists = (np.concatenate(p) for p in zip(*parts))
        # One per (query, image): an image is met once in each band within reach.
        _, first = np.unique(qidx << 40 | numbers, return_index=True)
        return qidx[first], numbers[first], dists[first].astype(np.int8)

    def _probe(
        self, queries: np.ndarray, radius: int, first_band: int = 0
    ) -> list[tuple[tuple[int, int], object]]:
        """((query number, band), result) of the Gets of every probe at `radius`
        (`_probe_all` of the one band set)."""
        found = self._probe_all(queries, [(first_band, radius)])
        return [((q, band), result) for (q, band, _), result in found]

    def _probe_all(
        self, queries: np.ndarray, plans: list[tuple[int, int]]
    ) -> list[tuple[tuple[int, int, int], object]]:
        """((query number, band, radius), result) of the Gets of every probe of each (first
        band, radius) of `plans`: one Get per row a query probes, of the cells of its probed
        band values there (a prefix filter, so the region server seeks from one to the next),
        all in one round of calls. With the server-side filter, a cell comes back with only
        the entries that may lie within the radius of the query."""
        widths, qs = self.layout.widths, queries.tolist()
        rows: dict[tuple[int, int, int, bytes], list[int]] = defaultdict(list)
        for first_band, radius in plans:
            for q, band, v in self.probes(queries, radius):
                row = keys.band_row(first_band + band, v, widths[band], self.row_bits)
                rows[q, band, radius, row].append(v)
        where = list(rows)
        prefixes = [
            column_prefix_filter(
                tuple(keys.value_prefix(v, widths[band], self.row_bits) for v in values)
            )
            for (_, band, _, _), values in rows.items()
        ]
        rowkeys = [row for *_, row in where]
        if self.server_filter:
            near = []
            for ((q, band, radius, _), values), prefix in zip(rows.items(), prefixes):
                # The loosest of the row's probes: the client measures every entry anyway.
                left, query = keys.probe_query(self.layout, band, values, qs[q], radius)
                entries = hamming_filter(keys.entry_size(widths[band]), left, query)
                near.append(all_of(prefix, entries))
            try:
                found = self.bands.get_many(rowkeys, None, near)
                return [((q, b, r), res) for (q, b, r, _), res in zip(where, found)]
            except StoreError as e:
                if thrift.HAMMING_FILTER not in str(e):
                    raise
                log.warning(
                    "%s: the region servers lack phashdb's HammingFilter (java/hbase's jar), so "
                    "every band entry comes to the client: %s",
                    self.url,
                    e,
                )
                self.server_filter = False
        found = self.bands.get_many(rowkeys, None, prefixes)
        return [((q, b, r), res) for (q, b, r, _), res in zip(where, found)]

    def lookup(self, ids: Iterable[str]) -> dict[str, tuple[int, Image]]:
        """(image number, record) of each stored id."""
        return self.records.lookup(ids)

    def find(self, ids: Iterable[str]) -> dict[str, Image]:
        return {id: image for id, (_, image) in self.lookup(ids).items()}

    def images(self) -> Iterator[Image]:
        for _, image in self.records.scan():
            yield image

    def hashes(self) -> tuple[np.ndarray, np.ndarray]:
        images = list(self.images())
        return (
            np.array([i.id for i in images], dtype=object),
            np.array([i.hash for i in images], dtype=np.uint64),
        )

    def files(self, paths: Iterable[str] | None = None) -> dict[str, tuple]:
        """(size, mtime, dev, ino, mtime_ns) of each stored path among `paths`, looked up as ids
        (two getMultiples a batch: the id cells, then the records found); None: of every stored
        path (a scan)."""
        images = self.images() if paths is None else self.find(paths).values()
        return {i.path: file_fields(i) for i in images if i.path}

    def count(self) -> int:
        return sum(1 for _ in self.records.numbers())

    def regions(self) -> list:
        """The band table's regions (Thrift2 THRegionLocation: regionInfo, serverName)."""
        return self.bands.regions()

    def describe(self) -> dict:
        from .balance import region_servers

        return {
            "backend": "hbase",
            "bands": list(self.layout.widths),
            **region_servers(self.layout, self.row_bits, self.regions()),
        }

    # --- writes (writes.Writer's; claims.Admission's for images claimed) -------------------

    def put(self, images: Iterable[Image]) -> None:
        """Store images: band cells first, records last (an image is visible only once its
        record is). An id stored exactly so is left alone; with another hash it is replaced.
        An image this store has claimed (`claim`) is committed."""
        images = list({i.id: i for i in images}.values())
        if self.admission.pending:
            images = [i for i in images if not self.admission.commit(i)]
        self.writer.put(images)

    def put_hashes(self, ids: Sequence[str], hashes: np.ndarray) -> None:
        """`put` of Image(id, hash, added=now) for each pair (an id given twice: the last
        wins), without making the Images: the records of new ids are made from the arrays."""
        now = time.time()
        hashes = np.asarray(hashes, dtype=np.uint64)
        if self.admission.pending:  # claims are committed image by image
            self.put(Image(i, h, added=now) for i, h in zip(ids, hashes.tolist()))
            return
        last = dict(zip(ids, range(len(ids))))
        if len(last) < len(ids):
            ids, hashes = list(last), hashes[np.fromiter(last.values(), np.int64, len(last))]
        self.writer.put_hashes(ids, hashes, now)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove images: record first (invisible at once), then band cells."""
        stored = self.lookup(ids)
        self.writer.remove_numbered(stored.values())
        return len(stored)

    def bulk_load(self, images: Iterable[Image]) -> int:
        """Load records through HFiles (phashdb.hbase.bulkload): how many new images."""
        from .bulkload import load

        return load(self, images).added

    @contextmanager
    def claim(self, image: Image, radius: int):
        """Admission of `image` (claims.Admission): yields the rivals to count as matches,
        none (a claim is never a match); a `put` of the image inside commits it."""
        with self.admission.claim(image, radius):
            yield []

    def fsck(self, *, repair: bool = False, min_age: float = 120.0) -> list[tuple[str, int]]:
        """What crashed writers left (claims.orphans); `repair` removes it, then gathers each
        band value's cells into one (pack), as a rebuild of the derived band data."""
        found = orphans(self.writer, repair=repair, min_age=min_age)
        if repair:
            log.info("%s: %d band cells packed", self.url, pack(self.writer, min_age=min_age))
        return found

    def close(self) -> None:
        self.writer.close()
        self._shut()

    def _shut(self) -> None:
        self._threads.shutdown(wait=True)
        self.pool.close()
