package phashdb.bulkload;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.KeyValue;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptor;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.io.hfile.CacheConfig;
import org.apache.hadoop.hbase.io.hfile.HFileContext;
import org.apache.hadoop.hbase.io.hfile.HFileContextBuilder;
import org.apache.hadoop.hbase.regionserver.HStoreFile;
import org.apache.hadoop.hbase.regionserver.StoreFileWriter;
import org.apache.hadoop.hbase.regionserver.StoreUtils;
import org.apache.hadoop.hbase.tool.BulkLoadHFiles;
import org.apache.hadoop.hbase.util.Bytes;

/**
 * phashdb's HBase bulk load: the cells phashdb's online writes would make (the byte layout of
 * phashdb/hbase/keys.py), written as sorted HFiles, one per region of each table, then handed
 * to HBase with BulkLoadHFiles. The input is one file written by phashdb.hbase.bulkload:
 *
 * <pre>
 *   "PHBULK1\n"
 *   int32 n, int32 bands, int32 widths[bands], int32 shifts[bands], int32 row_bits
 *   int64 band cell timestamp, int64 timestamp of the other cells
 *   int64 hashes[n], int64 image numbers[n], uint16 id buckets[n]
 *   int64 id ends[n] (cumulative byte offsets), id bytes
 *   int64 record ends[n] (cumulative), record bytes (the record cells' values)
 * </pre>
 *
 * All big-endian. Band cells are made here from (hash, number): per band, the hashes rotated
 * so the band's bits come first are radix-sorted, which is the band table's key order. Prints
 * one JSON line (cells, files, bytes, seconds) on success; "error: ..." on stderr and exit 1
 * on failure.
 *
 * <p>Usage: BulkLoad --input FILE --table T [--zookeeper HOST:PORT] [--dir DIR] [--keep]
 */
public final class BulkLoad {
  static final byte[] BAND_FAMILY = Bytes.toBytes("b");
  static final byte[] RECORD_FAMILY = Bytes.toBytes("i");
  static final byte[] EMPTY = new byte[0];

  // --- the input ---
  int n;
  int[] widths;
  int[] shifts;
  int rowBits;
  long bandTs;
  long cellTs;
  long[] hashes;
  long[] numbers;
  int[] buckets;
  long[] idEnds;
  ByteBuffer ids;
  long[] recordEnds;
  ByteBuffer records;

