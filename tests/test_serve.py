"""`phashdb serve`: every endpoint and every kind of bad input, through a real HTTP client
(httpx) against the server running on a free loopback port (uvicorn in a thread)."""

from __future__ import annotations

import io
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from PIL import Image as PILImage

import phashdb
from phashdb.serve import Running, ServeConfig


def jpeg(path, quality=None) -> bytes:
    """A photo file's bytes, or re-encoded at `quality` (a near-identical copy)."""
    if quality is None:
        return Path(path).read_bytes()
    out = io.BytesIO()
    with PILImage.open(path) as img:
        img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message


# --- checking and admitting -----------------------------------------------------------------


def test_healthz_and_the_openapi_document_name_every_endpoint(client):
    assert client.get("/healthz").json() == {"status": "ok", "images": 0}
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/check": {"post"}, "/v1/images": {"post"}, "/v1/images/{id}": {"get", "delete"},
        "/v1/duplicates": {"get"}, "/v1/decisions": {"get", "post", "delete"},
        "/v1/trash": {"get", "post"}, "/v1/trash/{entry}/restore": {"post"},
        "/v1/thumbnails/{id}": {"get"}, "/healthz": {"get"},
    } == {path: set(methods) for path, methods in paths.items()}  # fmt: skip


def test_no_page_of_the_server_loads_anything_from_another_host(client):
    # Offline, a page whose script comes from a CDN is blank (FastAPI's /docs and /redoc).
    pages = {url: client.get(url) for url in ("/", "/docs", "/redoc")}
    assert pages["/redoc"].status_code == 404  # one API page, /docs, is enough
    for url in ("/", "/docs"):
        assert pages[url].status_code == 200 and "<html" in pages[url].text.lower()
        assert re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", pages[url].text) == [], url


def test_check_gives_the_verdict_json_of_the_cli_and_stores_nothing(
    client, db, photos, near_copies
):
    with db() as index:
        index.add(photos["astronaut"])
        expected = index.check(near_copies["astronaut"]).to_json()
    raw = client.post("/v1/check", content=jpeg(near_copies["astronaut"]))
    form = client.post("/v1/check", files={"image": ("x.jpg", jpeg(near_copies["astronaut"]))})
    for response in (raw, form):
        assert response.status_code == 200, response.text
        got = response.json()
        assert got.keys() == expected.keys()
        assert got["verdict"] == "duplicate" and not got["added"] and got["path"] is None
        assert (got["hash"], got["matches"], got["threshold"]) == (
            expected["hash"],
            expected["matches"],
            expected["threshold"],
        )
        assert got["id"].startswith("sha256:")
    unique = client.post("/v1/check", content=jpeg(photos["coffee"])).json()
    assert unique["verdict"] == "unique" and unique["matches"] == []
    # At threshold 0 the plain pHash matches nothing here: the copy is found only because the
    # second stage (reach) confirms it, which its match says.
    strict = client.post("/v1/check?threshold=0", content=jpeg(near_copies["astronaut"])).json()
    assert strict["threshold"] == 0
    assert [(m["distance"] > 0, m["score"] is not None) for m in strict["matches"]] == [
        (True, True)
    ]
    with db() as index:
        assert len(index) == 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF"])
def test_an_upload_without_a_file_name_is_stored_under_its_format_suffix(fmt, photos):
    # The suffix is read from the first bytes; it must be the one Pillow's reading names.
    from phashdb.decode import register_heif as _register_heif
    from phashdb.serve.uploads import format_suffix

    if fmt == "HEIF" and not _register_heif():
        pytest.skip("pillow-heif is not installed")
    buffer = io.BytesIO()
    PILImage.open(photos["coffee"]).convert("RGB").save(buffer, fmt)
    with PILImage.open(buffer) as img:
        read_as = img.format
    expected = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp",
                "TIFF": ".tif", "HEIF": ".heic"}[read_as]  # fmt: skip
    assert format_suffix(buffer.getvalue()[:16]) == expected
    assert format_suffix(b"not an image at all") == ".img"


def test_an_upload_is_stored_in_the_uploads_folder_and_the_index(client, db, tmp_path, photos):
    data = jpeg(photos["chelsea"])
    response = client.post("/v1/images", content=data)
    assert response.status_code == 201, response.text
    verdict = response.json()
    assert verdict["verdict"] == "unique" and verdict["added"]
    stored = Path(verdict["path"])
    assert stored.parent == tmp_path / "uploads" and stored.suffix == ".jpg"
    assert stored.read_bytes() == data
    with db() as index:
        image = index.get(verdict["id"])
        assert image.path == str(stored) and image.hash == phashdb.hash_image(photos["chelsea"])
    # The same bytes again: already there.
    assert_error(client.post("/v1/images", content=data), 409, "already uploaded")
    # Nothing half-written is left: the folder holds the one upload.
    assert [p.name for p in (tmp_path / "uploads").iterdir() if p.is_file()] == [stored.name]
    assert list((tmp_path / "uploads" / ".incoming").iterdir()) == []


