#!/usr/bin/env bash
# Three hosts on this machine: Linux network namespaces p3h1..p3h3 (198.18.0.1-3), bridged in
# the root namespace (p3br, 198.18.0.254), each daemon its own JVM from the Maven jars of
# tests/hbase and tests/hadoop, configured by scripts/cluster3_conf.py (as docker/compose.yaml
# is). See docs/three-hosts.md. As root.
#
#   cluster3.sh start DIR           namespaces, configs, daemons; waits for DIR/cluster.json
#   cluster3.sh stop [DIR]          stops every daemon, removes namespaces and bridge
#   cluster3.sh status DIR          exit 0 while every daemon runs
#   cluster3.sh kill-host N         SIGKILL every process of host N (daemons and containers)
#   cluster3.sh cut-host N          host N's link down: its packets go nowhere
#   cluster3.sh heal-host N         its link up again
#   cluster3.sh restart-host N DIR  starts host N's daemons that are down (data kept); waits
#
# Clients (tests, phashdb serve, mrjob) run in the root namespace and reach 198.18.0.x through
# the bridge, or in a host's namespace (ip netns exec p3hN ...).
# Environment: CLUSTER3_START_TIMEOUT (seconds, default 420), JAVA.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../tests/jvm-flags.sh
source "$ROOT/tests/jvm-flags.sh"
JAVA="${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/}java}"
PYTHON="$ROOT/.venv/bin/python"
HADOOP_LIB="$ROOT/tests/hadoop/target/lib"
HBASE_CP_FILE="$ROOT/tests/hbase/target/classpath.txt"
PHASHDB_JAR="$ROOT/java/hbase/target/phashdb-hbase.jar"
LOG4J="$HERE/cluster3-log4j.properties"
NET=198.18.0
BRIDGE=p3br
HOSTS="$NET.1,$NET.2,$NET.3"

die() { echo "cluster3.sh: $*" >&2; exit 1; }
ns() { echo "p3h$1"; }
check_host() { [[ "${1:-}" =~ ^[123]$ ]] || die "host must be 1, 2 or 3, got '${1:-}'"; }

daemons_of() {
  case "$1" in
    1) echo "zk nn dn hmaster rs thrift2 rm jhs nm" ;;
    2) echo "dn rs thrift2 nm" ;;
    3) echo "dn rs nm" ;;
  esac
}

# Small heaps: 2 cores and 24 GB shared with other work. The serial GC and C1 only: quick
# start-up, few threads.
heap_of() {
  case "$1" in
    zk) echo 96m ;; dn) echo 192m ;; nm | jhs | thrift2) echo 256m ;;
    rs) echo 768m ;; *) echo 384m ;;
  esac
}

network_up() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    # Left by a run that was killed before its stop: the network without a process in it is
    # taken down; a cluster with processes is someone's, and left alone.
    local n live=""
    for n in 1 2 3; do live+=$(ip netns pids "$(ns "$n")" 2>/dev/null || true); done
    [[ -z "$live" ]] || die "already running (bridge $BRIDGE exists, processes in it): cluster3.sh stop first"
    echo "cluster3.sh: a stale network of a killed run (no process in it) is taken down" >&2
    network_down
  fi
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.254/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local n
  for n in 1 2 3; do
    ip netns add "$(ns "$n")"
    ip link add "p3v$n" type veth peer name "p3e$n"
    ip link set "p3e$n" netns "$(ns "$n")"
    ip link set "p3v$n" master "$BRIDGE" up
    ip netns exec "$(ns "$n")" ip addr add "$NET.$n/24" dev "p3e$n"
    ip netns exec "$(ns "$n")" ip link set "p3e$n" up
    ip netns exec "$(ns "$n")" ip link set lo up
  done
  # ip netns exec mounts /etc/netns/NAME/hosts on /etc/hosts: every host knows the others by
  # name (no DNS lookups that time out), and the machine's hostname (the same in every
  # namespace) means this host's own address there.
  local m
  for n in 1 2 3; do
    mkdir -p "/etc/netns/$(ns "$n")"
    {
      echo "127.0.0.1 localhost"
      for m in 1 2 3; do
        echo "$NET.$m $(ns "$m")$([[ $m == "$n" ]] && echo " $(hostname)")"
      done
    } >"/etc/netns/$(ns "$n")/hosts"
  done
}

