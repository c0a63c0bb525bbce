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
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
 *   "PHBULK3\n"
 *   int32 n, int32 bands, int32 widths[bands], int32 shifts[bands], int32 row_bits
 *   int64 band cell timestamp, int64 timestamp of the other cells
 *   int32 entries per band cell at most, int32 tags, int64 tags[tags] (ascending)
 *   int32 length, ASCII: the records' `added` (then the records are made here from id and
 *         hash), or 0 (then the records are given at the end)
 *   int64 hashes[n], int64 image numbers[n]
 *   int64 id ends[n] (cumulative byte offsets), id bytes
 *   only when the records are given: int64 record ends[n] (cumulative), record bytes
 * </pre>
 *
 * All big-endian. Cells are made here: the id buckets (BLAKE2b, as keys.id_cell), and per band
 * the hashes rotated so the band's bits come first, radix-sorted, which is the band table's key
 * order: one cell per band value (more when it has more entries than a cell takes), its
 * images as entries, as keys.band_cells_many makes them. Of an id given twice, the last is loaded. The bands and the record table are written
 * in parallel (--threads, default the cores). Prints one JSON line (images, cells, files,
 * bytes, seconds) on success; "error: ..." on stderr and exit 1 on failure.
 *
 * <p>Usage: BulkLoad --input FILE --table T [--records R] [--zookeeper HOST:PORT] [--dir DIR]
 * [--threads N] [--keep] (R: the record table, default T_images, the old naming)
 */
public final class BulkLoad {
  static final byte[] BAND_FAMILY = Bytes.toBytes("b");
  static final byte[] RECORD_FAMILY = Bytes.toBytes("i");
  static final byte[] EMPTY = new byte[0];
  static final String MAGIC = "PHBULK3\n";
  static final int ID_BUCKET_BITS = 12;
  static final int NUMBER_BYTES = 5;
  static final long MAX_NUMBER = (1L << (8 * NUMBER_BYTES)) - 1;
  static final int LOW_BYTES = 2;

