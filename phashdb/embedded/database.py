"""The embedded index's SQLite database: the records (the truth), its schema and how older
layouts are brought up to it, and its transactions.

Why SQLite: it is in the standard library, gives several processes one consistent database
with atomic transactions (WAL: readers never block the writer nor see half a write), and loads
hundreds of thousands of rows a second.

Rows get an ever-growing `seq` (never reused) and every deletion is logged in `removals` by a
trigger, so a process holding older band tables catches up by reading the rows and removals
past the marks its tables were built at (live.py), instead of reloading everything. A random
`database_id` is made with the database, so that tables built from another one are never used.
"""

from __future__ import annotations

import errno
import json
import logging
import operator
import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from ..descriptor import STORED_SIZE
from ..errors import StoreError
from ..records import Image

if TYPE_CHECKING:  # rows_array's; opening the database needs no numpy
    import numpy as np

log = logging.getLogger(__name__)


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    hash INTEGER NOT NULL,
    path TEXT, size INTEGER, mtime REAL, width INTEGER, height INTEGER,
    added REAL NOT NULL,
    descriptor BLOB,
    dev INTEGER, ino INTEGER, mtime_ns INTEGER, digest TEXT
);
CREATE TABLE IF NOT EXISTS removals (n INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL);
-- The next seq to give a row: seqs are never reused (band tables name rows by seq), and giving
-- them out here rather than by AUTOINCREMENT lets a bulk load know its rows' seqs up front.
CREATE TABLE IF NOT EXISTS sequence (next INTEGER NOT NULL);
INSERT INTO sequence SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM sequence);
-- Which database this is, so that band tables built from another one are never used.
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', '"' || lower(hex(randomblob(16))) || '"');
-- Pairs of ids the user said are not duplicates (a < b); kept when either image goes, so that
-- an image trashed and restored is still not a duplicate of the other.
CREATE TABLE IF NOT EXISTS decisions (
    a TEXT NOT NULL, b TEXT NOT NULL, made REAL NOT NULL, PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decisions_b ON decisions (b);
CREATE TRIGGER IF NOT EXISTS images_removed AFTER DELETE ON images
    BEGIN INSERT INTO removals (seq) VALUES (old.seq); END;
-- Write transactions ever committed (each adds one): the version that outlasts the process, so
-- that what is derived from the index (dedupe's groups, phashdb.group_cache) is kept on disk.
CREATE TABLE IF NOT EXISTS writes (n INTEGER NOT NULL);
INSERT INTO writes SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM writes);
"""
COLUMNS = (
    "id, hash, path, size, mtime, width, height, added, descriptor, dev, ino, mtime_ns, digest"
)
# Columns added since the first layout, with their types: an older database gains them when
# opened (its rows keep NULL: no second stage, no file identity; see _add_columns).
ADDED_COLUMNS = {
    "descriptor": "BLOB", "dev": "INTEGER", "ino": "INTEGER", "mtime_ns": "INTEGER",
    "digest": "TEXT",
}  # fmt: skip
DATABASE_FILE = "index.sqlite3"
# The rows holding keys (phashdb.descriptor: longer than a keyless descriptor), found by a
# partial index (keys.py reads them): made when the database is opened to write, which makes
# an older index's in one pass; queries must write the WHERE so for SQLite to use it.
KEYED = f"length(descriptor) > {STORED_SIZE}"
KEYED_INDEX = f"CREATE INDEX IF NOT EXISTS images_keyed ON images (seq) WHERE {KEYED}"


def signed(h: int) -> int:
    """SQLite integers are signed 64-bit: store the hash's bits as such."""
    return h - (1 << 64) if h >= 1 << 63 else h


def image_of(row: Sequence) -> Image:
    return Image(
        as_text(row[0]), row[1] & 0xFFFFFFFFFFFFFFFF, as_text(row[2]), *row[3:9],
        *map(unsigned, row[9:11]), *row[11:],
    )  # fmt: skip


# Device and inode numbers are unsigned 64-bit (overlay file systems use the top bits): stored
# as SQLite's signed integers as hashes are.
def signed_or_none(n: int | None) -> int | None:
    return None if n is None else signed(n)


def unsigned(n: int | None) -> int | None:
    return None if n is None else n & 0xFFFFFFFFFFFFFFFF


# File names on Linux are bytes; Python gives a name that is not UTF-8 as a str with lone
# surrogates (os.fsdecode's surrogateescape), which SQLite's UTF-8 text cannot hold. Such an id
# or path is stored as a BLOB of the name's bytes, and read back into the same str: every other
# one stays TEXT, so a name is always stored one way and lookups by id match.
def sql_text(s: str | None) -> str | bytes | None:
    if s is None or s.isascii():
        return s
    try:
        s.encode()
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape")


def as_text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "surrogateescape") if type(value) is bytes else value


