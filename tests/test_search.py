"""Exactness: every search answers exactly what a brute-force scan answers, at radii 0 to 16,
on uniform random hashes and on clustered, biased ones (as real photo collections are)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phashdb
from phashdb.bands import BandLayout
from phashdb.embedded import live
from phashdb.tables import BandTables, RowIds

MASK64 = (1 << 64) - 1


@st.composite
def hash_sets(draw):
    """Uniform random hashes, or clusters: a few centres, copies with a few bits flipped,
    and bits biased towards 0 (pHash bits of real photos are far from uniform)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(0, 3000))
    if draw(st.booleans()):
        return rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    centres = rng.integers(0, 2**64, draw(st.integers(1, 40)), dtype=np.uint64, endpoint=False)
    bias = rng.integers(0, 2**64, dtype=np.uint64, endpoint=False) | rng.integers(
        0, 2**64, dtype=np.uint64, endpoint=False
    )
    hashes = centres[rng.integers(0, len(centres), n)] & bias
    return flip_bits(rng, hashes, draw(st.integers(0, 12)))


def flip_bits(rng, hashes, most):
    out = hashes.copy()
    for i in range(len(out)):
        for bit in rng.choice(64, rng.integers(0, most + 1), replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out


def queries_near(rng, hashes, count=20):
    """Queries that have answers: stored hashes moved by up to 18 bits, and random ones."""
    near = hashes[rng.integers(0, len(hashes), count)] if len(hashes) else np.empty(0, np.uint64)
    return np.concatenate(
        [flip_bits(rng, near, 18), rng.integers(0, 2**64, 5, dtype=np.uint64, endpoint=False)]
    )


def as_set(qidx, rows, dists):
    return set(zip(qidx.tolist(), rows.tolist(), dists.tolist()))


def brute_force(hashes, queries, radius):
    """The answer by definition, in numpy: every (query, row, distance) within radius."""
    d = np.bitwise_count(hashes[None, :] ^ queries[:, None])
    qidx, rows = np.nonzero(d <= radius)
    return set(zip(qidx.tolist(), rows.tolist(), d[qidx, rows].tolist()))


layouts = st.one_of(
    st.just(None),  # the index's own choice for its size
    st.integers(3, 8).map(BandLayout.even),
    st.sampled_from([BandLayout((24, 20, 20)), BandLayout((8, 16, 16, 24))]),
)


@settings(max_examples=60, deadline=None)
@given(hash_sets(), layouts, st.integers(0, 16), st.integers(0, 2**32 - 1))
def test_band_tables_find_exactly_what_a_scan_finds(hashes, layout, radius, seed):
    rng = np.random.default_rng(seed)
    layout = layout or BandLayout.for_size(len(hashes))
    tables = BandTables.build(hashes, layout)
    queries = queries_near(rng, hashes)
    expected = brute_force(hashes, queries, radius)
    assert as_set(*tables.search(queries, radius, strategy="probe")) == expected
    assert as_set(*tables.search(queries, radius, strategy="scan")) == expected
    assert as_set(*tables.search(queries, radius)) == expected


@pytest.mark.parametrize("radius", [0, 4, 8, 10, 12, 16])
def test_probing_path_is_exact_on_a_large_clustered_set(radius):
    # Large and clustered: some band values are far fuller than others.
    rng = np.random.default_rng(radius)
    centres = rng.integers(0, 2**64, 3000, dtype=np.uint64, endpoint=False)
    hashes = flip_bits(rng, centres[rng.integers(0, 3000, 200_000)], 6)
    tables = BandTables.build(hashes, BandLayout.for_size(len(hashes)))
    rows = RowIds.of(np.arange(len(hashes)), [f"id-{i}" for i in range(len(hashes))])
    assert rows.ids(np.array([0, 5, 199_999])) == ["id-0", "id-5", "id-199999"]
    queries = queries_near(rng, hashes, 50)
    expected = brute_force(hashes, queries, radius)
    assert as_set(*tables.search(queries, radius, strategy="probe")) == expected
    assert as_set(*tables.search(queries, radius, strategy="scan")) == expected
    assert as_set(*tables.search(queries, radius)) == expected


@given(st.lists(st.text(), max_size=50), st.data())
def test_ids_come_back_as_stored_whatever_their_characters(ids, data):
    # Including NULs (which the fast path splits on) and characters of several UTF-8 bytes.
    rows = data.draw(st.lists(st.integers(0, len(ids) - 1), max_size=60) if ids else st.just([]))
    stored = RowIds.of(np.arange(len(ids)), ids)
    assert stored.ids(np.array(rows, dtype=np.int64)) == [ids[r] for r in rows]


def test_ids_of_rows_outside_the_tables_are_refused_not_read():
    rows = RowIds.of(np.arange(3), ["a", "b", "c"])
    for row in (-1, 3):
        with pytest.raises(IndexError, match=f"row {row} is not in 0..2"):
            rows.ids(np.array([0, row]))


@settings(max_examples=25, deadline=None)
@given(hash_sets(), st.integers(0, 16), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_index_queries_match_brute_force_through_adds_and_removes(
    tmp_path_factory, hashes, radius, seed, rounds
):
    # Several rounds of adds and removes, with tables rebuilt often, so that answers come
    # from the tables, the rows added since, and the removals since, all at once.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(live, "REBUILD_AT", 500)
        check_index_against_brute_force(tmp_path_factory, hashes, radius, seed, rounds)


def check_index_against_brute_force(tmp_path_factory, hashes, radius, seed, rounds):
    rng = np.random.default_rng(seed)
    stored: dict[str, int] = {}
    with phashdb.open(tmp_path_factory.mktemp("index")) as index:
        for part in np.array_split(hashes, rounds):
            pairs = [(f"img{len(stored) + i}", int(h)) for i, h in enumerate(part)]
            index.add_hashes(pairs)
            stored.update(pairs)
            for id in rng.choice(sorted(stored), min(len(stored), 50), replace=False):
                assert index.remove(str(id))
                del stored[str(id)]
        ids = sorted(stored)
        kept = np.array([stored[i] for i in ids], dtype=np.uint64)
        queries = queries_near(rng, kept)
        answers = index.query_many(queries.tolist(), radius)
        for q, got in zip(queries.tolist(), answers):
            d = np.bitwise_count(kept ^ np.uint64(q))
            want = sorted((ids[i], int(d[i])) for i in np.flatnonzero(d <= radius))
            assert got == sorted(want, key=lambda m: (m[1], m[0]))
        assert len(index) == len(stored)


def test_rows_added_since_the_tables_are_held_as_bytes_not_python_strings(tmp_path):
    # A bulk load's rows wait in the delta until the next query folds them into the tables:
    # as Python strings (and arrays joined anew per batch) 10^8 of them took 6 GB and more.
    # Each row is its seq, hash and id's end (8 bytes each) and the id's 14 bytes.
    import tracemalloc

    n, batch = 200_000, 50_000
    with phashdb.open(tmp_path / "index") as index:
        tracemalloc.start()
        for lo in range(0, n, batch):
            index.add_hashes(
                (f"image-{i:08d}", i * 0x9E3779B97F4A7C15 & MASK64) for i in range(lo, lo + batch)
            )
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert held < n * (3 * 8 + 14 + 16), held / n
        h = 123 * 0x9E3779B97F4A7C15 & MASK64
        assert index.query(h, 0) == [("image-00000123", 0)]


def test_a_rebuild_that_fails_midway_loses_no_row(tmp_path):
    # The delta is let go before the tables are built (its memory is needed for them): a
    # build that fails must not leave the rows it held out of later answers.
    def fail(*args):
        raise MemoryError("no memory for the band tables")

    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes((f"a{i}", i << 20) for i in range(3000))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(live.BandTables, "build", fail)
            with pytest.raises(MemoryError):
                index.query(5 << 20, 0)
        found = index.query_many([i << 20 for i in range(3000)], 0)
        assert found == [[(f"a{i}", 0)] for i in range(3000)]
