"""dedupe's groups kept in the index folder: answered from the file while the index is the same,
found again (and equal to a fresh dedupe) after any change, here or in another process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import phashdb
from phashdb import group_cache


@pytest.fixture
def stored(tmp_path, photos, near_copies):
    """An embedded index holding the photos and their near copies (three groups and more)."""
    location = tmp_path / "index"
    with phashdb.open(location) as index:
        for name in ("chelsea", "coffee", "rocket", "camera"):
            index.add(photos[name], name)
            index.add(near_copies[name], f"{name}-copy", keep_duplicate=True)
    return location


def counted(index):
    """`index` whose dedupe counts its calls (the search itself, not the kept answer)."""
    calls = []
    search = index.dedupe

    def dedupe(*args, **kwargs):
        calls.append(args)
        return search(*args, **kwargs)

    index.dedupe = dedupe
    return calls


def test_the_groups_are_kept_and_answered_while_nothing_changes(stored):
    with phashdb.open(stored) as index:
        fresh = index.dedupe()
        calls = counted(index)
        assert group_cache.dedupe(index) == fresh
        assert len(calls) == 1 and (stored / group_cache.FILE).is_file()
    with phashdb.open(stored) as index:  # another process's view: a new connection
        calls = counted(index)
        assert group_cache.dedupe(index) == fresh
        assert calls == []


@pytest.mark.parametrize(
    "change",
    [
        lambda index, photos: index.remove("coffee-copy"),
        lambda index, photos: index.add(photos["astronaut"], "astronaut"),
        lambda index, photos: index.mark_not_duplicates([("chelsea", "chelsea-copy")]),
        lambda index, photos: index.store.write_settings({"threshold": 4}),
    ],
    ids=["remove", "add", "decision", "settings"],
)
def test_any_change_finds_them_again(stored, photos, change):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
    with phashdb.open(stored) as other:
        change(other, photos)
    with phashdb.open(stored) as index:
        calls = counted(index)
        found = group_cache.dedupe(index)
        assert len(calls) == 1
        assert found == index.dedupe()


def test_a_change_by_another_process_is_seen(stored, near_copies):
    with phashdb.open(stored) as index:
        before = group_cache.dedupe(index)
        script = (
            "import sys, phashdb\n"
            "with phashdb.open(sys.argv[1]) as index: index.remove('rocket-copy')\n"
        )
        subprocess.run([sys.executable, "-c", script, str(stored)], check=True)
        after = group_cache.dedupe(index)
        assert after != before and after == index.dedupe()


def test_another_threshold_or_reach_is_another_answer(stored):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        assert group_cache.dedupe(index, 0) == index.dedupe(0)
        assert group_cache.dedupe(index, reach=16) == index.dedupe(reach=16)
        assert group_cache.dedupe(index) == index.dedupe()


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"key": [1], "groups": 3}', b"[]"])
def test_a_damaged_file_is_found_again_and_replaced(stored, damage):
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        kept = stored / group_cache.FILE
        key = json.loads(kept.read_text())["key"]
        kept.write_bytes(damage)
        calls = counted(index)
        assert group_cache.dedupe(index) == index.dedupe()
        assert len(calls) == 2  # the kept answer was not used
        assert json.loads(kept.read_text())["key"] == key


def test_groups_kept_before_a_write_never_answer_after_it(stored):
    # The key holds the index's version: the file as it was before the write is not used.
    with phashdb.open(stored) as index:
        group_cache.dedupe(index)
        kept = (stored / group_cache.FILE).read_bytes()
        index.remove("camera-copy")
        (stored / group_cache.FILE).write_bytes(kept)
        assert group_cache.dedupe(index) == index.dedupe()
        assert not any("camera-copy" in [i.id for i in g.images] for g in group_cache.dedupe(index))