def test_a_duplicate_upload_is_refused_or_kept_as_asked(client, db, tmp_path, photos, near_copies):
    first = client.post("/v1/images", files={"file": ("a.jpg", jpeg(photos["rocket"]))}).json()
    refused = client.post("/v1/images?on_duplicate=reject", content=jpeg(near_copies["rocket"]))
    assert_error(refused, 409, "a duplicate of " + first["id"])
    assert refused.json()["verdict"] == "duplicate" and not refused.json()["added"]
    assert refused.json()["matches"][0]["id"] == first["id"]
    assert len([p for p in (tmp_path / "uploads").iterdir() if p.is_file()]) == 1
    kept = client.post(
        "/v1/images?on_duplicate=keep&id=my-copy", content=jpeg(near_copies["rocket"])
    )
    assert kept.status_code == 201
    assert kept.json()["verdict"] == "duplicate" and kept.json()["added"]
    with db() as index:
        assert len(index) == 2 and Path(index.get("my-copy").path).exists()


def test_of_concurrent_near_identical_uploads_exactly_one_is_admitted(start, db, photos):
    _, client = start(workers=4)
    for name in ("astronaut", "coffee", "camera"):
        copies = [jpeg(photos[name], quality) for quality in (95, 90, 85, 80, 75, 70, 65, 60)]
        barrier = threading.Barrier(len(copies))

        def upload(data, barrier=barrier):
            barrier.wait()
            return client.post("/v1/images", content=data).status_code

        with ThreadPoolExecutor(len(copies)) as pool:
            statuses = list(pool.map(upload, copies))
        assert sorted(statuses) == [201] + [409] * 7, (name, statuses)
    with db() as index:
        assert len(index) == 3


def test_without_an_uploads_folder_only_the_hash_is_kept(start, db, tmp_path, photos):
    _, client = start(uploads=None)
    verdict = client.post("/v1/images", content=jpeg(photos["camera"]))
    assert verdict.status_code == 201
    with db() as index:
        image = index.get(verdict.json()["id"])
        assert image.path is None and image.hash == int(verdict.json()["hash"], 16)
    assert not (tmp_path / "uploads").exists()


# --- stored images, duplicates, decisions, the trash ------------------------------------------


