package phashdb.bulkload;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hbase.KeyValue;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptor;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.io.hfile.CacheConfig;
import org.apache.hadoop.hbase.io.hfile.HFileContext;
import org.apache.hadoop.hbase.io.hfile.HFileContextBuilder;
import org.apache.hadoop.hbase.regionserver.HStoreFile;
import org.apache.hadoop.hbase.regionserver.StoreFileWriter;
import org.apache.hadoop.hbase.regionserver.StoreUtils;
import org.apache.hadoop.hbase.util.Bytes;

/** HFiles, one per region: one table's family: its region boundaries (now; BulkLoadHFiles splits a file again if a
 * region split meanwhile), its HFile settings, and the files written. */
final class Tables {
  final TableName table;
  final byte[] family;
  final FileSystem fs;
  final Path familyDir;
  final Configuration conf;
  final byte[][] starts;
  final HFileContext context;
  final ColumnFamilyDescriptor descriptor;
  final List<Path> paths = java.util.Collections.synchronizedList(new ArrayList<>());

  Tables(Connection conn, TableName table, byte[] family, FileSystem fs, Path dir,
      Configuration conf) throws IOException {
    this.table = table;
    this.family = family;
    this.fs = fs;
    this.conf = conf;
    this.familyDir = new Path(dir, Bytes.toString(family));
    try (org.apache.hadoop.hbase.client.Admin admin = conn.getAdmin()) {
      if (!admin.tableExists(table)) {
        throw new IOException("table " + table + " does not exist");
      }
      descriptor = admin.getDescriptor(table).getColumnFamily(family);
      if (descriptor == null) {
        throw new IOException("table " + table + " has no family " + Bytes.toString(family));
      }
    }
    byte[][] keys = conn.getRegionLocator(table).getStartKeys();
    Arrays.sort(keys, Bytes.BYTES_COMPARATOR);
    starts = keys;
    context = new HFileContextBuilder()
        .withCompression(descriptor.getCompressionType())
        .withDataBlockEncoding(descriptor.getDataBlockEncoding())
        .withBlockSize(descriptor.getBlocksize())
        .withChecksumType(StoreUtils.getChecksumType(conf))
        .withBytesPerCheckSum(StoreUtils.getBytesPerChecksum(conf))
        .withIncludesTags(true)
        .withColumnFamily(family)
        .withTableName(table.getName())
        .withCreateTime(System.currentTimeMillis())
        .build();
  }

  Cursor cursor(String name) {
    return new Cursor(name);
  }

  /** Writes cells given in key order: a new HFile whenever a cell passes into the next
   * region. One cursor per thread. */
  final class Cursor {
    final String name;
    StoreFileWriter writer;
    int region = -1;

    Cursor(String name) {
      this.name = name;
    }

    void append(byte[] row, byte[] qualifier, long ts, byte[] value) throws IOException {
      int r = region < 0 ? 0 : region;
      while (r + 1 < starts.length && Bytes.compareTo(row, starts[r + 1]) >= 0) r++;
      if (writer == null || r != region) {
        close();
        region = r;
        Path path = new Path(familyDir, String.format("%s-region-%05d", name, r));
        writer = new StoreFileWriter.Builder(conf, CacheConfig.DISABLED, fs)
            .withFilePath(path)
            .withBloomType(descriptor.getBloomFilterType())
            .withFileContext(context)
            .build();
        paths.add(path);
      }
      writer.append(new KeyValue(row, family, qualifier, ts, KeyValue.Type.Put, value));
    }

    void close() throws IOException {
      if (writer != null) {
        long now = System.currentTimeMillis();
        writer.appendFileInfo(HStoreFile.BULKLOAD_TIME_KEY, Bytes.toBytes(now));
        writer.appendFileInfo(HStoreFile.BULKLOAD_TASK_KEY, Bytes.toBytes("phashdb-bulkload"));
        writer.appendFileInfo(HStoreFile.MAJOR_COMPACTION_KEY, Bytes.toBytes(false));
        writer.appendFileInfo(HStoreFile.EXCLUDE_FROM_MINOR_COMPACTION_KEY, Bytes.toBytes(false));
        writer.appendTrackedTimestampsToMetadata();
        writer.close();
        writer = null;
      }
    }
  }

  Map<byte[], List<Path>> familyDirs() {
    Map<byte[], List<Path>> out = new java.util.TreeMap<>(Bytes.BYTES_COMPARATOR);
    out.put(family, new ArrayList<>(paths));
    return out;
  }

  long bytes() throws IOException {
    long total = 0;
    for (Path p : paths) total += fs.getFileStatus(p).getLen();
    return total;
  }
}
