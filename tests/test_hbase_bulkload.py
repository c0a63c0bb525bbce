"""The HBase bulk load through HFiles (phashdb.hbase.bulkload, java/hbase): images loaded
so answer every question exactly as the same images added online; loading again adds nothing;
what goes wrong is one clear error. On the real test cluster (tests/hbase)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from itertools import count
from pathlib import Path

import numpy as np
import pytest

import phashdb
from phashdb import StoreError
from phashdb.hbase import bulkload, keys
from phashdb.hbase.schema import create_tables, drop_tables
from phashdb.ingest import ingest
from phashdb.mr import run as mr
from phashdb.records import Image

pytestmark = pytest.mark.hbase
_tables = count()


def clustered_hashes(n, seed=7):
    """Hashes in 40 clusters (pairs at every distance a search asks about)."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    hashes = centres[rng.integers(0, 40, n)]
    for bit in range(64):
        hashes[rng.random(n) < 0.04] ^= np.uint64(1 << bit)
    return hashes


def brute_force(hashes, ids, queries, radius):
    """Every (id, distance) within `radius` of each query, nearest first, then by id."""
    out = []
    for q in queries:
        d = np.bitwise_count(hashes ^ np.uint64(q))
        found = sorted((int(d[i]), ids[i]) for i in np.flatnonzero(d <= radius))
        out.append([(i, dist) for dist, i in found])
    return out


@pytest.fixture
def loadable(hbase_url, hbase_cluster):
    """The test's HBase URL with the cluster's ZooKeeper (what the bulk load connects to)."""
    return f"{hbase_url}?zookeeper={hbase_cluster['host']}:{hbase_cluster['zk_port']}"


@pytest.fixture
def online_url(hbase_cluster):
    """A second pair of tables, for the same images added online."""
    c = hbase_cluster
    url = f"hbase://{c['host']}:{c['thrift2_port']}/online{next(_tables)}_{os.getpid()}"
    create_tables(url, regions_per_band=2)
    yield url
    drop_tables(url)


def test_bulk_loaded_hashes_answer_every_query_as_online_and_as_brute_force(loadable, online_url):
    hashes = clustered_hashes(3000)
    # plain ids (the loader writes their records) and ids JSON must escape (Python does)
    odd = ' "quoted" \\ é ' + os.fsdecode(b"\xff")
    ids = [f"img{i}" for i in range(2000)] + [f"{i}{odd}" for i in range(2000, 3000)]
    queries = (hashes[::150] ^ np.uint64(0b1001_0000_0001)).tolist()
    with phashdb.open(loadable) as bulk, phashdb.open(online_url) as online:
        first = bulkload.load_hashes(bulk.store, ids[:2000], hashes[:2000])
        second = bulkload.load_hashes(bulk.store, ids[2000:], hashes[2000:])
        assert (first.added, second.added, first.skipped) == (2000, 1000, 0)
        online.add_hashes(zip(ids, hashes.tolist()))
        assert len(bulk) == len(online) == 3000
        for radius in range(17):
            got = bulk.query_many(queries, radius)
            assert got == online.query_many(queries, radius), radius
            assert got == brute_force(hashes, ids, queries, radius), radius
        groups = lambda ix: [[i.id for i in g.images] for g in ix.dedupe(threshold=6)]
        assert groups(bulk) == groups(online) and groups(bulk)
        # the records are the online path's, but for when they were added
        some = ids[::97]
        plain = lambda ix: {k: replace(v, added=None) for k, v in ix.store.find(some).items()}
        assert plain(bulk) == plain(online) and len(plain(bulk)) == len(some)
        assert all(abs(v.added - time.time()) < 600 for v in bulk.store.find(some).values())
        assert bulk.store.fsck(min_age=0) == []
        # a bulk-loaded image is removed as an online one is
        assert bulk.remove(ids[5]) and online.remove(ids[5])
        assert bulk.query_many(queries, 10) == online.query_many(queries, 10)


def test_loading_again_adds_nothing_twice_and_an_id_given_twice_keeps_the_last(loadable):
    hashes = clustered_hashes(500, seed=3)
    ids = [f"p{i}" for i in range(500)]
    with phashdb.open(loadable) as index:
        index.add_hashes([("p0", int(hashes[0])), ("p1", int(hashes[1]))])  # online first
        report = bulkload.load_hashes(index.store, ids, hashes)
        assert (report.added, report.skipped) == (498, 2)
        again = bulkload.load_hashes(index.store, ids, hashes)
        assert (again.added, again.skipped) == (0, 500)
        assert len(index) == 500
        assert index.query_many(hashes.tolist(), 3) == brute_force(hashes, ids, hashes.tolist(), 3)
        # within one load, the last of an id's hashes is the one stored
        twice = bulkload.load_hashes(
            index.store, ["x", "y", "x"], np.array([1, 2, 3 << 40], np.uint64)
        )
        assert twice.added == 2
        assert index.query(3 << 40, 0) == [("x", 0)] and index.query(1, 0) == []
        assert index.store.fsck(min_age=0) == []
        # a stored id with another hash (a file changed since) is replaced, as online
        changed = bulkload.load_hashes(
            index.store, ["p7", "p8"], np.array([5 << 50, hashes[8]], np.uint64)
        )
        assert (changed.added, changed.skipped) == (0, 2)
        assert index.query(5 << 50, 0) == [("p7", 0)]
        assert ("p7", 0) not in index.query(int(hashes[7]), 0)
        assert index.get("p8").hash == int(hashes[8]) and len(index) == 502


