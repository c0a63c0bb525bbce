"""The storage seam (phashdb.store): every backend satisfies the Store protocol and answers the
same calls the same way, checked on the embedded store and on the real HBase test cluster."""

from __future__ import annotations

import random

import numpy as np
import pytest

import phashdb
from phashdb.errors import Error
from phashdb.records import Image
from phashdb.store import OPTIONAL_MEMBERS, Store, backend, capabilities, open_store


def _images(count: int, seed: int) -> list[Image]:
    rng = random.Random(seed)
    base = rng.getrandbits(64)
    # Half near one hash (so searches find several), half anywhere.
    hashes = [
        base ^ (1 << rng.randrange(64)) if k % 2 else rng.getrandbits(64) for k in range(count)
    ]
    return [
        Image(f"img/{k:03d}", h, f"/photos/{k:03d}.jpg", 1000 + k, 1.7e9 + k, 64, 48, added=1.7e9)
        for k, h in enumerate(hashes)
    ]


def _brute(images: list[Image], query: int, radius: int) -> set[tuple[str, int]]:
    return {
        (i.id, (i.hash ^ query).bit_count())
        for i in images
        if (i.hash ^ query).bit_count() <= radius
    }


def test_each_backend_satisfies_the_protocol_and_declares_what_it_can_do(index):
    store = index.store
    assert isinstance(store, Store)
    members = [*Store.__annotations__, *(m for m in vars(Store) if not m.startswith("_"))]
    assert len(members) > 15
    missing = [m for m in members if not hasattr(store, m)]
    assert missing == []
    # A capability is declared by the backend and held by the store, never guessed from the URL.
    assert ("bulk_load" in capabilities(store)) == (getattr(store, "bulk_load", None) is not None)
    assert set(OPTIONAL_MEMBERS) >= {"bulk_load", "version"}


def test_search_is_exact_and_hands_back_the_records_it_read(index):
    images = _images(40, seed=1)
    index.store.put(images)
    queries = np.array([images[1].hash, images[2].hash, 0], dtype=np.uint64)
    read: dict = {}
    qidx, ids, dists = index.store.search(queries, 6, records=read)
    for q, query in enumerate(queries.tolist()):
        got = {
            (i, int(d)) for n, i, d in zip(qidx.tolist(), ids.tolist(), dists.tolist()) if n == q
        }
        assert got == _brute(images, query, 6)
    stored = index.store.find(ids.tolist())
    # A backend that read records to answer hands back each found image's, as stored.
    assert read == {} or read == stored
    assert len(stored) == len(set(ids.tolist()))


def test_find_files_put_and_delete_agree(index):
    images = _images(12, seed=2)
    index.store.put(images)
    assert index.store.count() == 12
    assert index.store.find(["img/003", "nope"]) == {"img/003": images[3]}
    # Files are looked up as ids (as ingest stores them): only those asked about come back,
    # as (size, mtime, dev, ino, mtime_ns) (no identity recorded for these).
    assert index.store.files(["img/004", "img/005", "absent"]) == {
        "/photos/004.jpg": (1004, 1.7e9 + 4, None, None, None),
        "/photos/005.jpg": (1005, 1.7e9 + 5, None, None, None),
    }
    assert len(index.store.files()) == 12
    ids, hashes = index.store.hashes()
    assert dict(zip(ids.tolist(), hashes.tolist())) == {i.id: i.hash for i in images}
    assert sorted(i.id for i in index.store.images()) == [i.id for i in images]
    assert index.store.delete(["img/000", "img/001", "absent"]) == 2
    assert index.store.count() == 10 and index.store.find(["img/000"]) == {}


def test_settings_and_decisions_round_trip(index):
    index.store.write_settings({"contract": 7})
    assert index.store.read_settings()["contract"] == 7
    assert index.store.read_settings()["threshold"] == index.threshold  # merged, not replaced
    index.store.put(_images(3, seed=3))
    index.store.put_decisions([("img/000", "img/001"), ("img/001", "img/002")], 1.7e9)
    assert sorted(index.store.decisions(["img/000"])) == [("img/000", "img/001", 1.7e9)]
    assert len(index.store.decisions(None)) == 2
    assert index.store.delete_decisions([("img/000", "img/001"), ("img/000", "img/002")]) == 1
    assert index.store.decisions(None) == [("img/001", "img/002", 1.7e9)]


def test_an_unknown_scheme_names_the_url_and_the_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown index URL scheme 'ftp' in 'ftp://x/y': use a path or .*hbase://"
    ):
        phashdb.open("ftp://x/y")


def test_a_missing_extra_says_what_to_install(monkeypatch):
    from phashdb import store

    monkeypatch.setitem(
        store._BACKENDS,
        "nothere",
        store.Backend(
            "nothere", lambda url: None, "phashdb_no_such_backend_module", extra="nothere"
        ),
    )
    with pytest.raises(
        Error,
        match=r"^nothere://h/t: the nothere backend needs "
        r"phashdb_no_such_backend_module: pip install 'phashdb\[nothere\]'",
    ):
        open_store("nothere://h/t")
    assert backend("/a/plain/folder").scheme == ""


def test_search_keys_is_exact_and_answers_the_keys_named(index):
    """Every stored key within the radius, as the brute force over the descriptors' keys
    answers; with `names`, only the keys so named (a check asks for the wide keys alone up to
    the reach: matching.keys_met)."""
    from phashdb import confirm, descriptor
    from phashdb.keyrows import key_rows, near_keys

    rng = random.Random(7)
    base = rng.getrandbits(64)
    images = []
    for k in range(60):
        names = sorted(rng.sample(range(len(descriptor.KEYS)), rng.randrange(0, 6)))
        # each key ~8 bits from `base` (three random words and'ed), so radius 16 finds many
        near = [
            base ^ rng.getrandbits(64) & rng.getrandbits(64) & rng.getrandbits(64) for _ in names
        ]
        keys = b"".join(
            bytes([n + 1]) + h.to_bytes(8, "big") + rng.randbytes(descriptor.SIZE)
            for n, h in zip(names, near)
        )
        stored = rng.randbytes(descriptor.STORED_SIZE) + keys
        images.append(Image(f"img/{k:03d}", rng.getrandbits(64), descriptor=stored))
    index.store.put(images)
    queries = np.array([base, base ^ 0xFF], dtype=np.uint64)
    wide = sorted(confirm.WIDE_KEYS)
    every = near_keys(queries, 16, *key_rows((i.id, i.descriptor) for i in images))
    assert set(every[2].tolist()) & confirm.WIDE_KEYS  # the case is met
    for names in (None, confirm.WIDE_KEYS, frozenset(wide[:1] + ["centre 80%"])):
        got = index.store.search_keys(queries, 16, names=names)
        want = [a for a in zip(*(x.tolist() for x in every)) if names is None or a[2] in names]
        assert sorted(zip(*(x.tolist() for x in got))) == sorted(want)