network_down() {
  local n
  for n in 1 2 3; do
    ip link del "p3v$n" 2>/dev/null || true
    ip netns del "$(ns "$n")" 2>/dev/null || true
    rm -rf "/etc/netns/$(ns "$n")"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

hbase_cp() { echo "$1/hbase:$1/hadoop:$PHASHDB_JAR:$(cat "$HBASE_CP_FILE")"; }
hadoop_cp() { echo "$1/hadoop:$HADOOP_LIB/*"; }

# java_cmd NAME CONF: the command line of a daemon (without the namespace).
java_cmd() {
  local name="$1" conf="$2" logs="$3"
  local common=(-Djava.io.tmpdir="${logs%/logs}/tmp" -Xms64m -Xmx"$(heap_of "$name")" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k
    -Djava.net.preferIPv4Stack=true -Dlog4j.configuration="file:$LOG4J" -Dhadoop.log.dir="$logs"
    -Dhbase.log.dir="$logs" -Dyarn.log.dir="$logs")
  case "$name" in
    zk) echo "$JAVA ${common[*]} -cp $(hbase_cp "$conf") org.apache.zookeeper.server.ZooKeeperServerMain $conf/zoo.cfg" ;;
    hmaster) echo "$JAVA ${common[*]} ${HBASE_JDK_FLAGS[*]} -cp $(hbase_cp "$conf") org.apache.hadoop.hbase.master.HMaster start" ;;
    rs) echo "$JAVA ${common[*]} ${HBASE_JDK_FLAGS[*]} -cp $(hbase_cp "$conf") org.apache.hadoop.hbase.regionserver.HRegionServer start" ;;
    thrift2) echo "$JAVA ${common[*]} ${HBASE_JDK_FLAGS[*]} -cp $(hbase_cp "$conf") org.apache.hadoop.hbase.thrift2.ThriftServer -p 9091 -threadpool start" ;;
    nn) echo "$JAVA ${common[*]} ${HADOOP_JDK_FLAGS[*]} -cp $(hadoop_cp "$conf") org.apache.hadoop.hdfs.server.namenode.NameNode" ;;
    dn) echo "$JAVA ${common[*]} ${HADOOP_JDK_FLAGS[*]} -cp $(hadoop_cp "$conf") org.apache.hadoop.hdfs.server.datanode.DataNode" ;;
    rm) echo "$JAVA ${common[*]} ${HADOOP_JDK_FLAGS[*]} -cp $(hadoop_cp "$conf") org.apache.hadoop.yarn.server.resourcemanager.ResourceManager" ;;
    nm) echo "$JAVA ${common[*]} ${HADOOP_JDK_FLAGS[*]} -cp $(hadoop_cp "$conf") org.apache.hadoop.yarn.server.nodemanager.NodeManager" ;;
    jhs) echo "$JAVA ${common[*]} ${HADOOP_JDK_FLAGS[*]} -cp $(hadoop_cp "$conf") org.apache.hadoop.mapreduce.v2.hs.JobHistoryServer" ;;
  esac
}

# launch DIR N NAME: start one daemon in host N's namespace, its pid in DIR/hN/pids/NAME.
launch() {
  local dir="$1" n="$2" name="$3" h="$1/h$2"
  mkdir -p "$h/logs" "$h/pids" "$h/tmp"
  # shellcheck disable=SC2046
  (set -f; cd "$h" && exec ip netns exec "$(ns "$n")" setsid $(java_cmd "$name" "$h/conf" "$h/logs") \
    </dev/null >"$h/logs/$name.log" 2>&1) &
  echo $! >"$h/pids/$name"
}

configure() {
  local dir="$1" n
  "$PYTHON" "$HERE/cluster3_conf.py" --hosts "$HOSTS" --self 0 --data "$dir/client" \
    --out "$dir/conf" --classpath "$dir/conf/hadoop,$HADOOP_LIB/*"
  for n in 1 2 3; do
    "$PYTHON" "$HERE/cluster3_conf.py" --hosts "$HOSTS" --self "$n" --data "$dir/h$n/data" \
      --out "$dir/h$n/conf" --classpath "$dir/conf/hadoop,$HADOOP_LIB/*"
  done
}

