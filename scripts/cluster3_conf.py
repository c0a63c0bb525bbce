#!/usr/bin/env python3
"""The configuration of a three-machine phashdb cluster, from one source.

Writes, for one machine (or a client), the files Hadoop, HBase and ZooKeeper read:

    OUT/hadoop/core-site.xml hdfs-site.xml yarn-site.xml mapred-site.xml
    OUT/hbase/hbase-site.xml
    OUT/zoo.cfg

    cluster3_conf.py --hosts 10.0.0.1,10.0.0.2,10.0.0.3 --self 2 --data /data --out conf/

Used by scripts/cluster3.sh (three network namespaces on one machine) and by
docker/compose.yaml (three real machines), so what the tests run is what a user deploys.
Host 1 holds ZooKeeper, the NameNode, the HMaster and the ResourceManager; every host holds a
DataNode, a RegionServer and a NodeManager. `--self 0` writes a client's configuration.
Only the Python standard library: it runs on machines that have no phashdb installed.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path
from xml.sax.saxutils import escape

# Replication 2: every block survives the loss of any one of the three machines, and after
# such a loss the NameNode can restore two copies on the two machines left (with 3 it could
# not: there is no third machine to copy to). It costs a third less disk and write traffic
# than 3; the price is that a second failure before re-replication ends can lose blocks.
REPLICATION = 2

# The MapReduce containers' JVMs: quick start-up, and on JDK 17 the module opens Hadoop's own
# scripts pass (hadoop-functions.sh, HADOOP-15338), which a JDK 8 would refuse.
TASK_JVM_FLAGS = "-Djava.net.preferIPv4Stack=true -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
JDK17_OPENS = (
    " --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED"
    " --add-opens java.base/java.util.concurrent=ALL-UNNAMED"
    " --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.net=ALL-UNNAMED"
    " --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED"
    " --add-opens java.base/java.lang.reflect=ALL-UNNAMED"
)

PORTS = {
    "zookeeper": 2181,
    "namenode": 8020,
    "namenode_http": 9870,
    "datanode": 9866,
    "hmaster": 16000,
    "regionserver": 16020,
    "thrift2": 9091,  # Thrift1, for happybase, keeps HBase's 9090
    "resourcemanager": 8032,
    "resourcemanager_http": 8088,
    "nodemanager": 8041,
    "jobhistory": 10020,
}


def core_site(h1: str, data: str) -> dict[str, str]:
    return {
        "fs.defaultFS": f"hdfs://{h1}:{PORTS['namenode']}",
        "hadoop.tmp.dir": f"{data}/tmp",
        # A machine that is gone (link cut) makes every connect wait for its timeout: 5 s and
        # 3 retries, not Hadoop's 20 s and 45, so clients move on to the other replicas.
        "ipc.client.connect.timeout": "5000",
        "ipc.client.connect.max.retries.on.timeouts": "3",
    }


def hdfs_site(h1: str, me: str | None, data: str) -> dict[str, str]:
    site = {
        "dfs.replication": str(REPLICATION),
        "dfs.namenode.rpc-address": f"{h1}:{PORTS['namenode']}",
        "dfs.namenode.http-address": f"{h1}:{PORTS['namenode_http']}",
        "dfs.namenode.rpc-bind-host": "0.0.0.0",
        "dfs.namenode.http-bind-host": "0.0.0.0",
        "dfs.namenode.name.dir": f"{data}/nn",
        "dfs.datanode.data.dir": f"{data}/dn",
        "dfs.namenode.safemode.extension": "0",
        # Machines are known by address: a reverse DNS name is not required to register.
        "dfs.namenode.datanode.registration.ip-hostname-check": "false",
        # A DataNode silent for 3 s is stale (reads and writes avoid it, as HBase recommends
        # for a quick failover); dead after 2 x 10 s + 10 heartbeats (30 s), then its blocks
        # are copied again.
        "dfs.heartbeat.interval": "1",
        "dfs.namenode.heartbeat.recheck-interval": "10000",
        "dfs.namenode.stale.datanode.interval": "3000",
        "dfs.namenode.avoid.read.stale.datanode": "true",
        "dfs.namenode.avoid.write.stale.datanode": "true",
        "dfs.client.socket-timeout": "10000",
    }
    if me:
        site["dfs.datanode.hostname"] = me
    return site


def hbase_site(h1: str, me: str | None, data: str) -> dict[str, str]:
    site = {
        "hbase.cluster.distributed": "true",
        "hbase.rootdir": f"hdfs://{h1}:{PORTS['namenode']}/hbase",
        "hbase.tmp.dir": f"{data}/hbase-tmp",
        "hbase.zookeeper.quorum": h1,
        "hbase.zookeeper.property.clientPort": str(PORTS["zookeeper"]),
        "hbase.master.port": str(PORTS["hmaster"]),
        "hbase.regionserver.port": str(PORTS["regionserver"]),
        # The web UIs are off: on the Maven classpath Hadoop 2.10's servlet-api 2.5 precedes
        # javax.servlet-api 3.1 and Jetty fails (ServletContext.createFilter).
        "hbase.master.info.port": "-1",
        "hbase.regionserver.info.port": "-1",
        "hbase.thrift.info.port": "-1",
        "hbase.thrift.server.socket.read.timeout": "86400000",
        # The classic WAL writer: the async one reaches into HDFS client internals that differ
        # between Hadoop 2.10 (HBase's client) and 3.3 (the cluster).
        "hbase.wal.provider": "filesystem",
        "hbase.unsafe.stream.capability.enforce": "true",
        # A region server whose ZooKeeper session lapses for 10 s is dead: its regions move and
        # its WAL is replayed (HBase's default, 90 s, would leave them unserved that long).
        "zookeeper.session.timeout": "10000",
        # A call to a server cut off fails after 20 s (not 60) and is retried where its region
        # went; the whole operation gives up after 2 min (not 20): the gateway answers, phashdb
        # serve turns a failure into a 503.
        "hbase.rpc.timeout": "20000",
        "hbase.client.operation.timeout": "120000",
        "hbase.master.wait.on.regionservers.mintostart": "1",
        "hbase.balancer.period": "30000",
        # Each table's regions spread over the hosts on their own: a band table's regions and a
        # record table's differ in size, so equal region counts alone leave the bytes uneven
        # (measured: store files max/min 1.51 with 19/19/20 regions).
        "hbase.master.loadbalance.bytable": "true",
        # ... and within a table by bytes as much as by count: a record table's id regions and
        # number regions differ in size (HBase weighs store-file bytes 5 against a region
        # count's 500, so even counts with uneven bytes stayed: max/min 2.13). The size is
        # each region's last reported one, not an average of old reports that lag a flush.
        "hbase.master.balancer.stochastic.storefileSizeCost": "500",
        "hbase.master.balancer.stochastic.numRegionLoadsToRemember": "1",
    }
    if me:
        site["hbase.unsafe.regionserver.hostname"] = me
        site["hbase.regionserver.hostname"] = me
        site["hbase.master.hostname"] = me
    return site


def yarn_site(h1: str, me: str | None, data: str, classpath: str | None) -> dict[str, str]:
    site = {
        "yarn.resourcemanager.hostname": h1,
        "yarn.resourcemanager.bind-host": "0.0.0.0",
        "yarn.nodemanager.bind-host": "0.0.0.0",
        "yarn.nodemanager.address": f"${{yarn.nodemanager.hostname}}:{PORTS['nodemanager']}",
        "yarn.nodemanager.aux-services": "mapreduce_shuffle",
        "yarn.nodemanager.aux-services.mapreduce_shuffle.class": "org.apache.hadoop.mapred.ShuffleHandler",
        "yarn.nodemanager.resource.memory-mb": "2048",
        "yarn.nodemanager.resource.cpu-vcores": "4",
        "yarn.scheduler.minimum-allocation-mb": "256",
        "yarn.scheduler.maximum-allocation-mb": "2048",
        "yarn.nodemanager.vmem-check-enabled": "false",
        "yarn.nodemanager.local-dirs": f"{data}/nm-local",
        "yarn.nodemanager.log-dirs": f"{data}/nm-logs",
        "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage": "99.5",
        # A NodeManager silent for 20 s is lost: its containers are reported failed and the
        # MapReduce application master runs their tasks again elsewhere (default: 10 min).
        "yarn.nm.liveness-monitor.expiry-interval-ms": "20000",
        # ... and calls to it are given up after 20 s too (default: 3 min): an application
        # master stopping a container on a lost node held the job's end that long (its task
        # long done elsewhere).
        "yarn.client.nodemanager-connect.max-wait-ms": "20000",
        "yarn.client.nodemanager-connect.retry-interval-ms": "2000",
        "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "1000",
        # One container per NodeManager heartbeat: a job's tasks spread over the machines
        # instead of filling the first one that reports.
        "yarn.scheduler.capacity.per-node-heartbeat.maximum-container-assignments": "1",
    }
    if me:
        site["yarn.nodemanager.hostname"] = me
    if classpath:
        site["yarn.application.classpath"] = classpath
    return site


def mapred_site(h1: str, classpath: str | None, jdk: int) -> dict[str, str]:
    opts = TASK_JVM_FLAGS + (JDK17_OPENS if jdk >= 9 else "")
    site = {
        "mapreduce.framework.name": "yarn",
        "mapreduce.jobhistory.address": f"{h1}:{PORTS['jobhistory']}",
        "mapreduce.jobhistory.webapp.address": f"{h1}:19888",
        "mapreduce.jobhistory.bind-host": "0.0.0.0",
        "yarn.app.mapreduce.am.staging-dir": "/tmp/hadoop-yarn/staging",
        "yarn.app.mapreduce.am.resource.mb": "512",
        "yarn.app.mapreduce.am.command-opts": f"-Xmx384m {opts}",
        "mapreduce.map.memory.mb": "512",
        "mapreduce.map.java.opts": f"-Xmx256m {opts}",
        "mapreduce.reduce.memory.mb": "512",
        "mapreduce.reduce.java.opts": f"-Xmx256m {opts}",
        "mapreduce.task.io.sort.mb": "32",
        "mapreduce.job.ubertask.enable": "false",
        # A task that reports nothing for 60 s is failed and run again (default: 10 min).
        "mapreduce.task.timeout": "60000",
        "yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms": "250",
        "mapreduce.client.progressmonitor.pollinterval": "200",
    }
    if classpath:
        site["mapreduce.application.classpath"] = classpath
    return site


def zoo_cfg(data: str) -> str:
    return "\n".join([
        "tickTime=2000",
        f"dataDir={data}/zk",
        f"clientPort={PORTS['zookeeper']}",
        "maxSessionTimeout=40000",
        "admin.enableServer=false",
        "4lw.commands.whitelist=ruok,srvr,stat,dump",
        "",
    ])  # fmt: skip


def site_xml(properties: dict[str, str]) -> str:
    rows = [
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>"
        for k, v in properties.items()
    ]
    return '<?xml version="1.0"?>\n<configuration>\n' + "\n".join(rows) + "\n</configuration>\n"


def write(
    out: Path, hosts: list[str], me: int, data: str, classpath: str | None, jdk: int = 17
) -> None:
    h1, addr = hosts[0], (hosts[me - 1] if me else None)
    files = {
        "hadoop/core-site.xml": site_xml(core_site(h1, data)),
        "hadoop/hdfs-site.xml": site_xml(hdfs_site(h1, addr, data)),
        "hadoop/yarn-site.xml": site_xml(yarn_site(h1, addr, data, classpath)),
        "hadoop/mapred-site.xml": site_xml(mapred_site(h1, classpath, jdk)),
        "hbase/hbase-site.xml": site_xml(hbase_site(h1, addr, data)),
        "zoo.cfg": zoo_cfg(data),
    }
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def parse_hosts(text: str) -> list[str]:
    hosts = [h.strip() for h in text.split(",")]
    if len(hosts) != 3:
        raise SystemExit(f"cluster3_conf: --hosts must name 3 machines, got {text!r}")
    for h in hosts:
        try:
            ipaddress.ip_address(h)
        except ValueError:
            if not h or " " in h:
                raise SystemExit(f"cluster3_conf: bad host {h!r} in --hosts") from None
    return hosts


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", required=True, help="the 3 machines' addresses, host 1 first")
    p.add_argument("--self", type=int, default=0, dest="me", help="this machine: 1-3, 0 = client")
    p.add_argument("--data", required=True, help="the folder for this machine's data")
    p.add_argument("--out", required=True, type=Path, help="where to write the files")
    p.add_argument("--classpath", help="the MapReduce containers' classpath (default: Hadoop's)")
    p.add_argument("--jdk", type=int, default=17, help="the Java of the MapReduce tasks (8, 17)")
    args = p.parse_args(argv)
    if args.me not in (0, 1, 2, 3):
        raise SystemExit(f"cluster3_conf: '--self' must be in 0..3, got {args.me}")
    write(args.out, parse_hosts(args.hosts), args.me, args.data, args.classpath, args.jdk)


if __name__ == "__main__":
    main()
