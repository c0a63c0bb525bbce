package phashdb.hbase;

import java.io.IOException;
import java.util.Arrays;
import org.apache.hadoop.hbase.Cell;
import org.apache.hadoop.hbase.CellUtil;
import org.apache.hadoop.hbase.KeyValue;
import org.apache.hadoop.hbase.exceptions.DeserializationException;
import org.apache.hadoop.hbase.filter.FilterBase;

/**
 * The band table's search filter, run by the region servers: of a band cell's entries (see
 * phashdb/hbase/keys.py), it keeps those whose hash lies within a distance of the query, so a
 * probe sends back its matches instead of every image that shares the band value. The client
 * still measures every entry it gets: this filter only saves moving the others.
 *
 * <p>An entry is the hash's kept bytes (the rotated hash less its leading whole bytes of band
 * bits, which the key gives) and the image number. The client sends, per probe: the entry's
 * size, how many of its bytes are hash, the query's same bytes, and the distance left for them
 * (the radius less the distance of the bytes the key gives). Serialized form ({@link
 * #toByteArray}): size, kept, distance left (one byte each), then the query's kept bytes.
 *
 * <p>Deployed as a jar on the region servers' and Thrift servers' classpath (HBase's lib/, or
 * hbase.dynamic.jars.dir); without it phashdb measures every entry on the client.
 */
public final class HammingFilter extends FilterBase {
  private final int size;
  private final int kept;
  private final int left;
  private final long query;
  private byte[] matches; // the entries of the cell filterCell last included

  public HammingFilter(int size, int kept, int left, long query) {
    if (kept < 1 || kept > 8 || size < kept || left < 0) {
      throw new IllegalArgumentException(
          "HammingFilter: bad entry size " + size + ", kept " + kept + " or distance " + left);
    }
    this.size = size;
    this.kept = kept;
    this.left = left;
    this.query = query;
  }

  @Override
  public ReturnCode filterCell(Cell cell) throws IOException {
    byte[] a = cell.getValueArray();
    int from = cell.getValueOffset();
    int length = cell.getValueLength();
    byte[] out = new byte[length];
    int n = 0;
    for (int at = from, end = from + length - size + 1; at < end; at += size) {
      long h = 0;
      for (int i = 0; i < kept; i++) {
        h = h << 8 | (a[at + i] & 0xFF);
      }
      if (Long.bitCount(h ^ query) <= left) {
        System.arraycopy(a, at, out, n, size);
        n += size;
      }
    }
    if (n == 0) {
      matches = null;
      return ReturnCode.NEXT_COL;
    }
    matches = n == length ? null : Arrays.copyOf(out, n);
    return ReturnCode.INCLUDE;
  }

  @Override
  public Cell transformCell(Cell cell) throws IOException {
    if (matches == null) {
      return cell; // every entry matched
    }
    Cell out =
        new KeyValue(
            CellUtil.cloneRow(cell),
            CellUtil.cloneFamily(cell),
            CellUtil.cloneQualifier(cell),
            cell.getTimestamp(),
            KeyValue.Type.Put,
            matches);
    matches = null;
    return out;
  }

  @Override
  public byte[] toByteArray() {
    byte[] out = new byte[3 + kept];
    out[0] = (byte) size;
    out[1] = (byte) kept;
    out[2] = (byte) left;
    for (int i = 0; i < kept; i++) {
      out[3 + i] = (byte) (query >>> (8 * (kept - 1 - i)));
    }
    return out;
  }

  public static HammingFilter parseFrom(byte[] bytes) throws DeserializationException {
    if (bytes == null || bytes.length < 4 || bytes.length != 3 + (bytes[1] & 0xFF)) {
      throw new DeserializationException("HammingFilter: malformed serialized filter");
    }
    int kept = bytes[1] & 0xFF;
    long query = 0;
    for (int i = 0; i < kept; i++) {
      query = query << 8 | (bytes[3 + i] & 0xFF);
    }
    try {
      return new HammingFilter(bytes[0] & 0xFF, kept, bytes[2] & 0xFF, query);
    } catch (IllegalArgumentException e) {
      throw new DeserializationException(e.getMessage());
    }
  }

  @Override
  public String toString() {
    return "HammingFilter(size " + size + ", kept " + kept + ", within " + left + ")";
  }
}
