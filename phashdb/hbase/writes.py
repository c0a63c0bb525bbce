"""Storing and unstoring images in HBase's two tables (cells in `keys`, sent by `table.Table`).

Writes go band cells first, then the id cells, then the records: an image is stored exactly
when its record cell exists, so a crash between writes leaves nothing visible (`fsck` removes
the rest). Image numbers are never reused, so a deleted cell's marker can never hide a later
write. Removal goes the other way: records first (invisible at once), then band entries.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from ..bands import BandLayout
from ..collector import paused as _cycle_collector_paused
from ..confirm import WIDE_KEYS
from ..descriptor import stored_keys
from ..records import Image
from . import keys
from .records import RecordTable, consecutive_record_rows, id_rows, record_rows
from .table import Table
from .thrift import column_range_filter

LOOKUP_AFTER_COUNTER = 1000  # a write batch of more ids first asks the counter if any is stored
WRITE_STEP = 100_000  # ids a write batch encodes while the step before is sent


class Writer:
    """The write path of an index: its `bands` and `records` tables, its band `layout` and
    `row_bits`, `batch_size` images a write batch."""

    def __init__(
        self, bands: Table, records: RecordTable, layout: BandLayout, row_bits: int,
        batch_size: int,
    ) -> None:  # fmt: skip
        self.bands, self.records = bands, records
        self.layout, self.row_bits, self.batch_size = layout, row_bits, batch_size
        # Writers of a batch's band and id cells, and its lookup's steps, which then wait on
        # the tables' threads for their calls.
        self._writers = ThreadPoolExecutor(2, thread_name_prefix="phashdb-hbase-write")

    def close(self) -> None:
        self._writers.shutdown(wait=True)

    def put(self, images: Sequence[Image]) -> None:
        """Store images (each id once): band cells first, records last. An id stored exactly
        so is left alone; with another hash it is replaced."""
        size = self.batch_size
        with _cycle_collector_paused():
            for lo in range(0, len(images), size):
                self._put_batch(images[lo : lo + size])

    def put_hashes(self, ids: Sequence[str], hashes: np.ndarray, now: float) -> None:
        """`put` of Image(id, hash, added=now) for each pair (each id once), without making
        the Images: the records of new ids are made from the arrays."""
        size = self.batch_size
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
        last = self.records.take(len(ids) + 1)
        tag, first = last - len(ids), last - len(ids) + 1
        bands = self._writers.submit(
            self._write_band_cells, hashes, np.arange(first, last + 1, dtype=np.uint64), tag
        )
        # A step's id cells, then its records, are sent while the next step is encoded; a
        # record goes only after its image's band cells and id cell.
        sent: list[Future] = []
        table = self.records.table
        for lo in range(0, len(ids), WRITE_STEP):
            step = slice(lo, lo + WRITE_STEP)
            numbers = range(first + lo, first + lo + len(cells[step]))
            id_puts = table.send_rows(id_rows(cells[step], numbers))
            records = keys.hash_records(ids[step], hashes[step], now)
            rows = consecutive_record_rows(first + lo, records)
            for put in [bands, *id_puts]:
                put.result()
            sent += table.send_rows(rows)
        for put in sent:
            put.result()

    def _stored(self, cells: list[tuple[bytes, bytes]]) -> dict[str, tuple[int, Image]]:
        """`lookup` of a write batch's ids, by their id cells. When the counter shows that no
        image number was ever given out, nothing is stored: a batch of new ids costs one Get.
        Else the batch is looked up in steps, two at once, so one step's Gets are built while
        the other's are answered."""
        if len(cells) > LOOKUP_AFTER_COUNTER and self.records.last_number() == 0:
            return {}
        steps = [cells[lo : lo + WRITE_STEP] for lo in range(0, len(cells), WRITE_STEP)]
        found: dict[str, tuple[int, Image]] = {}
        for part in self._writers.map(self.records.lookup_cells, steps):
            found.update(part)
        return found

    def _put_batch(
        self, images: Sequence[Image], old: dict[str, tuple[int, Image]] | None = None
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
            tag, *numbers = self.records.allocate(len(fresh) + 1)
            numbered = list(zip(numbers, fresh))
            # Band and id cells go out while the records are encoded; the records go last.
            first = [
                self._writers.submit(self.write_band_cells, numbered, tag),
                self._writers.submit(self.records.put_ids, numbered),
            ]
        # Keys' cells before their records; a record rewritten may have gained keys (one
        # that lost them leaves entries its record no longer holds: searches skip them).
        keyed = [(n, i) for n, i in numbered + rewrite if stored_keys(i.descriptor)]
        if keyed:
            self.write_key_cells(keyed, tag if fresh else self.records.allocate(1)[0])
        rows = record_rows(numbered + rewrite)
        for write in first:
            write.result()
        self.records.table.put_rows(rows)

    def write_band_cells(self, numbered: Sequence[tuple[int, Image]], tag: int) -> None:
        """The band cells of numbered images, tagged with `tag` (see keys.band_cells_many)."""
        self._write_band_cells(
            np.array([i.hash for _, i in numbered], dtype=np.uint64),
            np.array([n for n, _ in numbered], dtype=np.uint64),
            tag,
        )

    def write_key_cells(self, numbered: Sequence[tuple[int, Image]], tag: int) -> None:
        """The key band cells (keys.KEY_BANDS) of numbered images that have keys, and those
        of their wide keys again in the wide keys' own rows (keys.WIDE_KEY_BANDS)."""
        held = [(n, k) for n, i in numbered for k in stored_keys(i.descriptor)]
        wide = [(n, k) for n, k in held if k.name in WIDE_KEYS]
        for first, pairs in ((keys.KEY_BANDS, held), (keys.WIDE_KEY_BANDS, wide)):
            if pairs:
                self._write_band_cells(
                    np.array([k.hash for _, k in pairs], dtype=np.uint64),
                    np.array([n for n, _ in pairs], dtype=np.uint64), tag, first,
                )  # fmt: skip

    def _write_band_cells(
        self, hashes: np.ndarray, numbers: np.ndarray, tag: int, first_band: int = 0
    ) -> None:
        cells = keys.band_cells_many(self.layout, self.row_bits, hashes, numbers, tag, first_band)
        self.put_band_rows({row: dict(qvs) for row, qvs in cells.items()})

    def put_band_rows(self, rows: dict[bytes, dict[bytes, bytes]]) -> None:
        # Neighbouring cells with one timestamp are stored without it (FAST_DIFF): band cells
        # carry the minute they were written, not the millisecond.
        now = int(time.time() * 1000)
        self.bands.put_rows(rows, timestamp=now - now % keys.BAND_TIME_STEP)

    def remove_numbered(self, numbered: Iterable[tuple[int, Image]]) -> None:
        """Unstore images: records first (invisible at once), then their entries in the band
        cells (a cell of several images is rewritten without them, one left empty deleted).
        Id cells are left to be overwritten or removed by `fsck`: a delete marker on them could
        hide a re-add of the same id within the same millisecond."""
        numbered = list(numbered)
        self.records.delete_numbers(n for n, _ in numbered)
        self.drop_entries({n for n, _ in numbered}, [i.hash for _, i in numbered])
        held = [k for _, i in numbered for k in stored_keys(i.descriptor)]
        wide = [k for k in held if k.name in WIDE_KEYS]
        for first, gone in ((keys.KEY_BANDS, held), (keys.WIDE_KEY_BANDS, wide)):
            if gone:
                self.drop_entries({n for n, _ in numbered}, [k.hash for k in gone], first)

    def drop_entries(self, numbers: set[int], hashes: Sequence[int], first_band: int = 0) -> None:
        """Take the entries of image `numbers` (with these hashes) out of their band cells
        (of keys: `first_band` keys.KEY_BANDS or keys.WIDE_KEY_BANDS). Two removals rewriting one cell at once may
        put back the other's entry: harmless (readers skip entries without a record), and
        `fsck --repair` takes it out."""
        values = self.layout.split(np.asarray(hashes, dtype=np.uint64))
        probes = sorted({(b, v) for b in range(len(values)) for v in values[b].tolist()})
        widths = self.layout.widths
        ranges = [keys.probe_range(first_band + b, v, widths[b], self.row_bits) for b, v in probes]
        rows = [row for row, _, _ in ranges]
        filters = [column_range_filter(first, end) for _, first, end in ranges]
        rewritten: dict[bytes, dict] = defaultdict(dict)
        emptied = []
        for (band, v), row, result in zip(probes, rows, self.bands.get_many(rows, None, filters)):
            size = keys.entry_size(widths[band])
            for cell in result.columnValues or []:
                _, held = keys.parse_band_cells(self.layout, band, v, [cell.value])
                gone = [n in numbers for n in held.tolist()]
                if not any(gone):
                    continue
                if all(gone):
                    emptied.append((row, cell.qualifier))
                    continue
                kept = b"".join(
                    cell.value[i * size : (i + 1) * size] for i, g in enumerate(gone) if not g
                )
                # A newer version of the cell replaces it (the family keeps one).
                rewritten[row][cell.qualifier] = (kept, cell.timestamp + 1)
        self.bands.put_rows(rewritten)
        self.bands.delete_cells(emptied)