# Whether the NameNode (host 1, port 8020: scripts/cluster3_conf.py PORTS) accepts a connection
# within 120 s.
namenode_accepts() {
  local i
  for ((i = 0; i < 240; i++)); do
    ip netns exec "$(ns 1)" bash -c "exec 3<>/dev/tcp/$NET.1/8020" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

build() {
  "$ROOT/tests/hbase/cluster.sh" build
  "$ROOT/tests/hadoop/cluster.sh" build
  "$ROOT/java/hbase/build.sh" >/dev/null
}

start() {
  local dir="${1:?usage: cluster3.sh start DIR}" n name
  [[ $EUID -eq 0 ]] || die "needs root (network namespaces)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  build
  rm -rf "$dir/h1" "$dir/h2" "$dir/h3" "$dir/conf" "$dir/cluster.json" "$dir/cluster.json.tmp"
  network_up
  configure "$dir"
  touch "$dir/.t0"  # start-to-ready is measured from here
  # The NameNode's metadata, formatted once (as `hdfs namenode -format`).
  mkdir -p "$dir/h1/logs"
  # shellcheck disable=SC2046
  mkdir -p "$dir/h1/tmp"
  (set -f; ip netns exec p3h1 $(java_cmd nn "$dir/h1/conf" "$dir/h1/logs") -format -nonInteractive -force \
    >"$dir/h1/logs/nn-format.log" 2>&1) || die "namenode -format failed: $dir/h1/logs/nn-format.log"
  # ZooKeeper and the NameNode first, the rest once the NameNode accepts: the HBase master
  # aborts when the NameNode refuses its first HDFS call (an HDFS client tries a refused
  # connection once), as it did in CI when the NameNode took 10 s to start under load.
  launch "$dir" 1 zk
  launch "$dir" 1 nn
  namenode_accepts || die "the NameNode did not accept within 120 s: $dir/h1/logs/nn.log"
  for n in 1 2 3; do
    for name in $(daemons_of "$n"); do
      [[ "$n $name" == "1 zk" || "$n $name" == "1 nn" ]] || launch "$dir" "$n" "$name"
    done
  done
  if ! "$PYTHON" "$HERE/cluster3_ready.py" "$dir" --timeout "${CLUSTER3_START_TIMEOUT:-420}"; then
    stop "$dir" >/dev/null 2>&1 || true
    exit 1
  fi
  cat "$dir/cluster.json"
}

# Every process left in the namespaces (daemons, YARN containers, clients run there).
kill_ns() {
  local n="$1" sig="$2" pids
  pids=$(ip netns pids "$(ns "$n")" 2>/dev/null || true)
  [[ -z "$pids" ]] || kill -"$sig" $pids 2>/dev/null || true
}

stop() {
  local dir="${1:-}" n i left
  for n in 1 2 3; do kill_ns "$n" TERM; done
  for ((i = 0; i < 60; i++)); do
    left=""
    for n in 1 2 3; do left+=$(ip netns pids "$(ns "$n")" 2>/dev/null || true); done
    [[ -z "$left" ]] && break
    sleep 0.5
  done
  for n in 1 2 3; do kill_ns "$n" KILL; done
  sleep 0.5
  network_down
  [[ -z "$dir" ]] || rm -f "$dir/cluster.json"
  echo "cluster3.sh: stopped"
}

status() {
  local dir="${1:?usage: cluster3.sh status DIR}" f bad=0
  [[ -f "$dir/cluster.json" ]] || die "not running in $dir (no cluster.json)"
  for f in "$dir"/h?/pids/*; do
    if ! kill -0 "$(cat "$f")" 2>/dev/null; then
      echo "down: host $(basename "$(dirname "$(dirname "$f")")") ${f##*/}" >&2
      bad=1
    fi
  done
  return "$bad"
}

restart_host() {
  local n="$1" dir="${2:?usage: cluster3.sh restart-host N DIR}" name
  dir="$(cd "$dir" && pwd)"
  ip link set "p3v$n" up
  touch "$dir/.t0"
  # The daemons that are down (killed, or a region server that its lapsed ZooKeeper session
  # made stop itself); the ones running go on.
  for name in $(daemons_of "$n"); do
    kill -0 "$(cat "$dir/h$n/pids/$name")" 2>/dev/null || launch "$dir" "$n" "$name"
  done
  "$PYTHON" "$HERE/cluster3_ready.py" "$dir" --timeout "${CLUSTER3_START_TIMEOUT:-420}"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  status) status "${2:-}" ;;
  kill-host) check_host "${2:-}"; kill_ns "$2" KILL ;;
  cut-host) check_host "${2:-}"; ip link set "p3v$2" down ;;
  heal-host) check_host "${2:-}"; ip link set "p3v$2" up ;;
  restart-host) check_host "${2:-}"; restart_host "$2" "${3:-}" ;;
  build) build ;;
  *) echo "usage: cluster3.sh start DIR | stop [DIR] | status DIR | kill-host N | cut-host N | heal-host N | restart-host N DIR" >&2; exit 2 ;;
esac
