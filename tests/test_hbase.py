"""The index on the real test HBase cluster (tests/hbase): regions over three region servers,
answers equal to the embedded index's and brute force's, the filter on the region servers,
claims between concurrent writers, what a crashed writer leaves, and `phashdb init`."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import pytest
from conftest import add_by_hash, run_cli

import phashdb
from phashdb.hbase import DEFAULT_BANDS, keys
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


@hbase
def test_regions_spread_over_three_region_servers_and_stats_show_each(hbase_url):
    with phashdb.open(hbase_url) as index:
        deadline = time.monotonic() + 60  # a balancer run may be moving a region: wait for it
        while (info := index.stats())["region_servers"] < 3 and time.monotonic() < deadline:
            time.sleep(1)
        # 2 regions per band in the tests, the hashes' bands and the keys', and the wide keys'
        assert info["regions"] == 2 * DEFAULT_BANDS * 2 + 1
        assert info["region_servers"] == 3
        per = info["per_region_server"]
        assert sum(s["regions"] for s in per.values()) == 2 * DEFAULT_BANDS * 2 + 1
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
def test_cli_init_creates_pre_split_tables_and_works_on_hbase(hbase_cluster, photos, near_copies):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift2_port']}/cli_{os.getpid()}"
    init = run_cli("--db", url, "init", "--regions-per-band", "3")
    assert init.returncode == 0, init.stderr
    # 3 regions a band, the hashes' bands and the keys', and the wide keys' one
    assert (
        f"regions: {2 * DEFAULT_BANDS * 3 + 1}" in init.stdout
        and "region_servers: 3" in init.stdout
    )
    assert run_cli("add", photos["coffee"], env_url=url).returncode == 0
    dup = run_cli("check", near_copies["coffee"], env_url=url)
    assert dup.returncode == 1 and "duplicate of" in dup.stdout
    assert run_cli("fsck", env_url=url).stdout.strip() == "0 orphaned entries"


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