  // --- the input ---
  int n;
  int[] widths;
  int[] shifts;
  int rowBits;
  int maxEntries; // per band cell
  long[] tags; // of the band cells: the k-th cell of a band value has tags[k]
  long bandTs;
  long cellTs;
  long[] hashes;
  long[] numbers;
  byte[] added; // the records' `added` (Python's repr of a float), or empty: records given
  long[] idEnds;
  ByteBuffer ids;
  long[] recordEnds;
  ByteBuffer records;
  // --- made here ---
  int[] buckets;
  boolean[] dropped;
  int duplicates;

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
    } catch (OutOfMemoryError e) {
      fail("out of memory (" + e.getMessage() + "): give the loader more heap (PHASHDB_BULKLOAD_HEAP)");
    } catch (Throwable e) {
      fail(e instanceof IOException && e.getMessage() != null ? e.getMessage() : e.toString());
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
    checkZooKeeper(conf);
    TableName bandTable = TableName.valueOf(opts.get("table"));
    TableName recordTable =
        TableName.valueOf(opts.getOrDefault("records", opts.get("table") + "_images"));
    String base = opts.containsKey("dir") ? opts.get("dir") : conf.get("hbase.fs.tmp.dir", "/tmp");
    Path dir = new Path(base, "phashdb-bulkload-" + UUID.randomUUID());
    FileSystem fs = dir.getFileSystem(conf);
    dir = fs.makeQualified(dir);
    int threads = Integer.parseInt(
        opts.getOrDefault("threads", "" + Runtime.getRuntime().availableProcessors()));
    long[] counts = new long[widths.length + 2];
    String phases;
    long t2, t3;
    try (Connection conn = ConnectionFactory.createConnection(conf)) {
      Tables bands = new Tables(conn, bandTable, BAND_FAMILY, fs, new Path(dir, "bands"), conf);
      Tables recs = new Tables(conn, recordTable, RECORD_FAMILY, fs, new Path(dir, "records"), conf);
      long tc = System.nanoTime();
      // The ids first: their order finds ids given twice (the last one wins).
      int[] idOrder = sortIds();
      long ts = System.nanoTime();
      // Then every band and the record table at once, each its own HFiles.
      ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
      try {
        List<Future<Long>> done = new ArrayList<>();
        done.add(pool.submit(() -> writeIdCells(recs.cursor("ids"), idOrder)));
        done.add(pool.submit(() -> writeRecordCells(recs.cursor("records"))));
        for (int b = 0; b < widths.length; b++) {
          final int band = b;
          done.add(pool.submit(() -> writeBand(bands.cursor("b" + band), band)));
        }
        for (int k = 0; k < done.size(); k++) {
          try {
            counts[k] = done.get(k).get();
          } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof Exception ? (Exception) cause : new IOException(cause);
          }
        }
      } finally {
        pool.shutdownNow();
      }
      t2 = System.nanoTime();
      phases = String.format("\"connect\": %.3f, \"sort_ids\": %.3f, \"cells\": %.3f",
          (tc - t1) / 1e9, (ts - tc) / 1e9, (t2 - ts) / 1e9);
      // Measured before loading: HBase moves (not copies) HFiles staged on its own filesystem.
      long bytes = bands.bytes() + recs.bytes();
      // Records last: an image is visible once its record is, and its band cells are there.
      BulkLoadHFiles loader = BulkLoadHFiles.create(conf);
      if (!bands.paths.isEmpty()) {
        loader.bulkLoad(bandTable, bands.familyDirs());
      }
      if (!recs.paths.isEmpty()) {
        loader.bulkLoad(recordTable, recs.familyDirs());
      }
      t3 = System.nanoTime();
      long cells = Arrays.stream(counts).sum();
      return String.format(
          "{\"images\": %d, \"cells\": %d, \"files\": %d, \"bytes\": %d, \"seconds\": "
              + "{\"read\": %.3f, %s, \"load\": %.3f}}",
          n - duplicates, cells, bands.paths.size() + recs.paths.size(),
          bytes, (t1 - t0) / 1e9, phases, (t3 - t2) / 1e9);
    } finally {
      if (!opts.containsKey("keep")) {
        fs.delete(dir, true);
      }
    }
  }

  /** Fails at once, naming it, when no server of the ZooKeeper quorum accepts a connection
   * (HBase's client would retry for minutes). */
  static void checkZooKeeper(Configuration conf) throws IOException {
    String port = conf.get("hbase.zookeeper.property.clientPort", "2181");
    String quorum = conf.get("hbase.zookeeper.quorum", "localhost");
    List<String> tried = new ArrayList<>();
    for (String server : quorum.split(",")) {
      String host = server.trim();
      String p = port;
      int colon = host.lastIndexOf(':');
      if (colon > 0) {
        p = host.substring(colon + 1);
        host = host.substring(0, colon);
      }
      try (java.net.Socket socket = new java.net.Socket()) {
        socket.connect(new java.net.InetSocketAddress(host, Integer.parseInt(p)), 5000);
        return;
      } catch (IOException | NumberFormatException e) {
        tried.add(host + ":" + p + " (" + e.getMessage() + ")");
      }
    }
    throw new IOException("cannot reach the cluster's ZooKeeper at " + String.join(", ", tried)
        + ": name it in the index URL (?zookeeper=HOST:PORT) or put the cluster's hbase-site.xml"
        + " on the classpath (HBASE_CONF_DIR)");
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
        if (!new String(magic, StandardCharsets.US_ASCII).equals(MAGIC)) {
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
        maxEntries = in.readInt();
        int tagCount = in.readInt();
        if (maxEntries < 1 || tagCount < 1 || (long) tagCount * maxEntries < n) {
          throw new BadInput("bad header (" + tagCount + " tags of " + maxEntries + " entries)");
        }
        tags = readLongs(in, tagCount);
        int addedLength = in.readInt();
        if (addedLength < 0 || addedLength > 64) {
          throw new BadInput("bad header (added " + addedLength + " bytes)");
        }
        added = new byte[addedLength];
        in.readFully(added);
        long header = 8 + 4 + 4 + 8L * nb + 4 + 16 + 8 + 8L * tagCount + 4 + addedLength;
        long fixed = header + (8L + 8 + 8) * n;
        if (fixed > size) {
          throw new BadInput("truncated: " + size + " bytes, the header promises at least " + fixed);
        }
        hashes = readLongs(in, n);
        numbers = readLongs(in, n);
        idEnds = readLongs(in, n);
        checkEnds(idEnds, "id");
        long idBytes = n == 0 ? 0 : idEnds[n - 1];
        long recordEndsAt = fixed + idBytes;
        long end = recordEndsAt;
        if (addedLength == 0) { // the records are given
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
          long recordBytes = n == 0 ? 0 : recordEnds[n - 1];
          if (recordBytes > Integer.MAX_VALUE) {
            throw new BadInput("more than 2 GB of records: split the load");
          }
          end = recordEndsAt + 8L * n + recordBytes;
          if (end == size) {
            records = ch.map(FileChannel.MapMode.READ_ONLY, recordEndsAt + 8L * n, recordBytes);
          }
        }
        if (end != size) {
          throw new BadInput("size " + size + " bytes, expected " + end);
        }
        if (idBytes > Integer.MAX_VALUE) {
          throw new BadInput("more than 2 GB of ids: split the load");
        }
        ids = ch.map(FileChannel.MapMode.READ_ONLY, fixed, idBytes);
      } catch (EOFException e) {
        throw new BadInput("truncated");
      }
      for (int b = 0; b < widths.length; b++) {
        if (widths[b] < 1 || widths[b] > 64 || shifts[b] < 0 || shifts[b] + widths[b] > 64) {
          throw new BadInput("bad band " + b + " (width " + widths[b] + ", shift " + shifts[b] + ")");
        }
      }
      for (int i = 0; i < n; i++) {
        if (numbers[i] < 1 || numbers[i] > MAX_NUMBER) {
          throw new BadInput("bad image number " + numbers[i] + " at " + i);
        }
      }
      for (int k = 0; k < tags.length; k++) {
        if (tags[k] < 1 || tags[k] > MAX_NUMBER || k > 0 && tags[k] <= tags[k - 1]) {
          throw new BadInput("bad tag " + tags[k] + " (tags ascend, within image numbers)");
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

  static byte[] slice(ByteBuffer buf, long[] ends, int i) {
    int start = i == 0 ? 0 : (int) ends[i - 1];
    byte[] out = new byte[(int) ends[i] - start];
    ByteBuffer view = buf.duplicate();
    view.position(start);
    view.get(out);
    return out;
  }

  // --- the cells, in key order ----------------------------------------------------------

  /** The images in id-cell order (bucket, then id bytes); ids given twice marked dropped but
   * the last. */
  int[] sortIds() throws IOException {
    buckets = new int[n];
    dropped = new boolean[n];
    ThreadLocal<Blake2b> blake = ThreadLocal.withInitial(Blake2b::new);
    java.util.stream.IntStream.range(0, n).parallel().forEach(i -> {
      int start = i == 0 ? 0 : (int) idEnds[i - 1];
      buckets[i] = blake.get().digest16(ids, start, (int) idEnds[i] - start) >>> (16 - ID_BUCKET_BITS);
    });
    long[] keys = new long[n];
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      int start = i == 0 ? 0 : (int) idEnds[i - 1];
      int len = (int) idEnds[i] - start;
      // bucket, then the id's first 6 bytes (zero-padded; ties settled on the whole id)
      long key = (long) buckets[i] << 48;
      for (int k = 0; k < 6; k++) {
        key |= (long) (k < len ? ids.get(start + k) & 0xFF : 0) << (40 - 8 * k);
      }
      keys[i] = key;
      order[i] = i;
    }
    radixSort(keys, order);
    // Ties: by the whole id, then by position (so of equal ids the last comes last).
    sortTies(keys, order, (a, b) -> {
      int c = Bytes.compareTo(slice(ids, idEnds, a), slice(ids, idEnds, b));
      return c != 0 ? c : Integer.compare(a, b);
    });
    for (int j = 0; j + 1 < n; j++) {
      if (keys[j] == keys[j + 1]
          && Arrays.equals(slice(ids, idEnds, order[j]), slice(ids, idEnds, order[j + 1]))) {
        dropped[order[j]] = true;
        duplicates++;
      }
    }
    return order;
  }

  /** One band's cells: per band value, its images' entries sorted by rotated hash, at most
   * `maxEntries` to a cell (the k-th cell of a value tagged tags[k]). */
  long writeBand(Tables.Cursor out, int band) throws IOException {
    long[] keys = new long[n];
    int[] order = new int[n];
    int width = widths[band];
    int top = 64 - shifts[band] - width;
    for (int i = 0; i < n; i++) {
      keys[i] = Long.rotateLeft(hashes[i], top);
      order[i] = i;
    }
    radixSort(keys, order);
    int kept = 8 - width / 8; // bytes of the rotated hash stored: less the whole band bytes
    int entry = kept + NUMBER_BYTES;
    int lowBits = Math.max(width - rowBits, 0);
    byte[] row = new byte[3];
    row[0] = (byte) band;
    long cells = 0;
    int j = 0;
    while (j < n) {
      long value = width == 64 ? keys[j] : keys[j] >>> (64 - width);
      int end = j;
      while (end < n && (width == 64 ? keys[end] : keys[end] >>> (64 - width)) == value) end++;
      long part = value >>> lowBits;
      long low = value & ((1L << lowBits) - 1);
      row[1] = (byte) (part >>> 8);
      row[2] = (byte) part;
      int k = 0;
      for (int a = j; a < end; ) {
        byte[] buf = new byte[Math.min(end - a, maxEntries) * entry];
        int p = 0;
        int taken = 0;
        for (; a < end && taken < maxEntries; a++) {
          int i = order[a];
          if (dropped[i]) continue;
          long rotated = keys[a];
          for (int b = 8 - kept; b < 8; b++) buf[p++] = (byte) (rotated >>> (56 - 8 * b));
          long number = numbers[i];
          for (int b = 0; b < NUMBER_BYTES; b++) {
            buf[p++] = (byte) (number >>> (8 * (NUMBER_BYTES - 1 - b)));
          }
          taken++;
        }
        if (taken == 0) continue;
        if (k >= tags.length) {
          throw new IOException("too few tags for band " + band + " value " + value);
        }
        byte[] qualifier = new byte[LOW_BYTES + NUMBER_BYTES];
        qualifier[0] = (byte) (low >>> 8);
        qualifier[1] = (byte) low;
        for (int b = 0; b < NUMBER_BYTES; b++) {
          qualifier[LOW_BYTES + b] = (byte) (tags[k] >>> (8 * (NUMBER_BYTES - 1 - b)));
        }
        k++;
        out.append(row, qualifier, bandTs, p == buf.length ? buf : Arrays.copyOf(buf, p));
        cells++;
      }
      j = end;
    }
    out.close();
    return cells;
  }

  /** Id cells (rows "i" + bucket), in key order. */
  long writeIdCells(Tables.Cursor out, int[] idOrder) throws IOException {
    long cells = 0;
    byte[] row = new byte[3];
    row[0] = 'i';
    for (int j = 0; j < n; j++) {
      int i = idOrder[j];
      if (dropped[i]) continue;
      row[1] = (byte) (buckets[i] >>> 8);
      row[2] = (byte) buckets[i];
      out.append(row, slice(ids, idEnds, i), cellTs, Bytes.toBytes(numbers[i]));
      cells++;
    }
    out.close();
    return cells;
  }

  /** Record cells (rows "n" + block), in key order. */
  long writeRecordCells(Tables.Cursor out) throws IOException {
    long cells = 0;
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
    for (int j = 0; j < n; j++) {
      int i = order[j];
      if (dropped[i]) continue;
      long key = keys[j];
      for (int k = 0; k < 5; k++) row[1 + k] = (byte) (key >>> (40 - 8 * k));
      out.append(row, new byte[] {(byte) key}, cellTs, record(i));
      cells++;
    }
    out.close();
    return cells;
  }

  private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] NULLS = ",null,null,null,null,null,".getBytes(StandardCharsets.US_ASCII);

  /** The record cell's value: given, or made as phashdb/hbase/keys.py encode_record makes the
   * record of an image known only by id and hash (the ids are then plain ASCII, checked by
   * the writer of the input). */
  byte[] record(int i) {
    if (records != null) {
      return slice(records, recordEnds, i);
    }
    byte[] id = slice(ids, idEnds, i);
    byte[] out = new byte[id.length + 2 + 2 + 16 + 1 + NULLS.length + added.length + 2];
    int p = 0;
    out[p++] = '[';
    out[p++] = '"';
    System.arraycopy(id, 0, out, p, id.length);
    p += id.length;
    out[p++] = '"';
    out[p++] = ',';
    out[p++] = '"';
    long h = hashes[i];
    for (int k = 0; k < 16; k++) out[p++] = HEX[(int) (h >>> (60 - 4 * k)) & 0xF];
    out[p++] = '"';
    System.arraycopy(NULLS, 0, out, p, NULLS.length);
    p += NULLS.length;
    System.arraycopy(added, 0, out, p, added.length);
    p += added.length;
    out[p++] = ']';
    return Arrays.copyOf(out, p);
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

  /** One table's family: its region boundaries (now; BulkLoadHFiles splits a file again if a
   * region split meanwhile), its HFile settings, and the files written. */
  static final class Tables {
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
}
