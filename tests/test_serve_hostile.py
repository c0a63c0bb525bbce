"""`phashdb serve` under hostile input (issue 22): DNS rebinding, cross-site requests, stalled
bodies, FIFOs at stored paths, non-UTF-8 file names, a full disk. Through a real HTTP client
(httpx, or a raw socket where a client must misbehave) against the running server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from conftest import PHASHDB
from test_serve import assert_error, jpeg

import phashdb

# --- DNS rebinding and cross-site requests --------------------------------------------------------


def test_without_a_token_only_names_of_loopback_on_its_port_are_answered(start):
    server, client = start()
    port = urlsplit(server.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert client.get("/v1/duplicates", headers={"Host": host}).status_code == 200, host
    # A page whose name was rebound to 127.0.0.1 sends its own name; other ports are others'.
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1",
                 f"127.0.0.1.evil.example:{port}", f"[::1]x:{port}", ""):  # fmt: skip
        refused = client.get("/v1/duplicates", headers={"Host": host})
        assert_error(refused, 421, "does not name this server", str(port))
        assert_error(client.delete("/v1/images/x", headers={"Host": host}), 421)
    # With a token, the name is free (a server behind a proxy): the token is the guard.
    _, guarded = start(token="s3cret")
    named = guarded.get("/v1/duplicates", headers={"Host": "phashdb.example",
                                                   "Authorization": "Bearer s3cret"})  # fmt: skip
    assert named.status_code == 200


def test_changes_sent_by_another_site_are_refused(start, db, photos, tmp_path):
    server, client = start()
    data = jpeg(photos["camera"])
    evil = {"Origin": "http://evil.example"}
    for headers in (evil, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": server.url.replace("127.0.0.1",
                                                                                  "localhost")}):  # fmt: skip
        # A "simple" request (text/plain, no preflight) is what a page can send anywhere.
        sent = client.post("/v1/images", content=data, headers={**headers,
                                                                "Content-Type": "text/plain"})  # fmt: skip
        assert_error(sent, 403, "another site")
        assert_error(client.post("/v1/trash/x/restore", headers=headers), 403, "another site")
        assert_error(client.delete("/v1/images/x", headers=headers), 403)
    with db() as index:
        assert len(index) == 0
    assert not [p for p in (tmp_path / "uploads").iterdir() if p.is_file()]
    # Reading is no change (and another site cannot read the answer); the own origin may change.
    assert client.get("/v1/duplicates", headers=evil).status_code == 200
    own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/v1/images", content=data, headers=own).status_code == 201
    assert client.post("/v1/check", content=data, headers={"Sec-Fetch-Site": "none"}).is_success


# --- tokens and the files of uploads --------------------------------------------------------------


def _serve(tmp_path, *args, env=None):
    """`phashdb serve ARGS` on a free port: (process, base URL), once it listens."""
    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index"), **(env or {})}
    process = subprocess.Popen(
        [PHASHDB, "serve", "--port", "0", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    said = []
    for line in process.stdout:
        said.append(line)
        if (found := re.search(r"running on (http://\S+)", line)) is not None:
            return process, found.group(1), said
    process.wait(timeout=30)
    return process, None, said


def _stop(process) -> str:
    process.send_signal(signal.SIGINT)
    rest = process.stdout.read()
    process.wait(timeout=30)  # (uvicorn ends by re-raising the signal: click's "Aborted!")
    return rest


def test_the_token_comes_from_a_file_or_the_environment_and_the_command_line_is_warned_of(
    tmp_path, run
):
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    process, url, said = _serve(tmp_path, "--token-file", token_file)
    try:
        assert url, said
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/v1/duplicates").status_code == 401
            ok = client.get("/v1/duplicates", headers={"Authorization": "Bearer from-the-file"})
            assert ok.status_code == 200
            assert client.get("/?token=from-the-file").status_code == 303
    finally:
        log = _stop(process)
    assert not any("warning" in line for line in said)
    # An access line per request, by default (the token of an address is not written).
    assert re.search(r'"GET /v1/duplicates HTTP/1.1" 401', log), log
    assert re.search(r'"GET /v1/duplicates HTTP/1.1" 200', log), log
    assert '"GET /?token=... HTTP/1.1" 303' in log and "from-the-file" not in log

    process, url, said = _serve(tmp_path, "--token", "on-the-line")
    _stop(process)
    assert url and "visible to every user" in "".join(said)
    process, url, said = _serve(tmp_path, env={"PHASHDB_TOKEN": "in-the-environment"})
    _stop(process)
    assert url and "visible to every user" not in "".join(said)
    token_file.write_text("")
    empty = run("serve", "--port", "0", "--token-file", token_file)
    assert empty.returncode == 2 and "token file" in empty.stderr and "empty" in empty.stderr
    assert "Traceback" not in empty.stderr


def _stalled_upload(url: str, path: str = "/v1/images") -> socket.socket:
    """A request whose body stops after its headers and 10 of its 100,000 bytes."""
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname, where.port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Length: 100000\r\n"
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + b"\xff\xd8\xff"
        + bytes(7)
    )
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict]:
    sock.settimeout(60)  # the test's bound: without a deadline the server never answers
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _incoming(folder: Path) -> list[Path]:
    return sorted(folder.glob(".incoming-*"))


def test_incoming_files_are_private_and_left_ones_are_removed_at_start(start, tmp_path):
    left = tmp_path / "uploads" / ".incoming" / ".incoming-0123"
    left.parent.mkdir(parents=True)
    left.parent.chmod(0o755)
    left.write_bytes(b"what a killed server left")
    server, _ = start(body_timeout=30)
    folder = tmp_path / "uploads" / ".incoming"
    assert _incoming(folder) == [] and stat.S_IMODE(folder.stat().st_mode) == 0o700
    sock = _stalled_upload(server.url)
    try:
        while not _incoming(folder):  # the server made its file (bounded by pytest's timeout)
            threading.Event().wait(0.01)
        [receiving] = _incoming(folder)
        assert stat.S_IMODE(receiving.stat().st_mode) == 0o600
    finally:
        sock.close()


def test_without_an_uploads_folder_uploads_arrive_in_a_private_temporary_folder(
    start, tmp_path, monkeypatch, photos
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    server, client = start(uploads=None)
    [folder] = (tmp_path / "tmp").iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert client.post("/v1/images", content=jpeg(photos["coffee"])).status_code == 201
    assert list(folder.iterdir()) == []
    server.stop()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_body_that_stalls_is_answered_408_and_its_file_removed(start, tmp_path, photos):
    server, client = start(body_timeout=0.5)
    for path in ("/v1/images", "/v1/check"):
        sock = _stalled_upload(server.url, path)
        try:
            status, body = _answer(sock)
        finally:
            sock.close()
        assert status == 408 and "no part of the body came for 0.5 seconds" in body["error"]
        assert _incoming(tmp_path / "uploads" / ".incoming") == []
    # A whole body is no stall: the server goes on answering.
    assert client.post("/v1/images", content=jpeg(photos["rocket"])).status_code == 201


# --- FIFOs, file names that are not UTF-8 ---------------------------------------------------------


@pytest.fixture
def fifo_stored(tmp_path, photos):
    """An index holding an image whose file was then replaced by a FIFO (no writer, ever)."""
    path = tmp_path / "pictures" / "stuck.jpg"
    path.parent.mkdir()
    shutil.copy(photos["chelsea"], path)
    with phashdb.open(tmp_path / "index") as index:
        index.add(path)
        index.add(jpeg(photos["chelsea"], 80), "copy", keep_duplicate=True)
    path.unlink()
    os.mkfifo(path)
    return str(path)


def test_a_fifo_at_a_stored_path_neither_hangs_the_report_nor_holds_the_workers(
    fifo_stored, start, run, tmp_path
):
    made = run("report", "--out", tmp_path / "report.html")  # run's timeout bounds a hang
    assert made.returncode == 0, made.stderr
    assert "1 group" in made.stdout
    _, client = start(workers=1)
    for _ in range(3):  # each would hold the one worker forever
        assert_error(
            client.get("/v1/thumbnails/" + quote(fifo_stored, safe="")), 404, "no readable"
        )
    assert client.get("/healthz").json()["images"] == 2


def test_file_names_that_are_not_utf8_come_back_as_escapes_not_500s(client, db, photos, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    name = os.fsdecode(bytes(folder) + b"/caf\xe9.jpg")  # Latin-1, as old cameras' cards hold
    shutil.copy(photos["astronaut"], name)
    with db() as index:
        index.add(name)
        index.add(jpeg(photos["astronaut"], 80), "copy", keep_duplicate=True)
    found = client.get("/v1/duplicates")
    assert found.status_code == 200, found.text
    assert "\\udce9" in found.text  # as `phashdb dedupe --json` writes it
    assert {i["id"] for i in found.json()["groups"][0]["images"]} == {name, "copy"}
    checked = client.post("/v1/check", content=jpeg(photos["astronaut"], 85))
    assert checked.status_code == 200, checked.text
    assert name in {m["id"] for m in checked.json()["matches"]}
    # An id given as bytes in an upload's address is read as names are: found by them again.
    given = client.post("/v1/images?id=caf%E9-2", content=jpeg(photos["coffee"]))
    assert given.status_code == 201 and given.json()["id"] == "caf\udce9-2"
    assert client.get("/v1/images/caf%E9-2").json()["id"] == "caf\udce9-2"


# --- a full disk ------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount],
                          check=False, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", mount], check=True)


def test_a_full_disk_under_uploads_answers_507(start, small_disk, photos):
    _, client = start(uploads=small_disk / "uploads")
    big = b"\xff\xd8\xff" + os.urandom(1_500_000)  # more than the disk holds
    for url in ("/v1/images", "/v1/check"):
        assert_error(client.post(url, content=big), 507, "no space left")
    assert _incoming(small_disk / "uploads" / ".incoming") == []
    # Once there is room, uploads are taken again.
    assert client.post("/v1/images", content=jpeg(photos["camera"])).status_code == 201


# --- what a kill -9 leaves in the uploads folder ---------------------------------------------------


def _left_by_a_kill(uploads: Path, data: bytes, suffix: str = ".jpg") -> Path:
    """The state a kill between storing an upload's file and its record leaves: the file under
    its final name (a link of the received file), no record."""
    import hashlib

    (uploads / ".incoming").mkdir(parents=True, exist_ok=True)
    path = uploads / (hashlib.sha256(data).hexdigest()[:32] + suffix)
    path.write_bytes(data)
    return path


def test_an_upload_left_without_a_record_is_admitted_not_refused_forever(
    start, db, photos, tmp_path
):
    from phashdb.uploaded import held

    data = jpeg(photos["astronaut"])
    left = _left_by_a_kill(tmp_path / "uploads", data)
    _, client = start()
    # While another admission holds the file (its lock), it is in flight, not an orphan.
    with held(left):
        assert_error(client.post("/v1/images", content=data), 409, "being uploaded")
    assert left.read_bytes() == data
    admitted = client.post("/v1/images", content=data)
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["path"] == str(left) and left.read_bytes() == data
    assert client.get("/v1/images/" + admitted.json()["id"]).status_code == 200
    assert_error(client.post("/v1/images", content=data), 409, "already uploaded")
    with db() as index:
        assert index.get(admitted.json()["id"]).path == str(left)


def test_a_killed_servers_incoming_files_are_removed_at_its_next_start(tmp_path):
    uploads = tmp_path / "uploads"
    process, url, said = _serve(tmp_path, "--uploads", uploads)
    assert url, said
    sock = _stalled_upload(url)
    try:
        while not _incoming(uploads / ".incoming"):  # bounded by the test's timeout
            threading.Event().wait(0.01)
        process.kill()  # kill -9: no cleanup of its own
        process.wait(timeout=30)
    finally:
        sock.close()
    assert len(_incoming(uploads / ".incoming")) == 1
    process, url, said = _serve(tmp_path, "--uploads", uploads)
    try:
        assert url, said
        assert _incoming(uploads / ".incoming") == []
    finally:
        _stop(process)


def test_remove_of_an_uploaded_image_moves_its_file_to_the_trash(start, run, photos, tmp_path):
    server, client = start()
    uploaded = client.post("/v1/images", content=jpeg(photos["rocket"])).json()
    server.stop()
    mine = tmp_path / "mine.jpg"  # a user's file: forgetting it leaves it
    shutil.copy(photos["coffee"], mine)
    assert run("add", mine).returncode == 0
    removed = run("remove", uploaded["id"], mine)
    assert removed.returncode == 0, removed.stderr
    assert "in the trash as" in removed.stdout and mine.exists()
    assert not Path(uploaded["path"]).exists()
    [entry] = json.loads(run("trash", "list", "--json").stdout)
    assert entry["image_id"] == uploaded["id"]
    assert run("trash", "restore", entry["id"]).returncode == 0
    assert Path(uploaded["path"]).exists()


def test_fsck_checks_the_uploads_folder_and_repair_takes_over_or_removes(
    run, photos, near_copies, tmp_path
):
    uploads = tmp_path / "uploads"
    assert run("add", photos["chelsea"]).returncode == 0
    unique = _left_by_a_kill(uploads, jpeg(photos["camera"]))
    duplicate = _left_by_a_kill(uploads, jpeg(near_copies["chelsea"]))
    not_ours = uploads / "holiday.jpg"  # not named as an upload: never touched
    not_ours.write_bytes(jpeg(photos["coffee"]))
    misnamed = uploads / ("0" * 32 + ".jpg")  # named as one, but its bytes are not its name's
    misnamed.write_bytes(jpeg(photos["rocket"]))
    checked = run("fsck", "--uploads", uploads)
    assert checked.returncode == 1, checked.stderr
    assert f"uploads: {unique}: an upload with no record" in checked.stdout
    assert f"uploads: {duplicate}: an upload with no record" in checked.stdout
    assert f"{misnamed}: named as an upload but its bytes are not" in checked.stdout
    assert "holiday" not in checked.stdout
    repaired = run("fsck", "--repair", "--uploads", uploads)
    assert repaired.returncode == 0, repaired.stderr
    assert f"{unique}: an upload with no record, taken over as sha256:{unique.stem}" in (
        repaired.stdout
    )
    assert "removed: a duplicate of" in repaired.stdout
    assert unique.exists() and not duplicate.exists() and not_ours.exists() and misnamed.exists()
    with phashdb.open(tmp_path / "index") as index:
        assert index.get("sha256:" + unique.stem).path == str(unique)
    again = run("fsck", "--uploads", uploads)
    assert "no record" not in again.stdout
    assert_missing = run("fsck", "--uploads", tmp_path)
    assert assert_missing.returncode == 2 and "not an uploads folder" in assert_missing.stderr
