#!/usr/bin/env bash
# Installs phashdb and everything its tests need into .venv (idempotent; quick when done):
# the Python package with all extras, Chromium (as root, from apt) for the report's browser test,
# and (when Java and Maven are here) the jars of the real HBase and Hadoop the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,hbase,mr,heic]'
# Headless Chromium for the report's browser test (tests/test_report.py; required under CI).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
if command -v mvn >/dev/null && command -v java >/dev/null; then
  [ -x tests/hbase/cluster.sh ] && tests/hbase/cluster.sh build
  # The HBase bulk loader (java/hbase): product code, run by phashdb.hbase.bulkload.
  java/hbase/build.sh
  [ -x tests/hadoop/setup.sh ] && tests/hadoop/setup.sh >/dev/null
fi
echo "phashdb installed in .venv: $(.venv/bin/phashdb --version)"
