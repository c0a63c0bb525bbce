#!/usr/bin/env bash
# Fetches the Hadoop jars (Maven Central) into target/lib and compiles HadoopCluster, once;
# prints the HADOOP_HOME to use (this folder: bin/hadoop, target/lib).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stamp="$HERE/target/lib"
if [ ! -f "$HERE/target/lib/hadoop-streaming-3.3.4.jar" ] \
   || [ ! -f "$HERE/target/classes/phashdb/testhadoop/HadoopCluster.class" ] \
   || [ -n "$(find "$HERE/pom.xml" "$HERE/src" -type f -newer "$stamp" | head -1)" ]; then
  # Maven's output to stderr: stdout is only the HADOOP_HOME line, for $(setup.sh).
  rm -rf "$HERE/target/lib"  # no jar of an older pom left behind
  mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" package -DskipTests >&2
  # the project's own jar is not a dependency of anything
  rm -f "$HERE"/target/phashdb-testhadoop-*.jar
  touch "$stamp"
fi
echo "$HERE"
