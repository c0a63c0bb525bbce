"""How evenly the three hosts of scripts/cluster3.sh hold the data: each host's DataNode used
bytes, store-file bytes (by kind of region) and region count, and the HBase Admin calls that
Thrift2 does not offer (flush, major compaction, a balancer run). Used by benchmarks/cluster3.py.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from hbase_bulkload import region_start_key

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("198.18.0.1", "198.18.0.2", "198.18.0.3")
KINDS = ("bands", "ids", "numbers")

# Admin calls Thrift2 does not offer, compiled at run time: "flush T", "compact T" (major, waits
# until done), "balance -" (one balancer run, then waits until no region is in transition).
# The balancer is off while it flushes and compacts: it weighs store-file bytes, which a flush
# changes, and a region moved meanwhile drops its compaction.
ADMIN_JAVA = """
import org.apache.hadoop.hbase.*;
import org.apache.hadoop.hbase.client.*;
public class C3Admin {
  public static void main(String[] a) throws Exception {
    org.apache.hadoop.conf.Configuration conf = HBaseConfiguration.create();
    conf.setInt("hbase.rpc.timeout", 600000);  // a flush of a large region takes a while
    conf.setInt("hbase.client.operation.timeout", 1200000);
    try (Connection c = ConnectionFactory.createConnection(conf);
         Admin admin = c.getAdmin()) {
      boolean balancing = admin.isBalancerEnabled();
      for (int i = 0; i < a.length; i += 2) {
        if (a[i].equals("balance")) {
          admin.balancerSwitch(true, true);
          System.out.println("balancer ran: " + admin.balance());
          while (!admin.getClusterMetrics(java.util.EnumSet.of(
              ClusterMetrics.Option.REGIONS_IN_TRANSITION)).getRegionStatesInTransition().isEmpty()) {
            Thread.sleep(500);
          }
          continue;
        }
        admin.balancerSwitch(false, true);
        TableName t = TableName.valueOf(a[i + 1]);
        if (a[i].equals("flush")) admin.flush(t);
        else admin.majorCompact(t);
      }
      for (int i = 0; i < a.length; i += 2) {
        if (!a[i].equals("compact")) continue;
        TableName t = TableName.valueOf(a[i + 1]);
        while (admin.getCompactionState(t) != CompactionState.NONE) Thread.sleep(500);
      }
      admin.balancerSwitch(balancing, true);
    }
  }
}
"""


def admin(dir_: str, *commands: str) -> str:
    """Run HBase Admin commands ("flush", TABLE, "compact", TABLE, "balance", "-" ...) from a
    small Java class; its output."""
    work = Path(dir_) / "admin"
    work.mkdir(exist_ok=True)
    cp = ":".join([str(Path(dir_) / "conf" / "hbase"), str(Path(dir_) / "conf" / "hadoop"),
                   (ROOT / "tests" / "hbase" / "target" / "classpath.txt").read_text().strip()])  # fmt: skip
    source = work / "C3Admin.java"
    if not source.exists() or source.read_text() != ADMIN_JAVA:
        source.write_text(ADMIN_JAVA)
        subprocess.run(["javac", "-cp", cp, "-d", str(work), str(source)], check=True)
    done = subprocess.run(
        ["java", "-Xmx256m", "-Dlog4j.configuration=file:/dev/null", "-cp", f"{work}:{cp}",
         "C3Admin", *commands],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"HBase admin {' '.join(commands)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def locations(client, tables) -> dict[tuple[str, bytes], str]:
    """Every region of `tables`: (table, start key) -> its host."""
    return {
        (table, loc.regionInfo.startKey or b""): loc.serverName.hostName
        for table in tables
        for loc in client.getAllRegionLocations(table.encode())
    }


def _kind(table: str, start: bytes) -> str:
    """What a region holds: band cells, id rows, number rows (the records), or (the record
    table's first region) the settings and counter rows, counted with the ids."""
    if not table.endswith(".images"):
        return "bands"
    return "numbers" if start.startswith(b"n") else "ids"


def evenness(info: dict, client, tables) -> dict[str, dict[str, float]]:
    """Per host: DataNode used bytes, store-file bytes (in all and by kind), region count."""
    import hdfs_native

    out = {h: {"datanode": 0, "storefiles": 0, "regions": 0, **dict.fromkeys(KINDS, 0)}
           for h in HOSTS}  # fmt: skip
    url = f"http://{info['namenode_http']}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
    with urllib.request.urlopen(url, timeout=30) as r:
        live = json.loads(json.load(r)["beans"][0]["LiveNodes"])
    for node in live.values():
        out[node["xferaddr"].split(":")[0]]["datanode"] = node["usedSpace"]
    fs = hdfs_native.Client(info["namenode"])
    where = locations(client, tables)
    for host in where.values():
        out[host]["regions"] += 1
    for table in tables:
        # A region's folder names no start key: its .regioninfo does.
        for folder in fs.list_status(f"/hbase/data/default/{table}"):
            if folder.path.rsplit("/", 1)[1].startswith("."):
                continue
            with fs.read(f"{folder.path}/.regioninfo") as f:
                start = region_start_key(f.read())
            size = sum(
                s.length for s in fs.list_status(folder.path, recursive=True)
                if not s.isdir and s.path.rsplit("/", 2)[-2] in ("b", "i")
            )  # fmt: skip
            host = out[where[(table, start)]]
            host["storefiles"] += size
            host[_kind(table, start)] += size
    return out


def print_evenness(even: dict[str, dict[str, float]]) -> None:
    """The table: per host, then max/min of each column."""
    columns = [("datanode", "DataNode used MB"), ("storefiles", "store files MB"),
               *[(k, f"({k} MB)") for k in KINDS], ("regions", "regions")]  # fmt: skip
    print(f"{'host':>12} " + " ".join(f"{title:>16}" for _, title in columns))
    for h, v in even.items():
        print(f"{h:>12} " + " ".join(
            f"{v[k]:>16}" if k == "regions" else f"{v[k] / 1e6:>16,.1f}" for k, _ in columns
        ))  # fmt: skip
    ratios = [max(v[k] for v in even.values()) / max(1, min(v[k] for v in even.values()))
              for k, _ in columns]  # fmt: skip
    print(f"{'max/min':>12} " + " ".join(f"{r:>16.2f}" for r in ratios))
