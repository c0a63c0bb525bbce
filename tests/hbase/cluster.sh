#!/usr/bin/env bash
# A real HBase for tests: ZooKeeper + HMaster + 3 region servers + Thrift1/Thrift2, one JVM,
# local filesystem, loopback only. See README.md.
#
#   cluster.sh build          fetch jars (Maven Central), compile, write target/classpath.txt
#   cluster.sh start DIR [ARGS...]
#                             start in background; logs in DIR/cluster.log; waits for DIR/cluster.json.
#                             ARGS go to MiniCluster (--regionservers N, --no-thrift2, --rootdir URL,
#                             --thrift-read-timeout-ms MS)
#   cluster.sh stop DIR       SIGTERM (clean shutdown), SIGKILL after a timeout
#   cluster.sh status DIR     exit 0 if running
#
# Environment: HBASE_TEST_HEAP (default 2g), HBASE_TEST_START_TIMEOUT (seconds, default 300),
# HBASE_TEST_REGIONSERVERS (default 3), JAVA (default: java on PATH / $JAVA_HOME/bin/java).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CP_FILE="$HERE/target/classpath.txt"
CLASSES="$HERE/target/classes"
MAIN_CLASS=phashdb.testcluster.MiniCluster
# phashdb's own jar for HBase (java/hbase): its HammingFilter runs in the region servers, as a
# deployment puts that jar in HBase's lib/.
PHASHDB_JAR="$HERE/../../java/hbase/target/phashdb-hbase.jar"

# shellcheck source=../jvm-cluster.sh
source "$HERE/../jvm-cluster.sh"

# shellcheck source=../jvm-flags.sh
source "$HERE/../jvm-flags.sh"

build() {
  local src newest
  # Quick when nothing changed: classes and classpath newer than pom and sources.
  if [[ -f "$CP_FILE" && -f "$CLASSES/phashdb/testcluster/MiniCluster.class" ]]; then
    newest=$(find "$HERE/pom.xml" "$HERE/src" -type f -newer "$CP_FILE" | head -1)
    if [[ -z "$newest" ]]; then
      return 0
    fi
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mkdir -p "$HERE/target"
  if ! (cd "$HERE" && mvn -B -Dstyle.color=never compile) >"$HERE/target/build.log" 2>&1; then
    tail -n 40 "$HERE/target/build.log" >&2
    die "maven build failed (full log: $HERE/target/build.log)"
  fi
  [[ -f "$CP_FILE" ]] || die "maven did not write $CP_FILE"
  touch "$CP_FILE"
}

start() {
  local dir="$1"
  shift
  "$HERE/../../java/hbase/build.sh"
  rm -f "$dir/cluster.json" "$dir/cluster.json.tmp"
  rm -rf "$dir/data" "$dir/tmp"
  mkdir -p "$dir/tmp"
  local heap="${HBASE_TEST_HEAP:-2g}"
  local timeout="${HBASE_TEST_START_TIMEOUT:-300}"
  local t0=$SECONDS
  # setsid: own process group, so a Ctrl-C in the caller's terminal does not reach it.
  setsid "$JAVA" -Xms256m -Xmx"$heap" -XX:+UseG1GC -XX:MaxDirectMemorySize=256m \
    ${HBASE_TEST_JVM_OPTS:--XX:TieredStopAtLevel=1} -Xss512k \
    -Djava.net.preferIPv4Stack=true -Djava.io.tmpdir="$dir/tmp" \
    "${HBASE_JDK_FLAGS[@]}" \
    -cp "$CLASSES:$PHASHDB_JAR:$(cat "$CP_FILE")" "$MAIN_CLASS" "$dir/cluster.json" \
    --data "$dir/data" --regionservers "${HBASE_TEST_REGIONSERVERS:-3}" "$@" \
    </dev/null >"$dir/cluster.log" 2>&1 &
  await_ready "$dir" $! "$t0" "$timeout"
}

cluster_main "$@"
