#!/bin/sh
# Runs one HBase daemon in the foreground with the generated configuration
# (scripts/cluster3_conf.py, mounted at /phashdb-conf by compose.yaml):
# master | regionserver | thrift ARGS | thrift2 ARGS.
set -eu
export HBASE_CONF_DIR=/phashdb-conf/hbase HBASE_CLASSPATH=/phashdb-conf/hadoop
role=$1; shift
exec hbase "$role" "$@" start
