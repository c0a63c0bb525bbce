"""One HBase table through the Thrift2 pool, in happybase's shape: batched reads of rows,
batched writes of rows, deletes of cells, scans, a counter. Every Thrift2 Get, Put, Delete,
Scan and Increment of the store is made here; callers speak rows and cells (bytes).

Reads give back Thrift2's own results (`TResult`: `.row`, `.columnValues` of cells with
`.qualifier`, `.value`, `.timestamp`): the band reads decode millions of cells, and a copy into
dicts would cost more than the call. Each table holds one column family (`keys`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future

from .thrift import Pool, hb

GETS_PER_CALL = 4000  # larger getMultiples are split and sent in parallel
PUTS_PER_CALL = 500  # rows per putMultiple when a write is split over the pool
SCAN_BATCH = 1000  # rows a scanner call brings

# A cell to write: its value, or (value, timestamp) to give that one cell its own version.
Cell = bytes | tuple[bytes, int]


class Table:
    """The table `name` (of the one column family `family`), reached through `pool`; large
    reads and writes are split over `threads`, so every region server has work."""

    def __init__(self, name: str, family: bytes, pool: Pool, threads: Executor) -> None:
        self.name = name.encode()
        self.family = family
        self.pool = pool
        self._threads = threads

    def __repr__(self) -> str:
        return f"<Table {self.name.decode()!r}>"

    # --- reads ----------------------------------------------------------------------------

    def row(self, row: bytes, columns: Sequence[bytes] | None = None):
        """The cells of `row` (only the qualifiers `columns` when given), as a TResult."""
        return self.pool.call(lambda c: c.get(self.name, self._get(row, columns, None)))

    def get_many(
        self,
        rows: Sequence[bytes],
        columns: Sequence[Sequence[bytes] | None] | None = None,
        filters: Sequence[bytes | None] | None = None,
    ) -> list:
        """The TResults of `rows`, in order (a row may be asked for twice). `columns[k]`: the
        qualifiers wanted of `rows[k]` (None: all); `filters[k]`: a serialized HBase filter
        applied to it (`thrift.column_prefix_filter` ...). One getMultiple, or several at
        once when there are many rows."""
        gets = [
            self._get(row, columns[k] if columns else None, filters[k] if filters else None)
            for k, row in enumerate(rows)
        ]
        if len(gets) <= GETS_PER_CALL:
            return self.pool.call(lambda c: c.getMultiple(self.name, gets)) if gets else []
        parts = max(self.pool.options.pool_size, -(-len(gets) // GETS_PER_CALL))
        size = -(-len(gets) // parts)
        chunks = [gets[lo : lo + size] for lo in range(0, len(gets), size)]
        done = self._threads.map(
            lambda part: self.pool.call(lambda c: c.getMultiple(self.name, part)), chunks
        )
        return [r for part in done for r in part]

    def _get(self, row: bytes, columns: Sequence[bytes] | None, filter: bytes | None):
        if columns is None:
            return hb.TGet(row=row, filterBytes=filter)
        family = self.family
        return hb.TGet(
            row=row, columns=[hb.TColumn(family, q) for q in columns], filterBytes=filter
        )

    def scan(
        self,
        start: bytes = b"",
        stop: bytes = b"",
        *,
        prefix: bytes | None = None,
        filter: bytes | None = None,
        keys_only: bool = False,
        batch: int = SCAN_BATCH,
    ) -> Iterator:
        """Every row (a TResult) from `start` up to `stop` (b"": the table's end), or of the
        rows starting with `prefix`; `filter`: a filter in HBase's filter language; `keys_only`:
        the cells without their values. `batch` rows a call."""
        if prefix is not None:
            start, stop = prefix, _after(prefix)
        if keys_only:
            filter = b"KeyOnlyFilter()" if filter is None else b"KeyOnlyFilter() AND " + filter
        scan = hb.TScan(startRow=start, stopRow=stop, caching=batch, filterString=filter)
        scanner = self.pool.call(lambda c: c.openScanner(self.name, scan))
        try:
            while rows := self.pool.call(lambda c: c.getScannerRows(scanner, batch)):
                yield from rows
        finally:
            self.pool.call(lambda c: c.closeScanner(scanner))

    def regions(self) -> list:
        """The table's regions (Thrift2 THRegionLocation: regionInfo, serverName)."""
        return self.pool.call(lambda c: c.getAllRegionLocations(self.name))

    def exists(self) -> bool:
        name = hb.TTableName(ns=b"default", qualifier=self.name)
        return self.pool.call(lambda c: c.tableExists(name))

    # --- writes ---------------------------------------------------------------------------

    def put_rows(
        self, rows: Mapping[bytes, Mapping[bytes, Cell]], *, timestamp: int | None = None
    ) -> None:
        """Write the cells `rows` (row -> qualifier -> value), all with version `timestamp`
        (None: the server's clock) unless a cell carries its own. The one write path of the
        store: big writes go as several putMultiples at once."""
        parts = self._put_parts(rows, timestamp)
        if len(parts) == 1:
            self.pool.call(lambda c: c.putMultiple(self.name, parts[0]))
            return
        for put in self._send(parts):
            put.result()

    def send_rows(self, rows: Mapping[bytes, Mapping[bytes, Cell]]) -> list[Future]:
        """`put_rows` started, not waited for: the futures of its calls (a write pipeline
        encodes its next step while these are sent)."""
        return self._send(self._put_parts(rows, None))

    def _put_parts(self, rows: Mapping[bytes, Mapping[bytes, Cell]], timestamp: int | None):
        family, value = self.family, hb.TColumnValue
        puts = [
            hb.TPut(
                row=row,
                columnValues=[
                    value(family, q, v) if v.__class__ is bytes else value(family, q, *v)
                    for q, v in cells.items()
                ],
                timestamp=timestamp,
            )
            for row, cells in rows.items()
        ]
        parts = min(self.pool.options.pool_size, -(-len(puts) // PUTS_PER_CALL))
        return [puts[k::parts] for k in range(parts)]

    def _send(self, parts: list[list]) -> list[Future]:
        return [
            self._threads.submit(self.pool.call, lambda c, p=p: c.putMultiple(self.name, p))
            for p in parts
        ]

    def delete_cells(self, cells: Sequence[tuple[bytes, bytes]]) -> None:
        """Delete the cells (row, qualifier): one deleteMultiple."""
        rows: dict[bytes, list] = {}
        for row, qualifier in cells:
            rows.setdefault(row, []).append(hb.TColumn(self.family, qualifier))
        if rows:
            deletes = [hb.TDelete(row=row, columns=columns) for row, columns in rows.items()]
            self.pool.call(lambda c: c.deleteMultiple(self.name, deletes))

    def increment(self, row: bytes, column: bytes, n: int = 1) -> int:
        """Add `n` to the 8-byte counter cell (row, column): its new value."""
        inc = hb.TIncrement(row=row, columns=[hb.TColumnIncrement(self.family, column, n)])
        result = self.pool.call(lambda c: c.increment(self.name, inc))
        return int.from_bytes(result.columnValues[0].value, "big")


def _after(prefix: bytes) -> bytes:
    """The first row key after every key starting with `prefix` (b"": none)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else b""
