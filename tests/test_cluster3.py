"""Three hosts for real (scripts/cluster3.sh): HDFS, HBase and YARN daemons in three network
namespaces, phashdb serving from hosts 1 and 2, and a host lost under load.

The client (this process) runs in the root namespace and reaches the hosts through the bridge;
`phashdb serve` runs inside hosts 1 and 2 (ip netns exec), each against its host's Thrift2
gateway. Faults are tied to progress: a host dies after the k-th acknowledged upload, a
NodeManager once a map attempt runs on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cluster3_help import (
    KILL_AFTER,
    PHASHDB,
    REPO,
    Answer,
    call,
    cluster3,
    datanode_blocks,
    healthy,
    host_running_a_map,
    jmx,
    kill_nodemanager,
    namenode_state,
    region_hosts,
    regions_per_host,
    run_stream,
    servers,
    sh,
    table,
    wait_for,
    workload,
)
from conftest import PHOTO_FILES
from PIL import Image as PILImage

import phashdb

pytestmark = [pytest.mark.cluster3, pytest.mark.hbase]
# The fixtures, imported here (one module: the session's cluster starts once).
__all__ = ["cluster3", "healthy", "servers", "table", "workload"]


# --- what must hold after a fault ---------------------------------------------------------


def assert_nothing_lost(servers, answers, cluster, table, tmp_path):
    flat = [a for group in answers for a in group]
    # Every call answered within the client's bound: stored, refused as a duplicate, or a clear
    # one-line error (503: the store could not be reached in time).
    for a in flat:
        assert a.status in (201, 409, 503), (a.file.name, a.server, a.status, a.body)
        if a.status == 503:
            assert a.body["error"] and "\n" not in a.body["error"], a.body
    admitted = [a for a in flat if a.status == 201]
    assert len(admitted) > KILL_AFTER
    for a in admitted:
        for s in servers:
            status, body = call(s, "GET", f"/v1/images/{a.body['id']}")
            assert status == 200 and body["id"] == a.body["id"], (s.host, a.file.name, body)
        status, verdict = call(servers[a.server % 2], "POST", "/v1/check", a.file.read_bytes())
        assert status == 200, verdict
        assert (a.body["id"], 0) in [(m["id"], m["distance"]) for m in verdict["matches"]], (
            a.file.name, verdict)  # fmt: skip
    # Of each pair sent to both servers at once, exactly one is stored (at most one when both
    # calls failed with 503).
    for group in answers:
        if len(group) != 2:
            continue
        stored = [a for a in group if call(servers[0], "GET", f"/v1/images/{_id_of(a)}")[0] == 200]
        assert sum(a.status == 201 for a in group) <= 1, group
        if any(a.status in (201, 409) for a in group):
            assert len(stored) == 1, group
        else:
            assert len(stored) <= 1, group
    env = {**os.environ, "PHASHDB_URL": f"{cluster['thrift2_urls'][0]}/{table}"}
    fsck = subprocess.run(
        [PHASHDB, "fsck"], check=False, capture_output=True, text=True, env=env, timeout=600
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert namenode_state(cluster)["MissingBlocks"] == 0


def _id_of(answer: Answer) -> str:
    """An upload's id: the server's answer, or (no answer) the id it would have been given."""
    import hashlib

    if answer.body.get("id"):
        return answer.body["id"]
    return "sha256:" + hashlib.sha256(answer.file.read_bytes()).hexdigest()[:32]


def lose_host_3_under_load(fault: str, cluster, servers, table, workload, tmp_path) -> dict:
    """The stream; host 3 lost (`fault`: kill-host or cut-host) at the KILL_AFTER-th 201;
    the seconds until no region is on host 3 any more."""
    acked = threading.Event()
    measured = {}

    def fault_when_acked():
        acked.wait()
        t0 = time.monotonic()
        sh(fault, "3")
        wait_for("every region served by hosts 1 and 2",
                 lambda: "198.18.0.3" not in region_hosts(cluster, table))  # fmt: skip
        measured["regions_moved_s"] = round(time.monotonic() - t0, 1)

    injector = threading.Thread(target=fault_when_acked, daemon=True)
    injector.start()
    answers = run_stream(servers, workload, acked)
    assert acked.is_set(), "the stream ended before the fault"
    injector.join(timeout=900)
    assert "regions_moved_s" in measured
    measured["slowest_call_s"] = round(max(a.seconds for g in answers for a in g), 1)
    measured["errors_503"] = sum(a.status == 503 for g in answers for a in g)
    assert_nothing_lost(servers, answers, cluster, table, tmp_path)
    print(f"\n{fault} 3: {measured}")
    (Path(cluster["dir"]) / f"{fault}.json").write_text(json.dumps(measured))
    return measured


def test_a_host_killed_under_load_loses_no_acknowledged_upload(
    healthy, servers, table, workload, tmp_path
):
    lose_host_3_under_load("kill-host", healthy, servers, table, workload, tmp_path)
    # HDFS copies host 3's blocks again from the other replicas: two copies of each.
    wait_for("no under-replicated block",
             lambda: namenode_state(healthy)["UnderReplicatedBlocks"] == 0)  # fmt: skip
    assert namenode_state(healthy)["MissingBlocks"] == 0


def test_a_host_cut_off_under_load_then_healed_loses_no_acknowledged_upload(
    healthy, servers, table, workload, tmp_path
):
    lose_host_3_under_load("cut-host", healthy, servers, table, workload, tmp_path)
    sh("heal-host", "3")
    # Host 3's DataNode comes back to the NameNode by itself.
    wait_for("3 live DataNodes", lambda: jmx(
        healthy["namenode_http"], "Hadoop:service=NameNode,name=FSNamesystemState"
    )["NumLiveDataNodes"] == 3)  # fmt: skip
    assert namenode_state(healthy)["MissingBlocks"] == 0


# --- a NodeManager lost mid-job -----------------------------------------------------------


@pytest.fixture
def cluster3_mrjob(healthy, tmp_path, monkeypatch) -> Path:
    """An mrjob.conf submitting to the three-host YARN, temp files in its HDFS."""
    home = REPO / "tests" / "hadoop"
    conf = tmp_path / "mrjob.conf"
    conf.write_text(json.dumps({"runners": {"hadoop": {
        "hadoop_bin": [str(home / "bin" / "hadoop"), "--config", healthy["hadoop_conf_dir"]],
        "hadoop_streaming_jar": str(home / "target" / "lib" / "hadoop-streaming-3.3.4.jar"),
        "hadoop_tmp_dir": f"{healthy['namenode']}/tmp/mrjob",
        "python_bin": sys.executable,
    }}}))  # fmt: skip
    monkeypatch.setenv("MRJOB_CONF", str(conf))
    return conf


def test_an_ingest_job_on_yarn_survives_a_lost_nodemanager(
    healthy, cluster3_mrjob, table, tmp_path
):
    import hdfs_native
    from skimage import data

    from phashdb.mr import run as mr

    client = hdfs_native.Client(healthy["namenode"])
    folder, urls = f"/c3-photos-{table}", set()
    for name in PHOTO_FILES:
        img = PILImage.open(Path(data.__file__).parent / name).convert("RGB")
        w, h = img.size
        for k, part in enumerate([img, img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))]):
            path = tmp_path / "p.jpg"
            part.save(path, quality=90)
            remote = f"{folder}/{name.rsplit('.', 1)[0]}-{k}.jpg"
            client.mkdirs(folder, create_parent=True)
            with client.create(remote) as f:
                f.write(path.read_bytes())
            urls.add(f"{healthy['namenode']}{remote}")
    stop, lost = threading.Event(), {}

    def lose_a_nodemanager():
        if (host := host_running_a_map(stop)) is not None:
            kill_nodemanager(healthy, host)
            lost["host"] = host

    killer = threading.Thread(target=lose_a_nodemanager, daemon=True)
    killer.start()
    counters: list = []
    url = f"{healthy['thrift2_urls'][0]}/{table}"
    try:
        with phashdb.open(url) as index:
            report = mr.ingest(index, [f"{healthy['namenode']}{folder}"], "hadoop", counters,
                               load="online")  # fmt: skip
            stored = [i.path for i in index.images()]
    finally:
        stop.set()
        killer.join(timeout=60)
    assert "host" in lost, "no map attempt was seen running away from the application master"
    assert (report.added, report.failed) == (len(urls), [])
    # Each image stored exactly once, though a map attempt died on the way.
    assert sorted(stored) == sorted(urls)
    launched = sum(c.get("Job Counters ", {}).get("Launched map tasks", 0) for c in counters)
    maps = sum(1 for c in counters if c.get("Job Counters ", {}).get("Launched map tasks"))
    assert launched >= 3 and maps == 1, counters  # 2 map tasks, at least one run again
    print(f"\nNodeManager of host {lost['host']} lost; map attempts launched: {launched}")


# --- host 3 back --------------------------------------------------------------------------


def test_host_3_restarted_rejoins_and_the_balancers_spread_regions_and_blocks(
    healthy, table, tmp_path
):
    from phashdb.hbase.schema import create_tables

    spread = f"{table}w"
    create_tables(f"{healthy['thrift2_urls'][0]}/{spread}", regions_per_band=4)
    before = regions_per_host(healthy, spread)
    assert set(before) == {"198.18.0.1", "198.18.0.2", "198.18.0.3"}, before
    sh("kill-host", "3")
    wait_for("no region on host 3", lambda: "198.18.0.3" not in regions_per_host(healthy, spread))
    sh("restart-host", "3", healthy["dir"])
    # The HBase balancer (every 30 s) gives the returned region server its share again.
    total = sum(before.values())
    wait_for("regions spread over the 3 hosts", lambda: (
        len(c := regions_per_host(healthy, spread)) == 3
        and max(c.values()) - min(c.values()) <= max(2, total // 10)))  # fmt: skip
    # Its DataNode rejoins with the blocks it kept; the HDFS balancer finds nothing to move
    # beyond its threshold.
    wait_for("host 3's DataNode live with blocks",
             lambda: datanode_blocks(healthy).get("198.18.0.3", 0) > 0)  # fmt: skip
    balancer = subprocess.run(
        ["java", "-Xmx256m", "-cp", f"{healthy['hadoop_conf_dir']}:{REPO}/tests/hadoop/target/lib/*",
         "org.apache.hadoop.hdfs.server.balancer.Balancer", "-threshold", "5"],
        check=False, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert balancer.returncode == 0, balancer.stdout[-2000:] + balancer.stderr[-2000:]
