"""The record table's cells (byte layout in `keys`): each image's record and pending claim
under its image number, id cells from an id to its number, the counter that gives numbers out,
the settings and the decisions. What the cells mean, over a `table.Table`."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from ..errors import StoreError
from ..records import Image
from . import keys
from .table import Table

# image number -> (its record or None, its pending claim (start ms, expiry ms, id) or None)
States = dict[int, tuple[Image | None, tuple[int, int, str] | None]]


class RecordTable:
    """The records of the index `url`, in `table`."""

    def __init__(self, table: Table, url: str) -> None:
        self.table = table
        self.url = url

    # --- settings and decisions (pairs marked not duplicates: one row, a cell a pair) --------

    def read_settings(self) -> dict:
        result = self.table.row(keys.SETTINGS_ROW, [keys.SETTINGS])
        return json.loads(result.columnValues[0].value) if result.columnValues else {}

    def write_settings(self, settings: dict) -> None:
        merged = json.dumps({**self.read_settings(), **settings}).encode()
        self.table.put_rows({keys.SETTINGS_ROW: {keys.SETTINGS: merged}})

    def decisions(self, ids: Iterable[str] | None) -> list[tuple[str, str, float]]:
        """(a, b, when made) of every decision about any of `ids` (None: every decision)."""
        found = self.table.row(keys.DECISIONS_ROW).columnValues or []
        wanted = None if ids is None else set(ids)
        out = []
        for cell in found:
            a, b = keys.decode_decision(cell.qualifier)
            if wanted is None or a in wanted or b in wanted:
                out.append((a, b, int.from_bytes(cell.value, "big") / 1000))
        return out

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        when = round(made * 1000).to_bytes(8, "big")
        cells = {keys.decision_qualifier(a, b): when for a, b in pairs}
        self.table.put_rows({keys.DECISIONS_ROW: cells} if cells else {})

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        known = {(a, b) for a, b, _ in self.decisions(None)}
        gone = [(a, b) for a, b in pairs if (a, b) in known]
        self.table.delete_cells(
            [(keys.DECISIONS_ROW, keys.decision_qualifier(a, b)) for a, b in gone]
        )
        return len(gone)

    # --- the counter of image numbers -----------------------------------------------------

    def allocate(self, count: int) -> list[int]:
        """`count` fresh image numbers from the counter (one increment)."""
        last = self.take(count)
        return list(range(last - count + 1, last + 1))

    def take(self, count: int) -> int:
        """Take `count` numbers from the counter: the last of them."""
        last = self.table.increment(keys.COUNTER_ROW, keys.COUNTER, count)
        if last > keys.MAX_NUMBER:
            raise StoreError(f"{self.url}: image numbers are used up")
        return last

    def last_number(self) -> int:
        """The last image number given out (0: none ever)."""
        result = self.table.row(keys.COUNTER_ROW, [keys.COUNTER])
        return int.from_bytes(result.columnValues[0].value, "big") if result.columnValues else 0

    # --- reads ----------------------------------------------------------------------------

    def read_numbers(self, numbers: Iterable[int]) -> States:
        """For each image number: (its record or None, its pending claim or None)."""
        rows: dict[bytes, list[int]] = defaultdict(list)
        for n in numbers:
            rows[keys.number_cell(n)[0]].append(n)
        columns = [
            [q for n in ns for q in (keys.number_cell(n)[1], keys.claim_qualifier(n))]
            for ns in rows.values()
        ]
        out: dict[int, list] = {}
        for row, result in zip(rows, self.table.get_many(list(rows), columns)):
            for cell in result.columnValues:
                n = keys.number_of(row, cell.qualifier)
                entry = out.setdefault(n, [None, None])
                if len(cell.qualifier) == 1:
                    entry[0] = keys.decode_record(cell.value)
                else:
                    entry[1] = keys.decode_claim(cell.value)
        return {n: (r, c) for n, (r, c) in out.items()}

    def lookup(self, ids: Iterable[str]) -> dict[str, tuple[int, Image]]:
        """(image number, record) of each stored id."""
        return self.lookup_cells([keys.id_cell(id) for id in set(ids)])

    def lookup_cells(self, cells: Iterable[tuple[bytes, bytes]]) -> dict[str, tuple[int, Image]]:
        """`lookup` of the ids whose id cells (keys.id_cell, each once) are `cells`."""
        rows: dict[bytes, list] = defaultdict(list)
        for row, qualifier in cells:
            rows[row].append(qualifier)
        numbers = {
            keys.decode_id(cell.qualifier): int.from_bytes(cell.value, "big")
            for result in self.table.get_many(list(rows), list(rows.values()))
            for cell in result.columnValues
        }
        records = self.read_numbers(numbers.values())
        out = {}
        for id, n in numbers.items():
            record = records.get(n, (None,))[0]
            if record is not None and record.id == id:
                out[id] = (n, record)
        return out

    def scan(self) -> Iterator[tuple[int, Image]]:
        """(image number, record) of every stored image."""
        for result in self.table.scan(prefix=b"n"):
            for cell in result.columnValues:
                if len(cell.qualifier) == 1:
                    yield keys.number_of(result.row, cell.qualifier), keys.decode_record(cell.value)

    def numbers(self) -> Iterator[int]:
        """The number of every stored image (its record's key alone)."""
        for result in self.table.scan(prefix=b"n", keys_only=True):
            for cell in result.columnValues:
                if len(cell.qualifier) == 1:
                    yield keys.number_of(result.row, cell.qualifier)

    def id_cells(self) -> Iterator[tuple[bytes, bytes, int, int]]:
        """(row, qualifier, image number, timestamp) of every id cell."""
        for result in self.table.scan(prefix=b"i"):
            for cell in result.columnValues:
                yield result.row, cell.qualifier, int.from_bytes(cell.value, "big"), cell.timestamp

    # --- writes ---------------------------------------------------------------------------

    def put_ids(self, numbered: Sequence[tuple[int, Image]]) -> None:
        self.table.put_rows(
            id_rows([keys.id_cell(i.id) for _, i in numbered], [n for n, _ in numbered])
        )

    def put_records(self, numbered: Sequence[tuple[int, Image]]) -> None:
        self.table.put_rows(record_rows(numbered))

    def put_claim(self, number: int, started_ms: int, expires_ms: int, id: str) -> None:
        row, _ = keys.number_cell(number)
        value = keys.encode_claim(started_ms, expires_ms, id)
        self.table.put_rows({row: {keys.claim_qualifier(number): value}})

    def delete_claims(self, numbers: Iterable[int]) -> None:
        self.table.delete_cells(
            [(keys.number_cell(n)[0], keys.claim_qualifier(n)) for n in numbers]
        )

    def delete_numbers(self, numbers: Iterable[int]) -> None:
        """Delete the records and claims of image `numbers` (one call)."""
        self.table.delete_cells(
            [
                c
                for n in numbers
                for c in (keys.number_cell(n), (keys.number_cell(n)[0], keys.claim_qualifier(n)))
            ]
        )


# --- rows of a write ---------------------------------------------------------------------------


def id_rows(cells: Sequence[tuple[bytes, bytes]], numbers: Iterable[int]) -> dict[bytes, dict]:
    """The rows of the id cells `cells` (keys.id_cell) pointing to `numbers`."""
    rows: dict[bytes, dict] = defaultdict(dict)
    for (row, qualifier), number in zip(cells, numbers):
        rows[row][qualifier] = number.to_bytes(8, "big")
    return rows


def record_rows(numbered: Iterable[tuple[int, Image]]) -> dict[bytes, dict]:
    rows: dict[bytes, dict] = defaultdict(dict)
    for number, image in numbered:
        row, qualifier = keys.number_cell(number)
        rows[row][qualifier] = keys.encode_record(image)
    return rows


def consecutive_record_rows(first: int, records: list[bytes]) -> dict[bytes, dict]:
    """The rows of the encoded records of the consecutive numbers from `first` on."""
    values = iter(records)
    return {
        row: dict(zip(qualifiers, values))
        for row, qualifiers in keys.number_rows(first, len(records))
    }
