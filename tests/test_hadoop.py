"""The MapReduce jobs on a real Hadoop cluster (tests/hadoop: Hadoop 3.3.4, HDFS with three
DataNodes, YARN): mrjob's hadoop runner submits them to YARN through Hadoop Streaming, their
files in HDFS, their tasks in YARN containers; what they store is checked against the embedded
index on the same real photos."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import run_cli

import phashdb
import phashdb.hdfs
import phashdb.ingest
from phashdb.ingest import ingest
from phashdb.mr import run as mr

pytestmark = [pytest.mark.hadoop]


@pytest.fixture(autouse=True)
def use_hadoop(hadoop_conf, monkeypatch):
    monkeypatch.setenv("MRJOB_CONF", str(hadoop_conf))


@pytest.fixture
def collection(tmp_path, photos, near_copies):
    folder = tmp_path / "collection"
    (folder / "uploads").mkdir(parents=True)
    for path in photos.values():
        shutil.copy(path, folder / path.name)
    for name in ("chelsea", "coffee"):
        shutil.copy(near_copies[name], folder / "uploads" / f"{name}-again.jpg")
    (folder / "uploads" / "truncated.jpg").write_bytes(photos["camera"].read_bytes()[:500])
    return folder


def jmx(cluster, name: str) -> dict:
    """A metrics bean of the cluster (its daemons share one JVM, so one JMX endpoint)."""
    url = f"http://{cluster['namenode_http']}/jmx?qry=Hadoop:service=*,name={name}"
    with urllib.request.urlopen(url, timeout=30) as response:
        (bean,) = json.load(response)["beans"]
    return bean


def yarn_counts(cluster) -> tuple[int, int, int]:
    """Applications YARN completed and failed, containers its NodeManager launched."""
    queue = jmx(cluster, "QueueMetrics,q0=root")
    return (
        queue["AppsCompleted"],
        queue["AppsFailed"],
        jmx(cluster, "NodeManagerMetrics")["ContainersLaunched"],
    )


def test_the_cluster_has_three_datanodes_and_a_nodemanager(hadoop_cluster):
    assert jmx(hadoop_cluster, "FSNamesystemState")["NumLiveDataNodes"] == 3
    # The ResourceManager counts a registered NodeManager as active once its scheduler has
    # taken the node-added event, shortly after the registration the cluster waits for.
    for _ in range(120):
        if jmx(hadoop_cluster, "ClusterMetrics")["NumActiveNMs"] == 1:
            break
        time.sleep(0.5)
    assert jmx(hadoop_cluster, "ClusterMetrics")["NumActiveNMs"] == 1
    assert hadoop_cluster["namenode"].startswith("hdfs://127.0.0.1:")


def stored(index):
    return sorted((i.id, i.hash, i.path, i.size, i.width, i.height) for i in index.images())


@pytest.mark.hbase
def test_ingest_on_hadoop_loads_hbase_like_local_ingest_loads_the_embedded_index(
    hbase_url, hbase_cluster, tmp_path, collection
):
    # through HFiles (the bulk load connects to the cluster's ZooKeeper)
    url = f"{hbase_url}?zookeeper=127.0.0.1:{hbase_cluster['zk_port']}"
    with phashdb.open(url) as hbase, phashdb.open(tmp_path / "embedded") as embedded:
        report = mr.ingest(hbase, [collection], "hadoop")
        expected = ingest(embedded, [collection])
        assert report.to_json() == expected.to_json()
        assert (report.added, report.duplicates) == (8, 2)
        assert "truncated.jpg" in report.failed[0][0]
        assert stored(hbase) == stored(embedded)
        # Re-running adds nothing twice: the driver skips what HBase holds (whatever the
        # runner: inline here, a YARN application less).
        assert mr.ingest(hbase, [collection], "inline").added == 0
        assert len(hbase) == 8
    # The dedupe job on Hadoop over what HBase holds: tests/test_grouping.py (the suite's one
    # dedupe on YARN, its applications run once).


def test_cli_ingest_on_yarn_into_the_embedded_index_is_loaded_by_the_driver(
    tmp_path, collection, hadoop_cluster
):
    completed, failed, containers = yarn_counts(hadoop_cluster)
    url = str(tmp_path / "job")
    result = run_cli("ingest", "--runner", "hadoop", "--json", collection, env_url=url,
                     timeout=None)  # fmt: skip
    with phashdb.open(url) as by_job, phashdb.open(tmp_path / "pool") as by_pool:
        expected = ingest(by_pool, [collection])
        assert json.loads(result.stdout) == expected.to_json(), result.stderr[-2000:]
        assert (expected.added, expected.skipped, expected.duplicates) == (8, 0, 2)
        assert len(expected.failed) == 1 and result.returncode != 0
        assert stored(by_job) == stored(by_pool)
    # The job ran as one YARN application, which succeeded: its application master and at
    # least one map task in containers of the NodeManager.
    # The ResourceManager counts the application completed once its master has unregistered,
    # which may follow the client's "job succeeded" by a moment.
    for _ in range(120):
        now = yarn_counts(hadoop_cluster)
        if now[0] - completed or now[1] - failed:
            break
        time.sleep(0.5)
    assert (now[0] - completed, now[1] - failed) == (1, 0)
    assert now[2] - containers >= 2


def put_folder(cluster, folder: Path, target: str) -> str:
    """Copy a local folder's files into HDFS under `target`; the hdfs:// URL of the copy."""
    import hdfs_native

    client = hdfs_native.Client(cluster["namenode"])
    for path in folder.rglob("*"):
        if path.is_file():
            remote = f"{target}/{path.relative_to(folder).as_posix()}"
            client.mkdirs(remote.rsplit("/", 1)[0], create_parent=True)
            with client.create(remote) as f:
                f.write(path.read_bytes())
    return f"{cluster['namenode']}{target}"