# The page size of databases made from now on (an older one keeps its own: SQLite reads any).
# A bulk load's CPU went 17% down from 4 KiB (fewer B-tree pages to split and balance, WAL
# frames to write and copy back, system calls); a one-image write costs ~0.25 ms more CPU,
# 1,200 lookups ~3 ms. The WAL is copied back into the database past WAL_BYTES, as SQLite's
# default of 1,000 pages did at 4 KiB, not 64 MB on disk.
PAGE_SIZE = 65_536
WAL_BYTES = 4 << 20

# Rows a bulk INSERT statement holds: 3 parameters each, within SQLite's oldest limit of
# 999 parameters a statement (3.32 raised it to 32,766); more gained nothing measurable.
BULK_ROWS = 333


def _insert_statement(rows: int, added: float) -> str:
    """An INSERT of `rows` rows whose parameters are their seqs, then ids, then hashes."""
    values = ",".join(f"(?{k},?{k + rows},?{k + 2 * rows},{added!r})" for k in range(1, rows + 1))
    return f"INSERT INTO images (seq, id, hash, added) VALUES {values}"


def _add_columns(db: sqlite3.Connection) -> None:
    """Indexes made before the second stage lack the descriptor column, and before file
    identity its columns: add them (their rows keep NULL: matched by the plain threshold, their
    files checked by size and mtime). Of processes opening one at once, all but the first find
    them added."""
    have = {row[1] for row in db.execute("PRAGMA table_info(images)")}
    for name, kind in ADDED_COLUMNS.items():
        if name in have:
            continue
        try:
            db.execute(f"ALTER TABLE images ADD COLUMN {name} {kind}")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise


