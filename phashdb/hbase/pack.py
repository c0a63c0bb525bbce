"""Band cells gathered into one cell a band value (`phashdb fsck --repair` does it on HBase).

A write batch stores one cell per band value it touches, and `add` stores an image alone, so an
index grown by single adds holds a cell per image per band. HBase spends far more a cell than
a byte: such an index's checks slow down as it grows, where one loaded in batches stays fast.
Packing rewrites each band value's cells as one, as the index would have been loaded in bulk.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from . import keys
from .writes import Writer

ROWS_A_STEP = 2000  # band rows packed, then their old cells deleted, at a time


def pack(writer: Writer, *, min_age: float = 120.0) -> int:
    """Gather the cells of each band value (in `writer`'s tables) written more than `min_age`
    seconds ago into one new cell, tagged with a fresh counter number; returns how many cells
    were replaced. The new
    cell is written before the old ones are deleted, so a search meanwhile finds every entry
    (an image met twice is counted once). An image removed while its cells were packed may come
    back as an entry without a record: searches skip it, and `fsck --repair` takes it out."""
    old = int(time.time() * 1000) - int(min_age * 1000)
    tag = writer.records.allocate(1)[0].to_bytes(keys.NUMBER_BYTES, "big")
    packed: dict[bytes, dict] = {}
    replaced: list[tuple[bytes, bytes]] = []
    count = 0
    for result in writer.bands.scan():
        size = keys.entry_size(writer.layout.widths[keys.band_index(result.row[0])])
        kept = size - keys.NUMBER_BYTES
        cells = defaultdict(list)  # a band value's bits below the row's -> its old cells
        for cell in result.columnValues:
            if cell.timestamp <= old:  # whole minutes: a cell may look a minute older
                cells[cell.qualifier[: keys.LOW_BYTES]].append(cell)
        for low, group in cells.items():
            if len(group) < 2:
                continue
            raw = np.frombuffer(b"".join(c.value for c in group), np.uint8).reshape(-1, size)
            raw = raw[np.lexsort(raw[:, kept - 1 :: -1].T)]  # sorted by hash, as written
            packed.setdefault(result.row, {})[low + tag] = raw.tobytes()
            replaced += [(result.row, c.qualifier) for c in group]
        if len(packed) >= ROWS_A_STEP:
            count += _replace(writer, packed, replaced)
            packed, replaced = {}, []
    return count + _replace(writer, packed, replaced)


def _replace(writer: Writer, packed: dict[bytes, dict], replaced: list[tuple[bytes, bytes]]) -> int:
    writer.put_band_rows(packed)
    writer.bands.delete_cells(replaced)
    return len(replaced)
