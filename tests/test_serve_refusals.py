"""What `phashdb serve` refuses, through a real HTTP client (httpx) against the running server:
bad images and bad requests (a clear 4xx JSON error, never a 500), calls without the bearer
token, and listening beyond loopback without one."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from test_serve import assert_error, jpeg

from phashdb import Error
from phashdb.serve import Running, ServeConfig

# --- bad input: a clear 4xx JSON error, never a 500 ---------------------------------------------


def test_bad_images_are_refused_with_a_clear_4xx(start, photos, tmp_path):
    _, client = start(max_bytes=200_000)
    _, few_pixels = start(max_pixels=100_000)
    whole = jpeg(photos["camera"])
    assert len(whole) < 200_000
    for url in ("/v1/check", "/v1/images"):
        assert_error(client.post(url, content=b"not an image at all"), 422, "not an image")
        assert_error(client.post(url, content=whole[: len(whole) // 2]), 422, "truncated")
        assert_error(client.post(url, content=b""), 400, "empty")
        # 512 x 512 = 262,144 pixels, over the limit of 100,000
        assert_error(few_pixels.post(url, content=whole), 422, "more than the limit")
        big = b"\xff\xd8\xff" + bytes(300_000)
        assert_error(client.post(url, content=big), 413, "over the limit")
        # Without a Content-Length (chunked): refused as the bytes come.
        assert_error(client.post(url, content=iter([big[:100_000]] * 3)), 413, "over the limit")
        assert_error(client.post(url, files={"a": (None, "no file")}), 400, "no complete file")
        malformed = client.post(
            url, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}
        )
        assert_error(malformed, 400, "boundary")
    assert [p for p in (tmp_path / "uploads").iterdir() if p.is_file()] == []
    assert list((tmp_path / "uploads" / ".incoming").iterdir()) == []


def test_bad_requests_are_refused_with_a_clear_4xx(client, db, photos):
    with db() as index:
        a = index.add(photos["rocket"]).id
    assert_error(client.get("/v1/images/nope"), 404, "no image with id 'nope'")
    assert_error(client.delete("/v1/images/nope"), 404, "no image with id 'nope'")
    assert_error(client.get("/v1/thumbnails/nope"), 404, "no image with id 'nope'")
    assert_error(client.post("/v1/images?on_duplicate=maybe", content=b"x"), 422, "on_duplicate")
    assert_error(client.post("/v1/check?threshold=65", content=b"x"), 422, "threshold")
    assert_error(client.get("/v1/duplicates?limit=0"), 422, "limit")
    assert_error(client.post("/v1/decisions", json={"pairs": [[a, "nope"]]}), 404, "'nope'")
    assert_error(client.post("/v1/decisions", json={"pairs": [[a, a]]}), 422, "two different")
    assert_error(client.post("/v1/decisions", content=b"{not json"), 422)
    assert_error(client.post("/v1/decisions", json={"pairs": []}), 422, "pairs")
    assert_error(client.post("/v1/trash", json={"ids": [a], "keeper": a}), 422, "keeper")
    assert_error(client.post("/v1/trash", json={"ids": ["nope"], "keeper": a}), 404, "'nope'")
    assert_error(client.post("/v1/trash/nope/restore"), 404, "no entry 'nope'")
    assert_error(client.get("/v1/nothing-here"), 404)
    assert_error(client.put("/v1/check"), 405)


def test_ids_in_a_json_body_that_no_file_name_gives_are_refused_with_a_clear_4xx(
    client, db, photos, tmp_path
):
    # A name that is not UTF-8 comes as \udcXX escapes (one a byte); JSON can carry any other
    # lone surrogate too, which no id can hold (the store cannot encode it: it was a 500).
    name = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.jpg")
    shutil.copy(photos["rocket"], name)
    with db() as index:
        a, b = index.add(name).id, index.add(photos["coffee"]).id

    def post(url: str, body: dict):
        raw = json.dumps(body).encode("ascii")  # escapes, as a browser's JSON.stringify sends
        return client.post(url, content=raw, headers={"Content-Type": "application/json"})

    for bad in ("\ud800", "x\udfff", "\udc7f"):
        for url, body in (("/v1/decisions", {"pairs": [[a, bad]]}),
                          ("/v1/decisions", {"pairs": [[a, b]], "members": [a, b, bad]}),
                          ("/v1/trash", {"ids": [bad], "keeper": a}),
                          ("/v1/trash", {"ids": [b], "keeper": bad}),
                          ("/v1/trash", {"ids": [b], "keeper": a, "members": [bad]})):  # fmt: skip
            assert_error(post(url, body), 422, f"{bad!r} is no id", "lone surrogate")
    with db() as index:
        assert len(index) == 2 and index.decisions() == []
    # The escapes of a name's bytes are ids like any other.
    assert post("/v1/decisions", {"pairs": [[a, b]]}).status_code == 201


# --- the bearer token ---------------------------------------------------------------------------


def test_a_token_guards_every_v1_call(start, photos):
    _, client = start(token="s3cret")
    assert_error(client.post("/v1/check", content=jpeg(photos["camera"])), 401, "bearer token")
    wrong = client.get("/v1/duplicates", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "bearer token")
    assert wrong.headers["www-authenticate"] == "Bearer"
    right = client.get("/v1/duplicates", headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    assert client.get("/healthz").status_code == 200


def test_listening_beyond_loopback_needs_a_token(tmp_path):
    with pytest.raises(Error, match="needs a bearer token"):
        Running(ServeConfig(db=str(tmp_path / "index")), host="0.0.0.0")


def test_phashdb_serve_refuses_to_listen_beyond_loopback_without_a_token(run):
    refused = run("serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 2 and "needs a bearer token" in refused.stderr
