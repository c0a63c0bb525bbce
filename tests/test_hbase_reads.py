"""What a check and an ingest ask of HBase, counted at the Thrift client (phashdb.hbase.tally)
on the real test cluster: a check reads each record once; an ingest reads the records of the
files it found, not every record the index holds."""

from __future__ import annotations

import random
import shutil

import pytest
from PIL import Image as PILImage

import phashdb
from phashdb.hbase import keys
from phashdb.hbase.tally import CallTally
from phashdb.ingest import ingest

pytestmark = pytest.mark.hbase


def _records_read(tally: CallTally, store) -> set[int]:
    """The image numbers whose record cells the tallied reads brought back."""
    return {
        keys.number_of(row, q)
        for row, q in tally.cells_of(store.options.images_table)
        if row.startswith(b"n") and len(q) == 1
    }


def test_a_check_makes_at_most_five_thrift_calls_and_reads_each_record_once(
    hbase_url, photo_files, tmp_path
):
    names = ["astronaut", "camera", "chelsea", "coffee", "rocket"]
    copy = tmp_path / "astronaut-copy.jpg"
    with PILImage.open(photo_files["astronaut"]) as img:
        img.convert("RGB").save(copy, quality=80)  # a re-encoded copy: a near-duplicate
    with phashdb.open(hbase_url) as index:
        for name in names:
            index.add(photo_files[name])
        store = index.store
        with CallTally(store.pool) as tally:
            verdict = index.check(copy)
        assert [m.id for m in verdict.matches] == [photo_files["astronaut"]]
        # The as-is search at the reach and the flips' at the threshold (probes, then the
        # candidates' records, each), and the decisions: 5, where reading the records again
        # made 7.
        assert tally.total <= 5, tally.calls
        numbers = _records_read(tally, store)
        cells = [c for c in tally.cells_of(store.options.images_table) if c[0].startswith(b"n")]
        assert len(cells) == len(set(cells))  # no record cell read twice
        assert store.lookup([photo_files["astronaut"]])[photo_files["astronaut"]][0] in numbers


def test_ingest_of_new_files_reads_only_their_records_not_the_whole_index(
    hbase_url, photo_files, tmp_path
):
    folder = tmp_path / "new"
    folder.mkdir()
    for name in sorted(photo_files)[:10]:
        shutil.copy(photo_files[name], folder)
    rng = random.Random(26)
    with phashdb.open(hbase_url) as index:
        # Many more images than the folder holds (random hashes: none near a photo's).
        index.add_hashes((f"held/{k}", rng.getrandbits(64)) for k in range(3000))
        store = index.store
        with CallTally(store.pool) as tally:
            report = ingest(index, [folder], workers=1)
        assert (report.added, report.skipped, report.failed) == (10, 0, [])
        mine = {n for n, _ in store.lookup(str(p) for p in folder.iterdir()).values()}
        assert len(mine) == 10
        assert _records_read(tally, store) <= mine
        assert tally.calls["openScanner"] == 0  # no scan of the records
        # Resumed: every file is skipped, asking about those ten alone.
        with CallTally(store.pool) as again:
            report = ingest(index, [folder], workers=1)
        assert (report.added, report.skipped) == (0, 10)
        assert _records_read(again, store) == mine and again.calls["openScanner"] == 0
