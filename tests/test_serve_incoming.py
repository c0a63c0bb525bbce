"""What a killed `phashdb serve` without --uploads leaves: its private temporary folder of
files being received, removed by the next server that starts (issue 22, item 11), never the
folder of a server still running. Real server processes, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import threading

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
