"""The embedded index's stored keys (phashdb/embedded/keys.py): band tables over every stored
key's hash, kept live and saved beside the images' tables. `search_keys` answers exactly what
the brute force over the descriptors' keys answers (keyrows.near_keys, the definition), after
adds, removals and replacements, and across opens: a saved key table file is used when it fits
the database, rebuilt from the database when it is damaged or stale. The wide keys
(confirm.WIDE_KEYS) have tables of their own (WIDE_KEYS_FILE), kept as those of every key
are: `search_keys(..., names=...)` answers the brute force's keys so named, and a check's keys
(matching.keys_met) are those met up to each key's own radius (confirm.key_radius)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phashdb
from phashdb import confirm, descriptor
from phashdb.embedded import KEYS_FILE, WIDE_KEYS_FILE, EmbeddedStore, live
from phashdb.embedded.live import REBUILD_AT
from phashdb.errors import StoreError
from phashdb.keyrows import key_rows, near_keys
from phashdb.matching import keys_met
from phashdb.records import Image
from phashdb.tables import BandTables, load, save

RADII = (0, 3, 8, 12)


def keyed(rng: np.random.Generator, n: int, centres: np.ndarray, *, prefix: str = "img") -> list:
    """`n` records with a descriptor holding 0 to 9 keys (random names in KEYS' order), of
    layout v3 (every key in 58 bytes) or v4 (a window's in 26) at random, as an index of format
    3 holds once written by this phashdb; their hashes a few bits from one of `centres` so that
    searches find many."""
    out = []
    for i in range(n):
        count = int(rng.integers(0, 10))
        names = sorted(rng.choice(len(descriptor.KEYS), count, replace=False).tolist())
        v4 = bool(rng.integers(2))
        keys = b"".join(
            (descriptor.key_entry if v4 else _v3_entry)(
                descriptor.Variant(
                    descriptor.KEYS[name], near(rng, centres), rng.bytes(descriptor.SIZE)
                )
            )
            for name in names
        )
        stored = rng.bytes(descriptor.STORED_SIZE) + keys
        out.append(Image(f"{prefix}{i}", near(rng, centres), descriptor=stored))
    return out


def near(rng: np.random.Generator, centres: np.ndarray) -> int:
    h = int(centres[rng.integers(len(centres))])
    for bit in rng.choice(64, int(rng.integers(0, 12)), replace=False).tolist():
        h ^= 1 << bit
    return h


def answers(found) -> list[tuple]:
    q, ids, names, d = found
    return sorted(zip(q.tolist(), ids.tolist(), names.tolist(), d.tolist()))


def brute_force(store: EmbeddedStore, queries: np.ndarray, radius: int, names=None) -> list:
    """The definition: every key of every stored descriptor (named in `names`), scanned."""
    rows = key_rows(store.descriptors().items())
    found = answers(near_keys(queries, radius, *rows))
    return [f for f in found if names is None or f[2] in names]


@pytest.fixture
def rng():
    return np.random.default_rng(24)


@pytest.fixture
def centres(rng):
    return rng.integers(0, 2**63, 40, dtype=np.uint64) * 2


def queries_of(rng, centres) -> np.ndarray:
    return np.array([near(rng, centres) for _ in range(20)], dtype=np.uint64)


def test_search_keys_answers_as_the_brute_force_does(tmp_path, rng, centres):
    store = EmbeddedStore(tmp_path / "idx")
    store.put(keyed(rng, 3000, centres))
    queries = queries_of(rng, centres)
    for radius in RADII:
        found = answers(store.search_keys(queries, radius))
        assert found == brute_force(store, queries, radius)
    assert any(d == 12 for *_, d in found)  # the radii reach many keys
    # thousands of keys: they were folded into band tables, not only scanned as a delta
    assert len(store._stored_keys.tables.tables) > REBUILD_AT
    store.close()


def test_keys_are_found_after_adding_and_gone_after_removing_or_replacing(tmp_path, rng, centres):
    store = EmbeddedStore(tmp_path / "idx")
    store.put(keyed(rng, 2000, centres))
    queries = queries_of(rng, centres)
    before = answers(store.search_keys(queries, 8))
    added = keyed(rng, 50, centres, prefix="new")
    store.put(added)
    after = answers(store.search_keys(queries, 8))
    assert after == brute_force(store, queries, 8)
    assert {id for _, id, _, _ in after} - {id for _, id, _, _ in before} <= {i.id for i in added}
    gone = [i.id for i in added[:20]] + ["img0", "img1", "img7"]
    store.delete(gone)
    # replaced with another hash: a new record whose keys are others
    store.put([Image("img2", 12345, descriptor=keyed(rng, 1, centres)[0].descriptor)])
    found = answers(store.search_keys(queries, 12))
    assert found == brute_force(store, queries, 12)
    assert not {id for _, id, _, _ in found} & set(gone)
    store.close()


def saved(tmp_path, rng, centres) -> tuple:
    """An index of 2,000 keyed images, closed (its key table file saved): (its path, queries,
    their answers at radius 8)."""
    path = tmp_path / "idx"
    store = EmbeddedStore(path)
    store.put(keyed(rng, 2000, centres))
    queries = queries_of(rng, centres)
    found = answers(store.search_keys(queries, 8))
    store.close()
    return path, queries, found


def test_a_saved_key_table_file_is_used_by_the_next_open(tmp_path, rng, centres):
    path, queries, first = saved(tmp_path, rng, centres)
    assert (path / KEYS_FILE).exists()
    store = EmbeddedStore(path)
    assert answers(store.search_keys(queries, 8)) == first
    live = store._stored_keys.tables
    # loaded from the file: not rebuilt (then they would wait to be saved), nothing read since
    assert live.load_problem is None and not live.dirty and live.delta_count == 0
    # rows added and removed by another process since are caught up, not rebuilt
    other = EmbeddedStore(path)
    other.put(keyed(rng, 10, centres, prefix="other"))
    other.delete(["img3"])
    other.close()
    assert answers(store.search_keys(queries, 8)) == brute_force(store, queries, 8)
    assert 0 < live.delta_count and live.removed == {4}
    store.close()


CHILD = """
import json, sys
import numpy as np
from phashdb.embedded import EmbeddedStore
store = EmbeddedStore(sys.argv[1])
q, ids, names, d = store.search_keys(np.array(json.loads(sys.argv[2]), np.uint64), 8)
live = store._stored_keys.tables
print(json.dumps({"found": sorted(zip(q.tolist(), ids.tolist(), names.tolist(), d.tolist())),
                  "problem": live.load_problem, "rebuilt": live.dirty}))
"""


def test_another_process_searches_the_saved_key_table_file(tmp_path, rng, centres):
    path, queries, want = saved(tmp_path, rng, centres)
    env = {**os.environ, "PYTHONPATH": str(Path(phashdb.__file__).parents[1])}
    argv = [sys.executable, "-c", CHILD, str(path), json.dumps(queries.tolist())]
    out = json.loads(subprocess.run(argv, env=env, capture_output=True, check=True).stdout)
    assert [tuple(f) for f in out["found"]] == want and want
    assert out["problem"] is None and not out["rebuilt"]  # loaded, not rebuilt


def test_a_damaged_key_table_file_is_rebuilt_from_the_database(tmp_path, rng, centres):
    path = saved(tmp_path, rng, centres)[0]
    data = bytearray((path / KEYS_FILE).read_bytes())
    for at in range(len(data) // 2, len(data), 997):
        data[at] ^= 0x5A
    (path / KEYS_FILE).write_bytes(bytes(data))
    store = EmbeddedStore(path)
    queries = queries_of(rng, centres)
    assert answers(store.search_keys(queries, 8)) == brute_force(store, queries, 8)
    assert "damaged" in store._stored_keys.tables.load_problem
    store.close()


def test_a_key_table_file_of_another_database_is_rebuilt(tmp_path, rng, centres):
    """A key table file beside a database made again (its seqs given to other images) does
    not fit it: its keys would be answered for the wrong images."""
    path = saved(tmp_path, rng, centres)[0]
    old = (path / KEYS_FILE).read_bytes()
    for f in path.iterdir():
        f.unlink()
    store = EmbeddedStore(path)
    store.put(keyed(rng, 2000, centres, prefix="again"))
    store.close()
    (path / KEYS_FILE).write_bytes(old)
    store = EmbeddedStore(path)
    queries = queries_of(rng, centres)
    found = answers(store.search_keys(queries, 8))
    assert found == brute_force(store, queries, 8)
    assert found and all(id.startswith("again") for _, id, _, _ in found)
    assert "another database" in store._stored_keys.tables.load_problem
    store.close()


def repaired(path, file: str, found: str) -> EmbeddedStore:
    """The index at `path` opened after its key table `file` was made sound (its CRC32s right,
    its marks fitting the database) but with one key's hash not the descriptor's: fsck finds it
    (`found`), repair rebuilds it, and fsck then finds nothing."""
    tables, rows, marks = load(path / file)
    hashes = tables.hashes.copy()
    hashes[5] ^= 1
    save(path / file, BandTables.build(hashes, tables.layout), rows, marks)
    store = EmbeddedStore(path)
    with pytest.raises(StoreError, match=found):
        store.fsck()
    store.fsck(repair=True)
    store.fsck()
    return store


def test_fsck_checks_the_key_tables_and_repair_rebuilds_them(tmp_path, rng, centres):
    path = saved(tmp_path, rng, centres)[0]
    # A sound file (its CRC32s right, its marks fitting the database) whose keys disagree
    # with the descriptors': only reading it against the database finds that.
    store = repaired(path, KEYS_FILE, "the keys of the index .* disagree with its database")
    queries = queries_of(rng, centres)
    assert answers(store.search_keys(queries, 8)) == brute_force(store, queries, 8)
    store.close()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 60), min_size=1, max_size=5))
def test_answers_match_brute_force_through_adds_removes_and_reopens(tmp_path_factory, seed, adds):
    # Rounds of adds, removals and replacements, each ending in a search and a reopen, with
    # tables rebuilt often: answers come from a loaded file, the rows added since and the
    # removals since, all at once.
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**63, 5, dtype=np.uint64) * 2
    path = tmp_path_factory.mktemp("index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(live, "REBUILD_AT", 20)
        store = EmbeddedStore(path)
        for round, count in enumerate(adds):
            store.put(keyed(rng, count, centres, prefix=f"r{round}-"))
            stored = sorted(store.descriptors())
            if stored:
                gone = rng.choice(stored, min(len(stored), 3), replace=False).tolist()
                store.delete(gone[1:])
                replaced = keyed(rng, 1, centres)[0].descriptor
                store.put([Image(gone[0], near(rng, centres), descriptor=replaced)])
            queries = queries_of(rng, centres)
            radius = int(rng.integers(0, 13))
            assert answers(store.search_keys(queries, radius)) == brute_force(
                store, queries, radius
            )
            wide = answers(store.search_keys(queries, radius + 4, names=confirm.WIDE_KEYS))
            assert wide == brute_force(store, queries, radius + 4, confirm.WIDE_KEYS)
            store.close()
            store = EmbeddedStore(path)
        store.close()


WIDE = confirm.WIDE_KEYS
PLAIN = sorted(set(descriptor.KEYS) - WIDE)
NAMES = (
    WIDE,
    frozenset(sorted(WIDE)[:1]),
    frozenset(PLAIN[:2]),
    WIDE | {PLAIN[0]},
    frozenset(),
    frozenset({"no such key"}),
)


def test_search_keys_of_some_names_answers_the_brute_force_filtered(tmp_path, rng, centres):
    store = EmbeddedStore(tmp_path / "idx")
    store.put(keyed(rng, 3000, centres))
    queries = queries_of(rng, centres)
    for radius in (*RADII, 16):
        for names in NAMES:
            found = answers(store.search_keys(queries, radius, names=names))
            assert found == brute_force(store, queries, radius, names), (radius, names)
    assert {n for *_, n, _ in brute_force(store, queries, 16, WIDE)} == WIDE
    # the wide keys' own tables hold theirs alone, folded into band tables
    wide = store._stored_keys.wide
    keys, *_ = wide.live()
    named = {descriptor.KEYS[c - 1] for c in (keys & 0xFF).tolist()}
    assert named == WIDE and len(wide.tables) > REBUILD_AT
    store.close()


def test_a_check_meets_each_key_up_to_its_own_radius(tmp_path, rng, centres):
    """matching.keys_met (every key within the threshold, the wide keys alone up to the
    reach) answers what one search up to the reach, filtered by confirm.key_radius, does."""
    store = EmbeddedStore(tmp_path / "idx")
    store.put(keyed(rng, 3000, centres))
    for h in queries_of(rng, centres).tolist():
        for threshold, reach in ((8, 16), (3, 12), (8, 8), (12, 8)):
            want = [
                (id, name, d)
                for _, id, name, d in brute_force(store, np.array([h], np.uint64), 64)
                if d <= confirm.key_radius(name, threshold, reach)
            ]
            assert sorted(keys_met(store, h, threshold, reach)) == want
    store.close()


def test_the_wide_key_tables_are_saved_loaded_and_caught_up(tmp_path, rng, centres):
    path, queries, _ = saved(tmp_path, rng, centres)
    store = EmbeddedStore(path)
    first = answers(store.search_keys(queries, 16, names=WIDE))
    store.close()  # the wide tables saved
    assert (path / WIDE_KEYS_FILE).exists()
    store = EmbeddedStore(path)
    assert answers(store.search_keys(queries, 16, names=WIDE)) == first and first
    wide = store._stored_keys.wide
    assert wide.load_problem is None and not wide.dirty and wide.delta_count == 0
    assert store._stored_keys.tables.tables is None  # the wide keys alone asked: not loaded
    other = EmbeddedStore(path)
    other.put(keyed(rng, 30, centres, prefix="other"))
    gone = sorted({id for _, id, _, _ in first})[:3]
    other.delete(gone)
    other.close()
    found = answers(store.search_keys(queries, 16, names=WIDE))
    assert found == brute_force(store, queries, 16, WIDE)
    assert not {id for _, id, _, _ in found} & set(gone)
    assert 0 < wide.delta_count and len(wide.removed) == 3
    store.close()


def test_a_damaged_wide_key_table_file_is_rebuilt_and_fsck_checks_it(tmp_path, rng, centres):
    path, queries, _ = saved(tmp_path, rng, centres)
    store = EmbeddedStore(path)
    store.search_keys(queries, 16, names=WIDE)
    store.close()
    data = bytearray((path / WIDE_KEYS_FILE).read_bytes())
    for at in range(len(data) // 2, len(data), 997):
        data[at] ^= 0x5A
    (path / WIDE_KEYS_FILE).write_bytes(bytes(data))
    store = EmbeddedStore(path)
    assert answers(store.search_keys(queries, 16, names=WIDE)) == brute_force(
        store, queries, 16, WIDE
    )
    assert "damaged" in store._stored_keys.wide.load_problem
    store.close()
    # sound, but one key's hash not the descriptor's: fsck finds it, repair rebuilds
    store = repaired(path, WIDE_KEYS_FILE, "the wide keys of the index .* disagree")
    assert answers(store.search_keys(queries, 16, names=WIDE)) == brute_force(
        store, queries, 16, WIDE
    )
    store.close()


def test_wide_key_tables_with_no_wide_key_are_saved_not_read_again(tmp_path, rng, centres):
    """An index whose images keep no wide key (most do not) has empty wide key tables: still
    saved, so that the next process does not read every keyed descriptor again to find none."""
    path = tmp_path / "idx"
    store = EmbeddedStore(path)
    images = keyed(rng, 2000, centres)
    store.put(Image(i.id, i.hash, descriptor=_only_plain(i.descriptor)) for i in images)
    assert answers(store.search_keys(queries_of(rng, centres), 8))  # other keys are found
    queries = queries_of(rng, centres)
    assert answers(store.search_keys(queries, 16, names=WIDE)) == []
    store.close()
    assert (path / WIDE_KEYS_FILE).exists()
    store = EmbeddedStore(path)
    assert answers(store.search_keys(queries, 16, names=WIDE)) == []
    wide = store._stored_keys.wide
    assert wide.load_problem is None and wide.read_count == 0  # loaded, nothing read again
    store.close()


def _v3_entry(key: descriptor.Variant) -> bytes:
    """A key as layout v3 stored it: name byte 1 + its place in KEYS, pHash, 49 bytes."""
    return (
        bytes([descriptor.KEYS.index(key.name) + 1]) + key.hash.to_bytes(8, "big") + key.descriptor
    )


def _only_plain(stored: bytes) -> bytes:
    """A stored descriptor (of `keyed`) without its wide keys, the rest as layout v4 stores them."""
    keys = descriptor.stored_keys(stored)
    plain = b"".join(descriptor.key_entry(k) for k in keys if k.name not in WIDE)
    return stored[: descriptor.STORED_SIZE] + plain
