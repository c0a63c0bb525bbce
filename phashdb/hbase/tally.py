"""Counting what a store asks of HBase: the Thrift calls a Pool makes, by method, and the cells
they bring back, by table. For tests and benchmarks ("a check makes 5 calls", "ingest reads only
the records of the files it found"); the calls themselves go to the server unchanged.

    with CallTally(store.pool) as tally:
        index.check(path)
    tally.total, tally.calls["getMultiple"], tally.cells_of(store.options.images_table)
"""

from __future__ import annotations

import threading
from collections import Counter

from .thrift import Pool


class CallTally:
    """While installed on `pool`: `calls` (method -> how many Thrift calls answered)
    and `cells` ((table, row, qualifier) of every cell a read returned, in order)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.calls: Counter[str] = Counter()
        self.cells: list[tuple[bytes, bytes, bytes]] = []
        self._scanners: dict[int, bytes] = {}
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def cells_of(self, table: str | bytes) -> list[tuple[bytes, bytes]]:
        """(row, qualifier) of the cells read from `table`."""
        table = table.encode() if isinstance(table, str) else table
        return [(row, q) for t, row, q in self.cells if t == table]

    def __enter__(self) -> CallTally:
        call = self.pool.call
        self.pool.call = lambda fn: call(lambda client: fn(_Spy(client, self)))
        return self

    def __exit__(self, *exc) -> None:
        del self.pool.call  # the class's method again

    def _record(self, method: str, args: tuple, result) -> None:
        with self._lock:
            self.calls[method] += 1
            if method == "openScanner":
                self._scanners[result] = args[0]
                return
            if method in ("get", "getMultiple"):
                table = args[0]
            elif method == "getScannerRows":
                table = self._scanners.get(args[0], b"?")
            else:
                return
            for r in result if isinstance(result, list) else [result]:
                self.cells.extend((table, r.row, c.qualifier) for c in r.columnValues or [])


class _Spy:
    """A Thrift client whose calls are told to a CallTally."""

    def __init__(self, client, tally: CallTally) -> None:
        self._client, self._tally = client, tally

    def __getattr__(self, name: str):
        method = getattr(self._client, name)

        def called(*args, **kwargs):
            result = method(*args, **kwargs)
            self._tally._record(name, args, result)
            return result

        return called
