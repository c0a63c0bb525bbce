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
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA="${JAVA:-$JAVA_HOME/bin/java}"
else
  JAVA="${JAVA:-java}"
fi
# The JDK 17 module opens Hadoop's own scripts pass (hadoop-functions.sh, HADOOP-15338).
JDK_FLAGS=(
  --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.lang.reflect=ALL-UNNAMED
)

die() { echo "cluster.sh: $*" >&2; exit 1; }

build() { "$HERE/setup.sh" >/dev/null; }

pid_of() {
  local dir="$1" pid
  [[ -f "$dir/cluster.pid" ]] || return 1
  pid=$(cat "$dir/cluster.pid")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  local dir="${1:?usage: cluster.sh start DIR [ARGS...]}"
  shift
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if pid_of "$dir" >/dev/null; then
    die "already running in $dir (pid $(cat "$dir/cluster.pid"))"
  fi
  build
  # Every start is an empty cluster.
  rm -rf "$dir/cluster.json" "$dir/cluster.json.tmp" "$dir/data" "$dir/target" "$dir/conf" "$dir/tmp"
  mkdir -p "$dir/tmp"
  local timeout="${HADOOP_TEST_START_TIMEOUT:-300}" t0=$SECONDS
  # setsid: its own process group, so a Ctrl-C in the caller's terminal does not reach it.
  # cd: MiniYARNCluster keeps its folders under ./target.
  (cd "$dir" && exec setsid "$JAVA" -Xms256m -Xmx"${HADOOP_TEST_HEAP:-1536m}" -XX:+UseG1GC \
    -XX:TieredStopAtLevel=1 -Xss512k -Djava.net.preferIPv4Stack=true \
    -Djava.io.tmpdir="$dir/tmp" -Dhadoop.log.dir="$dir/logs" \
    -Dlog4j.configuration="file:$HERE/conf/cluster-log4j.properties" "${JDK_FLAGS[@]}" \
    -cp "$HERE/target/classes:$HERE/target/lib/*" phashdb.testhadoop.HadoopCluster "$dir" \
    --lib "$HERE/target/lib" "$@" </dev/null >"$dir/cluster.log" 2>&1) &
  local pid=$!
  echo "$pid" >"$dir/cluster.pid"
  while [[ ! -f "$dir/cluster.json" ]]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "cluster.sh: JVM exited during startup; last log lines:" >&2
      tail -n 60 "$dir/cluster.log" >&2
      rm -f "$dir/cluster.pid"
      exit 1
    fi
    if (( SECONDS - t0 > timeout )); then
      echo "cluster.sh: not ready after ${timeout}s; last log lines:" >&2
      tail -n 60 "$dir/cluster.log" >&2
      stop "$dir" || true
      exit 1
    fi
    sleep 0.5
  done
  echo "cluster.sh: ready in $((SECONDS - t0))s (pid $pid): $dir/cluster.json"
  cat "$dir/cluster.json"
}

stop() {
  local dir="${1:?usage: cluster.sh stop DIR}" pid i
  if ! pid=$(pid_of "$dir"); then
    rm -f "$dir/cluster.pid" "$dir/cluster.json"
    echo "cluster.sh: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "cluster.sh: pid $pid still alive after 60s, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/cluster.pid" "$dir/cluster.json"
  echo "cluster.sh: stopped (pid $pid)"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  stop) stop "${2:-}" ;;
  status) pid_of "${2:?usage: cluster.sh status DIR}" >/dev/null ;;
  *) echo "usage: cluster.sh build | start DIR [ARGS...] | stop DIR | status DIR" >&2; exit 2 ;;
esac
