#!/usr/bin/env bash
# Builds phashdb's Java for HBase (the bulk loader and the search filter the region servers run):
# target/phashdb-hbase.jar and target/classpath.txt (the HBase
# 2.6.1 jars from Maven Central it runs with when no `hbase` is on PATH). Quick when up to date.
set -euo pipefail
cd "$(dirname "$0")"
if [[ -f target/phashdb-hbase.jar && -f target/classpath.txt ]] \
  && [[ -z "$(find pom.xml src -type f -newer target/phashdb-hbase.jar | head -1)" ]]; then
  exit 0
fi
if ! mvn -B -Dstyle.color=never -DskipTests package >target.build.log 2>&1; then
  tail -n 40 target.build.log >&2
  echo "java/hbase: maven build failed (log: java/hbase/target.build.log)" >&2
  exit 1
fi
rm -f target.build.log
