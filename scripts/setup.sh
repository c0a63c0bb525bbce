#!/usr/bin/env bash
# Installs phashdb and everything its tests need into .venv (idempotent; quick when done):
# the Python package with all extras, Chromium (as root, from apt) for the report's browser test,
# and (when Java and Maven are here) the jars of the real HBase and Hadoop the tests start.
# Prints its steps and the result; a step's own output (pip's build warnings, Maven's escape
# codes) goes to a log, shown only when the step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOG=$(mktemp -t phashdb-setup.XXXXXX)
trap 'rm -f "$LOG"' EXIT

# quietly COMMAND...: runs COMMAND with its output in $LOG; if it fails, shows the end of
# that output (escape codes removed) and stops.
quietly() {
  if ! "$@" >"$LOG" 2>&1; then
    tail -n 40 "$LOG" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' >&2
    echo "setup: failed: $*" >&2
    exit 1
  fi
}

# apt-get, quiet, waiting (at most $APT_LOCK_WAIT seconds, 5 minutes by default) while another
# apt holds its locks, as unattended upgrades do on a fresh VM: DPkg::Lock::Timeout covers
# dpkg's lock, not `update`'s lists lock.
apt_get() {
  local wait=${APT_LOCK_WAIT:-300}
  local deadline=$((SECONDS + wait)) said=""
  until apt-get -o DPkg::Lock::Timeout="$wait" "$@" >"$LOG" 2>&1; do
    if ! grep -q "Could not get lock" "$LOG" || ((SECONDS >= deadline)); then
      tail -n 20 "$LOG" >&2
      echo "setup: failed: apt-get $*" >&2
      exit 1
    fi
    [ -n "$said" ] || echo "setup: waiting for apt's lock (another apt is running)"
    said=1
    sleep 5
  done
}

pip_install() {
  quietly .venv/bin/python -m pip install --disable-pip-version-check -q "$@"
}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  quietly "$PYTHON" -m venv .venv
fi
echo "setup: installing phashdb with its extras into .venv"
pip_install -U pip
pip_install -e '.[dev,hbase,mr,heic]'
# Headless Chromium for the report's browser test (tests/test_report.py; required under CI).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Chromium (apt)"
  apt_get update -qq
  apt_get install -y -qq chromium
fi
if command -v mvn >/dev/null && command -v java >/dev/null; then
  echo "setup: building the Java parts (Maven): the test clusters, the HBase bulk loader"
  [ ! -x tests/hbase/cluster.sh ] || quietly tests/hbase/cluster.sh build
  # The HBase bulk loader (java/hbase): product code, run by phashdb.hbase.bulkload.
  quietly java/hbase/build.sh
  [ ! -x tests/hadoop/setup.sh ] || quietly tests/hadoop/setup.sh
fi
echo "phashdb installed in .venv: $(.venv/bin/phashdb --version)"
