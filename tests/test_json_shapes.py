"""One JSON shape per record type, defined next to the type (issue 23): an image record, a
match, a close pair, a group and a group's plan, as the API (phashdb serve) gives them. The
golden values are what the service answered before the shapes moved next to their types."""

from __future__ import annotations

from dataclasses import replace

import pytest

from phashdb.apply import Done
from phashdb.grouping import Group
from phashdb.keep import Plan, group_version
from phashdb.records import Image, Match, Verdict, pair_to_json

A = Image("a.jpg", 0x8F373714ACFCF4D0, path="/photos/a.jpg", size=2048, mtime=1.5, width=640,
          height=480, added=1700000000.0, descriptor=b"\x01" * 329, dev=1, ino=2, digest="ff")  # fmt: skip
B = Image("b.jpg", 0x8F373714ACFCF4D1, path="/photos/b.jpg", size=1024, mtime=2.5, width=320,
          height=240, added=1700000001.0)  # fmt: skip
C = Image("c.jpg", 0x0F373714ACFCF4D1)  # stored without a file (a server without --uploads)

A_JSON = {"id": "a.jpg", "hash": "8f373714acfcf4d0", "path": "/photos/a.jpg", "size": 2048,
          "mtime": 1.5, "width": 640, "height": 480, "added": 1700000000.0}  # fmt: skip
B_JSON = {"id": "b.jpg", "hash": "8f373714acfcf4d1", "path": "/photos/b.jpg", "size": 1024,
          "mtime": 2.5, "width": 320, "height": 240, "added": 1700000001.0}  # fmt: skip
C_JSON = {"id": "c.jpg", "hash": "0f373714acfcf4d1", "path": None, "size": None, "mtime": None,
          "width": None, "height": None, "added": None}  # fmt: skip
PAIRS = (("a.jpg", "b.jpg", 1), ("a.jpg", "c.jpg", 3))
PAIRS_JSON = [{"a": "a.jpg", "b": "b.jpg", "distance": 1},
              {"a": "a.jpg", "b": "c.jpg", "distance": 3}]  # fmt: skip


def test_an_image_record_shows_its_file_not_its_descriptor_or_identity():
    assert A.to_json() == A_JSON and list(A.to_json()) == list(A_JSON)
    assert C.to_json() == C_JSON


@pytest.mark.parametrize(("match", "expected"), [
    (Match("a.jpg", 3, "/photos/a.jpg", 0.12345, "mirrored", True),
     {"id": "a.jpg", "path": "/photos/a.jpg", "distance": 3, "score": 0.12, "variant": "mirrored",
      "same_file": True}),
    (Match("b.jpg", 0),
     {"id": "b.jpg", "path": None, "distance": 0, "score": None, "variant": "as-is",
      "same_file": False}),
])  # fmt: skip
def test_a_match_and_the_verdict_that_lists_it_agree(match, expected):
    assert match.to_json() == expected
    assert Verdict(A.hash, (match,)).to_json()["matches"] == [expected]


def test_a_pair_and_a_group():
    assert pair_to_json("a.jpg", "b.jpg", 1) == PAIRS_JSON[0]
    group = Group((A, B, C), PAIRS)
    assert group.to_json() == {"images": [A_JSON, B_JSON, C_JSON], "pairs": PAIRS_JSON}


def test_a_plan_lists_its_images_keeper_first_with_their_roles_and_its_version():
    plan = Plan(A, (B,), (), (C,), 1024, PAIRS, "most pixels")
    assert plan.roles() == [(A, "keep"), (B, "remove"), (C, "missing")]
    assert group_version([C, B, A]) == "d24c6203431f1de4"  # the order of the images is no matter
    assert plan.to_json() == {
        "keeper": "a.jpg", "why": "most pixels", "version": "d24c6203431f1de4", "freed": 1024,
        "images": [{**A_JSON, "role": "keep"}, {**B_JSON, "role": "remove"},
                   {**C_JSON, "role": "missing"}],
        "pairs": PAIRS_JSON,
    }  # fmt: skip


@pytest.mark.parametrize("changed", [
    {"path": "/photos/a2.jpg"}, {"size": 2049}, {"mtime": 1.6}, {"hash": 0x8F373714ACFCF4D2},
])  # fmt: skip
def test_a_groups_version_changes_when_a_member_does(changed):
    assert group_version([replace(A, **changed), B, C]) != group_version([A, B, C])


def test_an_actions_outcome_names_the_image_and_where_its_file_went():
    moved = Done(B, A, "trash", "20261206-1f2e")
    failed = Done(C, A, "trash", error="the file is gone")
    assert moved.to_json() == {"id": "b.jpg", "path": "/photos/b.jpg", "trash_id": "20261206-1f2e",
                               "error": None}  # fmt: skip
    assert failed.to_json() == {"id": "c.jpg", "path": None, "trash_id": None,
                                "error": "the file is gone"}  # fmt: skip
