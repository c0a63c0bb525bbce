package phashdb.bulkload;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;

/**
 * The bulk load's input, the file phashdb.hbase.bulkload writes (its layout: BulkLoad's
 * comment), read and checked: the fixed-size part into arrays, the id and record bytes mapped.
 */
final class BulkInput {
  static final String MAGIC = "PHBULK3\n";
  static final int NUMBER_BYTES = 5;
  static final long MAX_NUMBER = (1L << (8 * NUMBER_BYTES)) - 1;

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
    }
    check();
  }

  /** The header's bands, the image numbers and the tags, each within its range. */
  void check() throws BadInput {
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
}
