"""The band table file is a persisted format (PHDBTAB3): what `save` writes is pinned byte for
byte, and `load` reads it back as it was written, the rows' keys and ids beside the tables."""

from __future__ import annotations

import hashlib

import numpy as np

from phashdb.bands import BandLayout
from phashdb.tables import BandTables, RowIds, load, read_header, save, save_built

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


def test_a_file_built_band_by_band_loads_as_saves_does(tmp_path):
    # save_built writes the arrays before it knows their CRC32s: its header may end in spaces,
    # and every array is the one `save` writes, where `save` writes it relative to the header.
    layout = BandLayout.even(16)
    save(tmp_path / "whole.bin", BandTables.build(HASHES, layout), RowIds.of(KEYS, IDS), EXTRA)
    pieces = [RowIds.of(KEYS[:2], IDS[:2]), RowIds.of(KEYS[2:2], []), RowIds.of(KEYS[2:], IDS[2:])]
    hashes = [HASHES[:2], HASHES[2:2], HASHES[2:]]
    save_built(tmp_path / "built.bin", hashes, layout, pieces, EXTRA)
    assert pieces == [] and hashes == []  # let go once written
    (whole, whole_rows, whole_extra), (built, built_rows, built_extra) = (
        load(tmp_path / name, check_all=True) for name in ("whole.bin", "built.bin")
    )
    assert built_extra == whole_extra and built.layout == whole.layout
    for a, b in [(whole.hashes, built.hashes), (whole_rows.keys, built_rows.keys),
                 (whole_rows.id_blob, built_rows.id_blob), (whole_rows.id_ends, built_rows.id_ends),
                 *zip(whole.orders + whole.starts + whole.sorted_hashes,
                      built.orders + built.starts + built.sorted_hashes)]:  # fmt: skip
        assert a.dtype == b.dtype and a.tolist() == b.tolist()
    whole_head, whole_base = read_header(tmp_path / "whole.bin")
    built_head, built_base = read_header(tmp_path / "built.bin")
    assert built_head == whole_head
    data = [(tmp_path / name).read_bytes()[base:] for name, base in
            [("whole.bin", whole_base), ("built.bin", built_base)]]  # fmt: skip
    assert data[0] == data[1]
