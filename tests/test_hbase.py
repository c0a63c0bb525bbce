"""What only HBase has: the byte layout, regions over three region servers, claims between
concurrent writers, what a crashed writer leaves, the server going away, and the errors users
meet. All against the real test cluster (tests/hbase)."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import phashdb
from phashdb import StoreError
from phashdb.bands import BandLayout
from phashdb.hbase import DEFAULT_BANDS, HBaseOptions, keys, schema_script, split_keys
from phashdb.hbase.claims import Claim, write_claim
from phashdb.hbase.thrift import hb
from phashdb.records import Image

hbase = pytest.mark.hbase


def clustered_hashes(n, seed=7):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    hashes = centres[rng.integers(0, 40, n)]
    for bit in range(64):
        flip = rng.random(n) < 0.04
        hashes[flip] ^= np.uint64(1 << bit)
    return hashes


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
    split = split_keys(BandLayout.even(4), 4)
    assert split == sorted(split) and len(split) == 4 * 4 - 1
    assert split[:3] == [b"\x00\x04\x00", b"\x00\x08\x00", b"\x00\x0c\x00"]
    assert split[3] == b"\x01\x00\x00"


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


# --- on the real cluster ----------------------------------------------------------------------


@hbase
def test_regions_spread_over_three_region_servers_and_stats_show_each(hbase_url):
    with phashdb.open(hbase_url) as index:
        deadline = time.monotonic() + 60  # a balancer run may be moving a region: wait for it
        while (info := index.stats())["region_servers"] < 3 and time.monotonic() < deadline:
            time.sleep(1)
        assert info["regions"] == DEFAULT_BANDS * 2  # 2 regions per band in the tests
        assert info["region_servers"] == 3
        per = info["per_region_server"]
        assert sum(s["regions"] for s in per.values()) == DEFAULT_BANDS * 2
        assert abs(sum(s["share"] for s in per.values()) - 1) < 1e-3
        regions = index.store.regions()
        starts = sorted((r.regionInfo.startKey or b"", r.serverName.port) for r in regions)

        def server_of(row):
            return [port for start, port in starts if start <= row][-1]

        probes = index.store.probes(np.array([0x0123_4567_89AB_CDEF], np.uint64), 8)
        rows = {
            keys.probe_range(band, v, index.store.layout.widths[band], index.store.row_bits)[0]
            for _, band, v in probes
        }
        assert len({server_of(row) for row in rows}) > 1
        # every check reads all over the band table: its blocks are cached when a file opens
        name = hb.TTableName(ns=b"default", qualifier=index.store.options.table.encode())
        desc = index.store.pool.call(lambda c: c.getTableDescriptor(name))
        assert desc.columns[0].attributes[b"PREFETCH_BLOCKS_ON_OPEN"] == b"true"


@hbase
@pytest.mark.parametrize("hbase_url", [8, 12], indirect=True)  # bits of a band value in a row key
def test_both_backends_answer_every_query_identically(hbase_url, tmp_path):
    hashes = clustered_hashes(1500)
    pairs = [(f"img{i}", int(h)) for i, h in enumerate(hashes)]
    queries = (hashes[::37] ^ np.uint64(0b1001_0000_0001)).tolist()
    with (
        phashdb.open(hbase_url) as hbase,
        phashdb.open(hbase_url + "?server_filter=0") as unfiltered,
        phashdb.open(tmp_path / "embedded") as embedded,
    ):
        hbase.add_hashes(pairs)
        embedded.add_hashes(pairs)
        assert len(hbase) == len(embedded) == 1500
        for radius in range(17):
            want = embedded.query_many(queries, radius)
            assert hbase.query_many(queries, radius) == want, radius
            assert unfiltered.query_many(queries, radius) == want, radius
        assert hbase.store.server_filter  # the region servers ran HammingFilter throughout
        dedupe = lambda ix: [[i.id for i in g.images] for g in ix.dedupe(threshold=6)]
        assert dedupe(hbase) == dedupe(embedded)
        # a replaced hash moves the image; a removed one is gone from every answer
        gone = {n for n, _ in hbase.store.lookup(["img0", "img2"]).values()}
        hbase.add_hashes([("img0", int(hashes[1]))])
        embedded.add_hashes([("img0", int(hashes[1]))])
        hbase.remove("img2")
        embedded.remove("img2")
        assert hbase.query_many(queries, 8) == embedded.query_many(queries, 8)
        assert hbase.query(int(hashes[1]), 0) == embedded.query(int(hashes[1]), 0)
        # the removed images' entries left their band cells; their neighbours' stayed
        assert hbase.store.fsck(min_age=0) == []
        _, numbers, _ = hbase.store.candidates(hashes[:3], 0)
        assert len(numbers) and not gone & set(numbers.tolist())
        assert hbase.query_many(queries, 16) == embedded.query_many(queries, 16)


@hbase
def test_the_region_servers_send_back_only_the_entries_near_the_query(hbase_url):
    # 3,000 images share their first band's value, so its probe meets all of them; at radius 2
    # only the query's few neighbours may leave the region server.
    rng = np.random.default_rng(3)
    hashes = (np.uint64(0x1579) << np.uint64(51)) | rng.integers(0, 2**51, 3000, dtype=np.uint64)
    hashes[1:4] = hashes[0] ^ np.array([1, 2, 3], np.uint64)
    with (
        phashdb.open(hbase_url) as index,
        phashdb.open(hbase_url + "?server_filter=0") as unfiltered,
    ):
        index.add_hashes((f"s{i}", int(h)) for i, h in enumerate(hashes))

        def entries(store):
            size = keys.entry_size(store.layout.widths[0])
            return sum(
                len(cell.value) // size
                for (_, band), result in store._probe(hashes[:1], 2)
                if band == 0
                for cell in result.columnValues
            )

        assert entries(unfiltered.store) >= 3000
        assert entries(index.store) == 4
        assert [id for id, _ in index.query(int(hashes[0]), 2)] == ["s0", "s1", "s2", "s3"]


@hbase
def test_without_phashdbs_filter_on_the_cluster_the_client_measures_every_entry(
    hbase_url, monkeypatch, caplog
):
    # A cluster without java/hbase's jar refuses the filter by its class name (as HBase does
    # for any class it lacks): the store says so once and measures every entry itself.
    from phashdb.hbase import thrift

    monkeypatch.setattr(thrift, "HAMMING_FILTER", "phashdb.hbase.NoSuchFilter")
    hashes = clustered_hashes(400)
    with phashdb.open(hbase_url) as index:
        index.add_hashes((f"c{i}", int(h)) for i, h in enumerate(hashes))
        for radius in (0, 6, 12):
            q = int(hashes[9]) ^ 0b101
            want = sorted(
                ((int(h) ^ q).bit_count(), f"c{i}")
                for i, h in enumerate(hashes)
                if (int(h) ^ q).bit_count() <= radius
            )
            assert index.query(q, radius) == [(id, d) for d, id in want]
        assert not index.store.server_filter
    warned = [r for r in caplog.records if "HammingFilter" in r.getMessage()]
    assert len(warned) == 1 and "NoSuchFilter" in warned[0].getMessage()


@hbase
def test_ids_and_paths_that_are_not_utf8_round_trip(hbase_url):
    weird = os.fsdecode(b"/photos/caf\xe9 \xff\xfe.jpg")
    with phashdb.open(hbase_url) as index:
        index.insert([Image(weird, 0x1234_5678_9ABC_DEF0, weird, 12, 3.5, 8, 8)])
        assert index.query(0x1234_5678_9ABC_DEF0, 0) == [(weird, 0)]
        assert index.get(weird).path == weird
        assert [i.id for i in index.images()] == [weird]
        assert index.matches([0x1234_5678_9ABC_DEF0], 0)[0][0].path == weird
        assert index.remove(weird) and len(index) == 0


def add_by_hash(index, image, radius):
    """Index.add's steps, with a hash instead of a file."""
    with index.store.claim(image, radius) as rivals:
        found = index.matches([image.hash], radius)[0] + rivals
        if not found:
            index.store.put([image])
    return found


