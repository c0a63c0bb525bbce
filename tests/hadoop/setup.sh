#!/usr/bin/env bash
# Fetches the Hadoop jars (Maven Central) into target/lib, once; prints the HADOOP_HOME to use.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$HERE/target/lib/hadoop-streaming-3.3.4.jar" ] || [ "$HERE/pom.xml" -nt "$HERE/target/lib" ]; then
  # Maven's output to stderr: stdout is only the HADOOP_HOME line, for $(setup.sh).
  mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" package >&2
  touch "$HERE/target/lib"
fi
echo "$HERE"
