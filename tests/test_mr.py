"""The MapReduce jobs: ingest and dedupe on mrjob's inline and local runners (and, in
tests/test_hadoop.py and tests/test_grouping.py, on real Hadoop), giving what the one-machine
code gives."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

import phashdb
from phashdb.ingest import ingest
from phashdb.mr import run as mr
from phashdb.mr.counting import LARGEST, largest_inputs
from phashdb.mr.dedupe import MRDedupe


def groups_of(groups):
    return [([i.id for i in g.images], g.pairs) for g in groups]


@pytest.fixture
def collection(tmp_path, photos, near_copies):
    folder = tmp_path / "collection"
    (folder / "sub").mkdir(parents=True)
    for path in photos.values():
        shutil.copy(path, folder / path.name)
    shutil.copy(near_copies["chelsea"], folder / "sub" / "chelsea-copy.jpg")
    shutil.copy(near_copies["rocket"], folder / "sub" / "rocket-copy.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return folder


@pytest.mark.parametrize("runner", ["inline", "local"])
def test_ingest_job_stores_what_local_ingest_stores(tmp_path, collection, runner):
    with phashdb.open(tmp_path / "mr") as by_job, phashdb.open(tmp_path / "local") as by_pool:
        report = mr.ingest(by_job, [collection], runner)
        expected = ingest(by_pool, [collection], workers=2)
        assert report.to_json() == expected.to_json()
        assert (report.added, report.duplicates, len(report.failed)) == (8, 2, 1)
        assert "broken.png" in report.failed[0][0]
        stored = lambda ix: sorted((i.id, i.hash, i.size, i.width) for i in ix.images())
        assert stored(by_job) == stored(by_pool)
        again = mr.ingest(by_job, [collection], runner)
        assert (again.added, again.skipped) == (0, 8) and len(by_job) == 8
        (collection / "broken.png").unlink()  # a failed file is tried again: now none is
        counters: list = []
        assert mr.ingest(by_job, [collection], runner, counters).skipped == 8
        assert counters == []  # nothing new: no job (on a cluster, no application) at all


def test_the_cli_says_what_the_jobs_did(run, collection):
    # The lines `ingest` and `dedupe` print with --runner (on YARN the tests read --json).
    ingested = run("ingest", "--runner", "inline", collection)
    assert "8 added, 0 skipped, 2 duplicates, 1 failed" in ingested.stdout, ingested.stderr
    dedupe = run("dedupe", "--runner", "inline")
    assert dedupe.returncode == 0 and "2 groups, 4 images" in dedupe.stdout, dedupe.stderr


# Inline only: the same jobs run on the local runner in test_the_distributed_groups_equal_...
# below and in tests/test_grouping.py (here they took 106 s, a subprocess per task of each
# round's steps).
@pytest.mark.parametrize("runner", ["inline"])
def test_dedupe_job_equals_the_index_dedupe(tmp_path, runner):
    rng = np.random.default_rng(5)
    centres = rng.integers(0, 2**64, 30, dtype=np.uint64, endpoint=False)
    hashes = centres[rng.integers(0, 30, 300)]
    for bit in range(64):
        hashes[rng.random(300) < 0.05] ^= np.uint64(1 << bit)
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes((f"i{n}", int(h)) for n, h in enumerate(hashes))
        for threshold in (4, 10):
            expected = groups_of(index.dedupe(threshold))
            assert expected  # the data has groups at both thresholds
            assert groups_of(mr.dedupe(index, runner, threshold)) == expected


@pytest.mark.parametrize("group_bits", [0, 1, 13])
def test_dedupe_job_finds_pairs_that_only_neighbour_probing_finds(tmp_path, group_bits):
    # 5 bands of 13/13/13/13/12 bits and threshold 10: probe radii (2, 1, 1, 1, 1). These two
    # hashes differ by 2 bits in band 0 and 2 in every other band: no band value is shared,
    # so with keys of whole band values (13 group bits) only the probe keys bring them to one
    # reducer.
    a = 0
    b = (0b11 << 51) | (0b11 << 38) | (0b11 << 25) | (0b11 << 12) | 0b11
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes([("a", a), ("b", b)])
        assert groups_of(mr.dedupe(index, "inline", 10, group_bits=group_bits)) == [
            (["a", "b"], (("a", "b", 10),))
        ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    threshold=st.integers(0, 16),
    group_bits=st.integers(0, 13),
    bands=st.sampled_from(["5", "3", "4,20,20,20"]),
)
def test_dedupe_job_equals_the_index_dedupe_for_any_grouping(
    tmp_path_factory, seed, threshold, group_bits, bands
):
    # Each close pair is emitted once (by one reducer), not once per key that sees it.
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**64, 8, dtype=np.uint64, endpoint=False)
    hashes = centres[rng.integers(0, 8, 60)]
    for bit in range(64):
        hashes[rng.random(60) < 0.06] ^= np.uint64(1 << bit)
    lines = [f"i{n}\t{int(h):016x}" for n, h in enumerate(hashes)]
    args = ["--threshold", str(threshold), "--bands", bands, "--group-bits", str(group_bits)]
    records = list(mr.run(MRDedupe, "inline", args, lines))
    pairs = [tuple(r["link"][:3]) for r in records if "link" in r]
    with phashdb.open(tmp_path_factory.mktemp("index")) as index:
        index.add_hashes((f"i{n}", int(h)) for n, h in enumerate(hashes))
        expected = index.dedupe(threshold)
        assert sorted(pairs) == sorted(p for g in expected for p in g.pairs)
        job = mr.dedupe(index, "inline", threshold, bands, group_bits)
        assert groups_of(job) == groups_of(expected)


def test_dedupe_job_leaves_out_pairs_marked_not_duplicates(tmp_path):
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes([("a", 0), ("b", 1), ("c", 3)])
        index.mark_not_duplicates([("a", "b"), ("a", "c")])
        assert groups_of(mr.dedupe(index, "inline", 4)) == groups_of(index.dedupe(4))
        assert groups_of(mr.dedupe(index, "inline", 4)) == [(["b", "c"], (("b", "c", 1),))]


def chain(rng, length: int, threshold: int) -> list[int]:
    """Hashes each `threshold // 2 + 1` new bits from the one before: each within the
    threshold of its neighbours in the chain only."""
    step = threshold // 2 + 1
    bits = rng.permutation(64)
    out = [int(rng.integers(0, 2**63))]
    for k in range(length - 1):
        out.append(out[-1] ^ sum(1 << int(b) for b in bits[k * step : (k + 1) * step]))
    return out


def star_rounds(counters) -> int:
    return sum(any(n.startswith("large-star") for n in step.get(LARGEST, {})) for step in counters)


# On the local runner (each job a real mrjob run in subprocesses, the outputs of one the inputs
# of the next); on YARN the same jobs run in tests/test_grouping.py (two YARN applications a
# round: this chain's rounds would add minutes to the suite).
@pytest.mark.parametrize("runner", ["inline", "local"])
def test_the_distributed_groups_equal_the_index_dedupe_with_chains_decisions_and_judged_pairs(
    tmp_path, photos, near_copies, runner
):
    rng = np.random.default_rng(26)
    # A chain of 22 images whose ids are in no order along it: the components take rounds.
    hashes = chain(rng, 22, 4)
    ids = [f"c{n:02d}" for n in rng.permutation(len(hashes))]
    for name, grey in (("white", 255), ("grey", 235), ("black", 10)):
        # pages of one grey each: one pHash, told apart by the descriptor judge only
        PILImage.new("L", (400, 300), grey).convert("RGB").save(tmp_path / f"{name}.jpg")
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes(zip(ids, hashes))
        for name in ("white", "grey", "black"):
            index.add(tmp_path / f"{name}.jpg", id=name, keep_duplicate=True)
        index.add(photos["astronaut"], id="astronaut")
        index.add(near_copies["astronaut"], id="astronaut-copy", keep_duplicate=True)
        assert len({index.get(name).hash for name in ("white", "grey", "black")}) == 1
        before = groups_of(index.dedupe(4))
        assert sorted(len(ids) for ids, _ in before) == [2, 22]  # no blank pages grouped
        index.mark_not_duplicates([(ids[2], ids[17])])  # splits the chain's group in two
        expected = groups_of(index.dedupe(4))
        chained = [members for members, _ in expected if members[0].startswith("c")]
        assert len(chained) == 2 and sum(map(len, chained)) == 22
        counters: list = []
        assert groups_of(mr.dedupe(index, runner, 4, counters=counters)) == expected
        assert star_rounds(counters) > 2


def test_the_group_bits_grow_with_the_index_so_no_reducer_holds_a_quarter(tmp_path, monkeypatch):
    assert [mr.group_bits_for(n) for n in (1, 50_000, 10**6, 10**9)] == [0, 0, 5, 15]
    monkeypatch.setattr(mr, "KEY_HASHES", 100)  # 3,200 hashes then take the bits of 10^6
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, 3200, dtype=np.uint64, endpoint=False)
    hashes[1::2] = hashes[::2] ^ np.uint64(0b10010001)  # pairs at distance 3
    with phashdb.open(tmp_path / "index") as index:
        index.add_hashes((f"i{n}", int(h)) for n, h in enumerate(hashes))
        counters: list = []
        assert groups_of(mr.dedupe(index, "inline", counters=counters)) == groups_of(index.dedupe())
        close_pairs = largest_inputs(counters)[0]  # a key's homes and probes
        assert 0 < close_pairs <= len(hashes) / 4
        assert max(largest_inputs(counters)[1:]) <= 2  # a pair's ways; a node's neighbours


def test_a_small_index_takes_one_reduce_task_of_the_dedupe_job_on_a_cluster():
    tasks = lambda n, bands="5": mr.dedupe_reduces("hadoop", bands, mr.group_bits_for(n), n)
    assert tasks(14) == ["--jobconf", "mapreduce.job.reduces=1"]
    assert [tasks(n)[1] for n in (25_000, 50_000, 10**6)] == [
        "mapreduce.job.reduces=3", "mapreduce.job.reduces=5", "mapreduce.job.reduces=32"
    ]  # fmt: skip
    assert tasks(25_000, "4,20,20,20")[1] == "mapreduce.job.reduces=3"
    assert mr.dedupe_reduces("local", "5", 0, 14) == []


def test_an_unknown_runner_is_refused(tmp_path):
    with phashdb.open(tmp_path / "index") as index, pytest.raises(ValueError, match="'runner'"):
        mr.dedupe(index, "carrier-pigeon")
