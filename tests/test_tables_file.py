"""The band table file is a persisted format (PHDBTAB3): what `save` writes is pinned byte for
byte, and `load` reads it back as it was written, the rows' keys and ids beside the tables."""

from __future__ import annotations

import hashlib

import numpy as np

from phashdb.bands import BandLayout
from phashdb.tables import BandTables, RowIds, load, save

HASHES = np.array(
    [0, 0xFFFFFFFFFFFFFFFF, 0x0123456789ABCDEF, 0x8000000000000001, 0x0123456789ABCDEE],
    np.uint64,
)
# A path that is not UTF-8 (a lone surrogate, as os.fsdecode gives it), an empty id, and a
# character of several UTF-8 bytes.
IDS = ["a", "b/\u00e9.jpg", "c\udcff", "", "e"]
KEYS = np.array([3, 4, 7, 8, 11], np.int64)
EXTRA = {"max_seq": 11, "last_id": "e"}
# sha256 of the file the code before tables/ was split out wrote for the rows above: a change
# of this digest is a change of the format (bump MAGIC and read the old one).
GOLDEN = "553883a4cd868a1738c2c66e2e5c6a95930afd2cc4e14bb2ebb8e90af59208b0"


def test_golden_file_pins_the_table_file_layout(tmp_path):
    path = tmp_path / "bands.bin"
    save(path, BandTables.build(HASHES, BandLayout.even(16)), RowIds.of(KEYS, IDS), EXTRA)
    data = path.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (6720, GOLDEN)


def test_a_saved_file_loads_as_it_was_written(tmp_path):
    path = tmp_path / "bands.bin"
    save(path, BandTables.build(HASHES, BandLayout.even(16)), RowIds.of(KEYS, IDS), EXTRA)
    tables, rows, extra = load(path, check_all=True)
    assert extra == EXTRA
    assert tables.layout == BandLayout.even(16)
    assert tables.hashes.tolist() == HASHES.tolist()
    assert rows.keys.tolist() == KEYS.tolist()
    assert rows.ids(np.arange(5)) == IDS
    q, found, d = tables.search(HASHES[2:3], 1, strategy="probe")
    assert sorted(zip(found.tolist(), d.tolist())) == [(2, 0), (4, 1)]
