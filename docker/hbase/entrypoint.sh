#!/bin/sh
# Writes hbase-site.xml from the environment, then runs one HBase daemon in the foreground:
# master | regionserver | thrift ARGS | thrift2 ARGS.
set -eu
sed -e "s|\${HBASE_ROOTDIR}|$HBASE_ROOTDIR|" -e "s|\${HBASE_ZOOKEEPER_QUORUM}|$HBASE_ZOOKEEPER_QUORUM|" \
  /opt/hbase-site.xml.template > /opt/hbase/conf/hbase-site.xml
role=$1; shift
exec hbase "$role" "$@" start
