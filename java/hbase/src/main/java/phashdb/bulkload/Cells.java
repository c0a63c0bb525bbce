package phashdb.bulkload;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.hadoop.hbase.util.Bytes;

import static phashdb.bulkload.BulkInput.NUMBER_BYTES;
import static phashdb.bulkload.BulkInput.slice;
import static phashdb.bulkload.Sorting.radixSort;
import static phashdb.bulkload.Sorting.sortTies;

/**
 * The cells of one input, in key order, as phashdb/hbase/keys.py makes them: the id cells
 * (rows "i" + bucket), the record cells (rows "n" + block) and each band's cells. sortIds
 * first: it marks the ids given twice (all but the last), which the writers then leave out.
 */
final class Cells {
  static final int ID_BUCKET_BITS = 12;
  static final int LOW_BYTES = 2;

  // --- the input (BulkInput's, read only) ---
  final int n;
  final int[] widths;
  final int[] shifts;
  final int rowBits;
  final int maxEntries;
  final long[] tags;
  final long bandTs;
  final long cellTs;
  final long[] hashes;
  final long[] numbers;
  final byte[] added;
  final long[] idEnds;
  final ByteBuffer ids;
  final long[] recordEnds;
  final ByteBuffer records;
  // --- made here ---
  int[] buckets;
  boolean[] dropped;
  int duplicates;

  Cells(BulkInput in) {
    n = in.n;
    widths = in.widths;
    shifts = in.shifts;
    rowBits = in.rowBits;
    maxEntries = in.maxEntries;
    tags = in.tags;
    bandTs = in.bandTs;
    cellTs = in.cellTs;
    hashes = in.hashes;
    numbers = in.numbers;
    added = in.added;
    idEnds = in.idEnds;
    ids = in.ids;
    recordEnds = in.recordEnds;
    records = in.records;
  }

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
}
