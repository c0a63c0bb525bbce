#!/usr/bin/env bash
# Installs phashdb and everything its tests need into .venv (idempotent; quick when done):
# the Python package with all extras, and (when Java and Maven are here) the jars of the real
# HBase and Hadoop the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,hbase,mr,heic]'
if command -v mvn >/dev/null && command -v java >/dev/null; then
  [ -x tests/hbase/cluster.sh ] && tests/hbase/cluster.sh build
  [ -x tests/hadoop/setup.sh ] && tests/hadoop/setup.sh >/dev/null
fi
echo "phashdb installed in .venv: $(.venv/bin/phashdb --version)"
