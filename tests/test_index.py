"""The index's contract, run on every backend (the conformance suite): what users of
`import phashdb` can rely on whichever storage is behind the index."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image as PILImage

import phashdb
from phashdb import Error, ImageError, IndexMismatchError


def test_a_new_image_is_unique_and_stored(index, photos):
    verdict = index.add(photos["astronaut"])
    assert not verdict.duplicate and verdict.added
    assert verdict.matches == ()
    assert verdict.id == verdict.path == str(photos["astronaut"])
    assert len(index) == 1 and verdict.id in index
    stored = index.get(verdict.id)
    assert stored.hash == phashdb.hash_image(photos["astronaut"])
    assert stored.size == photos["astronaut"].stat().st_size
    assert (stored.width, stored.height) == (512, 512)
    assert stored.added is not None


def test_a_re_encoded_copy_is_a_duplicate_and_not_stored(index, photos, near_copies):
    index.add(photos["astronaut"])
    index.add(photos["coffee"])
    verdict = index.add(near_copies["astronaut"])
    assert verdict.duplicate and not verdict.added
    assert [m.path for m in verdict.matches] == [str(photos["astronaut"])]
    assert 0 < verdict.matches[0].distance <= index.threshold
    assert len(index) == 2


def test_a_duplicate_the_user_keeps_is_stored(index, photos, near_copies):
    index.add(photos["astronaut"])
    verdict = index.add(near_copies["astronaut"], keep_duplicate=True)
    assert verdict.duplicate and verdict.added
    assert len(index) == 2


def test_check_gives_the_verdict_and_stores_nothing(index, photos, near_copies):
    index.add(photos["chelsea"])
    assert index.check(near_copies["chelsea"]).duplicate
    assert not index.check(photos["coffee"]).duplicate
    assert len(index) == 1


def test_the_threshold_is_an_index_setting_overridable_per_call(index, photos, near_copies):
    index.configure(reach=0, variants=False)  # the plain pHash threshold alone
    index.add(photos["astronaut"])
    distance = index.check(near_copies["astronaut"]).matches[0].distance
    assert not index.check(near_copies["astronaut"], threshold=distance - 1).duplicate
    assert index.check(near_copies["astronaut"], threshold=distance).duplicate
    index.configure(threshold=distance - 1)
    assert index.threshold == distance - 1
    assert not index.check(near_copies["astronaut"]).duplicate


def test_adding_an_id_twice_is_an_error_naming_it(index, photos):
    index.add(photos["camera"], id="cam")
    with pytest.raises(Error, match="'cam' is already in the index"):
        index.add(photos["coffee"], id="cam")
    assert index.get("cam").hash == phashdb.hash_image(photos["camera"])


def test_query_sorts_by_distance_then_id(index):
    base = 0x0123_4567_89AB_CDEF
    index.add_hashes([("far", base ^ 0b111), ("b", base ^ 0b1), ("a", base ^ 0b10), ("x", base)])
    assert index.query(base, 3) == [("x", 0), ("a", 1), ("b", 1), ("far", 3)]
    assert index.query(phashdb.to_hex(base), 1) == [("x", 0), ("a", 1), ("b", 1)]
    assert index.query(base ^ 0xFFFF_0000_0000_0000, 3) == []


def test_query_many_answers_like_query_one_by_one(index):
    index.add_hashes([(f"i{k}", (k * 0x9E37_79B9_7F4A_7C15) & (2**64 - 1)) for k in range(200)])
    queries = [(k * 0x9E37_79B9_7F4A_7C15 ^ 0b1010) & (2**64 - 1) for k in range(0, 200, 7)]
    assert index.query_many(queries, 4) == [index.query(q, 4) for q in queries]


def test_add_hashes_takes_ints_and_hex_and_is_idempotent(index):
    pairs = [("a", 0xFFFF_0000_FFFF_0000), ("b", "00ff00ff00ff00ff")]
    index.add_hashes(pairs)
    index.add_hashes(pairs)
    assert len(index) == 2
    assert index.get("b").hash == 0x00FF_00FF_00FF_00FF
    index.add_hashes([("b", 1)])  # a new hash for a stored id replaces the old one
    assert len(index) == 2 and index.get("b").hash == 1
    assert index.query(0x00FF_00FF_00FF_00FF, 0) == []
    assert index.query(1, 0) == [("b", 0)]


@pytest.mark.parametrize("bad", [-1, 2**64, "xyz", 1.5, None, True])
def test_add_hashes_refuses_a_hash_that_is_not_64_bits_and_stores_nothing_of_it(index, bad):
    with pytest.raises(ValueError, match="(?i)hash"):
        index.add_hashes([("ok", 1), ("bad", bad)])
    assert len(index) == 0


def test_add_hashes_refuses_what_is_not_an_id_and_hash_pair(index):
    with pytest.raises(ValueError, match=r"\(id, hash\) pairs, got \('b', 1, 2\)"):
        index.add_hashes([("a", 1), ("b", 1, 2)])
    assert len(index) == 0


def test_remove_forgets_an_image(index, photos, near_copies):
    verdict = index.add(photos["astronaut"])
    assert index.remove(verdict.id)
    assert not index.remove(verdict.id)
    assert len(index) == 0 and index.get(verdict.id) is None
    assert not index.check(near_copies["astronaut"]).duplicate


def test_similar_ranks_the_nearest_images(index):
    base = 0xAAAA_AAAA_AAAA_AAAA
    index.add_hashes([("d0", base), ("d5", base ^ 0b11111), ("d20", base ^ (2**20 - 1))])
    index.add_hashes([("d40", base ^ (2**40 - 1))])
    assert [(m.id, m.distance) for m in index.similar(base, top=3)] == [
        ("d0", 0),
        ("d5", 5),
        ("d20", 20),
    ]
    assert [m.id for m in index.similar(base, top=10)] == ["d0", "d5", "d20", "d40"]


def test_similar_marks_the_stored_record_of_the_very_file_asked_about(index, photos, tmp_path):
    copy = tmp_path / "copy.png"
    shutil.copy(photos["coffee"], copy)
    index.add(photos["coffee"])
    index.add(copy, keep_duplicate=True)
    found = {m.path: m.same_file for m in index.similar(photos["coffee"], top=2)}
    assert found == {str(photos["coffee"]): True, str(copy): False}
    assert not any(m.same_file for m in index.similar(index.get(str(copy)).hash, top=2))


def test_dedupe_groups_images_connected_by_close_pairs(index):
    a = 0x0F0F_0F0F_0F0F_0F0F
    # a ~ b and b ~ c within the threshold, a and c further apart: one group of three.
    index.add_hashes(
        [
            ("a", a),
            ("b", a ^ 0xFF),
            ("c", a ^ 0xFFFF),
            ("lonely", ~a & (2**64 - 1)),
            ("p", 0x1234_5678_0000_0000),
            ("q", 0x1234_5678_0000_0001),
        ]
    )
    groups = index.dedupe(threshold=8)
    assert [[i.id for i in g.images] for g in groups] == [["a", "b", "c"], ["p", "q"]]
    assert groups[0].pairs == (("a", "b", 8), ("b", "c", 8))
    assert groups[1].pairs == (("p", "q", 1),)


def test_every_source_kind_can_be_checked_and_added(index, photos):
    path = photos["coffee"]
    data = path.read_bytes()
    expected = phashdb.hash_image(path)
    with PILImage.open(path) as img:
        img.load()
        for source in (str(path), path, data, io.BytesIO(data), img):
            assert index.check(source).hash == expected
        by_bytes = index.add(data)
        assert by_bytes.id.startswith("sha256:") and by_bytes.path is None
        assert index.add(io.BytesIO(data), id="coffee-2", keep_duplicate=True).added


def test_a_bad_image_raises_image_error_and_stores_nothing(index, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    with pytest.raises(ImageError, match="notes.jpg"):
        index.add(bad)
    assert len(index) == 0


@pytest.mark.parametrize("radius", [-1, 65, 2.5])
def test_bad_radius_is_refused_with_its_name(index, radius):
    with pytest.raises(ValueError, match="'radius'"):
        index.query(0, radius)


def test_verdict_json_has_the_documented_shape(index, photos, near_copies):
    index.add(photos["astronaut"])
    doc = index.check(near_copies["astronaut"]).to_json()
    assert doc["verdict"] == "duplicate" and len(doc["hash"]) == 16
    assert doc["path"] == str(near_copies["astronaut"])
    assert set(doc["matches"][0]) == {"id", "path", "distance", "score", "variant", "same_file"}
    assert doc["matches"][0]["variant"] == "as-is"
    assert index.check(photos["camera"]).to_json()["verdict"] == "unique"


def test_stats_describe_the_index(index, photos):
    index.add(photos["camera"])
    info = index.stats()
    assert info["images"] == 1 and info["threshold"] == index.threshold
    assert info["hash_version"] == phashdb.HASH_VERSION
    assert sum(info["bands"]) == 64


def test_two_handles_on_one_index_see_each_others_writes(reopen, photos, near_copies):
    first, second = reopen(), reopen()
    try:
        first.add(photos["astronaut"])
        assert second.check(near_copies["astronaut"]).duplicate
        second.remove(str(photos["astronaut"]))
        assert not first.check(near_copies["astronaut"]).duplicate
    finally:
        first.close()
        second.close()


def test_everything_survives_closing_and_opening_again(reopen, photos):
    with reopen() as index:
        index.add(photos["chelsea"])
        index.add_hashes([(f"h{i}", i * 0x1111) for i in range(1, 100)])
        index.configure(threshold=7)
    with reopen() as index:
        assert len(index) == 100 and index.threshold == 7
        assert index.check(photos["chelsea"]).matches[0].distance == 0
        assert index.query(0x1111 * 5, 0) == [("h5", 0)]


def test_an_index_of_another_hash_version_is_refused(reopen):
    with reopen() as index:
        index.store.write_settings({"hash_version": "phash-other-v0"})
    with pytest.raises(IndexMismatchError, match="phash-other-v0"):
        reopen()


def test_ids_of_any_text_come_back_exactly(index):
    ids = ["фото/лето.jpg", "emoji 📷.png", "tab\there", "a" * 300]
    index.add_hashes([(id, 0xABCD_0000_0000_0000 + n) for n, id in enumerate(ids)])
    found = index.query(0xABCD_0000_0000_0000, 2)
    assert sorted(found) == sorted((id, n.bit_count()) for n, id in enumerate(ids))


# --- the second stage: flips, rotations, and copies beyond the plain threshold ---------------


def transposed_jpeg(path, transpose) -> bytes:
    with PILImage.open(path) as img:
        buf = io.BytesIO()
        img.transpose(transpose).save(buf, "JPEG", quality=80)
        return buf.getvalue()


@pytest.mark.parametrize(
    "transpose, variant",
    [
        (PILImage.Transpose.FLIP_LEFT_RIGHT, "mirrored"),
        (PILImage.Transpose.ROTATE_90, "rotated 90"),
        (PILImage.Transpose.ROTATE_180, "rotated 180"),
        (PILImage.Transpose.ROTATE_270, "rotated 270"),
    ],
)
def test_a_mirrored_or_rotated_copy_is_found_and_says_how(index, photos, transpose, variant):
    index.add(photos["astronaut"])
    index.add(photos["coffee"])
    copy = transposed_jpeg(photos["astronaut"], transpose)
    verdict = index.check(copy)
    assert [(m.path, m.variant) for m in verdict.matches] == [(str(photos["astronaut"]), variant)]
    assert verdict.matches[0].distance <= index.threshold
    assert verdict.matches[0].score <= phashdb.confirm.SCORE_LIMIT
    assert verdict.to_json()["matches"][0]["variant"] == variant
    index.configure(variants=False)
    assert not index.check(copy).duplicate


def test_the_second_stage_confirms_a_copy_beyond_the_threshold(index, photos):
    index.add(photos["astronaut"])
    index.add(photos["coffee"])
    with PILImage.open(photos["astronaut"]) as img:
        buf = io.BytesIO()
        img.rotate(3, PILImage.BICUBIC).save(buf, "JPEG", quality=80)
    verdict = index.check(buf.getvalue())
    assert [m.path for m in verdict.matches] == [str(photos["astronaut"])]
    match = verdict.matches[0]
    assert index.threshold < match.distance <= index.reach and match.variant == "as-is"
    assert match.score <= phashdb.confirm.SCORE_LIMIT
    index.configure(reach=0)
    assert not index.check(buf.getvalue()).duplicate


def test_the_descriptor_is_stored_with_the_image(index, reopen, photos):
    verdict = index.add(photos["chelsea"])
    expected = phashdb.read_image(photos["chelsea"]).descriptor
    keys = phashdb.read_image(photos["chelsea"]).keys  # its window keys (phashdb.windows)
    assert len(expected) == phashdb.descriptor.STORED_SIZE + sum(
        phashdb.descriptor.entry_size(k.name) for k in keys
    )
    assert index.get(verdict.id).descriptor == expected
    with reopen() as again:
        assert again.get(verdict.id).descriptor == expected
        assert [i.descriptor for i in again.images()] == [expected]


def test_hashes_loaded_without_a_descriptor_match_by_the_plain_threshold(
    index, photos, near_copies
):
    index.add_hashes([("bare", phashdb.to_hex(phashdb.hash_image(photos["astronaut"])))])
    assert index.get("bare").descriptor is None
    [match] = index.check(near_copies["astronaut"]).matches
    assert (match.id, match.score, match.variant) == ("bare", None, "as-is")
    mirrored = transposed_jpeg(photos["astronaut"], PILImage.Transpose.FLIP_LEFT_RIGHT)
    assert not index.check(mirrored).duplicate


def test_dedupe_groups_copies_the_second_stage_confirms(index, photos):
    index.add(photos["astronaut"], id="astronaut")
    index.add(photos["coffee"], id="coffee")
    with PILImage.open(photos["astronaut"]) as img:
        buf = io.BytesIO()
        img.rotate(3, PILImage.BICUBIC).save(buf, "JPEG", quality=80)
    index.add(buf.getvalue(), id="rotated", keep_duplicate=True)
    [group] = index.dedupe()  # by default as a check: up to the index's reach
    assert [i.id for i in group.images] == ["astronaut", "rotated"]
    assert index.threshold < group.pairs[0][2] <= index.reach
    assert index.dedupe(reach=0) == []  # the plain threshold alone


# --- decisions: pairs the user said are not duplicates ---------------------------------------


def test_a_pair_marked_not_duplicates_is_no_match_in_check_add_or_dedupe(
    index, photos, near_copies
):
    a = index.add(photos["astronaut"]).id
    b = index.add(near_copies["astronaut"], keep_duplicate=True).id
    index.add(photos["chelsea"])
    c = index.add(near_copies["chelsea"], keep_duplicate=True).id
    assert len(index.dedupe()) == 2
    made = index.mark_not_duplicates([(b, a)])
    assert [(d.a, d.b) for d in made] == [(min(a, b), max(a, b))]
    # Groups: the pair is gone, the other group stays.
    assert [[i.id for i in g.images] for g in index.dedupe()] == [
        sorted([str(photos["chelsea"]), c])
    ]
    # Verdicts under b's id no longer name a; a's name no b.
    assert [m.id for m in index.check(near_copies["astronaut"]).matches] == [b]
    assert [m.id for m in index.check(photos["astronaut"]).matches] == [a]
    # Another file's verdict is untouched: decisions are about ids, not pictures.
    assert len(index.check(near_copies["astronaut"], id="another").matches) == 2
    # add: an image re-added under an id decided not a duplicate of what it matches is unique.
    index.remove(b)
    again = index.add(near_copies["astronaut"])
    assert not again.duplicate and again.added
    # Forgotten: the pair is a duplicate again.
    assert index.forget_decisions([(a, b)]) == 1
    assert index.forget_decisions([(a, b)]) == 0
    assert len(index.dedupe()) == 2
    assert index.check(near_copies["astronaut"]).duplicate


def test_decisions_are_listed_oldest_first_and_last_across_opens(reopen, photos, near_copies):
    with reopen() as index:
        a = index.add(photos["rocket"]).id
        b = index.add(near_copies["rocket"], keep_duplicate=True).id
        c = index.add(photos["coffee"]).id
        index.mark_not_duplicates([(a, b)])
        index.mark_not_duplicates([(c, a), (b, c)])
    with reopen() as index:
        found = index.decisions()
        assert [(d.a, d.b) for d in found][0] == (min(a, b), max(a, b))
        assert {(d.a, d.b) for d in found} == {tuple(sorted(p)) for p in [(a, b), (a, c), (b, c)]}
        assert [d.made for d in found] == sorted(d.made for d in found)
        # A decision outlives the image leaving the index (trashed, then restored).
        index.remove(b)
        assert len(index.decisions()) == 3
        assert len(index) == 2  # decisions are not images (HBase keeps them beside the records)


def test_a_decision_needs_two_different_stored_ids(index, photos):
    a = index.add(photos["camera"]).id
    with pytest.raises(Error, match="no image with id 'nope'"):
        index.mark_not_duplicates([(a, "nope")])
    with pytest.raises(ValueError, match="two different ids"):
        index.mark_not_duplicates([(a, a)])
    assert index.decisions() == []


def test_the_version_changes_whenever_what_is_stored_changes(reopen, photos, near_copies):
    # What is derived from the index (the server's duplicate groups) is kept while the version
    # stays: any add, removal or decision, here or through another connection, must change it.
    # A backend that cannot tell gives None (and then nothing is kept).
    with reopen() as index, reopen() as other:
        seen = [index.version()]
        if seen[0] is None:
            assert other.version() is None
            return
        assert index.version() == seen[-1]  # reading changes nothing
        index.check(photos["coffee"])
        assert index.version() == seen[-1]
        for change in (
            lambda: index.add(photos["chelsea"], "a"),
            lambda: other.add(near_copies["chelsea"], "b", keep_duplicate=True),
            lambda: index.mark_not_duplicates([("a", "b")]),
            lambda: other.forget_decisions([("a", "b")]),
            lambda: other.remove("b"),
            lambda: index.remove("a"),
        ):
            change()
            assert index.version() not in seen
            seen.append(index.version())
