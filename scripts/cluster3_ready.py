#!/usr/bin/env python3
"""Wait until scripts/cluster3.sh's cluster serves, then write DIR/cluster.json.

Ready means: HDFS out of safe mode with 3 live DataNodes, 3 NodeManagers registered with the
ResourceManager, 3 region servers and an active master in ZooKeeper, and hbase:meta readable
through both Thrift2 gateways. A daemon that exits meanwhile fails it at once, with its log.

    cluster3_ready.py DIR [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster3_conf import PORTS, REPLICATION

ADDRESSES = ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
H1 = ADDRESSES[0]
THRIFT_HOSTS = [1, 2]
DAEMON_PORT = {
    "zk": "zookeeper", "nn": "namenode", "dn": "datanode", "hmaster": "hmaster",
    "rs": "regionserver", "thrift2": "thrift2", "rm": "resourcemanager", "nm": "nodemanager",
    "jhs": "jobhistory",
}  # fmt: skip
THRIFT_IDL = Path(__file__).resolve().parent.parent / "phashdb" / "hbase" / "thrift2.thrift"


def jmx(hostport: str, query: str) -> dict:
    url = f"http://{hostport}/jmx?qry={query}"
    with urllib.request.urlopen(url, timeout=5) as r:
        beans = json.load(r)["beans"]
    return beans[0] if beans else {}


def zk_dump() -> str:
    with socket.create_connection((H1, PORTS["zookeeper"]), timeout=5) as s:
        s.sendall(b"dump")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def meta_readable(address: str) -> bool:
    import thriftpy2
    from thriftpy2.rpc import make_client

    hb = thriftpy2.load(str(THRIFT_IDL), module_name="cluster3_hbase2_thrift")
    client = make_client(hb.THBaseService, address, PORTS["thrift2"], timeout=10_000)
    try:
        return bool(client.tableExists(hb.TTableName(ns=b"hbase", qualifier=b"meta")))
    finally:
        client.close()


def missing(dir_: Path) -> list[str]:
    """What is not ready yet (empty when everything is)."""
    waits = []
    checks = [
        ("HDFS: 3 live DataNodes, out of safe mode", hdfs_ready),
        ("YARN: 3 NodeManagers", lambda: jmx(f"{H1}:{PORTS['resourcemanager_http']}",
         "Hadoop:service=ResourceManager,name=ClusterMetrics").get("NumActiveNMs") == 3),
        ("HBase: 3 region servers and a master", lambda: zk_dump().count("/hbase/rs/") >= 3
         and "/hbase/master" in zk_dump()),
        ("HBase: hbase:meta through both Thrift2 gateways",
         lambda: all(meta_readable(ADDRESSES[n - 1]) for n in THRIFT_HOSTS)),
    ]  # fmt: skip
    for what, check in checks:
        try:
            ok = check()
        except Exception:  # noqa: BLE001 - not up yet: any failure means "wait"
            ok = False
        if not ok:
            waits.append(what)
    return waits


def hdfs_ready() -> bool:
    hp = f"{H1}:{PORTS['namenode_http']}"
    state = jmx(hp, "Hadoop:service=NameNode,name=FSNamesystemState")
    info = jmx(hp, "Hadoop:service=NameNode,name=NameNodeInfo")
    return state.get("NumLiveDataNodes") == 3 and info.get("Safemode") == ""


def pids(dir_: Path) -> dict[int, dict[str, int]]:
    return {
        n: {f.name: int(f.read_text()) for f in sorted((dir_ / f"h{n}" / "pids").glob("*"))}
        for n in (1, 2, 3)
    }


def dead_daemon(dir_: Path) -> str | None:
    for n, daemons in pids(dir_).items():
        for name, pid in daemons.items():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return f"host {n}'s {name} (pid {pid}) exited: log {dir_}/h{n}/logs/{name}.log"
    return None


def description(dir_: Path, startup: float) -> dict:
    hosts = [
        {
            "host": n,
            "address": ADDRESSES[n - 1],
            "namespace": f"p3h{n}",
            "daemons": {
                name: {"pid": pid, "port": PORTS[DAEMON_PORT[name]]}
                for name, pid in daemons.items()
            },
        }
        for n, daemons in pids(dir_).items()
    ]
    return {
        "hosts": hosts,
        "bridge": "198.18.0.254",
        "thrift2_urls": [f"hbase://{ADDRESSES[n - 1]}:{PORTS['thrift2']}" for n in THRIFT_HOSTS],
        "zookeeper": f"{H1}:{PORTS['zookeeper']}",
        "namenode": f"hdfs://{H1}:{PORTS['namenode']}",
        "namenode_http": f"{H1}:{PORTS['namenode_http']}",
        "resourcemanager": f"{H1}:{PORTS['resourcemanager']}",
        "resourcemanager_http": f"{H1}:{PORTS['resourcemanager_http']}",
        "jobhistory": f"{H1}:{PORTS['jobhistory']}",
        "hadoop_conf_dir": str(dir_ / "conf" / "hadoop"),
        "hbase_conf_dir": str(dir_ / "conf" / "hbase"),
        "replication": REPLICATION,
        "startup_seconds": round(startup, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--timeout", type=float, default=420)
    args = p.parse_args()
    dir_ = args.dir.resolve()
    t0_file = dir_ / ".t0"
    started = float(t0_file.stat().st_mtime) if t0_file.exists() else time.time()
    deadline = time.monotonic() + args.timeout
    waits = ["everything"]
    while waits:
        if dead := dead_daemon(dir_):
            print(f"cluster3: {dead}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print(
                f"cluster3: not ready after {args.timeout:.0f} s: {'; '.join(waits)}",
                file=sys.stderr,
            )
            return 1
        waits = missing(dir_)
        if waits:
            time.sleep(1)
    tmp = dir_ / "cluster.json.tmp"
    tmp.write_text(json.dumps(description(dir_, time.time() - started), indent=2) + "\n")
    tmp.replace(dir_ / "cluster.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
