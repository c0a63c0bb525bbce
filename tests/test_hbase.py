"""What only HBase has: regions over three region servers, claims between concurrent writers,
orphans after a crash, and the errors users meet. All against the real test cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import phashdb
from phashdb import StoreError
from phashdb.hbase import HBaseOptions, band_rows, schema_script, split_keys
from phashdb.records import Image

pytestmark = pytest.mark.hbase
PHASHDB = str(Path(sys.executable).parent / "phashdb")


def clustered_hashes(n, seed=7):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    hashes = centres[rng.integers(0, 40, n)]
    for bit in range(64):
        flip = rng.random(n) < 0.04
        hashes[flip] ^= np.uint64(1 << bit)
    return hashes


def server_of(regions, key):
    for r in regions:
        if r["start_key"] <= key and (not r["end_key"] or key < r["end_key"]):
            return r["server_name"], r["port"]
    raise AssertionError(f"no region holds {key!r}")


def test_regions_spread_over_three_region_servers_and_probes_reach_several(hbase_url):
    with phashdb.open(hbase_url) as index:
        # New regions are spread at creation; a balancer run may be moving one: wait for it.
        deadline = time.monotonic() + 60
        while True:
            regions = index.store.regions()
            servers = {(r["server_name"], r["port"]) for r in regions}
            if len(servers) == 3 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(regions) == 2 * 5  # 2 regions per band in the tests, 5 bands
        assert len(servers) == 3
        probes = index.store.probes(np.array([0x0123_4567_89AB_CDEF], np.uint64), 10)
        assert len({server_of(regions, prefix) for _, prefix in probes}) > 1


def test_split_keys_cut_every_band_into_equal_slices():
    from phashdb.bands import BandLayout

    keys = split_keys(BandLayout.even(4), 4)
    assert keys == sorted(keys) and len(keys) == 4 * 4 - 1
    assert keys[:3] == [b"\x00\x40\x00", b"\x00\x80\x00", b"\x00\xc0\x00"]
    assert keys[3] == b"\x01\x00\x00"


def test_both_backends_answer_every_query_identically(hbase_url, tmp_path):
    hashes = clustered_hashes(1500)
    pairs = [(f"img{i}", int(h)) for i, h in enumerate(hashes)]
    queries = (hashes[::37] ^ np.uint64(0b1001_0000_0001)).tolist()
    with phashdb.open(hbase_url) as hbase, phashdb.open(tmp_path / "embedded") as embedded:
        hbase.add_hashes(pairs)
        embedded.add_hashes(pairs)
        assert len(hbase) == len(embedded) == 1500
        for radius in (0, 2, 4, 6, 8, 10, 12, 16):
            assert hbase.query_many(queries, radius) == embedded.query_many(queries, radius)
        dedupe = lambda ix: [[i.id for i in g.images] for g in ix.dedupe(threshold=6)]
        assert dedupe(hbase) == dedupe(embedded)


def test_of_concurrent_writers_adding_near_copies_exactly_one_is_unique(hbase_url):
    base = 0x5A5A_0F0F_3C3C_9696
    copies = [base ^ (1 << k) ^ (1 << (k + 20)) for k in range(8)]  # pairwise within 4 bits
    verdicts = {}
    barrier = threading.Barrier(len(copies))

    def add(k):
        with phashdb.open(hbase_url) as index:
            barrier.wait()
            image = Image(f"copy{k}", copies[k])
            # Through the same path as Index.add, with a hash instead of a file.
            with index.store.claim(image, 4) as rivals:
                found = index.matches([image.hash], 4)[0] + rivals
                if not found:
                    index.store.put([image])
            verdicts[k] = [m.id for m in found]

    threads = [threading.Thread(target=add, args=(k,)) for k in range(len(copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    unique = [k for k, found in verdicts.items() if not found]
    assert len(verdicts) == len(copies) and len(unique) == 1
    with phashdb.open(hbase_url) as index:
        assert len(index) == 1 and index.get(f"copy{unique[0]}") is not None
        assert index.fsck() == []  # every loser withdrew its claim


def test_a_crash_between_writes_leaves_no_visible_half_entry_and_fsck_removes_it(hbase_url):
    with phashdb.open(hbase_url) as index:
        index.add_hashes([("kept", 0x1111_2222_3333_4444)])
        # A writer that died after its band rows and before its record:
        index.store._write_band_rows([Image("half", 0x1111_2222_3333_4445)], time.time() - 3600)
        assert index.query(0x1111_2222_3333_4444, 4) == [("kept", 0)]
        assert index.fsck() == [("half", 0x1111_2222_3333_4445)]
        assert index.fsck(repair=True) == [("half", 0x1111_2222_3333_4445)]
        assert index.fsck() == []
        assert index.query(0x1111_2222_3333_4444, 4) == [("kept", 0)]


def test_a_missing_table_says_how_to_create_it(hbase_cluster):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift_port']}/no_such_table"
    with pytest.raises(StoreError, match="'no_such_table' does not exist.*phashdb init"):
        phashdb.open(url)


def test_an_unreachable_server_is_a_store_error_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match=f"127.0.0.1:{port} is not reachable"):
        phashdb.open(f"hbase://127.0.0.1:{port}/images?retries=1")


def test_a_server_that_never_answers_times_out_with_bounded_retries():
    # A socket that accepts connections and never replies: every Thrift call times out.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="not reachable or timed out after 2 attempts"):
            phashdb.open(f"hbase://127.0.0.1:{port}/images?timeout=0.5&retries=1")
        assert time.monotonic() - started < 60  # bounded, not a hang (a loose sanity bound)
    finally:
        server.close()


def test_url_options_are_parsed_and_checked():
    o = HBaseOptions.from_url("hbase://h:9999/pics?pool_size=3&timeout=2.5&transport=framed")
    assert (o.host, o.port, o.table, o.pool_size, o.timeout, o.transport) == (
        "h", 9999, "pics", 3, 2.5, "framed"
    )
    with pytest.raises(ValueError, match="unknown option"):
        HBaseOptions.from_url("hbase://h/pics?colour=red")
    with pytest.raises(ValueError, match="'transport'"):
        HBaseOptions.from_url("hbase://h/pics?transport=carrier-pigeon")


def run_cli(*args, env_url=None):
    env = {**os.environ, **({"PHASHDB_URL": env_url} if env_url else {})}
    return subprocess.run([PHASHDB, *map(str, args)], capture_output=True, text=True, env=env)


def test_cli_init_creates_pre_split_tables_and_works_on_hbase(hbase_cluster, photos, near_copies):
    c = hbase_cluster
    url = f"hbase://127.0.0.1:{c['thrift_port']}/cli_{os.getpid()}"
    init = run_cli("--db", f"{url}?thrift2_port={c['thrift2_port']}", "init", "--regions-per-band", "3")
    assert init.returncode == 0, init.stderr
    assert "regions: 15" in init.stdout and "region_servers: 3" in init.stdout
    assert run_cli("add", photos["coffee"], env_url=url).returncode == 0
    dup = run_cli("check", near_copies["coffee"], env_url=url)
    assert dup.returncode == 1 and "duplicate of" in dup.stdout
    assert run_cli("fsck", env_url=url).stdout.strip() == "0 orphaned entries"


def test_cli_errors_on_hbase_are_one_line(hbase_cluster, photos):
    missing = run_cli("check", photos["coffee"], env_url=f"hbase://127.0.0.1:{hbase_cluster['thrift_port']}/nope")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "does not exist" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_print_schema_gives_a_shell_script_with_the_split_points():
    result = run_cli("--db", "hbase://h:9090/pics", "init", "--print-schema", "--regions-per-band", "2")
    assert result.returncode == 0
    assert result.stdout == schema_script("pics", phashdb.bands.BandLayout.even(5), 2)
    assert "create 'pics'" in result.stdout and "create 'pics_images'" in result.stdout
    assert result.stdout.count('"\\x') == 2 * 5 - 1 + 1  # 9 split keys + the settings row


def test_checked_in_schema_script_matches_the_default_layout():
    script = Path(__file__).parent.parent / "hbase-schema" / "create-tables.hbase"
    assert script.read_text() == schema_script("images", phashdb.bands.BandLayout.even(5), 6)


def test_band_rows_hold_hash_and_id_after_the_band_prefix():
    from phashdb.bands import BandLayout

    layout = BandLayout.even(4)
    rows = band_rows(layout, 0xAAAA_BBBB_CCCC_DDDD, "x/y.jpg")
    assert [r[:3] for r in rows] == [b"\x00\xaa\xaa", b"\x01\xbb\xbb", b"\x02\xcc\xcc", b"\x03\xdd\xdd"]
    assert all(r[3:] == bytes.fromhex("aaaabbbbccccdddd") + b"x/y.jpg" for r in rows)
