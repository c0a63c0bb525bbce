"""What only HBase has, in bytes and names: band and record cells, split keys, URL options and
the schema script (pure), and the tables an index name gives on the real test cluster
(tests/hbase)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import phashdb
from phashdb.bands import BandLayout
from phashdb.hbase import DEFAULT_BANDS, HBaseOptions, keys, schema_script, split_keys
from phashdb.records import Image

hbase = pytest.mark.hbase


# --- the byte layout (pure) -------------------------------------------------------------------


@pytest.mark.parametrize("bands", [3, 4, 5])
def test_band_cells_give_back_every_hash_and_number_and_lie_in_their_probe_range(bands):
    layout = BandLayout.even(bands)
    rng = np.random.default_rng(bands)
    hashes = rng.integers(0, 2**64, 3000, dtype=np.uint64)
    hashes[:40] = hashes[0] ^ rng.integers(0, 2**8, 40, dtype=np.uint64)  # shared band values
    numbers = np.array(
        [0, 1, 255, 256, 2**24, keys.MAX_NUMBER, *range(2**25, 2**25 + 2994)], np.uint64
    )
    cells = keys.band_cells_many(layout, 12, hashes, numbers, tag=2**30)
    for band, width in enumerate(layout.widths):
        seen = {}
        for row, pairs in cells.items():
            if row[0] != band:
                continue
            for qualifier, raw in pairs:
                assert keys.cell_tag(qualifier) == 2**30
                value = keys.cell_value(row, qualifier, width, 12)
                got_h, got_n = keys.parse_band_cells(layout, band, value, [raw])
                assert list(got_h) == sorted(
                    got_h, key=lambda h: keys._rotl(int(h), 64 - layout.shifts[band] - width)
                )
                for h, n in zip(got_h.tolist(), got_n.tolist()):
                    assert (h >> layout.shifts[band]) & ((1 << width) - 1) == value
                    seen[n] = h
                probe_row, first, end = keys.probe_range(band, value, width, 12)
                assert probe_row == row and first <= qualifier and (end is None or qualifier < end)
                # the next band value's range does not hold it
                next_row, next_first, _ = keys.probe_range(
                    band, (value + 1) % (1 << width), width, 12
                )
                assert next_row != row or next_first > qualifier
        assert seen == dict(zip(numbers.tolist(), hashes.tolist()))
    # an image written alone: its cells are tagged with its own number
    alone = keys.band_cells_many(layout, 12, hashes[5:6], np.array([99], np.uint64), tag=99)
    assert len(alone) == bands
    for row, [(qualifier, raw)] in alone.items():
        assert keys.cell_tag(qualifier) == 99
        value = keys.cell_value(row, qualifier, layout.widths[row[0]], 12)
        got = keys.parse_band_cells(layout, row[0], value, [raw])
        assert (got[0].tolist(), got[1].tolist()) == ([int(hashes[5])], [99])


def test_image_numbers_and_ids_map_to_cells_and_back():
    for n in (0, 1, 255, 256, 65_537, keys.MAX_NUMBER):
        assert keys.number_of(*keys.number_cell(n)) == n
    # consecutive blocks of numbers land far apart (spread over regions)
    rows = [keys.number_cell(b << 8)[0] for b in range(4)]
    assert len({r[:2] for r in rows}) == 4
    weird = os.fsdecode(b"caf\xe9-\xff.jpg")  # a Latin-1 file name: surrogate escapes
    row, qualifier = keys.id_cell(weird)
    assert keys.decode_id(qualifier) == weird and row[:1] == b"i"
    image = Image(weird, 2**64 - 1, "/p/" + weird, 10, 1.5, 3, 4, 99.0)
    assert keys.decode_record(keys.encode_record(image)) == image


def test_record_cells_made_a_row_at_a_time_are_those_of_each_number():
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(0, keys.MAX_NUMBER - 1000), st.integers(0, 1000))
    def check(first, count):
        cells = [(row, q) for row, qs in keys.number_rows(first, count) for q in qs]
        assert cells == [keys.number_cell(n) for n in range(first, first + count)]

    check()


def test_records_of_bare_hashes_are_those_of_their_images():
    from hypothesis import given
    from hypothesis import strategies as st

    texts = st.text(st.characters(codec=None, exclude_categories=()))  # surrogates too

    @given(
        st.lists(st.tuples(texts, st.integers(0, 2**64 - 1))),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    def check(pairs, added):
        ids, hashes = [i for i, _ in pairs], np.array([h for _, h in pairs], np.uint64)
        assert keys.hash_records(ids, hashes, added) == [
            keys.encode_record(Image(i, h, added=added)) for i, h in pairs
        ]

    check()


def test_split_keys_cut_every_band_into_equal_slices():
    """The hashes' bands and the keys' alike (the keys' rows hold nine entries an image with the
    window keys: left in the table's last region, one server held them all); the wide keys'
    rows in a region of their own."""
    split = split_keys(BandLayout.even(4), 4)
    assert split == sorted(split) and len(split) == 2 * 4 * 4 - 1 + 1
    assert split[:3] == [b"\x00\x04\x00", b"\x00\x08\x00", b"\x00\x0c\x00"]
    assert split[3] == b"\x01\x00\x00"
    first_key = bytes([keys.KEY_BANDS])
    assert split[15:19] == [first_key + b"\x00\x00", first_key + b"\x04\x00",
                            first_key + b"\x08\x00", first_key + b"\x0c\x00"]  # fmt: skip
    assert split[-1] == bytes([keys.WIDE_KEY_BANDS])


def test_record_split_keys_give_each_region_an_equal_share_of_the_ids_and_numbers():
    import bisect
    from collections import Counter

    regions = 4
    split = keys.record_split_keys(regions)
    rows = [keys.id_cell(f"photos/{k:06d}.jpg")[0] for k in range(20_000)]
    rows += [keys.number_cell(n)[0] for n in range(0, 20_000 * 256, 256)]
    held = Counter(bisect.bisect_right(split, row) for row in rows)
    # Region 0 (before b"i") holds the settings and counter rows only; then 4 of ids, 4 of numbers.
    assert sorted(held) == list(range(1, 2 * regions + 1))
    assert max(held.values()) / min(held.values()) < 1.1, held


def test_url_options_are_parsed_and_checked():
    o = HBaseOptions.from_url("hbase://h:9999/pics?pool_size=3&timeout=2.5&transport=framed")
    assert (o.host, o.server, o.table, o.pool_size, o.timeout, o.transport) == (
        "h",
        9999,
        "pics",
        3,
        2.5,
        "framed",
    )
    assert HBaseOptions.from_url("hbase://h:9090/pics?thrift2_port=9091").server == 9091
    with pytest.raises(ValueError, match="unknown option"):
        HBaseOptions.from_url("hbase://h/pics?colour=red")
    with pytest.raises(ValueError, match="'transport'"):
        HBaseOptions.from_url("hbase://h/pics?transport=carrier-pigeon")


def test_print_schema_gives_a_shell_script_with_the_split_points():
    result = run_cli(
        "--db", "hbase://h:9090/pics", "init", "--print-schema", "--regions-per-band", "2"
    )
    assert result.returncode == 0
    assert result.stdout == schema_script("pics", BandLayout.even(DEFAULT_BANDS), 2)
    assert "create 'pics'" in result.stdout and "create 'pics.images'" in result.stdout


def test_checked_in_schema_script_matches_the_default_layout():
    script = Path(__file__).parent.parent / "hbase-schema" / "create-tables.hbase"
    assert script.read_text() == schema_script("images", BandLayout.even(DEFAULT_BANDS), 6)


# --- table names (issue 22, item 19) ----------------------------------------------------------


@pytest.mark.parametrize("name", ["a b", "x:y", "-x", ".x", "x*y", "pics.images"])
def test_an_invalid_index_name_is_one_clear_line_before_any_connection(name):
    # Port 1: were the name sent to a server, the answer would be "not reachable".
    result = run_cli("--db", f"hbase://127.0.0.1:1/{name}", "init")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"phashdb: error: {name!r} is not a valid HBase index name: ")


@hbase
def test_an_index_and_the_index_named_it_plus_images_share_no_table(hbase_cluster, photos):
    from phashdb.hbase.schema import drop_tables

    c = hbase_cluster
    x = f"hbase://{c['host']}:{c['thrift2_port']}/pair{os.getpid()}"
    try:
        for url in (x, x + "_images"):
            init = run_cli("--db", url, "init", "--regions-per-band", "1")
            assert init.returncode == 0, init.stderr
        assert run_cli("--db", x, "add", photos["camera"]).returncode == 0
        with phashdb.open(x) as first, phashdb.open(x + "_images") as second:
            assert (len(first), len(second)) == (1, 0)
            assert second.check(photos["camera"]).duplicate is False
    finally:
        drop_tables(x)
        drop_tables(x + "_images")


@hbase
def test_tables_named_the_old_way_still_open_and_are_not_anothers_to_drop(
    hbase_cluster, photos, near_copies
):
    from phashdb.hbase.schema import _create, drop_tables
    from phashdb.hbase.thrift import Pool

    c = hbase_cluster
    old = f"hbase://{c['host']}:{c['thrift2_port']}/old{os.getpid()}"
    options = HBaseOptions.from_url(old)
    pool = Pool(options)
    try:  # the tables an index got before: T and T_images
        _create(pool, options.table, options.table + "_images", BandLayout.even(DEFAULT_BANDS), 1,
                keys.DEFAULT_ROW_BITS)  # fmt: skip
    finally:
        pool.close()
    try:
        with phashdb.open(old) as index:
            index.add(photos["camera"])
        with phashdb.open(old) as index:
            assert len(index) == 1 and index.check(near_copies["camera"]).duplicate
        # An index named like the old record table: init says whose it is, advises no drop.
        taken = run_cli("--db", old + "_images", "init")
        assert taken.returncode == 2
        [line] = taken.stderr.strip().splitlines()
        assert f"holds the records of the index 'old{os.getpid()}'" in line
        assert "drop" not in line
        with phashdb.open(old) as index:
            assert len(index) == 1 and index.check(near_copies["camera"]).duplicate
    finally:
        drop_tables(old)
    assert "does not exist" in run_cli("--db", old, "stats").stderr
