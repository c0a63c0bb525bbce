"""The MapReduce jobs on a real Hadoop cluster (tests/hadoop: Hadoop 3.3.4, HDFS with three
DataNodes, YARN): mrjob's hadoop runner submits them to YARN through Hadoop Streaming, their
files in HDFS, their tasks in YARN containers; what they store is checked against the embedded
index on the same real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import phashdb
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
    assert jmx(hadoop_cluster, "ClusterMetrics")["NumActiveNMs"] == 1
    assert hadoop_cluster["namenode"].startswith("hdfs://127.0.0.1:")


def stored(index):
    return sorted((i.id, i.hash, i.path, i.size, i.width, i.height) for i in index.images())


def groups_of(groups):
    return [([i.id for i in g.images], g.pairs) for g in groups]


@pytest.mark.hbase
def test_ingest_on_hadoop_loads_hbase_like_local_ingest_loads_the_embedded_index(
    hbase_url, tmp_path, collection
):
    with phashdb.open(hbase_url) as hbase, phashdb.open(tmp_path / "embedded") as embedded:
        report = mr.ingest(hbase, [collection], "hadoop")
        expected = ingest(embedded, [collection])
        assert report.to_json() == expected.to_json()
        assert (report.added, report.duplicates) == (8, 2)
        assert "truncated.jpg" in report.failed[0][0]
        assert stored(hbase) == stored(embedded)
        # Re-running adds nothing twice.
        assert mr.ingest(hbase, [collection], "hadoop").added == 0
        assert len(hbase) == 8
        # The dedupe job on Hadoop over what HBase holds equals the index's own dedupe.
        assert groups_of(mr.dedupe(hbase, "hadoop")) == groups_of(embedded.dedupe())
        assert len(embedded.dedupe()) == 2


def test_ingest_on_yarn_into_the_embedded_index_is_loaded_by_the_driver(
    tmp_path, collection, hadoop_cluster
):
    completed, failed, containers = yarn_counts(hadoop_cluster)
    with phashdb.open(tmp_path / "job") as by_job, phashdb.open(tmp_path / "pool") as by_pool:
        report = mr.ingest(by_job, [collection], "hadoop")
        assert report.to_json() == ingest(by_pool, [collection]).to_json()
        assert stored(by_job) == stored(by_pool)
    # The job ran as one YARN application, which succeeded: its application master and at
    # least one map task in containers of the NodeManager.
    now = yarn_counts(hadoop_cluster)
    assert (now[0] - completed, now[1] - failed) == (1, 0)
    assert now[2] - containers >= 2


def test_cli_ingest_and_dedupe_with_the_hadoop_runner(tmp_path, collection):
    env = {**os.environ, "PHASHDB_URL": str(tmp_path / "index")}
    phashdb_cli = [str(Path(sys.executable).parent / "phashdb")]
    result = subprocess.run(
        [*phashdb_cli, "ingest", "--runner", "hadoop", str(collection)],
        capture_output=True, text=True, env=env,
    )
    assert "8 added, 0 skipped, 2 duplicates, 1 failed" in result.stdout, result.stderr[-2000:]
    dedupe = subprocess.run(
        [*phashdb_cli, "dedupe", "--runner", "hadoop"], capture_output=True, text=True, env=env
    )
    assert dedupe.returncode == 0 and "2 groups, 4 images" in dedupe.stdout