def _use_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Put the database in WAL mode (a lasting property of the file). When several processes
    open a new index at once, SQLite can refuse the switch as locked at once, without waiting
    out its busy timeout (it would deadlock): so wait and try again here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Database:
    """The SQLite database of the embedded index in folder `path` (made when missing; opened
    read-only when the folder or the database may not be written)."""

    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self.path = path
        database = path / DATABASE_FILE
        self.read_only = database.exists() and not (
            os.access(path, os.W_OK) and os.access(database, os.W_OK)
        )
        try:
            self._db = self._connect(database, busy_timeout)
            # A read-only older database cannot gain the new columns: they read as NULL.
            have = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
            self.column = {c: c if c in have else f"NULL AS {c}" for c in COLUMNS.split(", ")}
            self.columns = ", ".join(self.column.values())
            self.counts_writes = (
                self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'writes'"
                ).fetchone()
                is not None
            )
        except (OSError, sqlite3.Error, UnicodeDecodeError) as e:
            raise StoreError(f"cannot open the index at {self.path}: {cause(e, self.path)}") from e
        self.in_transaction = False
        self._commits = 0  # write transactions committed through this connection

    def _connect(self, database: Path, busy_timeout: float) -> sqlite3.Connection:
        if self.read_only:
            return _open_read_only(database, busy_timeout)
        self.path.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(database, timeout=busy_timeout, isolation_level=None)
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a database made here; else nothing
        _use_wal(db, busy_timeout)
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute(f"PRAGMA wal_autocheckpoint={max(WAL_BYTES // page_size, 1)}")
        db.execute("PRAGMA synchronous=NORMAL")
        # REPLACE deletes the old row; only with this does that deletion fire the trigger.
        db.execute("PRAGMA recursive_triggers=ON")
        db.executescript(SCHEMA)
        _add_columns(db)
        db.execute(KEYED_INDEX)
        return db

    def sql(self, statement: str, params: Sequence = ()) -> Rows:
        """Run one statement; its errors, and those of reading its rows, are StoreErrors."""
        try:
            return Rows(self._db.execute(statement, params), self.path)
        except sqlite3.Error as e:
            raise StoreError(f"the index at {self.path} failed: {cause(e)}") from e

    def execute(self, statement: str, params: Sequence = ()) -> sqlite3.Cursor:
        """Run one statement inside `exclusive` (which wraps its errors), sqlite3's errors
        raised as they are (a caller may handle an IntegrityError)."""
        return self._db.execute(statement, params)

    def executemany(self, statement: str, rows) -> sqlite3.Cursor:
        """`execute` for many rows of parameters."""
        return self._db.executemany(statement, rows)

    @contextmanager
    def exclusive(self):
        """One write transaction: no other process writes until it ends, and what is read
        inside it is the latest committed state. Nested uses join the outer transaction."""
        if self.in_transaction:
            yield
            return
        if self.read_only:
            raise StoreError(
                f"the index at {self.path} is read-only: writing to it needs write permission "
                f"on the folder and on {DATABASE_FILE} (reading commands work as they are)"
            )
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the index at {self.path}: {cause(e)}") from e
        self.in_transaction = True
        try:
            yield
            self._db.execute("UPDATE writes SET n = n + 1")
            self._db.execute("COMMIT")
        except BaseException as e:
            self._roll_back()
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"cannot write to the index at {self.path}: {cause(e)}") from e
            raise
        finally:
            self.in_transaction = False
            self._commits += 1

    def _roll_back(self) -> None:
        # SQLite rolls back by itself on some errors (a full disk): then there is no
        # transaction left to roll back, and the error to report is the first one.
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as again:
                log.warning("rolling back in %s failed too: %s", self.path, again)

    @contextmanager
    def reading(self):
        """One read transaction (a snapshot), unless inside a transaction already."""
        if self.in_transaction or self._db.in_transaction:
            yield
            return
        self.sql("BEGIN")
        try:
            yield
        finally:
            self.sql("COMMIT")

    def data_version(self) -> tuple[int, int]:
        """Changes whenever what is stored may have changed: SQLite's data_version (commits
        of other connections), and our own commits (which it does not count)."""
        return self.sql("PRAGMA data_version").fetchone()[0], self._commits

    def take_seqs(self, count: int) -> int:
        """Reserve `count` consecutive seqs (inside a write transaction); returns the first."""
        first = self.sql("SELECT next FROM sequence").fetchone()[0]
        self.sql("UPDATE sequence SET next = ?", (first + count,))
        return first

    def insert_new(
        self, first: int, ids: list[str], hashes: np.ndarray, added: float
    ) -> tuple[list[str], np.ndarray]:
        """Insert rows of ids not stored yet (an IntegrityError if one is) and their hashes
        (uint64), with seqs from `first` on given in the ids' sorted order; returns the ids and
        hashes in that order.

        Why this shape: one INSERT per row spent half its time in SQLite's per-statement work
        and much of the rest in the UNIQUE index on ids, each row landing on another page of
        it. Rows go in BULK_ROWS to a statement, in the index's own order (a str sorts as its
        UTF-8 bytes, SQLite's BINARY order), so that a batch walks the id index once from left
        to right; the same rows, index and file format as before."""
        if any(map(operator.gt, ids, islice(ids, 1, None))):
            order = sorted(range(len(ids)), key=ids.__getitem__)
            ids, hashes = list(map(ids.__getitem__, order)), hashes[order]
        values = hashes.view("int64").tolist()  # signed, as `signed` makes them
        # All ASCII (a bulk load's ids are): no id need be looked at alone.
        text = ids if "".join(ids).isascii() else [sql_text(i) for i in ids]
        # A statement's parameters are its rows' seqs, then their ids, then their hashes:
        # three slices joined, not a Python loop over every value.
        seqs = range(first, first + len(ids))
        rows = [slice(at, at + BULK_ROWS) for at in range(0, len(ids), BULK_ROWS)]
        full = rows[:-1] if len(ids) % BULK_ROWS else rows
        self._db.executemany(
            _insert_statement(BULK_ROWS, added), ([*seqs[r], *text[r], *values[r]] for r in full)
        )
        if full is not rows:
            r = rows[-1]
            self._db.execute(
                _insert_statement(len(ids) % BULK_ROWS, added), [*seqs[r], *text[r], *values[r]]
            )
        return ids, hashes

    def database_id(self) -> str | None:
        row = self.sql("SELECT value FROM meta WHERE key = 'database_id'").fetchone()
        return json.loads(row[0]) if row else None

    def rows_array(self, rows: list) -> np.ndarray:
        """(seq, hash, id) rows as an n x 2 int64 array of (seq, hash); rows that break the
        schema (as a damaged database page can give) are an error, not a wrong hash."""
        if all(type(r[1]) is int and type(r[2]) in (str, bytes) for r in rows):
            import numpy as np

            return np.array([r[:2] for r in rows], dtype=np.int64).reshape(-1, 2)
        raise StoreError(
            f"the database of the index at {self.path} is damaged: a row's hash or id is not "
            "what was stored (run phashdb fsck; restore it from a backup)"
        )

    def check_integrity(self) -> None:
        """SQLite's own integrity check: a StoreError saying what to do if it fails."""
        problems = [row[0] for row in self.sql("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StoreError(
                f"the database of the index at {self.path} is damaged: {'; '.join(problems[:5])} "
                "(the band tables cannot mend it: restore it from a backup, or save what is "
                "left with sqlite3's .recover)"
            )

    def close(self) -> None:
        self._db.close()


class Rows:
    """A cursor whose reads raise StoreError: a damaged database page is found while rows are
    read, not when the statement starts."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor, self._path = cursor, path

    @contextmanager
    def _wrapped(self):
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"the index at {self._path} failed: {cause(e)}") from e

    def fetchone(self):
        with self._wrapped():
            return self._cursor.fetchone()

    def fetchall(self) -> list:
        with self._wrapped():
            return self._cursor.fetchall()

    def fetchmany(self, size: int) -> list:
        with self._wrapped():
            return self._cursor.fetchmany(size)

    def __iter__(self):
        with self._wrapped():
            yield from self._cursor


def _open_read_only(database: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection to a database in a folder or file we may not write. In WAL mode
    SQLite reads through a shared-memory file it must create if missing: when it cannot, the
    database is opened as immutable (nothing can write it either: the folder is read-only)."""
    uri = database.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM meta").fetchone()
        return _descriptor_column_seen(db)
    except sqlite3.OperationalError:
        db.close()
    db = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=timeout, isolation_level=None)
    db.execute("SELECT count(*) FROM meta").fetchone()
    return _descriptor_column_seen(db)


def _descriptor_column_seen(db: sqlite3.Connection) -> sqlite3.Connection:
    """An index made before the second stage, opened read-only, cannot be given the descriptor
    column: a temporary view (of this connection only; the temp schema is searched first)
    shows its rows with a NULL one, as the added column would."""
    if "descriptor" not in {row[1] for row in db.execute("PRAGMA main.table_info(images)")}:
        db.execute("CREATE TEMP VIEW images AS SELECT *, NULL AS descriptor FROM main.images")
    return db


def cause(e: Exception, folder: Path | None = None) -> str:
    """SQLite's message, with what it means when the disk is full (SQLite says "disk I/O
    error" when it cannot make its shared-memory file: the free space tells)."""
    if isinstance(e, UnicodeDecodeError):
        # sqlite3 could not decode SQLite's message: it quotes bytes of a damaged schema.
        return f"the database is damaged (SQLite's message about it is not UTF-8: {e})"
    message = str(e)
    full = "disk is full" in message or getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    if not full and folder is not None and "I/O error" in message:
        try:
            full = os.statvfs(folder).f_bavail == 0
        except OSError:
            pass
    return f"the disk is full ({message})" if full else message