def test_an_image_is_read_by_its_id_and_deleted_to_the_trash(client, db, photos, tmp_path):
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(jpeg(photos["coffee"]))
    with db() as index:
        stored = index.add(coffee)  # its id is a path: slashes in the URL
    url = "/v1/images/" + quote(stored.id, safe="")
    got = client.get(url).json()
    assert got["id"] == stored.id and got["hash"] == stored.hex
    assert (got["width"], got["height"], got["size"]) == (600, 400, coffee.stat().st_size)
    thumb = client.get("/v1/thumbnails/" + quote(stored.id, safe=""))
    assert thumb.headers["content-type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(thumb.content)).size == (160, 107)
    deleted = client.delete(url).json()
    assert deleted["id"] == stored.id and deleted["trash_id"]
    assert not coffee.exists()
    with db() as index:
        assert stored.id not in index
    trash = client.get("/v1/trash").json()["trash"]
    assert [(t["id"], t["image_id"]) for t in trash] == [(deleted["trash_id"], stored.id)]
    restored = client.post(f"/v1/trash/{deleted['trash_id']}/restore")
    assert restored.status_code == 200 and coffee.exists()
    with db() as index:
        assert stored.id in index
    assert client.get("/v1/trash").json()["trash"] == []


def test_duplicates_come_in_pages_most_bytes_freed_first(client, db, photos, near_copies):
    with db() as index:
        for name in ("astronaut", "chelsea", "rocket"):
            index.add(photos[name])
            index.add(near_copies[name], keep_duplicate=True)
        index.add(photos["coffee"])
    everything = client.get("/v1/duplicates").json()
    assert everything["total"] == 3 and len(everything["groups"]) == 3
    freed = [g["freed"] for g in everything["groups"]]
    assert freed == sorted(freed, reverse=True)
    for group in everything["groups"]:
        assert group["images"][0]["id"] == group["keeper"]
        assert [i["role"] for i in group["images"]] == ["keep", "remove"]
        assert len(group["pairs"]) == 1
    second = client.get("/v1/duplicates?offset=1&limit=1").json()
    assert second["total"] == 3 and second["groups"] == everything["groups"][1:2]
    assert client.get("/v1/duplicates?offset=5").json()["groups"] == []


def test_a_decision_makes_two_images_no_duplicates_until_forgotten(client, db, photos, near_copies):
    with db() as index:
        a = index.add(photos["chelsea"]).id
        b = index.add(near_copies["chelsea"], keep_duplicate=True).id
    made = client.post("/v1/decisions", json={"pairs": [[b, a]]})
    assert made.status_code == 201
    assert [(d["a"], d["b"]) for d in made.json()["decisions"]] == [(min(a, b), max(a, b))]
    assert [(d["a"], d["b"]) for d in client.get("/v1/decisions").json()["decisions"]] == [
        (min(a, b), max(a, b))
    ]
    assert client.get("/v1/duplicates").json()["total"] == 0
    with db() as index:
        # Checked under its id (b's), the copy matches only itself, no longer a.
        assert [m.id for m in index.check(near_copies["chelsea"]).matches] == [b]
    forgotten = client.delete("/v1/decisions", params={"a": a, "b": b})
    assert forgotten.status_code == 200
    assert client.get("/v1/duplicates").json()["total"] == 1
    assert_error(client.delete("/v1/decisions", params={"a": a, "b": b}), 404, "no decision")


def test_duplicates_are_found_once_per_change_of_the_index(
    start, db, photos, near_copies, monkeypatch
):
    # A full dedupe per call would make every look at the review page cost a pass over the
    # index: the groups are kept until anything stored changes, here or in another process.
    runs = []
    dedupe = phashdb.Index.dedupe
    monkeypatch.setattr(phashdb.Index, "dedupe", lambda *a, **k: runs.append(1) or dedupe(*a, **k))
    _, client = start(workers=1)
    with db() as index:
        a = index.add(photos["chelsea"]).id
        b = index.add(near_copies["chelsea"], keep_duplicate=True).id
    assert client.get("/v1/duplicates").json()["total"] == 1
    assert client.get("/v1/duplicates?offset=1").json()["total"] == 1
    assert len(runs) == 1
    assert client.get("/v1/duplicates?threshold=0").json()["threshold"] == 0  # another question
    assert client.get("/v1/duplicates").json()["total"] == 1
    assert len(runs) == 3  # it keeps the latest answer only
    made = client.post("/v1/decisions", json={"pairs": [[a, b]]})
    assert made.status_code == 201
    assert client.get("/v1/duplicates").json()["total"] == 0
    with db() as index:  # another process's change counts too
        index.forget_decisions([(a, b)])
    assert client.get("/v1/duplicates").json()["total"] == 1
    with db() as index:
        c = index.add(Path(near_copies["astronaut"]).read_bytes(), "astronaut-copy").id
        index.add(photos["astronaut"], keep_duplicate=True)
    assert client.get("/v1/duplicates").json()["total"] == 2
    assert client.delete(f"/v1/images/{quote(c, safe='')}").status_code == 200
    assert client.get("/v1/duplicates").json()["total"] == 1
    assert len(runs) == 7


def test_trash_keeps_the_keeper_and_moves_the_rest(client, db, photos, near_copies, tmp_path):
    original, copy = tmp_path / "a.jpg", tmp_path / "a-copy.jpg"
    original.write_bytes(jpeg(photos["astronaut"]))
    copy.write_bytes(jpeg(near_copies["astronaut"]))
    with db() as index:
        a = index.add(original).id
        b = index.add(copy, keep_duplicate=True).id
    done = client.post("/v1/trash", json={"ids": [b], "keeper": a}).json()["done"]
    assert [(d["id"], d["error"]) for d in done] == [(b, None)] and done[0]["trash_id"]
    assert not copy.exists() and original.exists()
    with db() as index:
        assert b not in index and a in index
    client.post(f"/v1/trash/{done[0]['trash_id']}/restore")
    assert copy.exists()
    with db() as index:
        assert b in index


# --- HBase ----------------------------------------------------------------------------------------


@pytest.mark.hbase
def test_the_service_over_hbase(hbase_url, tmp_path, photos, near_copies):
    config = ServeConfig(db=hbase_url, uploads=tmp_path / "uploads", workers=2)
    with Running(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        first = client.post("/v1/images", content=jpeg(photos["chelsea"]))
        assert first.status_code == 201
        copy = client.post("/v1/images?on_duplicate=keep", content=jpeg(near_copies["chelsea"]))
        assert copy.status_code == 201 and copy.json()["verdict"] == "duplicate"
        assert client.get("/v1/duplicates").json()["total"] == 1
        pair = [first.json()["id"], copy.json()["id"]]
        assert client.post("/v1/decisions", json={"pairs": [pair]}).status_code == 201
        assert client.get("/v1/duplicates").json()["total"] == 0
        assert client.get("/healthz").json()["images"] == 2
