#!/usr/bin/env bash
# The whole test suite. HBase and Hadoop tests start a real cluster themselves (tests/hbase,
# tests/hadoop); under CI=true they must run, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
