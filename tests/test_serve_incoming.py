"""The server's own files after a kill (issue 22, item 11). Without --uploads, a killed
server's private temporary folder of files being received is removed by the next server that
starts, never the folder of a server still running (real processes, killed with SIGKILL).
Under --uploads, only what a kill can leave is taken over: a file in the way under an
upload's name whose bytes are not that upload's is left alone."""

from __future__ import annotations

import hashlib
import os
import signal
import threading

from test_serve import assert_error, jpeg
from test_serve_hostile import _incoming, _serve, _stalled_upload, _stop


def test_a_killed_servers_temporary_folder_is_removed_by_the_next_server(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    def serve(name: str):
        env = {"TMPDIR": str(tmp), "PHASHDB_URL": str(tmp_path / name)}
        there = set(tmp.iterdir())
        process, url, said = _serve(tmp_path, env=env)
        assert url, said
        [folder] = set(tmp.iterdir()) - there  # its own
        return process, url, folder

    running, _, kept = serve("running")
    killed, url, left = serve("killed")
    sock = _stalled_upload(url)
    try:
        while not _incoming(left):  # the upload's file is there (bounded by the test's timeout)
            threading.Event().wait(0.01)
        killed.send_signal(signal.SIGKILL)  # no cleanup of its own
        killed.wait(timeout=30)
    finally:
        sock.close()
    assert left.is_dir() and _incoming(left)
    following, _, own = serve("following")
    try:
        assert not left.exists()
        assert kept.is_dir() and own.is_dir()  # a running server's folder stays
    finally:
        _stop(following)
        _stop(running)
    assert os.listdir(tmp) == []


def test_a_file_in_the_way_under_an_uploads_name_is_left_alone(start, db, photos, tmp_path):
    data = jpeg(photos["rocket"])
    uploads = tmp_path / "uploads"
    (uploads / ".incoming").mkdir(parents=True)
    in_the_way = uploads / (hashlib.sha256(data).hexdigest()[:32] + ".jpg")
    in_the_way.write_bytes(b"not what an upload of these bytes left")
    _, client = start(workers=1)
    assert_error(client.post("/v1/images", content=data), 409, "is no upload", "left alone")
    assert in_the_way.read_bytes() == b"not what an upload of these bytes left"
    in_the_way.unlink()
    os.mkfifo(in_the_way)  # opened without waiting for a writer: the one worker is not held
    assert_error(client.post("/v1/images", content=data), 409, "is no upload", "left alone")
    in_the_way.unlink()
    assert client.post("/v1/images", content=data).status_code == 201
    with db() as index:
        assert len(index) == 1