def by_name(index, root: str):
    """What the index holds, by each image's path relative to `root` (a folder, a URL, or a
    pack's URL#), so that local and HDFS copies compare."""
    out = {}
    for i in index.images():
        name = i.path.split("#", 1)[1] if "#" in i.path else i.path[len(root) + 1 :]
        out[name] = (i.hash, i.size, i.width, i.height)
    return out


def test_ingest_reads_images_and_packs_from_hdfs_on_yarn(tmp_path, collection, hadoop_cluster):
    local = tmp_path / "local"
    with phashdb.open(local) as expected:
        ingest(expected, [collection])
        want = by_name(expected, str(collection))
    url = put_folder(hadoop_cluster, collection, "/photos")
    packs = phashdb.hdfs.write_packs(
        phashdb.ingest.find_images([collection]),
        f"{hadoop_cluster['namenode']}/packs",
        pack_bytes=300_000,
    )
    assert len(packs) > 1 and all(p.startswith("hdfs://") for p in packs)
    shutil.rmtree(collection)  # the tasks can only read HDFS
    with phashdb.open(tmp_path / "plain") as plain, phashdb.open(tmp_path / "packed") as packed:
        report = mr.ingest(plain, [url], "hadoop")
        assert (report.added, report.duplicates, len(report.failed)) == (8, 2, 1)
        assert report.failed[0][0] == f"{url}/uploads/truncated.jpg"
        assert by_name(plain, url) == want
        assert all(i.path.startswith(url + "/") for i in plain.images())
        report = mr.ingest(packed, [f"{hadoop_cluster['namenode']}/packs"], "hadoop")
        assert (report.added, report.duplicates, len(report.failed)) == (8, 2, 1)
        assert by_name(packed, "") == want
        assert {i.path.split("#")[0] for i in packed.images()} <= set(packs)
        # Re-running skips what is stored, for files and pack members alike.
        assert mr.ingest(packed, [f"{hadoop_cluster['namenode']}/packs"], "inline").added == 0
        assert ingest(plain, [url]).skipped == 8