def test_bulk_loaded_photos_get_the_verdicts_online_ones_get(
    loadable, online_url, photos, near_copies, tmp_path
):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in photos.values():
        shutil.copy(path, folder / path.name)
    with phashdb.open(loadable) as bulk, phashdb.open(online_url) as online:
        ingest(online, [folder], workers=1)
        images = list(online.images())
        assert bulk.bulk_load(images) == len(photos)
        assert bulk.bulk_load(images) == 0  # already stored
        for path in [*photos.values(), *near_copies.values()]:
            got, expected = bulk.check(path), online.check(path)
            assert got.matches == expected.matches and got.matches, path
        assert sorted(i.path for i in bulk.images()) == sorted(i.path for i in images)
        assert [[i.id for i in g.images] for g in bulk.dedupe()] == [
            [i.id for i in g.images] for g in online.dedupe()
        ]


def test_the_ingest_job_loads_hbase_through_hfiles(
    loadable, online_url, photos, near_copies, tmp_path
):
    folder = tmp_path / "collection"
    folder.mkdir()
    for path in [*photos.values(), near_copies["chelsea"]]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with phashdb.open(loadable) as bulk, phashdb.open(online_url) as online:
        report = mr.ingest(bulk, [folder], "inline")  # load="hfile", the default for HBase
        expected = mr.ingest(online, [folder], "inline", load="online")
        assert report.to_json() == expected.to_json()
        assert (report.added, report.duplicates, len(report.failed)) == (len(photos) + 1, 1, 1)
        stored = lambda ix: sorted((i.id, i.hash, i.size, i.width) for i in ix.images())
        assert stored(bulk) == stored(online)
        again = mr.ingest(bulk, [folder], "inline")
        assert (again.added, again.skipped) == (0, len(photos) + 1)
        assert (
            bulk.check(near_copies["rocket"]).matches == online.check(near_copies["rocket"]).matches
        )


def test_a_bad_input_file_is_reported_naming_it(loadable, tmp_path):
    with phashdb.open(loadable) as index:
        store = index.store
        java, cp = bulkload._java(store.url), bulkload.classpath(store.url)
        good = tmp_path / "good.bin"
        hashes = np.array([1, 2], np.uint64)
        bulkload.write_input(good, store.layout, store.row_bits, 0, 1, 10, [900], "",
                             hashes, np.array([901, 902], np.uint64), ["a", "b"],
                             [b"[]", b"[]"])  # fmt: skip
        bad = tmp_path / "bad.bin"
        for name, raw in [
            ("truncated", good.read_bytes()[:-3]),
            ("bad magic", b"PHBULK0\n" + good.read_bytes()[8:]),
            ("empty", b""),
        ]:
            bad.write_bytes(raw)
            with pytest.raises(StoreError, match=f"failed: {bad}: ") as e:
                bulkload.run_java(java, cp, bad, store.options.table, None, store.url, 2)
            assert "\n" not in str(e.value), name
        assert len(index) == 0


def test_no_java_or_an_unreachable_cluster_is_one_clear_error(loadable, monkeypatch, tmp_path):
    with phashdb.open(loadable) as index:
        with monkeypatch.context() as m:
            m.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
            with pytest.raises(StoreError, match="no Java found"):
                index.bulk_load([Image("a", 1)])
        with monkeypatch.context() as m:
            m.setenv("PHASHDB_BULKLOAD_JAR", str(tmp_path / "missing.jar"))
            with pytest.raises(StoreError, match="jar .* is not built"):
                index.bulk_load([Image("a", 1)])
        with pytest.raises(
            StoreError, match="failed: cannot reach the cluster.s ZooKeeper at 127.0.0.1:1"
        ):
            bulkload.load_hashes(
                index.store, ["a"], np.array([1], np.uint64), zookeeper="127.0.0.1:1"
            )
        assert len(index) == 0


def test_the_embedded_index_has_no_bulk_load(tmp_path):
    with (
        phashdb.open(tmp_path / "index") as index,
        pytest.raises(phashdb.Error, match="needs HBase"),
    ):
        index.bulk_load([Image("a", 1)])


def test_records_made_by_the_loader_are_those_python_makes():
    # The loader writes `hash_records`' bytes for plain ids; those equal keys.encode_record.
    ids = ["a", "img 7", "x~y"]
    hashes = np.array([0, 2**64 - 1, 0x0123_4567_89AB_CDEF], np.uint64)
    made = keys.hash_records(ids, hashes, 1796243953.228)
    assert made == [
        keys.encode_record(Image(i, int(h), added=1796243953.228)) for i, h in zip(ids, hashes)
    ]
    assert bulkload.plain_ids(ids)
    assert not any(bulkload.plain_ids([i]) for i in ['a"b', "a\\b", "é", "a\n", "\x7f"])


def test_the_jar_is_built_by_setup():
    assert Path(bulkload.JAR).exists()
