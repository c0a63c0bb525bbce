"""The service's one table from error to HTTP status (phashdb.serve.errors): each row, and the
rows no other test reaches, through a real HTTP client against a running server."""

from __future__ import annotations

import errno

import httpx
import pytest
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from test_read_only import read_only_view  # noqa: F401 (a fixture)
from test_serve import assert_error, jpeg

import phashdb
from phashdb.errors import Error, ImageError, IndexMismatchError, StoreError, TrashError
from phashdb.serve import Running, ServeConfig
from phashdb.serve.body import BodyError
from phashdb.serve.errors import answer, hider
from phashdb.uploaded import Busy


@pytest.mark.parametrize(("error", "status"), [
    (HTTPException(404, "no image with id 'x' in the index"), 404),
    (HTTPException(401, "a valid bearer token is needed"), 401),
    (BodyError(413, "the body is over the limit"), 413),
    (BodyError(408, "no part of the body came"), 408),
    (ImageError("not an image"), 422),
    (StoreError("cannot write to the index"), 503),
    (Error("the same bytes were already uploaded"), 409),
    (Busy("the same bytes are being uploaded right now"), 409),
    (TrashError("no entry 'x' in the trash"), 409),
    (IndexMismatchError("hash version 9"), 409),
    (OSError(errno.ENOSPC, "No space left on device"), 507),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), 507),
    (OSError(errno.EIO, "Input/output error"), 500),
])  # fmt: skip
def test_each_error_has_one_status_its_most_specific_class_decides(error, status):
    got, message = answer(error)
    assert got == status
    assert str(error.detail if isinstance(error, HTTPException) else error) in message


def test_a_bad_parameter_names_where_it_is():
    invalid = RequestValidationError([{"loc": ("query", "limit"), "msg": "too large"}])
    assert answer(invalid) == (422, "query.limit: too large")


def test_messages_about_an_upload_hide_the_servers_file_of_it():
    hide = hider("/srv/uploads/.incoming")
    error = ImageError("/srv/uploads/.incoming/.incoming-1f2e: not an image")
    assert answer(error, hide) == (422, "the upload: not an image")
    kept = "/srv/uploads/.incoming/x: gone"  # a store's message names no upload: as it is
    assert answer(StoreError(kept), hide) == (503, kept)


def test_an_error_outside_the_table_is_refused():
    with pytest.raises(ValueError, match="'e' must be one of the table's errors, got KeyError"):
        answer(KeyError("x"))


def test_an_index_that_cannot_be_written_answers_503_and_keeps_no_file(
    tmp_path,
    photos,
    read_only_view,  # noqa: F811
):
    """StoreError, end to end: a server over an index on a read-only mount checks, but an
    upload is refused with a 503 naming the index, and the upload's file is not kept."""
    with phashdb.open(tmp_path / "index") as index:
        index.add(photos["astronaut"])
    view = read_only_view(tmp_path / "index")
    uploads = tmp_path / "uploads"
    config = ServeConfig(db=str(view), uploads=uploads, workers=1)
    with Running(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/v1/check", content=jpeg(photos["coffee"])).status_code == 200
        refused = client.post("/v1/images", content=jpeg(photos["coffee"]))
        assert_error(refused, 503, "read-only", str(view))
        assert client.get("/healthz").json() == {"status": "ok", "images": 1}
    assert [p.name for p in uploads.iterdir()] == [".incoming"]
    assert list((uploads / ".incoming").iterdir()) == []
