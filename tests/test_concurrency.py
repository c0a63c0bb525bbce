"""Several processes on one index: writes serialised (embedded) or settled by claims (HBase),
uniqueness kept."""

from __future__ import annotations

import multiprocessing as mp

import pytest

import phashdb


def add_when_all_ready(location, image, barrier, results):
    with phashdb.open(location) as index:
        barrier.wait()
        verdict = index.add(image)
        results.put((str(image), verdict.added, [m.id for m in verdict.matches]))


def test_of_near_identical_images_added_at_once_exactly_one_is_unique(
    tmp_path, photos, near_copies
):
    location = str(tmp_path / "index")
    phashdb.open(location).close()
    adds_at_once_admit_exactly_one(location, tmp_path, photos, near_copies)


@pytest.mark.hbase
def test_on_hbase_of_near_identical_images_added_at_once_exactly_one_is_unique(
    hbase_url, tmp_path, photos, near_copies
):
    adds_at_once_admit_exactly_one(hbase_url, tmp_path, photos, near_copies)


def adds_at_once_admit_exactly_one(location, tmp_path, photos, near_copies):
    images = [photos["astronaut"], near_copies["astronaut"]]
    # More copies of the same photo, each encoded differently.
    from PIL import Image

    for q in (60, 75, 85):
        images.append(tmp_path / f"astronaut-{q}.jpg")
        Image.open(photos["astronaut"]).save(images[-1], quality=q)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(images)), ctx.Queue()
    workers = [
        ctx.Process(target=add_when_all_ready, args=(location, img, barrier, results))
        for img in images
    ]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    admitted = [path for path, added, _ in outcomes if added]
    assert len(admitted) == 1
    for _path, added, matches in outcomes:
        if not added:
            assert matches == admitted
    with phashdb.open(location) as index:
        assert len(index) == 1


def ingest_folder(location, folder):
    from phashdb.ingest import ingest

    with phashdb.open(location) as index:
        ingest(index, [folder], workers=1)


def test_two_writers_ingesting_at_once_lose_nothing(tmp_path, photos):
    location = str(tmp_path / "index")
    folders = []
    for k in range(2):
        folder = tmp_path / f"f{k}"
        folder.mkdir()
        for _name, path in photos.items():
            (folder / path.name).write_bytes(path.read_bytes())
        folders.append(folder)
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=ingest_folder, args=(location, f)) for f in folders]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    with phashdb.open(location) as index:
        assert len(index) == 2 * len(photos)
        assert len(index.dedupe()) == len(photos)


def open_when_all_ready(location, barrier, results):
    barrier.wait()
    try:
        with phashdb.open(location) as index:
            results.put(len(index))
    except phashdb.Error as e:
        results.put(str(e))


def test_processes_opening_a_new_index_at_once_all_get_it(tmp_path):
    # The first opener turns the new database to WAL mode; SQLite may refuse that switch as
    # "locked" at once to a rival opener instead of waiting. Rare, hence many rounds.
    ctx = mp.get_context("fork")
    for round in range(60):
        location = str(tmp_path / f"index{round}")
        barrier, results = ctx.Barrier(8), ctx.Queue()
        openers = [
            ctx.Process(target=open_when_all_ready, args=(location, barrier, results))
            for _ in range(8)
        ]
        for p in openers:
            p.start()
        outcomes = [results.get(timeout=60) for _ in openers]
        for p in openers:
            p.join(timeout=60)
        assert outcomes == [0] * 8