@hbase
def test_of_concurrent_writers_adding_near_copies_exactly_one_is_unique(hbase_url):
    base = 0x5A5A_0F0F_3C3C_9696
    copies = [base ^ (1 << k) ^ (1 << (k + 20)) for k in range(8)]  # pairwise within 4 bits
    verdicts = {}
    barrier = threading.Barrier(len(copies))

    def add(k):
        with phashdb.open(hbase_url) as index:
            barrier.wait()
            verdicts[k] = [m.id for m in add_by_hash(index, Image(f"copy{k}", copies[k]), 4)]

    threads = [threading.Thread(target=add, args=(k,)) for k in range(len(copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    unique = [k for k, found in verdicts.items() if not found]
    assert len(verdicts) == len(copies) and len(unique) == 1
    for k, found in verdicts.items():
        assert k in unique or found == [f"copy{unique[0]}"]  # every duplicate names the stored one
    with phashdb.open(hbase_url) as index:
        assert len(index) == 1 and index.get(f"copy{unique[0]}") is not None
        assert index.store.fsck(min_age=0) == []  # every loser withdrew its claim


@hbase
def test_a_writer_that_died_after_its_claim_never_makes_a_duplicate(hbase_url):
    with phashdb.open(hbase_url) as index:
        # A writer claims a hash (band cells and a live claim with a 2 s lease), then dies.
        dead = Claim(
            index.store.admission.next_number(),
            Image("never-stored", 0x7777_0000_FFFF_1234),
            int(time.time() * 1000),
        )
        index.store.writer.write_band_cells([(dead.number, dead.image)], tag=dead.number)
        write_claim(index.store.records, dead, lease=2.0)
        # A near copy arrives: it waits out the lease at most, and is unique.
        found = add_by_hash(index, Image("upload", 0x7777_0000_FFFF_1235), 8)
        assert found == []
        assert index.get("upload") is not None and index.get("never-stored") is None
        # and the next near copy is a duplicate of the stored image, never of the claim
        assert [m.id for m in add_by_hash(index, Image("again", 0x7777_0000_FFFF_1236), 8)] == [
            "upload"
        ]
        assert [id for id, _ in index.store.fsck(min_age=0)] == ["never-stored"]


@hbase
def test_a_crash_between_writes_leaves_no_visible_half_entry_and_fsck_removes_it(hbase_url):
    with phashdb.open(hbase_url) as index:
        index.add_hashes([("kept", 0x1111_2222_3333_4444)])
        # A writer that died after its band cells and id cell, before its record:
        number = index.store.records.allocate(1)[0]
        half = Image("half", 0x1111_2222_3333_4445)
        index.store.writer.write_band_cells([(number, half)], tag=number)
        index.store.records.put_ids([(number, half)])
        assert index.query(0x1111_2222_3333_4444, 4) == [("kept", 0)]
        assert index.get("half") is None and "half" not in index
        assert index.fsck() == []  # too young: it may be a writer at work
        assert index.store.fsck(min_age=0) == [(f"#{number}", 0x1111_2222_3333_4445)]
        assert index.store.fsck(min_age=0, repair=True) == [(f"#{number}", 0x1111_2222_3333_4445)]
        assert index.store.fsck(min_age=0) == []
        assert index.query(0x1111_2222_3333_4444, 4) == [("kept", 0)]


@hbase
def test_fsck_repair_packs_each_band_values_cells_into_one_and_every_answer_stays(hbase_url):
    rng = np.random.default_rng(7)
    base = 0x1234_5678_9ABC_DEF0
    hashes = [
        base ^ sum(1 << int(b) for b in rng.choice(64, int(rng.integers(0, 7)), replace=False))
        for _ in range(40)
    ]
    queries = [base ^ (1 << k) for k in range(0, 64, 7)] + hashes[:5]

    def brute(radius, gone=()):
        return [
            sorted(
                (
                    (f"i{k}", (q ^ h).bit_count())
                    for k, h in enumerate(hashes)
                    if f"i{k}" not in gone and (q ^ h).bit_count() <= radius
                ),
                key=lambda m: (m[1], m[0]),
            )
            for q in queries
        ]

    def cells_per_value(store):
        counts: dict[tuple[bytes, bytes], int] = {}
        for result in store.bands.scan():
            for cell in result.columnValues:
                key = result.row, cell.qualifier[: keys.LOW_BYTES]
                counts[key] = counts.get(key, 0) + 1
        return counts

    # A batch an image, as single adds write: a cell per image per band value.
    with phashdb.open(hbase_url + "?batch_size=1") as index:
        index.add_hashes([(f"i{k}", h) for k, h in enumerate(hashes)])
        store = index.store
        before = cells_per_value(store)
        assert max(before.values()) > 10
        assert store.fsck(repair=True) == []  # too young to pack: a writer may be at work
        assert cells_per_value(store) == before
        assert store.fsck(repair=True, min_age=0) == []
        after = cells_per_value(store)
        assert set(after) == set(before) and set(after.values()) == {1}
        for radius in (0, 4, 8, 12, 16):
            assert index.query_many(queries, radius) == brute(radius)
        assert len(index) == len(hashes) and store.fsck(min_age=0) == []
        # A packed cell loses an image's entry when it is removed, as any cell does.
        assert index.remove("i3")
        assert index.query_many(queries, 16) == brute(16, gone={"i3"})
        assert store.fsck(min_age=0) == []


@hbase
def test_a_batch_of_hashes_keeps_replaces_and_adds_as_the_embedded_index_does(
    hbase_url, tmp_path, monkeypatch
):
    # Batches of more than LOOKUP_AFTER_COUNTER ids: the first into empty tables (no id looked
    # up), the second over stored ids, unchanged and changed, with new ones; an id twice. Each
    # is written (and looked up) in steps of 700 ids.
    monkeypatch.setattr("phashdb.hbase.writes.WRITE_STEP", 700)
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**64, 3000, dtype=np.uint64, endpoint=False).tolist()
    first = [(f"img{k}", h) for k, h in enumerate(hashes[:2000])] + [("twice", 1), ("twice", 2)]
    second = [(f"img{k}", h ^ (1 << 40) if k % 7 == 0 else h) for k, h in enumerate(hashes)]
    second += [("twice", 3), (os.fsdecode(b"caf\xe9"), 4)]
    with phashdb.open(hbase_url) as hbase, phashdb.open(tmp_path / "embedded") as embedded:
        for index in (hbase, embedded):
            index.add_hashes(first)
        assert len(hbase) == len(embedded) == 2001 and hbase.get("twice").hash == 2
        added = {k: hbase.get(f"img{k}").added for k in (1, 7)}
        for index in (hbase, embedded):
            index.add_hashes(second)
        assert len(hbase) == len(embedded) == 3002
        stored = {i.id: i.hash for i in hbase.store.images()}
        assert stored == {i.id: i.hash for i in embedded.store.images()}
        assert stored == dict([*first, *second])
        assert hbase.get("img1").added == added[1]  # unchanged: left alone
        assert hbase.get("img7").added > added[7]  # another hash: replaced
        queries = [h ^ 0b101 for h in hashes[::50]]
        assert hbase.query_many(queries, 6) == embedded.query_many(queries, 6)
        assert hbase.query(hashes[7], 0) == embedded.query(hashes[7], 0) == []
        assert hbase.store.fsck(min_age=0) == []
        # the cycle collector, paused while a batch is written, is as it was before
        assert gc.isenabled()
        gc.disable()
        try:
            hbase.add_hashes([("off", 5)])
            assert not gc.isenabled()
        finally:
            gc.enable()


@hbase
def test_a_missing_table_says_how_to_create_it(hbase_cluster):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift2_port']}/no_such_table"
    with pytest.raises(StoreError, match="'no_such_table' does not exist.*phashdb"):
        phashdb.open(url)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_a_store_error_naming_it():
    port = free_port()
    with pytest.raises(StoreError, match=f"127.0.0.1:{port} is not reachable"):
        phashdb.open(f"hbase://127.0.0.1:{port}/images?retries=1")


def test_a_server_that_never_answers_times_out_with_bounded_retries():
    # A socket that accepts connections and never replies: every Thrift call times out.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        with pytest.raises(StoreError, match="not reachable or timed out after 2 attempts"):
            phashdb.open(f"hbase://127.0.0.1:{port}/images?timeout=0.5&retries=1")
    finally:
        server.close()


class Proxy:
    """A TCP relay to the real Thrift2 server that can be cut, as if the server went down."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.down = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@hbase
def test_once_the_server_is_known_down_every_call_fails_at_once(hbase_url, photos):
    proxy = Proxy(int(hbase_url.split(":")[2].split("/")[0]))
    url = hbase_url.replace(hbase_url.split(":")[2].split("/")[0], str(proxy.port), 1)
    with phashdb.open(f"{url}?retries=2") as index:
        index.add_hashes([("a", 1)])
        proxy.cut()
        errors = []
        for path in list(photos.values()) * 5:
            with pytest.raises(StoreError) as caught:
                index.check(path)
            errors.append(str(caught.value))
    assert "after 3 attempts" in errors[0]
    assert all("not retried" in e for e in errors[1:])  # no more retries once it is known down


def test_the_cli_names_the_server_once_and_exits_2_when_hbase_is_down(photos):
    url = f"hbase://127.0.0.1:{free_port()}/images?retries=1"
    result = run_cli("check", *photos.values(), env_url=url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "is not reachable" in result.stderr


@hbase
def test_cli_init_creates_pre_split_tables_and_works_on_hbase(hbase_cluster, photos, near_copies):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift2_port']}/cli_{os.getpid()}"
    init = run_cli("--db", url, "init", "--regions-per-band", "3")
    assert init.returncode == 0, init.stderr
    assert f"regions: {DEFAULT_BANDS * 3}" in init.stdout and "region_servers: 3" in init.stdout
    assert run_cli("add", photos["coffee"], env_url=url).returncode == 0
    dup = run_cli("check", near_copies["coffee"], env_url=url)
    assert dup.returncode == 1 and "duplicate of" in dup.stdout
    assert run_cli("fsck", env_url=url).stdout.strip() == "0 orphaned entries"


@hbase
def test_cli_errors_on_hbase_are_one_line(hbase_cluster, photos):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift2_port']}/nope"
    missing = run_cli("check", photos["coffee"], env_url=url)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "does not exist" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def control(cluster, command):
    """A command to the test cluster (MiniCluster's control port); its answer."""
    with socket.create_connection(("127.0.0.1", cluster["control_port"])) as s:
        f = s.makefile("rw")
        f.write(command + "\n")
        f.flush()
        answer = f.readline().strip()
    assert answer.startswith("ok"), f"{command}: {answer}"
    return answer[3:]


@hbase
def test_a_region_server_killed_under_load_loses_no_add_and_gives_no_wrong_verdict(
    hbase_cluster, hbase_url
):
    rng = np.random.default_rng(11)
    stored = {f"pre{i}": int(h) for i, h in enumerate(rng.integers(0, 2**64, 200, dtype=np.uint64))}
    with phashdb.open(hbase_url) as index:
        index.add_hashes(list(stored.items()))
    added, wrong, errors, others = {}, [], [], []
    started = threading.Event()

    def adder(k):
        with phashdb.open(hbase_url) as index:
            for i, h in enumerate(np.random.default_rng(k).integers(0, 2**64, 40, dtype=np.uint64)):
                image = Image(f"add{k}-{i}", int(h))
                try:
                    if add_by_hash(index, image, 4) == []:
                        added[image.id] = image.hash
                except StoreError as e:
                    errors.append(str(e))
                except Exception as e:  # noqa: BLE001 (anything else is a defect)
                    others.append(repr(e))
                if i == 5:
                    started.set()

    def checker():
        with phashdb.open(hbase_url) as index:
            for id, h in list(stored.items())[:60]:
                try:
                    if index.query(h, 0) != [(id, 0)]:
                        wrong.append(id)
                except StoreError as e:
                    errors.append(str(e))
                except Exception as e:  # noqa: BLE001
                    others.append(repr(e))

    threads = [threading.Thread(target=adder, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=checker))
    for t in threads:
        t.start()
    started.wait(timeout=120)
    control(hbase_cluster, "abort-rs 0")
    for t in threads:
        t.join(timeout=600)
    try:
        assert not any(t.is_alive() for t in threads)
        assert others == [] and wrong == []
        assert all("\n" not in e for e in errors)  # failures are the one-line StoreError
        assert len(added) > 0
        with phashdb.open(hbase_url) as index:
            for id, h in added.items():  # every add that returned success is there
                assert index.query(h, 0) == [(id, 0)]
    finally:
        control(hbase_cluster, "start-rs")


@hbase
def test_after_a_thrift_server_restart_the_pool_reconnects(hbase_cluster, hbase_url):
    with phashdb.open(hbase_url) as index:
        index.add_hashes([("a", 0xABCD)])
        assert index.query(0xABCD, 0) == [("a", 0)]
        control(hbase_cluster, "restart-thrift")
        assert index.query(0xABCD, 0) == [("a", 0)]  # stale pooled connections are replaced
        index.add_hashes([("b", 0xABCC)])
        assert index.query(0xABCD, 1) == [("a", 0), ("b", 1)]


@hbase
@pytest.mark.parametrize("hbase_url", [8, 12], indirect=True)
def test_hbase_search_equals_brute_force(hbase_url):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    stored: dict[str, int] = {}
    hashes64 = st.integers(0, 2**64 - 1)

    with phashdb.open(hbase_url) as index:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            new=st.lists(hashes64, max_size=40),
            near=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2**64 - 1)), max_size=10),
            radius=st.integers(0, 16),
        )
        def check(new, near, radius):
            pairs = [(f"h{len(stored) + k}", h) for k, h in enumerate(new)]
            index.add_hashes(pairs)
            stored.update(pairs)
            values = list(stored.values())
            # queries near stored hashes (a few bits flipped) and anywhere
            queries = (
                [values[i % len(values)] ^ (m & (m >> 7) & (m >> 13)) for i, m in near]
                if values
                else []
            )
            queries += [m for _, m in near]
            got = index.query_many(queries, radius)
            for q, answer in zip(queries, got):
                want = sorted(
                    ((h ^ q).bit_count(), id)
                    for id, h in stored.items()
                    if (h ^ q).bit_count() <= radius
                )
                assert answer == [(id, d) for d, id in want]

        check()


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
