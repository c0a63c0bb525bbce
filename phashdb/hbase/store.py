"""The HBase store: the index's storage seam over two HBase tables (layout in `keys`).

A search sends every probe of every query in one Thrift2 `getMultiple` (split over the pool
only when it is large), then reads the candidates' records in a second one: two round trips
whatever the radius. Writes go band cells first, then the id cells, then the records: an image
is stored exactly when its record cell exists, so a crash between writes leaves nothing
visible (`fsck` removes the rest). Image numbers are never reused, so a deleted cell's marker
can never hide a later write.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..bands import BandLayout, probe_plan
from ..errors import StoreError
from ..records import Image, file_fields
from . import claims, keys, thrift
from .keys import BAND_FAMILY as B
from .keys import RECORD_FAMILY as I
from .pack import pack
from .schema import record_table
from .thrift import (
    HBaseOptions,
    Pool,
    all_of,
    column_prefix_filter,
    column_range_filter,
    hamming_filter,
    hb,
)

log = logging.getLogger(__name__)

GETS_PER_CALL = 4000  # larger getMultiples are split and sent in parallel
PUTS_PER_CALL = 500  # rows per putMultiple when a write is split over the pool
NUMBER_BLOCK = 32  # image numbers a store takes from the counter at once for single adds
LOOKUP_AFTER_COUNTER = 1000  # a write batch of more ids first asks the counter if any is stored
WRITE_STEP = 100_000  # ids a write batch encodes while the step before is sent


@contextmanager
def _cycle_collector_paused():
    """Python's cycle collector off while a write batch makes its millions of Thrift objects
    (which hold no cycles): each full pass of the collector walks every live object, and the
    passes that the allocations set off cost more than making the objects (1.2 s against 0.23 s
    for the cells of 1M records, alone; more in a load, with more objects alive). Left alone if
    it was off already."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class HBaseStore:
    """Storage of an index in HBase, reached through its Thrift2 server."""

    @classmethod
    def from_url(cls, url: str, **options) -> HBaseStore:
        return cls(HBaseOptions.from_url(url, **options))

    def __init__(self, options: HBaseOptions) -> None:
        self.options = options
        self.url = f"hbase://{options.host}:{options.server}/{options.table}"
        self.home = (
            Path.home()
            / ".local"
            / "share"
            / "phashdb"
            / f"hbase-{options.host}-{options.server}-{options.table}"
        )
        self.pool = Pool(options)
        self._threads = ThreadPoolExecutor(options.pool_size, thread_name_prefix="phashdb-hbase")
        # Writers of a batch's band and id cells, and its lookup's steps, which then wait on
        # `_threads` for their calls.
        self._writers = ThreadPoolExecutor(2, thread_name_prefix="phashdb-hbase-write")
        self._bands = options.table.encode()
        self._records = options.images_table.encode()  # the old naming's, once looked up below
        self._numbers: list[int] = []
        self._numbers_lock = threading.Lock()
        self.pending: dict = {}  # id -> claims.Claim of this store's writers at work
        # Whether the region servers filter band entries by distance (HammingFilter); turned
        # off by the first search a cluster without phashdb's jar refuses.
        self.server_filter = bool(options.server_filter)
        try:
            self._records = record_table(self.pool, options).encode()
            for table in (options.table, self._records.decode()):
                name = hb.TTableName(ns=b"default", qualifier=table.encode())
                if not self.pool.call(lambda c, n=name: c.tableExists(n)):
                    raise StoreError(
                        f"{self.url}: table {table!r} does not exist: create the tables with "
                        f"`phashdb --db '{self.url}' init` or with the HBase shell script "
                        "`phashdb init --print-schema` prints"
                    )
            settings = self.read_settings()
            if settings.get("hbase_layout") != 3:
                raise StoreError(
                    f"{self.url}: the tables were not made by this phashdb (no band layout of "
                    "layout version 3): create new tables with `phashdb init`"
                )
        except BaseException:
            self.close()
            raise
        self.layout = BandLayout(tuple(settings["bands"]))
        self.row_bits = settings["row_bits"]

    # --- settings -------------------------------------------------------------------------

    def read_settings(self) -> dict:
        get = hb.TGet(row=keys.SETTINGS_ROW, columns=[hb.TColumn(I, keys.SETTINGS)])
        result = self.pool.call(lambda c: c.get(self._records, get))
        return json.loads(result.columnValues[0].value) if result.columnValues else {}

    def write_settings(self, settings: dict) -> None:
        merged = json.dumps({**self.read_settings(), **settings}).encode()
        put = hb.TPut(
            row=keys.SETTINGS_ROW, columnValues=[hb.TColumnValue(I, keys.SETTINGS, merged)]
        )
        self.pool.call(lambda c: c.put(self._records, put))

    # --- decisions (pairs marked not duplicates): one row, a cell a pair --------------------

    def decisions(self, ids: Iterable[str] | None) -> list[tuple[str, str, float]]:
        """(a, b, when made) of every decision about any of `ids` (None: every decision)."""
        get = hb.TGet(row=keys.DECISIONS_ROW, columns=[hb.TColumn(I)])
        found = self.pool.call(lambda c: c.get(self._records, get)).columnValues or []
        wanted = None if ids is None else set(ids)
        out = []
        for cell in found:
            a, b = keys.decode_decision(cell.qualifier)
            if wanted is None or a in wanted or b in wanted:
                out.append((a, b, int.from_bytes(cell.value, "big") / 1000))
        return out

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        when = round(made * 1000).to_bytes(8, "big")
        cells = [hb.TColumnValue(I, keys.decision_qualifier(a, b), when) for a, b in pairs]
        self._put_rows(self._records, {keys.DECISIONS_ROW: cells} if cells else {})

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        known = {(a, b) for a, b, _ in self.decisions(None)}
        gone = [(a, b) for a, b in pairs if (a, b) in known]
        cells = [(keys.DECISIONS_ROW, keys.decision_qualifier(a, b)) for a, b in gone]
        self.delete_cells(self._records, cells, I)
        return len(gone)

    # --- reads ----------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, radius: int, *, records: dict[str, Image] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances). Claims and orphans (band cells without a record) are left out. The
        candidates' records are read to tell: they go into `records` (id -> Image) if given."""
        qidx, numbers, dists = self.candidates(np.asarray(queries, dtype=np.uint64), radius)
        read = self.read_numbers(set(numbers.tolist()))
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

    def candidates(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band entries within `radius` of each query, whatever their records say: (query
        numbers, image numbers, distances), one per (query, number)."""
        queries = np.asarray(queries, dtype=np.uint64)
        widths = self.layout.widths
        found: dict[int, list] = defaultdict(list)  # band -> [(query, value, entries)]
        for (q, band), result in self._probe(queries, radius):
            for cell in result.columnValues or []:
                v = keys.cell_value(result.row, cell.qualifier, widths[band], self.row_bits)
                found[band].append((q, v, cell.value))
        parts = []
        for band, hits in found.items():
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

    def _probe(self, queries: np.ndarray, radius: int) -> list[tuple[tuple[int, int], object]]:
        """((query number, band), result) of the Gets of every probe at `radius`: one Get per
        row a query probes, of the cells of its probed band values there (a prefix filter, so
        the region server seeks from one to the next). With the server-side filter, a cell
        comes back with only the entries that may lie within `radius` of the query."""
        widths, qs = self.layout.widths, queries.tolist()
        rows: dict[tuple[int, int, bytes], list[int]] = defaultdict(list)
        for q, band, v in self.probes(queries, radius):
            rows[q, band, keys.band_row(band, v, widths[band], self.row_bits)].append(v)
        where = list(rows)
        prefixes = [
            column_prefix_filter(
                tuple(keys.value_prefix(v, widths[band], self.row_bits) for v in values)
            )
            for (_, band, _), values in rows.items()
        ]
        if self.server_filter:
            near = []
            for ((q, band, row), values), prefix in zip(rows.items(), prefixes):
                # The loosest of the row's probes: the client measures every entry anyway.
                left, query = keys.probe_query(self.layout, band, values, qs[q], radius)
                entries = hamming_filter(keys.entry_size(widths[band]), left, query)
                near.append(hb.TGet(row=row, filterBytes=all_of(prefix, entries)))
            try:
                return [
                    ((q, b), r) for (q, b, _), r in zip(where, self.get_many(self._bands, near))
                ]
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
        plain = [hb.TGet(row=row, filterBytes=f) for (_, _, row), f in zip(where, prefixes)]
        return [((q, b), r) for (q, b, _), r in zip(where, self.get_many(self._bands, plain))]

    def _band_gets(self, probes: Iterable[tuple[int, int]]) -> list:
        """A Get of the cells of each (band, band value)."""
        gets = []
        for band, v in probes:
            row, first, end = keys.probe_range(band, v, self.layout.widths[band], self.row_bits)
            gets.append(hb.TGet(row=row, filterBytes=column_range_filter(first, end)))
        return gets

    def get_many(self, table: bytes, gets: list) -> list:
        """The results of many Gets, in order: one getMultiple, or several in parallel."""
        if len(gets) <= GETS_PER_CALL:
            return self.pool.call(lambda c: c.getMultiple(table, gets)) if gets else []
        parts = max(self.options.pool_size, -(-len(gets) // GETS_PER_CALL))
        size = -(-len(gets) // parts)
        chunks = [gets[lo : lo + size] for lo in range(0, len(gets), size)]
        done = self._threads.map(
            lambda part: self.pool.call(lambda c: c.getMultiple(table, part)), chunks
        )
        return [r for part in done for r in part]

    def read_numbers(
        self, numbers: Iterable[int]
    ) -> dict[int, tuple[Image | None, tuple[int, str] | None]]:
        """For each image number: (its record or None, its pending claim (expiry ms, id) or None)."""
        rows: dict[bytes, list[int]] = defaultdict(list)
        for n in numbers:
            rows[keys.number_cell(n)[0]].append(n)
        gets = [
            hb.TGet(
                row=row,
                columns=[
                    hb.TColumn(I, q)
                    for n in ns
                    for q in (keys.number_cell(n)[1], keys.claim_qualifier(n))
                ],
            )
            for row, ns in rows.items()
        ]
        out: dict[int, list] = {}
        for get, result in zip(gets, self.get_many(self._records, gets)):
            for cell in result.columnValues:
                n = keys.number_of(get.row, cell.qualifier)
                entry = out.setdefault(n, [None, None])
                if len(cell.qualifier) == 1:
                    entry[0] = keys.decode_record(cell.value)
                else:
                    entry[1] = keys.decode_claim(cell.value)
        return {n: (r, c) for n, (r, c) in out.items()}

    def lookup(self, ids: Iterable[str]) -> dict[str, tuple[int, Image]]:
        """(image number, record) of each stored id."""
        return self._lookup_cells([keys.id_cell(id) for id in set(ids)])

    def _lookup_cells(self, cells: Iterable[tuple[bytes, bytes]]) -> dict[str, tuple[int, Image]]:
        """`lookup` of the ids whose id cells (keys.id_cell, each once) are `cells`."""
        rows: dict[bytes, list] = defaultdict(list)
        column = hb.TColumn
        for row, qualifier in cells:
            rows[row].append(column(I, qualifier))
        gets = [hb.TGet(row=row, columns=columns) for row, columns in rows.items()]
        numbers = {
            keys.decode_id(cell.qualifier): int.from_bytes(cell.value, "big")
            for result in self.get_many(self._records, gets)
            for cell in result.columnValues
        }
        records = self.read_numbers(numbers.values())
        out = {}
        for id, n in numbers.items():
            record = records.get(n, (None,))[0]
            if record is not None and record.id == id:
                out[id] = (n, record)
        return out

    def find(self, ids: Iterable[str]) -> dict[str, Image]:
        return {id: image for id, (_, image) in self.lookup(ids).items()}

    def _records_scan(self) -> Iterator[tuple[int, Image]]:
        for result in self.pool.scan(self._records, b"n", b"o"):
            for cell in result.columnValues:
                if len(cell.qualifier) == 1:
                    yield keys.number_of(result.row, cell.qualifier), keys.decode_record(cell.value)

    def images(self) -> Iterator[Image]:
        for _, image in self._records_scan():
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
        return sum(
            sum(1 for cell in result.columnValues if len(cell.qualifier) == 1)
            for result in self.pool.scan(self._records, b"n", b"o", keys_only=True)
        )

    def regions(self) -> list:
        """The band table's regions (Thrift2 THRegionLocation: regionInfo, serverName)."""
        return self.pool.call(lambda c: c.getAllRegionLocations(self._bands))

    def describe(self) -> dict:
        from .balance import region_servers

        return {
            "backend": "hbase",
            "bands": list(self.layout.widths),
            **region_servers(self.layout, self.row_bits, self.regions()),
        }

    # --- writes ---------------------------------------------------------------------------

    def allocate(self, count: int) -> list[int]:
        """`count` fresh image numbers from the table's counter (one increment)."""
        last = self._increment(count)
        return list(range(last - count + 1, last + 1))

    def _increment(self, count: int) -> int:
        """Take `count` numbers from the counter: the last of them."""
        inc = hb.TIncrement(
            row=keys.COUNTER_ROW, columns=[hb.TColumnIncrement(I, keys.COUNTER, count)]
        )
        result = self.pool.call(lambda c: c.increment(self._records, inc))
        last = int.from_bytes(result.columnValues[0].value, "big")
        if last > keys.MAX_NUMBER:
            raise StoreError(f"{self.url}: image numbers are used up")
        return last

    def last_number(self) -> int:
        """The last image number given out (0: none ever)."""
        get = hb.TGet(row=keys.COUNTER_ROW, columns=[hb.TColumn(I, keys.COUNTER)])
        result = self.pool.call(lambda c: c.get(self._records, get))
        return int.from_bytes(result.columnValues[0].value, "big") if result.columnValues else 0

    def next_number(self) -> int:
        with self._numbers_lock:
            if not self._numbers:
                self._numbers = self.allocate(NUMBER_BLOCK)[::-1]
            return self._numbers.pop()

    def put(self, images: Iterable[Image]) -> None:
        """Store images: band cells first, records last (an image is visible only once its
        record is). An id stored exactly so is left alone; with another hash it is replaced."""
        images = list({i.id: i for i in images}.values())
        if self.pending:
            images = [i for i in images if not claims.commit(self, i)]
        size = self.options.batch_size
        with _cycle_collector_paused():
            for lo in range(0, len(images), size):
                self._put_batch(images[lo : lo + size])

    def put_hashes(self, ids: Sequence[str], hashes: np.ndarray) -> None:
        """`put` of Image(id, hash, added=now) for each pair (an id given twice: the last
        wins), without making the Images: the records of new ids are made from the arrays."""
        now = time.time()
        hashes = np.asarray(hashes, dtype=np.uint64)
        if self.pending:  # claims are committed image by image
            self.put(Image(i, h, added=now) for i, h in zip(ids, hashes.tolist()))
            return
        last = dict(zip(ids, range(len(ids))))
        if len(last) < len(ids):
            ids, hashes = list(last), hashes[np.fromiter(last.values(), np.int64, len(last))]
        size = self.options.batch_size
        with _cycle_collector_paused():
            for lo in range(0, len(ids), size):
                self._put_hash_batch(ids[lo : lo + size], hashes[lo : lo + size], now)

    def _put_hash_batch(self, ids: Sequence[str], hashes: np.ndarray, now: float) -> None:
        cells = [keys.id_cell(id) for id in ids]
        old = self._stored(cells)
        if old:
            # Ids stored already take the general path: kept, rewritten or replaced.
            again = [k for k, id in enumerate(ids) if id in old]
            self._put_batch([Image(ids[k], int(hashes[k]), added=now) for k in again], old)
            new = [k for k, id in enumerate(ids) if id not in old]
            ids, cells = [ids[k] for k in new], [cells[k] for k in new]
            hashes = hashes[np.array(new, dtype=np.int64)]
        if not ids:
            return
        last = self._increment(len(ids) + 1)
        tag, first = last - len(ids), last - len(ids) + 1
        bands = self._writers.submit(
            self._write_band_cells, hashes, np.arange(first, last + 1, dtype=np.uint64), tag
        )
        # A step's id cells, then its records, are sent while the next step is encoded; a
        # record goes only after its image's band cells and id cell.
        sent: list[Future] = []
        for lo in range(0, len(ids), WRITE_STEP):
            step = slice(lo, lo + WRITE_STEP)
            id_puts = self._send_rows(self._records, self._id_rows(cells[step], first + lo))
            rows = self._record_rows(first + lo, keys.hash_records(ids[step], hashes[step], now))
            for put in [bands, *id_puts]:
                put.result()
            sent += self._send_rows(self._records, rows)
        for put in sent:
            put.result()

    def _stored(self, cells: list[tuple[bytes, bytes]]) -> dict[str, tuple[int, Image]]:
        """`lookup` of a write batch's ids, by their id cells. When the counter shows that no
        image number was ever given out, nothing is stored: a batch of new ids costs one Get.
        Else the batch is looked up in steps, two at once, so one step's Gets are built while
        the other's are answered."""
        if len(cells) > LOOKUP_AFTER_COUNTER and self.last_number() == 0:
            return {}
        steps = [cells[lo : lo + WRITE_STEP] for lo in range(0, len(cells), WRITE_STEP)]
        found: dict[str, tuple[int, Image]] = {}
        for part in self._writers.map(self._lookup_cells, steps):
            found.update(part)
        return found

    def _put_batch(
        self, images: list[Image], old: dict[str, tuple[int, Image]] | None = None
    ) -> None:
        if old is None:
            old = self._stored([keys.id_cell(i.id) for i in images])
        now = time.time()
        fresh, rewrite, stale = [], [], []
        for image in images:
            if image.id in old:
                number, was = old[image.id]
                if was == replace(image, added=was.added):
                    continue
                if was.hash == image.hash:
                    rewrite.append((number, replace(image, added=image.added or was.added)))
                    continue
                stale.append((number, was))
            fresh.append(image if image.added else replace(image, added=now))
        if stale:
            self.remove_numbered(stale)
        numbered, first = [], []
        if fresh:
            tag, *numbers = self.allocate(len(fresh) + 1)
            numbered = list(zip(numbers, fresh))
            # Band and id cells go out while the records are encoded; the records go last.
            first = [
                self._writers.submit(self.write_band_cells, numbered, tag),
                self._writers.submit(self.write_ids, numbered),
            ]
        rows = self.record_rows(numbered + rewrite)
        for write in first:
            write.result()
        self._put_rows(self._records, rows)

    def write_band_cells(self, numbered: list[tuple[int, Image]], tag: int) -> None:
        """The band cells of a batch, tagged with `tag` (see keys.band_cells_many)."""
        self._write_band_cells(
            np.array([i.hash for _, i in numbered], dtype=np.uint64),
            np.array([n for n, _ in numbered], dtype=np.uint64),
            tag,
        )

    def _write_band_cells(self, hashes: np.ndarray, numbers: np.ndarray, tag: int) -> None:
        cells = keys.band_cells_many(self.layout, self.row_bits, hashes, numbers, tag)
        self.put_band_rows(
            {row: [hb.TColumnValue(B, q, v) for q, v in qvs] for row, qvs in cells.items()}
        )

    def put_band_rows(self, rows: dict[bytes, list]) -> None:
        # Neighbouring cells with one timestamp are stored without it (FAST_DIFF): band cells
        # carry the minute they were written, not the millisecond.
        now = int(time.time() * 1000)
        self._put_rows(self._bands, rows, timestamp=now - now % keys.BAND_TIME_STEP)

    def write_ids(self, numbered: list[tuple[int, Image]]) -> None:
        rows: dict[bytes, list] = defaultdict(list)
        for number, image in numbered:
            row, qualifier = keys.id_cell(image.id)
            rows[row].append(hb.TColumnValue(I, qualifier, number.to_bytes(8, "big")))
        self._put_rows(self._records, rows)

    def _id_rows(self, cells: list[tuple[bytes, bytes]], first: int) -> dict[bytes, list]:
        """The rows of the id cells `cells` (keys.id_cell) of the numbers from `first` on."""
        rows: dict[bytes, list] = defaultdict(list)
        value = hb.TColumnValue
        for (row, qualifier), number in zip(cells, range(first, first + len(cells))):
            rows[row].append(value(I, qualifier, number.to_bytes(8, "big")))
        return rows

    def write_records(self, numbered: list[tuple[int, Image]]) -> None:
        self._put_rows(self._records, self.record_rows(numbered))

    def record_rows(self, numbered: list[tuple[int, Image]]) -> dict[bytes, list]:
        rows: dict[bytes, list] = defaultdict(list)
        for number, image in numbered:
            row, qualifier = keys.number_cell(number)
            rows[row].append(hb.TColumnValue(I, qualifier, keys.encode_record(image)))
        return rows

    def _record_rows(self, first: int, records: list[bytes]) -> dict[bytes, list]:
        """The rows of the records of the consecutive numbers from `first` on."""
        rows, cell, values = {}, hb.TColumnValue, iter(records)
        for row, qualifiers in keys.number_rows(first, len(records)):
            rows[row] = [cell(I, q, r) for q, r in zip(qualifiers, values)]
        return rows

    def _put_rows(
        self, table: bytes, rows: dict[bytes, list], timestamp: int | None = None
    ) -> None:
        parts = self._put_parts(rows, timestamp)
        if len(parts) == 1:
            self.pool.call(lambda c: c.putMultiple(table, parts[0]))
            return
        for put in self._send(table, parts):
            put.result()

    def _send_rows(self, table: bytes, rows: dict[bytes, list]) -> list[Future]:
        """Start putting `rows`: the futures of the calls."""
        return self._send(table, self._put_parts(rows, None))

    def _put_parts(self, rows: dict[bytes, list], timestamp: int | None) -> list[list]:
        """The TPuts of `rows` as putMultiples: big writes go as several at once, so every
        region server has work."""
        puts = [
            hb.TPut(row=row, columnValues=cells, timestamp=timestamp) for row, cells in rows.items()
        ]
        parts = min(self.options.pool_size, -(-len(puts) // PUTS_PER_CALL))
        return [puts[k::parts] for k in range(parts)]

    def _send(self, table: bytes, parts: list[list]) -> list[Future]:
        return [
            self._threads.submit(self.pool.call, lambda c, part=part: c.putMultiple(table, part))
            for part in parts
        ]

    def delete_cells(
        self, table: bytes, cells: Iterable[tuple[bytes, bytes]], family: bytes
    ) -> None:
        rows: dict[bytes, list] = defaultdict(list)
        for row, qualifier in cells:
            rows[row].append(hb.TColumn(family, qualifier))
        if rows:
            deletes = [hb.TDelete(row=row, columns=columns) for row, columns in rows.items()]
            self.pool.call(lambda c: c.deleteMultiple(table, deletes))

    def remove_numbered(self, numbered: Iterable[tuple[int, Image]]) -> None:
        """Unstore images: records first (invisible at once), then their entries in the band
        cells (a cell of several images is rewritten without them, one left empty deleted).
        Id cells are left to be overwritten or removed by `fsck`: a delete marker on them could
        hide a re-add of the same id within the same millisecond."""
        numbered = list(numbered)
        self.delete_cells(
            self._records,
            [
                c
                for n, _ in numbered
                for c in (keys.number_cell(n), (keys.number_cell(n)[0], keys.claim_qualifier(n)))
            ],
            I,
        )
        self.drop_entries({n for n, _ in numbered}, [i.hash for _, i in numbered])

    def drop_entries(self, numbers: set[int], hashes: Sequence[int]) -> None:
        """Take the entries of image `numbers` (with these hashes) out of their band cells.
        Two removals rewriting one cell at once may put back the other's entry: harmless
        (readers skip entries without a record), and `fsck --repair` takes it out."""
        values = self.layout.split(np.asarray(hashes, dtype=np.uint64))
        probes = sorted({(b, v) for b in range(len(values)) for v in values[b].tolist()})
        widths = self.layout.widths
        gets = self._band_gets(probes)
        rewritten, emptied = defaultdict(list), []
        for (band, v), get, result in zip(probes, gets, self.get_many(self._bands, gets)):
            size = keys.entry_size(widths[band])
            for cell in result.columnValues or []:
                _, held = keys.parse_band_cells(self.layout, band, v, [cell.value])
                gone = [n in numbers for n in held.tolist()]
                if not any(gone):
                    continue
                if all(gone):
                    emptied.append((get.row, cell.qualifier))
                    continue
                kept = b"".join(
                    cell.value[i * size : (i + 1) * size] for i, g in enumerate(gone) if not g
                )
                # A newer version of the cell replaces it (the family keeps one).
                rewritten[get.row].append(
                    hb.TColumnValue(B, cell.qualifier, kept, cell.timestamp + 1)
                )
        self._put_rows(self._bands, rewritten)
        self.delete_cells(self._bands, emptied, B)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove images: record first (invisible at once), then band cells."""
        stored = self.lookup(ids)
        self.remove_numbered(stored.values())
        return len(stored)

    def bulk_load(self, images: Iterable[Image]) -> int:
        """Load records through HFiles (phashdb.hbase.bulkload): how many new images."""
        from .bulkload import load

        return load(self, images).added

    @contextmanager
    def claim(self, image: Image, radius: int):
        with claims.claim(self, image, radius) as rivals:
            yield rivals

    def fsck(self, *, repair: bool = False, min_age: float = 120.0) -> list[tuple[str, int]]:
        """What crashed writers left (claims.orphans); `repair` removes it, then gathers each
        band value's cells into one (pack), as a rebuild of the derived band data."""
        found = claims.orphans(self, repair=repair, min_age=min_age)
        if repair:
            log.info("%s: %d band cells packed", self.url, pack(self, min_age=min_age))
        return found

    def close(self) -> None:
        self._writers.shutdown(wait=True)
        self._threads.shutdown(wait=True)
        self.pool.close()