def test_index_add_and_check_read_hdfs_urls_as_ingest_does(tmp_path, photos, hadoop_cluster):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(photos["coffee"], folder / "coffee.jpg")
    url = put_folder(hadoop_cluster, folder, "/road") + "/coffee.jpg"
    nn = hadoop_cluster["namenode"]
    packs = phashdb.hdfs.write_packs([folder / "coffee.jpg"], f"{nn}/road-packs")
    data = photos["coffee"].read_bytes()
    with phashdb.open(tmp_path / "index") as index:
        verdict = index.add(url)
        assert verdict.added and verdict.id == verdict.path == url
        stored = index.get(url)
        assert stored.hash == phashdb.hash_image(photos["coffee"])
        assert stored.size == len(data) and stored.digest == hashlib.sha256(data).hexdigest()
        member = f"{packs[0]}#coffee.jpg"
        assert index.check(member).matches[0].id == url
        assert index.check(photos["coffee"]).matches[0].id == url
    _, ingested = phashdb.ingest.hash_file(url)
    assert ingested == verdict.image
    with phashdb.open(tmp_path / "index") as index:
        with pytest.raises(phashdb.ImageError, match="/road/missing.jpg: cannot read"):
            index.check(url.replace("coffee", "missing"))


def test_cli_ingest_and_pack_with_hdfs_urls(tmp_path, photos, hadoop_cluster):
    url = str(tmp_path / "index")
    target = f"{hadoop_cluster['namenode']}/cli-packs"
    folder = next(iter(photos.values())).parent
    packed = run_cli("pack", "--to", target, folder, env_url=url, timeout=None)
    assert f"6 images in 1 packs under {target}" in packed.stdout, packed.stderr
    result = run_cli("ingest", target, env_url=url, timeout=None)
    assert "6 added, 0 skipped" in result.stdout, result.stderr[-2000:]
    similar = run_cli("similar", photos["rocket"], "--top", "1", env_url=url, timeout=None)
    assert f"{target}/pack-00000.tar#rocket.jpg" in similar.stdout, similar.stderr
    nowhere = f"{hadoop_cluster['namenode']}/nowhere"
    missing = run_cli("ingest", nowhere, env_url=url, timeout=None)
    assert missing.returncode != 0 and "/nowhere: cannot list" in missing.stderr


@pytest.fixture(scope="module")
def hbase_on_hdfs(hadoop_cluster, tmp_path_factory) -> dict:
    """A second test HBase (tests/hbase), its root dir (WALs, store files) in the Hadoop test
    cluster's HDFS, as production keeps them."""
    script = Path(__file__).parent / "hbase" / "cluster.sh"
    folder = tmp_path_factory.mktemp("hbase-on-hdfs")
    start = [str(script), "start", str(folder), "--rootdir", f"{hadoop_cluster['namenode']}/hbase"]
    for step in ([str(script), "build"], start):
        result = subprocess.run(step, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"hbase cluster.sh {step[1]} failed:\n{result.stdout}\n{result.stderr}")
    yield json.loads((folder / "cluster.json").read_text())
    subprocess.run([str(script), "stop", str(folder)], check=False, capture_output=True)


def control(cluster, command: str) -> str:
    """One command to the test HBase's control port (tests/hbase/README.md)."""
    import socket

    with socket.create_connection((cluster["host"], cluster["control_port"]), timeout=300) as s:
        s.sendall(command.encode() + b"\n")
        answer = s.makefile().readline().strip()
    assert answer.startswith("ok"), answer
    return answer


def hdfs_files(client, folder: str) -> list[str]:
    return [s.path for s in client.list_status(folder, recursive=True) if not s.isdir]


