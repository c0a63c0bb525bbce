package phashdb.bulkload;

/** The input file is not what phashdb.hbase.bulkload writes; the message says where. */
final class BadInput extends Exception {
  BadInput(String message) {
    super(message);
  }
}
