"""The table layer (phashdb.hbase.table): every Thrift2 read and write of table data goes
through `Table`, whose calls do what happybase's of the same names do, on the real test
cluster."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import phashdb.hbase
from phashdb.hbase.keys import RECORD_FAMILY
from phashdb.hbase.table import Table, _after
from phashdb.hbase.tally import CallTally
from phashdb.hbase.thrift import HBaseOptions, Pool

# The Thrift2 structs of data calls; only table.py makes them (schema.py makes the tables).
DATA_STRUCTS = {"TGet", "TPut", "TDelete", "TScan", "TIncrement", "TColumnValue", "TColumn"}


def test_only_the_table_layer_builds_thrift_reads_and_writes():
    package = Path(phashdb.hbase.__file__).parent
    builders = {}
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        made = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in DATA_STRUCTS
        }
        if made:
            builders[source.name] = made
    assert set(builders) <= {"table.py", "schema.py"}, builders
    assert builders.get("schema.py", set()) <= {"TPut", "TColumnValue"}  # the first settings


def test_the_row_after_every_key_with_a_prefix():
    assert _after(b"n") == b"o"
    assert _after(b"a\xff\xff") == b"b"
    assert _after(b"\x00\xff") == b"\x01"
    assert _after(b"\xff\xff") == b""  # no end: to the table's end


@pytest.mark.hbase
def test_puts_gets_scans_deletes_and_counts_as_happybase_does(hbase_url):
    options = HBaseOptions.from_url(hbase_url)
    pool = Pool(options)
    with ThreadPoolExecutor(2) as threads:
        table = Table(options.images_table, RECORD_FAMILY, pool, threads)
        try:
            table.put_rows(
                {b"m1": {b"a": b"1", b"b": b"2"}, b"m2": {b"a": b"3"}, b"p": {b"a": b"4"}}
            )
            table.put_rows({b"m3": {b"a": (b"old", 1000)}})
            table.put_rows({b"m3": {b"a": (b"older", 999)}})  # an older version: hidden
            assert [c.value for c in table.row(b"m3").columnValues] == [b"old"]
            got = table.get_many([b"m2", b"m1", b"m2", b"zz"], [None, [b"b"], [b"a"], None])
            cells = [[(c.qualifier, c.value) for c in r.columnValues] for r in got]
            assert cells == [[(b"a", b"3")], [(b"b", b"2")], [(b"a", b"3")], []]
            assert [r.row for r in table.scan(prefix=b"m")] == [b"m1", b"m2", b"m3"]
            assert [r.row for r in table.scan(b"m2", b"p")] == [b"m2", b"m3"]
            keys_only = [
                c.value for r in table.scan(prefix=b"m1", keys_only=True) for c in r.columnValues
            ]
            assert keys_only == [b"", b""]
            table.delete_cells([(b"m1", b"a"), (b"p", b"a")])
            assert [(c.qualifier, c.value) for c in table.row(b"m1").columnValues] == [(b"b", b"2")]
            assert table.row(b"p").columnValues == []
            assert table.increment(b"c", b"n", 5) == 5 and table.increment(b"c", b"n", 2) == 7
            # many rows: split over several getMultiples and putMultiples, answered in order
            many = {b"r%05d" % k: {b"v": b"%d" % k} for k in range(9000)}
            with CallTally(pool) as tally:
                table.put_rows(many)
                back = table.get_many(list(many)[::-1])
            assert [r.columnValues[0].value for r in back] == [
                b"%d" % k for k in range(8999, -1, -1)
            ]
            assert tally.calls["getMultiple"] > 1 and tally.calls["putMultiple"] > 1
        finally:
            pool.close()
