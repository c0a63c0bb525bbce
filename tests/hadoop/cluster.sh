#!/usr/bin/env bash
# A real Hadoop for tests: HDFS (NameNode + 3 DataNodes) and YARN (ResourceManager +
# NodeManager + job history) in one JVM on loopback, from Maven Central jars. See README.md.
#
#   cluster.sh build                 fetch the jars, compile (setup.sh); quick when done
#   cluster.sh start DIR [ARGS...]   start in the background; log in DIR/cluster.log; waits for
#                                    DIR/cluster.json; the client config is in DIR/conf.
#                                    ARGS go to HadoopCluster (--datanodes N, --replication R,
#                                    --nm-memory-mb MB)
#   cluster.sh stop DIR              SIGTERM (clean shutdown), SIGKILL after 60 s
#   cluster.sh status DIR            exit 0 if running
#
# Environment: HADOOP_TEST_HEAP (default 1536m), HADOOP_TEST_START_TIMEOUT (seconds, default
# 300), JAVA (default: $JAVA_HOME/bin/java or java on PATH).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../jvm-cluster.sh
source "$HERE/../jvm-cluster.sh"
# shellcheck source=../jvm-flags.sh
source "$HERE/../jvm-flags.sh"

build() { "$HERE/setup.sh" >/dev/null; }

start() {
  local dir="$1"
  shift
  # Every start is an empty cluster.
  rm -rf "$dir/cluster.json" "$dir/cluster.json.tmp" "$dir/data" "$dir/target" "$dir/conf" "$dir/tmp"
  mkdir -p "$dir/tmp"
  local timeout="${HADOOP_TEST_START_TIMEOUT:-300}" t0=$SECONDS
  # setsid: its own process group, so a Ctrl-C in the caller's terminal does not reach it.
  # cd: MiniYARNCluster keeps its folders under ./target.
  (cd "$dir" && exec setsid "$JAVA" -Xms256m -Xmx"${HADOOP_TEST_HEAP:-1536m}" -XX:+UseG1GC \
    -XX:TieredStopAtLevel=1 -Xss512k -Djava.net.preferIPv4Stack=true \
    -Djava.io.tmpdir="$dir/tmp" -Dhadoop.log.dir="$dir/logs" \
    -Dlog4j.configuration="file:$HERE/conf/cluster-log4j.properties" "${HADOOP_JDK_FLAGS[@]}" \
    -cp "$HERE/target/classes:$HERE/target/lib/*" phashdb.testhadoop.HadoopCluster "$dir" \
    --lib "$HERE/target/lib" "$@" </dev/null >"$dir/cluster.log" 2>&1) &
  await_ready "$dir" $! "$t0" "$timeout"
}

cluster_main "$@"
