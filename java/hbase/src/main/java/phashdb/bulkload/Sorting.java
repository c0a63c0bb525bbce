package phashdb.bulkload;

import java.util.Arrays;

/** The sorts of the bulk load: unsigned 64-bit keys carrying image positions along. */
final class Sorting {
  private Sorting() {}

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
}
