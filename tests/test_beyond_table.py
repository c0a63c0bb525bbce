"""benchmarks/beyond_table.py, the one-run table of issue 24: its "default now" column is what
Index.check says of each copy (the copies made again and checked as files are), its parts add
up to that verdict, and it prints every column with the pairs counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_backdrop import logo, sun
from test_wide_keys import face

import phashdb
from phashdb import confirm, descriptor

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import beyond_hash
    import beyond_library
    import beyond_pairs
    import beyond_table

    return beyond_hash, beyond_library, beyond_pairs, beyond_table


@pytest.fixture
def corpus(tmp_path, photos) -> tuple[Path, Path]:
    """(others, photos): a transparent logo, a small transparent emoji (its renderings kept as
    wide keys: docs/wide-keys.md) and a photo as artwork, and two photos."""
    others, folder = tmp_path / "others", tmp_path / "photos"
    for kind in ("icon", "emoji", "artwork"):
        (others / kind).mkdir(parents=True)
    folder.mkdir()
    logo(sun).save(others / "icon" / "sun.png")
    face().save(others / "emoji" / "face.png")
    shutil.copy(photos["coffee"], others / "artwork" / "coffee.jpg")
    for name in ("camera", "astronaut"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
    return others, folder


def test_the_table_says_what_index_check_says_of_every_copy(tmp_path, corpus, bench, capsys):
    beyond_hash, beyond_library, beyond_pairs, beyond_table = bench
    others, folder = corpus
    hashed = tmp_path / "hashed.npz"
    beyond_hash.hash_corpus(beyond_hash.corpus(str(folder), str(others)), str(hashed), 1)
    z = dict(np.load(hashed))
    rows = beyond_library.records(z, str(others), str(folder), str(tmp_path / "lib.npz"), 1)
    _, stored, pairs = beyond_pairs.queried_and_stored(z)
    at = {(int(i), int(e)): r for r, (i, e) in enumerate(zip(z["image"], z["edit"]))}
    with phashdb.open(tmp_path / "index") as index:
        checked = beyond_library.check_rows(index, z, rows, stored)
        for i, path in enumerate(z["paths"]):
            said = beyond_hash.hash_one(
                str(path), row=lambda source: {int(m.id) for m in index.check(source).matches}
            )
            for e, ids in said:
                assert checked.verdict[at[(i, e)]] == ids, (str(path), str(z["edit_names"][e]))
    assert checked.differ == 0
    keyed = {p for c in checked.conf for p, found in c.items() if found and "'s " in p}
    assert keyed, "no query key confirmed anything: the keys' parts are not measured"
    assert _beyond_the_threshold(rows, checked, index.threshold), "no wide key measured"
    beyond_table.main(str(others), str(folder), str(hashed), 1, str(tmp_path / "lib.npz"))
    out = capsys.readouterr().out
    assert f"false matches among {pairs:,} pairs of distinct images" in out
    assert "| edit | kind | copies | plain pHash | default without keys | default now" in out
    assert "rows whose parts' union is not Index.check's verdict: 0" in out


def _beyond_the_threshold(rows, checked, threshold: int) -> set[tuple[int, int]]:
    """The (row, stored row) pairs a stored wide key's part confirms beyond `threshold`
    (the emoji's exports against its small renderings: searched up to the reach)."""
    out = set()
    for r, conf in enumerate(checked.conf):
        for name in confirm.WIDE_KEYS:
            for s in conf[f"stored {name}"]:
                keys = descriptor.stored_keys(rows[s].descriptor)
                if any(k.name == name and (k.hash ^ rows[r].hash).bit_count() > threshold
                       for k in keys):  # fmt: skip
                    out.add((r, s))
    return out
