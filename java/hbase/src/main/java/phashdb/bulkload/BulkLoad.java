package phashdb.bulkload;

import java.io.IOException;
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
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
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
 *
 * <p>The parts: BulkInput reads and checks the input, Cells makes the cells in key order
 * (Sorting sorts them), Tables writes them as HFiles, one per region; this class drives them
 * and hands the files to HBase.
 */
public final class BulkLoad {
  static final byte[] BAND_FAMILY = Bytes.toBytes("b");
  static final byte[] RECORD_FAMILY = Bytes.toBytes("i");

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

  String run(Map<String, String> opts) throws Exception {
    long t0 = System.nanoTime();
    BulkInput input = new BulkInput();
    input.read(opts.get("input"));
    Cells cells = new Cells(input);
    long t1 = System.nanoTime();
    Configuration conf = configure(opts.get("zookeeper"));
    TableName bandTable = TableName.valueOf(opts.get("table"));
    TableName recordTable =
        TableName.valueOf(opts.getOrDefault("records", opts.get("table") + "_images"));
    String base = opts.containsKey("dir") ? opts.get("dir") : conf.get("hbase.fs.tmp.dir", "/tmp");
    Path dir = new Path(base, "phashdb-bulkload-" + UUID.randomUUID());
    FileSystem fs = dir.getFileSystem(conf);
    dir = fs.makeQualified(dir);
    int threads = Integer.parseInt(
        opts.getOrDefault("threads", "" + Runtime.getRuntime().availableProcessors()));
    String phases;
    long t2, t3;
    try (Connection conn = ConnectionFactory.createConnection(conf)) {
      Tables bands = new Tables(conn, bandTable, BAND_FAMILY, fs, new Path(dir, "bands"), conf);
      Tables recs = new Tables(conn, recordTable, RECORD_FAMILY, fs, new Path(dir, "records"), conf);
      long tc = System.nanoTime();
      // The ids first: their order finds ids given twice (the last one wins).
      int[] idOrder = cells.sortIds();
      long ts = System.nanoTime();
      long[] counts = write(cells, idOrder, bands, recs, threads);
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
      return String.format(
          "{\"images\": %d, \"cells\": %d, \"files\": %d, \"bytes\": %d, \"seconds\": "
              + "{\"read\": %.3f, %s, \"load\": %.3f}}",
          cells.n - cells.duplicates, Arrays.stream(counts).sum(),
          bands.paths.size() + recs.paths.size(), bytes, (t1 - t0) / 1e9, phases, (t3 - t2) / 1e9);
    } finally {
      if (!opts.containsKey("keep")) {
        fs.delete(dir, true);
      }
    }
  }

  /** HBase's configuration, the quorum `zk` (HOST:PORT, or null: hbase-site.xml's) reachable. */
  static Configuration configure(String zk) throws IOException {
    Configuration conf = HBaseConfiguration.create();
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
    return conf;
  }

  /** Every band and the record table at once, each its own HFiles; the cells written of each
   * (ids, records, then the bands in order). */
  static long[] write(Cells cells, int[] idOrder, Tables bands, Tables recs, int threads)
      throws Exception {
    long[] counts = new long[cells.widths.length + 2];
    ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
    try {
      List<Future<Long>> done = new ArrayList<>();
      done.add(pool.submit(() -> cells.writeIdCells(recs.cursor("ids"), idOrder)));
      done.add(pool.submit(() -> cells.writeRecordCells(recs.cursor("records"))));
      for (int b = 0; b < cells.widths.length; b++) {
        final int band = b;
        done.add(pool.submit(() -> cells.writeBand(bands.cursor("b" + band), band)));
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
    return counts;
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
}