@pytest.mark.hbase
def test_ingest_from_hdfs_on_yarn_into_hbase_on_hdfs_answers_as_the_embedded_index(
    tmp_path, collection, photos, near_copies, hadoop_cluster, hbase_on_hdfs
):
    import hdfs_native

    from phashdb.hbase.keys import BAND_FAMILY, RECORD_FAMILY
    from phashdb.hbase.schema import create_tables

    nn = hadoop_cluster["namenode"]
    assert hbase_on_hdfs["rootdir"] == f"{nn}/hbase"
    url = put_folder(hadoop_cluster, collection, "/hbase-photos")
    base = f"hbase://{hbase_on_hdfs['host']}:{hbase_on_hdfs['thrift2_port']}/onhdfs"
    create_tables(base, regions_per_band=2)
    zk = f"{hbase_on_hdfs['host']}:{hbase_on_hdfs['zk_port']}"  # the HFile bulk load's way in
    with (
        phashdb.open(f"{base}?zookeeper={zk}") as hbase,
        phashdb.open(tmp_path / "embedded") as embedded,
    ):
        expected = ingest(embedded, [collection])
        report = mr.ingest(hbase, [url], "hadoop")
        assert (report.added, report.duplicates, len(report.failed)) == (8, 2, 1)
        assert (expected.added, expected.duplicates) == (8, 2)
        assert by_name(hbase, url) == by_name(embedded, str(collection))
        # The same answers, by image name (the ids differ with the paths).
        names = {
            i.id: i.path.rsplit("/", 1)[1] for index in (hbase, embedded) for i in index.images()
        }
        for query in [*photos.values(), *near_copies.values()]:
            got, want = hbase.check(query), embedded.check(query)
            assert [(names[m.id], m.distance) for m in got.matches] == [
                (names[m.id], m.distance) for m in want.matches
            ]
            assert got.hash == want.hash
        groups = [sorted(names[i.id] for i in g.images) for g in hbase.dedupe()]
        assert groups == [sorted(names[i.id] for i in g.images) for g in embedded.dedupe()]
        assert len(groups) == 2
    # HBase keeps its write-ahead logs and, once flushed, its store files in that HDFS.
    client = hdfs_native.Client(nn)
    assert hdfs_files(client, "/hbase/WALs")
    control(hbase_on_hdfs, "flush onhdfs")
    control(hbase_on_hdfs, "flush onhdfs.images")
    for table, family in (("onhdfs", BAND_FAMILY), ("onhdfs.images", RECORD_FAMILY)):
        # TABLE/REGION/FAMILY/STOREFILE: a store file in each region that took rows.
        store_files = [
            f
            for f in hdfs_files(client, f"/hbase/data/default/{table}")
            if f.split("/")[-2] == family.decode()
        ]
        assert len({f.split("/")[-3] for f in store_files}) >= 2, store_files


def test_the_runner_file_operations_through_hdfs_native(hadoop_cluster, tmp_path):
    from phashdb.mr.hdfs_fs import HdfsNativeFilesystem

    fs, nn = HdfsNativeFilesystem(), hadoop_cluster["namenode"]
    source = tmp_path / "a.txt"
    source.write_bytes(bytes(range(256)) * 12_000)  # 3 MB: more than one read chunk
    fs.mkdir(f"{nn}/fs/d")
    fs.put(str(source), f"{nn}/fs/d/a.txt")
    fs.touchz(f"{nn}/fs/d/empty")
    assert sorted(fs.ls(f"{nn}/fs")) == [f"{nn}/fs/d/a.txt", f"{nn}/fs/d/empty"]
    assert list(fs.ls(f"{nn}/fs/d/*.txt")) == [f"{nn}/fs/d/a.txt"]
    assert list(fs.ls(f"{nn}/fs/nowhere")) == []
    assert b"".join(fs._cat_file(f"{nn}/fs/d/a.txt")) == source.read_bytes()
    assert fs.du(f"{nn}/fs") == 3_072_000
    assert fs.exists(f"{nn}/fs/d/a.txt") and not fs.exists(f"{nn}/fs/nowhere")
    with pytest.raises(OSError, match="already exists"):
        fs.touchz(f"{nn}/fs/d/a.txt")
    fs.rm(f"{nn}/fs")
    assert not fs.exists(f"{nn}/fs")
    # hdfs:///path means the configured default filesystem: left to `hadoop fs`.
    assert fs.can_handle_path(f"{nn}/x") and not fs.can_handle_path("hdfs:///x")
