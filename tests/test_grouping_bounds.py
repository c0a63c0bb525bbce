"""Bounds of the batch verdicts (phashdb.grouping): a dedupe's threshold is at most the reach and
its close pairs are bounded (the library, the CLI, the service); a damaged descriptor is treated as
missing (check, dedupe, fsck, the service)."""

from __future__ import annotations

import httpx
import pytest

import phashdb
from phashdb import grouping
from phashdb.mr import run as mr
from phashdb.records import Image
from phashdb.serve import Running, ServeConfig


def ids_of(groups) -> list[list[str]]:
    return [[i.id for i in g.images] for g in groups]


# --- the threshold of a dedupe is bounded ------------------------------------------------


def test_a_dedupe_threshold_beyond_the_reach_is_refused(index):
    index.add_hashes([("a", 0), ("b", 1)])
    with pytest.raises(ValueError, match=r"'threshold' must be at most 16 .*got 40"):
        index.dedupe(40)
    with pytest.raises(ValueError, match=r"'threshold' must be at most 16"):
        mr.dedupe(index, "inline", 17)
    assert ids_of(index.dedupe(16)) == [["a", "b"]]


def test_a_dedupe_collecting_too_many_pairs_stops_with_a_clear_error(index, monkeypatch):
    index.add_hashes([(f"i{n}", n) for n in range(50)])  # all within 6 bits of each other
    monkeypatch.setattr(grouping, "MAX_PAIRS", 100)
    with pytest.raises(ValueError, match="more than 100 close pairs at threshold 8"):
        index.dedupe()


def test_the_cli_refuses_a_dedupe_threshold_beyond_the_reach_in_one_line(run, photos):
    assert run("add", photos["astronaut"]).returncode == 0
    for command in (["dedupe"], ["report", "--out", "r.html"]):
        done = run(*command, "--threshold", "40")
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "'threshold' must be at most 16" in done.stderr


def test_the_service_answers_422_to_a_duplicates_threshold_beyond_the_reach(tmp_path, photos):
    config = ServeConfig(db=str(tmp_path / "index"), uploads=tmp_path / "uploads", workers=1)
    with Running(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        upload = {"image": ("a.jpg", photos["astronaut"].read_bytes())}
        assert client.post("/v1/images", files=upload).status_code == 201
        refused = client.get("/v1/duplicates", params={"threshold": 40})
        assert refused.status_code == 422
        assert "'threshold' must be at most 16" in refused.json()["error"]
        assert client.get("/v1/duplicates", params={"threshold": 16}).status_code == 200


# --- a damaged descriptor is treated as missing ------------------------------------------


def damage(index, photos) -> int:
    """A row under id "bad" with the astronaut's hash and a descriptor of neither layout."""
    h = phashdb.hash_image(photos["astronaut"])
    index.insert([Image("bad", h, descriptor=b"\x07" * 30)])
    return h


def test_a_damaged_descriptor_is_matched_by_the_plain_threshold(index, photos, near_copies):
    index.add(photos["coffee"], id="coffee")
    damage(index, photos)
    [match] = index.check(near_copies["astronaut"]).matches
    assert (match.id, match.score) == ("bad", None)
    assert [m.id for m in index.check(near_copies["coffee"], id="other").matches] == ["coffee"]
    index.add(photos["astronaut"], id="astronaut", keep_duplicate=True)
    assert ids_of(index.dedupe()) == [["astronaut", "bad"]]
    assert index.damaged_descriptors() == ["bad"]
    assert index.damaged_descriptors(repair=True) == ["bad"]
    assert index.damaged_descriptors() == [] and index.get("bad").descriptor is None


def test_check_dedupe_and_fsck_go_on_past_a_damaged_descriptor(run, tmp_path, photos, near_copies):
    with phashdb.open(tmp_path / "index") as index:
        index.add(photos["coffee"])
        damage(index, photos)
    checked = run("check", near_copies["astronaut"], near_copies["coffee"])
    assert checked.returncode == 1, checked.stderr
    assert checked.stdout.count("duplicate") == 2
    assert run("dedupe").returncode == 0
    fsck = run("fsck")
    assert fsck.returncode == 1 and "damaged descriptor: bad" in fsck.stdout
    assert run("fsck", "--repair").returncode == 0
    assert run("fsck").returncode == 0


def test_the_service_answers_past_a_damaged_descriptor(tmp_path, photos, near_copies):
    with phashdb.open(tmp_path / "index") as index:
        damage(index, photos)
    config = ServeConfig(db=str(tmp_path / "index"), uploads=tmp_path / "uploads", workers=1)
    with Running(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        upload = {"image": ("a.jpg", near_copies["astronaut"].read_bytes())}
        checked = client.post("/v1/check", files=upload)
        assert checked.status_code == 200 and checked.json()["matches"][0]["id"] == "bad"
        assert client.get("/v1/duplicates").status_code == 200
