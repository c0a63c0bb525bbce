# What the two test clusters' scripts (tests/hbase/cluster.sh, tests/hadoop/cluster.sh) share:
# the java to run, a cluster's pid, waiting for it to write DIR/cluster.json, stopping it, and
# the command line. Sourced, not run; the sourcing script defines build() and start() (see
# start_in).

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA="${JAVA:-$JAVA_HOME/bin/java}"
else
  JAVA="${JAVA:-java}"
fi

die() { echo "cluster.sh: $*" >&2; exit 1; }

pid_of() {
  local dir="$1" pid
  [[ -f "$dir/cluster.pid" ]] || return 1
  pid=$(cat "$dir/cluster.pid")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# await_ready DIR PID T0 TIMEOUT: wait for the JVM started at T0 ($SECONDS) to write
# DIR/cluster.json; fail with its last log lines if it exits or TIMEOUT seconds pass.
await_ready() {
  local dir="$1" pid="$2" t0="$3" timeout="$4"
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

# SIGTERM (a clean shutdown), SIGKILL after 60 s.
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

# start_in DIR [ARGS...]: a start in DIR (made if missing) unless a cluster runs there; the
# sourcing script's start() gets DIR as an absolute path, the build done.
start_in() {
  local dir="${1:?usage: cluster.sh start DIR [ARGS...]}"
  shift
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if pid_of "$dir" >/dev/null; then
    die "already running in $dir (pid $(cat "$dir/cluster.pid"))"
  fi
  build
  start "$dir" "$@"
}

cluster_main() {
  case "${1:-}" in
    build) build ;;
    start) shift; start_in "$@" ;;
    stop) stop "${2:-}" ;;
    status) pid_of "${2:?usage: cluster.sh status DIR}" >/dev/null ;;
    *) echo "usage: cluster.sh build | start DIR [ARGS...] | stop DIR | status DIR" >&2; exit 2 ;;
  esac
}
