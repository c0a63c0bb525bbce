"""HBase going away, against the real test cluster (tests/hbase): a missing table, an
unreachable or silent server, a region server killed under load, a Thrift server restart, and
the one-line errors users meet."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from conftest import add_by_hash, run_cli

import phashdb
from phashdb import StoreError
from phashdb.records import Image

hbase = pytest.mark.hbase


@hbase
def test_a_missing_table_says_how_to_create_it(hbase_cluster):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift2_port']}/no_such_table"
    with pytest.raises(StoreError, match="'no_such_table' does not exist.*phashdb"):
        phashdb.open(url)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_a_store_error_naming_it():
    port = free_port()
    with pytest.raises(StoreError, match=f"127.0.0.1:{port} is not reachable"):
        phashdb.open(f"hbase://127.0.0.1:{port}/images?retries=1")


def test_a_server_that_never_answers_times_out_with_bounded_retries():
    # A socket that accepts connections and never replies: every Thrift call times out.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        with pytest.raises(StoreError, match="not reachable or timed out after 2 attempts"):
            phashdb.open(f"hbase://127.0.0.1:{port}/images?timeout=0.5&retries=1")
    finally:
        server.close()


class Proxy:
    """A TCP relay to the real Thrift2 server that can be cut, as if the server went down."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.down = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@hbase
def test_once_the_server_is_known_down_every_call_fails_at_once(hbase_url, photos):
    proxy = Proxy(int(hbase_url.split(":")[2].split("/")[0]))
    url = hbase_url.replace(hbase_url.split(":")[2].split("/")[0], str(proxy.port), 1)
    with phashdb.open(f"{url}?retries=2") as index:
        index.add_hashes([("a", 1)])
        proxy.cut()
        errors = []
        for path in list(photos.values()) * 5:
            with pytest.raises(StoreError) as caught:
                index.check(path)
            errors.append(str(caught.value))
    assert "after 3 attempts" in errors[0]
    assert all("not retried" in e for e in errors[1:])  # no more retries once it is known down


def test_the_cli_names_the_server_once_and_exits_2_when_hbase_is_down(photos):
    url = f"hbase://127.0.0.1:{free_port()}/images?retries=1"
    result = run_cli("check", *photos.values(), env_url=url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "is not reachable" in result.stderr


@hbase
def test_cli_errors_on_hbase_are_one_line(hbase_cluster, photos):
    url = f"hbase://127.0.0.1:{hbase_cluster['thrift2_port']}/nope"
    missing = run_cli("check", photos["coffee"], env_url=url)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "does not exist" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def control(cluster, command):
    """A command to the test cluster (MiniCluster's control port); its answer."""
    with socket.create_connection(("127.0.0.1", cluster["control_port"])) as s:
        f = s.makefile("rw")
        f.write(command + "\n")
        f.flush()
        answer = f.readline().strip()
    assert answer.startswith("ok"), f"{command}: {answer}"
    return answer[3:]


@hbase
def test_a_region_server_killed_under_load_loses_no_add_and_gives_no_wrong_verdict(
    hbase_cluster, hbase_url
):
    rng = np.random.default_rng(11)
    stored = {f"pre{i}": int(h) for i, h in enumerate(rng.integers(0, 2**64, 200, dtype=np.uint64))}
    with phashdb.open(hbase_url) as index:
        index.add_hashes(list(stored.items()))
    added, wrong, errors, others = {}, [], [], []
    started = threading.Event()

    def adder(k):
        with phashdb.open(hbase_url) as index:
            for i, h in enumerate(np.random.default_rng(k).integers(0, 2**64, 40, dtype=np.uint64)):
                image = Image(f"add{k}-{i}", int(h))
                try:
                    if add_by_hash(index, image, 4) == []:
                        added[image.id] = image.hash
                except StoreError as e:
                    errors.append(str(e))
                except Exception as e:  # noqa: BLE001 (anything else is a defect)
                    others.append(repr(e))
                if i == 5:
                    started.set()

    def checker():
        with phashdb.open(hbase_url) as index:
            for id, h in list(stored.items())[:60]:
                try:
                    if index.query(h, 0) != [(id, 0)]:
                        wrong.append(id)
                except StoreError as e:
                    errors.append(str(e))
                except Exception as e:  # noqa: BLE001
                    others.append(repr(e))

    threads = [threading.Thread(target=adder, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=checker))
    for t in threads:
        t.start()
    started.wait(timeout=120)
    control(hbase_cluster, "abort-rs 0")
    for t in threads:
        t.join(timeout=600)
    try:
        assert not any(t.is_alive() for t in threads)
        assert others == [] and wrong == []
        assert all("\n" not in e for e in errors)  # failures are the one-line StoreError
        assert len(added) > 0
        with phashdb.open(hbase_url) as index:
            for id, h in added.items():  # every add that returned success is there
                assert index.query(h, 0) == [(id, 0)]
    finally:
        control(hbase_cluster, "start-rs")


@hbase
def test_after_a_thrift_server_restart_the_pool_reconnects(hbase_cluster, hbase_url):
    with phashdb.open(hbase_url) as index:
        index.add_hashes([("a", 0xABCD)])
        assert index.query(0xABCD, 0) == [("a", 0)]
        control(hbase_cluster, "restart-thrift")
        assert index.query(0xABCD, 0) == [("a", 0)]  # stale pooled connections are replaced
        index.add_hashes([("b", 0xABCC)])
        assert index.query(0xABCD, 1) == [("a", 0), ("b", 1)]