  public static void main(String[] args) {
    Map<String, String> opts = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--keep")) {
        opts.put("keep", "1");
      } else if (a.startsWith("--") && i + 1 < args.length) {
        opts.put(a.substring(2), args[++i]);
      } else {
        fail("unexpected argument " + a);
      }
    }
    if (!opts.containsKey("input") || !opts.containsKey("table")) {
      fail("usage: BulkLoad --input FILE --table T [--zookeeper HOST:PORT] [--dir DIR] [--keep]");
    }
    try {
      System.out.println(new BulkLoad().run(opts));
      System.exit(0);
    } catch (BadInput e) {
      fail(opts.get("input") + ": " + e.getMessage());
    } catch (Exception e) {
      fail(e.toString());
    }
  }

  static void fail(String message) {
    System.err.println("error: " + message);
    System.exit(1);
  }

  static final class BadInput extends Exception {
    BadInput(String message) {
      super(message);
    }
  }

  String run(Map<String, String> opts) throws Exception {
    long t0 = System.nanoTime();
    read(opts.get("input"));
    long t1 = System.nanoTime();
    Configuration conf = HBaseConfiguration.create();
    String zk = opts.get("zookeeper");
    if (zk != null) {
      int colon = zk.lastIndexOf(':');
      conf.set("hbase.zookeeper.quorum", colon < 0 ? zk : zk.substring(0, colon));
      if (colon >= 0) {
        conf.set("hbase.zookeeper.property.clientPort", zk.substring(colon + 1));
      }
    }
    // Fail fast when the cluster cannot be reached (the defaults retry for minutes).
    conf.setInt("hbase.client.retries.number", conf.getInt("phashdb.bulkload.retries", 5));
    conf.setInt("zookeeper.recovery.retry", 1);
    TableName bandTable = TableName.valueOf(opts.get("table"));
    TableName recordTable = TableName.valueOf(opts.get("table") + "_images");
    Path dir;
    FileSystem fs;
    if (opts.containsKey("dir")) {
      dir = new Path(opts.get("dir"), "phashdb-bulkload-" + UUID.randomUUID());
    } else {
      dir = new Path(conf.get("hbase.fs.tmp.dir", "/tmp"), "phashdb-bulkload-" + UUID.randomUUID());
    }
    fs = dir.getFileSystem(conf);
    dir = fs.makeQualified(dir);
    long written = 0;
    int files = 0;
    long cells = 0;
    long t2, t3;
    try (Connection conn = ConnectionFactory.createConnection(conf)) {
      Tables bands = new Tables(conn, bandTable, BAND_FAMILY, fs, new Path(dir, "bands"), conf);
      Tables recs = new Tables(conn, recordTable, RECORD_FAMILY, fs, new Path(dir, "records"), conf);
      cells += writeBandCells(bands);
      cells += writeIdCells(recs);
      cells += writeRecordCells(recs);
      bands.closeAll();
      recs.closeAll();
      files = bands.files + recs.files;
      written = bands.bytes() + recs.bytes();
      t2 = System.nanoTime();
      // Records last: an image is visible once its record is, and its band cells are there.
      BulkLoadHFiles loader = BulkLoadHFiles.create(conf);
      if (bands.files > 0) {
        loader.bulkLoad(bandTable, bands.familyDirs());
      }
      if (recs.files > 0) {
        loader.bulkLoad(recordTable, recs.familyDirs());
      }
      t3 = System.nanoTime();
    } finally {
      if (!opts.containsKey("keep")) {
        fs.delete(dir, true);
      }
    }
    return String.format(
        "{\"images\": %d, \"cells\": %d, \"files\": %d, \"bytes\": %d, \"seconds\": "
            + "{\"read\": %.3f, \"write\": %.3f, \"load\": %.3f}, \"dir\": \"%s\"}",
        n, cells, files, written, (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, dir);
  }

  // --- reading the input ----------------------------------------------------------------

  void read(String file) throws IOException, BadInput {
    try (FileChannel ch = FileChannel.open(Paths.get(file), StandardOpenOption.READ)) {
      long size = ch.size();
      // The fixed-size part is read into arrays; the id and record bytes stay mapped.
      DataInputStream in =
          new DataInputStream(new java.io.BufferedInputStream(
              java.nio.channels.Channels.newInputStream(ch), 1 << 20));
      try {
        byte[] magic = new byte[8];
        in.readFully(magic);
        if (!new String(magic, StandardCharsets.US_ASCII).equals("PHBULK1\n")) {
          throw new BadInput("not a phashdb bulk-load file (bad magic)");
        }
        n = in.readInt();
        int nb = in.readInt();
        if (n < 0 || nb < 1 || nb > 64) {
          throw new BadInput("bad header (" + n + " images, " + nb + " bands)");
        }
        widths = new int[nb];
        shifts = new int[nb];
        for (int b = 0; b < nb; b++) widths[b] = in.readInt();
        for (int b = 0; b < nb; b++) shifts[b] = in.readInt();
        rowBits = in.readInt();
        bandTs = in.readLong();
        cellTs = in.readLong();
        long fixed = 8 + 4 + 4 + 8L * nb + 4 + 16 + (8L + 8 + 2 + 8 + 8) * n;
        if (fixed > size) {
          throw new BadInput("truncated: " + size + " bytes, the header promises at least " + fixed);
        }
        hashes = readLongs(in, n);
        numbers = readLongs(in, n);
        buckets = new int[n];
        for (int i = 0; i < n; i++) buckets[i] = in.readUnsignedShort();
        idEnds = readLongs(in, n);
        long idStart = fixed - 8L * n;
        long idBytes = n == 0 ? 0 : idEnds[n - 1];
        checkEnds(idEnds, "id");
        long recordEndsAt = idStart + idBytes;
        if (recordEndsAt + 8L * n > size) {
          throw new BadInput("truncated in the ids");
        }
        for (long left = idBytes; left > 0; ) {
          long skipped = in.skip(left);
          if (skipped <= 0) {
            throw new BadInput("truncated in the ids");
          }
          left -= skipped;
        }
        recordEnds = readLongs(in, n);
        checkEnds(recordEnds, "record");
        long recordStart = recordEndsAt + 8L * n;
        long recordBytes = n == 0 ? 0 : recordEnds[n - 1];
        if (recordStart + recordBytes != size) {
          throw new BadInput("size " + size + " bytes, expected " + (recordStart + recordBytes));
        }
        if (idBytes > Integer.MAX_VALUE || recordBytes > Integer.MAX_VALUE) {
          throw new BadInput("more than 2 GB of ids or records: split the load");
        }
        ids = ch.map(FileChannel.MapMode.READ_ONLY, idStart, idBytes);
        records = ch.map(FileChannel.MapMode.READ_ONLY, recordStart, recordBytes);
      } catch (EOFException e) {
        throw new BadInput("truncated");
      }
      for (int b = 0; b < widths.length; b++) {
        if (widths[b] < 1 || widths[b] > 64 || shifts[b] < 0 || shifts[b] + widths[b] > 64) {
          throw new BadInput("bad band " + b + " (width " + widths[b] + ", shift " + shifts[b] + ")");
        }
      }
      for (int i = 0; i < n; i++) {
        if (numbers[i] < 1 || numbers[i] >= (1L << 48)) {
          throw new BadInput("bad image number " + numbers[i] + " at " + i);
        }
      }
    }
  }

  static long[] readLongs(DataInputStream in, int n) throws IOException {
    long[] out = new long[n];
    for (int i = 0; i < n; i++) out[i] = in.readLong();
    return out;
  }

  void checkEnds(long[] ends, String what) throws BadInput {
    long last = 0;
    for (int i = 0; i < ends.length; i++) {
      if (ends[i] < last) {
        throw new BadInput("bad " + what + " offsets at " + i);
      }
      last = ends[i];
    }
  }

  byte[] slice(ByteBuffer buf, long[] ends, int i) {
    int start = i == 0 ? 0 : (int) ends[i - 1];
    byte[] out = new byte[(int) ends[i] - start];
    ByteBuffer view = buf.duplicate();
    view.position(start);
    view.get(out);
    return out;
  }

  // --- the cells, in key order ----------------------------------------------------------

  static byte[] numberBytes(long number) {
    int size = Math.max((64 - Long.numberOfLeadingZeros(number) + 7) / 8, 1);
    byte[] out = new byte[size];
    for (int k = 0; k < size; k++) out[k] = (byte) (number >>> (8 * (size - 1 - k)));
    return out;
  }

  long writeBandCells(Tables out) throws IOException {
    long cells = 0;
    long[] keys = new long[n];
    int[] order = new int[n];
    byte[] row = new byte[3];
    for (int band = 0; band < widths.length; band++) {
      int width = widths[band];
      int top = 64 - shifts[band] - width;
      for (int i = 0; i < n; i++) {
        keys[i] = Long.rotateLeft(hashes[i], top);
        order[i] = i;
      }
      radixSort(keys, order);
      // Equal rotated hashes: the qualifiers then differ in the number bytes (compared as bytes).
      sortTies(keys, order, (a, b) -> Bytes.compareTo(numberBytes(numbers[a]), numberBytes(numbers[b])));
      for (int j = 0; j < n; j++) {
        long rotated = keys[j];
        long value = width == 64 ? rotated : rotated >>> (64 - width);
        long part = value >>> Math.max(width - rowBits, 0);
        row[0] = (byte) band;
        row[1] = (byte) (part >>> 8);
        row[2] = (byte) part;
        byte[] tail = numberBytes(numbers[order[j]]);
        byte[] qualifier = new byte[8 + tail.length];
        for (int k = 0; k < 8; k++) qualifier[k] = (byte) (rotated >>> (56 - 8 * k));
        System.arraycopy(tail, 0, qualifier, 8, tail.length);
        out.append(row, qualifier, bandTs, EMPTY);
        cells++;
      }
    }
    return cells;
  }

  long writeIdCells(Tables out) throws IOException {
    long[] keys = new long[n];
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      // bucket, then the id's first 6 bytes (zero-padded; ties settled on the whole id)
      long key = (long) buckets[i] << 48;
      int start = i == 0 ? 0 : (int) idEnds[i - 1];
      int len = (int) idEnds[i] - start;
      for (int k = 0; k < 6; k++) {
        key |= (long) (k < len ? ids.get(start + k) & 0xFF : 0) << (40 - 8 * k);
      }
      keys[i] = key;
      order[i] = i;
    }
    radixSort(keys, order);
    sortTies(keys, order, (a, b) -> Bytes.compareTo(slice(ids, idEnds, a), slice(ids, idEnds, b)));
    byte[] row = new byte[3];
    row[0] = 'i';
    long cells = 0;
    for (int j = 0; j < n; j++) {
      int i = order[j];
      if (j > 0 && keys[j] == keys[j - 1]
          && Arrays.equals(slice(ids, idEnds, i), slice(ids, idEnds, order[j - 1]))) {
        throw new IOException("id given twice in one load (" + Bytes.toStringBinary(slice(ids, idEnds, i)) + ")");
      }
      row[1] = (byte) (buckets[i] >>> 8);
      row[2] = (byte) buckets[i];
      out.append(row, slice(ids, idEnds, i), cellTs, Bytes.toBytes(numbers[i]));
      cells++;
    }
    return cells;
  }

  long writeRecordCells(Tables out) throws IOException {
    long[] keys = new long[n];
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      long block = Long.reverse(numbers[i] >>> 8) >>> 24; // 40 bits, bit-reversed
      keys[i] = block << 8 | (numbers[i] & 0xFF);
      order[i] = i;
    }
    radixSort(keys, order);
    byte[] row = new byte[6];
    row[0] = 'n';
    byte[] qualifier = new byte[1];
    long cells = 0;
    for (int j = 0; j < n; j++) {
      long key = keys[j];
      for (int k = 0; k < 5; k++) row[1 + k] = (byte) (key >>> (40 - 8 * k));
      qualifier[0] = (byte) key;
      out.append(row, qualifier, cellTs, slice(records, recordEnds, order[j]));
      cells++;
    }
    return cells;
  }

  /** Sorts keys as unsigned 64-bit numbers, carrying values along (LSD radix, 16-bit digits). */
  static void radixSort(long[] keys, int[] values) {
    int n = keys.length;
    long[] k2 = new long[n];
    int[] v2 = new int[n];
    int[] count = new int[65537];
    long[] ka = keys, kb = k2;
    int[] va = values, vb = v2;
    for (int shift = 0; shift < 64; shift += 16) {
      Arrays.fill(count, 0);
      for (int i = 0; i < n; i++) count[(int) ((ka[i] >>> shift) & 0xFFFF) + 1]++;
      boolean one = false;
      for (int d = 1; d <= 65536; d++) {
        if (count[d] == n) {
          one = true;
          break;
        }
      }
      if (one) continue; // every key has the same digit here
      for (int d = 0; d < 65536; d++) count[d + 1] += count[d];
      for (int i = 0; i < n; i++) {
        int p = count[(int) ((ka[i] >>> shift) & 0xFFFF)]++;
        kb[p] = ka[i];
        vb[p] = va[i];
      }
      long[] tk = ka; ka = kb; kb = tk;
      int[] tv = va; va = vb; vb = tv;
    }
    if (ka != keys) {
      System.arraycopy(ka, 0, keys, 0, n);
      System.arraycopy(va, 0, values, 0, n);
    }
  }

  interface IntComparator {
    int compare(int a, int b);
  }

  /** Within each run of equal keys, orders the values by `cmp`. */
  static void sortTies(long[] keys, int[] values, IntComparator cmp) {
    int n = keys.length;
    int a = 0;
    while (a < n) {
      int b = a + 1;
      while (b < n && keys[b] == keys[a]) b++;
      if (b - a > 1) {
        Integer[] run = new Integer[b - a];
        for (int k = a; k < b; k++) run[k - a] = values[k];
        Arrays.sort(run, (x, y) -> cmp.compare(x, y));
        for (int k = a; k < b; k++) values[k] = run[k - a];
      }
      a = b;
    }
  }

  // --- HFiles, one per region -----------------------------------------------------------

  /** The HFile writers of one table's family: a new file whenever a cell passes into the next
   * region (the table's region boundaries now; BulkLoadHFiles splits a file again if a region
   * split meanwhile). */
  static final class Tables {
    final TableName table;
    final byte[] family;
    final FileSystem fs;
    final Path familyDir;
    final Configuration conf;
    final byte[][] starts;
    final HFileContext context;
    final ColumnFamilyDescriptor descriptor;
    StoreFileWriter writer;
    int region = -1;
    int files;
    final List<Path> paths = new ArrayList<>();

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

    void append(byte[] row, byte[] qualifier, long ts, byte[] value) throws IOException {
      int r = region < 0 ? 0 : region;
      while (r + 1 < starts.length && Bytes.compareTo(row, starts[r + 1]) >= 0) r++;
      if (writer == null || r != region) {
        close();
        region = r;
        Path path = new Path(familyDir, String.format("region-%05d", r));
        writer = new StoreFileWriter.Builder(conf, CacheConfig.DISABLED, fs)
            .withFilePath(path)
            .withBloomType(descriptor.getBloomFilterType())
            .withFileContext(context)
            .build();
        paths.add(path);
        files++;
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

    void closeAll() throws IOException {
      close();
      // The next append (a later table section) must open a new file, in a later region.
      region = -1;
    }

    Map<byte[], List<Path>> familyDirs() {
      Map<byte[], List<Path>> out = new java.util.TreeMap<>(Bytes.BYTES_COMPARATOR);
      out.put(family, paths);
      return out;
    }

    long bytes() throws IOException {
      long total = 0;
      for (Path p : paths) total += fs.getFileStatus(p).getLen();
      return total;
    }
  }
}
