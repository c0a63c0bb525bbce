"""The embedded index: a folder holding an SQLite database (the records, the truth) and a band
table file (the search structure, derived from the records and rebuilt when stale).

Why SQLite: it is in the standard library, gives several processes one consistent database
with atomic transactions (WAL: readers never block the writer nor see half a write), and loads
hundreds of thousands of rows a second. Band tables kept as SQLite rows answered a radius-8
query at 1M hashes slower than a numpy scan; as memory-mapped numpy counting-sort tables they
answer it in well under a millisecond and open in no time (see README, "Storage").

Rows get an ever-growing `seq` (never reused) and every deletion is logged in
`removals` by a trigger, so a process holding older tables catches up by reading the rows and
removals past the marks its tables were built at, instead of reloading everything.

The table file is tied to the database it was built from: a random `database_id` made with the
database, the marks, and the id of the row at the seq mark. A database deleted and made again,
or restored from a backup (its seqs given out again to other images), does not match, and the
tables are rebuilt from the database, as they are when the file is damaged (tables.py).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..bands import BandLayout
from ..errors import StoreError
from ..records import Image, file_fields
from ..tables import BandTables, Damaged, decode_ids, encode_ids, id_slices, scan

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
COLUMNS = "id, hash, path, size, mtime, width, height, added, descriptor, dev, ino, mtime_ns, digest"
# Columns added since the first layout, with their types: an older database gains them when
# opened (its rows keep NULL: no second stage, no file identity; see _add_columns).
ADDED_COLUMNS = {
    "descriptor": "BLOB", "dev": "INTEGER", "ino": "INTEGER", "mtime_ns": "INTEGER",
    "digest": "TEXT",
}  # fmt: skip
TABLES_FILE = "bands.bin"
# Rows added or removed since the tables were built are scanned on every query: past this many
# (or an eighth of the tables), the tables are rebuilt to include them.
REBUILD_AT = 20_000
DATABASE_FILE = "index.sqlite3"


def _signed(h: int) -> int:
    """SQLite integers are signed 64-bit: store the hash's bits as such."""
    return h - (1 << 64) if h >= 1 << 63 else h


def _image(row: Sequence) -> Image:
    return Image(
        _text(row[0]), row[1] & 0xFFFFFFFFFFFFFFFF, _text(row[2]), *row[3:9],
        *map(_unsigned, row[9:11]), *row[11:],
    )  # fmt: skip


# Device and inode numbers are unsigned 64-bit (overlay file systems use the top bits): stored
# as SQLite's signed integers as hashes are.
def _signed_or_none(n: int | None) -> int | None:
    return None if n is None else _signed(n)


def _unsigned(n: int | None) -> int | None:
    return None if n is None else n & 0xFFFFFFFFFFFFFFFF


# File names on Linux are bytes; Python gives a name that is not UTF-8 as a str with lone
# surrogates (os.fsdecode's surrogateescape), which SQLite's UTF-8 text cannot hold. Such an id
# or path is stored as a BLOB of the name's bytes, and read back into the same str: every other
# one stays TEXT, so a name is always stored one way and lookups by id match.
def _sql_text(s: str | None) -> str | bytes | None:
    if s is None or s.isascii():
        return s
    try:
        s.encode()
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape")


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "surrogateescape") if type(value) is bytes else value


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


class EmbeddedStore:
    """Storage of the embedded index in folder `path` (created when missing)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.url = str(self.path)
        self.home = self.path  # where local files of the index (the trash) go
        database = self.path / DATABASE_FILE
        self.read_only = database.exists() and not (
            os.access(self.path, os.W_OK) and os.access(database, os.W_OK)
        )
        try:
            if self.read_only:
                self._db = _open_read_only(database, busy_timeout)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(database, timeout=busy_timeout, isolation_level=None)
                _use_wal(self._db, busy_timeout)
                self._db.execute("PRAGMA synchronous=NORMAL")
                # REPLACE deletes the old row; only with this does that deletion fire the trigger.
                self._db.execute("PRAGMA recursive_triggers=ON")
                self._db.executescript(SCHEMA)
                _add_columns(self._db)
            # A read-only older database cannot gain the new columns: they read as NULL.
            have = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
            self._column = {c: c if c in have else f"NULL AS {c}" for c in COLUMNS.split(", ")}
            self._columns = ", ".join(self._column.values())
            self._counts_writes = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'writes'"
            ).fetchone() is not None
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the index at {self.path}: {_cause(e, self.path)}") from e
        if not self.read_only:
            _remove_stale_temporary_files(self.path)
        self._tables: BandTables | None = None
        self._tables_dirty = False  # built here, not yet saved
        self._tables_marks: dict = {}  # the seq and removal marks the tables were built at
        self._delta_keys = np.empty(0, np.int64)
        self._delta_hashes = np.empty(0, np.uint64)
        self._delta_ids: list[str] = []
        self._removed: set[int] = set()
        self._removed_sorted = np.empty(0, np.int64)
        self._max_seq = self._removal_mark = 0
        self._data_version = None
        self._in_transaction = False
        self._check_all = False
        self._load_problem: str | None = None  # why the saved tables were not used

    # --- settings -------------------------------------------------------------------------

    def read_settings(self) -> dict:
        rows = self._sql("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def write_settings(self, settings: dict) -> None:
        with self.exclusive():
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in settings.items()],
            )

    # --- decisions (pairs marked not duplicates) ------------------------------------------

    def decisions(self, ids: Iterable[str] | None) -> list[tuple[str, str, float]]:
        """(a, b, made) of every decision about any of `ids` (None: every decision)."""
        if ids is None:
            rows = self._sql("SELECT a, b, made FROM decisions").fetchall()
        else:
            ids, rows = [_sql_text(i) for i in ids], set()
            for lo in range(0, len(ids), 400):
                part = ids[lo : lo + 400]
                marks = ",".join("?" * len(part))
                rows.update(self._sql(
                    f"SELECT a, b, made FROM decisions WHERE a IN ({marks}) OR b IN ({marks})",
                    part + part,
                ).fetchall())  # fmt: skip
        return [(_text(a), _text(b), made) for a, b, made in rows]

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        with self.exclusive():
            self._db.executemany(
                "INSERT OR REPLACE INTO decisions (a, b, made) VALUES (?, ?, ?)",
                [(_sql_text(a), _sql_text(b), made) for a, b in pairs],
            )

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        with self.exclusive():
            cur = self._db.executemany(
                "DELETE FROM decisions WHERE a = ? AND b = ?",
                [(_sql_text(a), _sql_text(b)) for a, b in pairs],
            )
            return cur.rowcount

    # --- reads ----------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, radius: int, *, records: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances), one entry per (query, image) pair. The band tables are in memory: no
        record is read, so `records` is left as it is."""
        try:
            return self._search(queries, radius)
        except Damaged as e:
            self._damaged(e)
            return self._search(queries, radius)

    def _search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._refresh()
        queries = np.asarray(queries, dtype=np.uint64)
        q1, rows, d1 = self._tables.search(queries, radius)
        q2, drows, d2 = scan(self._delta_hashes, queries, radius)
        if len(self._removed_sorted):
            live = ~np.isin(self._tables.keys[rows], self._removed_sorted)
            q1, rows, d1 = q1[live], rows[live], d1[live]
            live = ~np.isin(self._delta_keys[drows], self._removed_sorted)
            q2, drows, d2 = q2[live], drows[live], d2[live]
        # Ids are made in the order the caller sorts answers in (query, then distance), so a
        # batch's many thousand strings are laid out in memory as they will be read.
        order = np.argsort(q1 << 8 | d1, kind="stable")
        q1, rows, d1 = q1[order], rows[order], d1[order]
        ids = np.empty(len(rows) + len(drows), dtype=object)
        ids[:] = self._tables.ids(rows) + [self._delta_ids[r] for r in drows.tolist()]
        return np.concatenate((q1, q2)), ids, np.concatenate((d1, d2))

    def hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, hashes) of every stored image."""
        try:
            self._refresh()
            _, hashes, blob, ends = self._live()
        except Damaged as e:
            self._damaged(e)
            _, hashes, blob, ends = self._live()
        ids = decode_ids(blob, np.diff(ends, prepend=0))
        return np.array(ids, dtype=object), hashes

    def _live(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, hashes, id blob, id ends) of the rows in the tables and the delta not removed."""
        t, dkeys = self._tables, self._delta_keys
        ends = t.id_ends
        if len(ends) and (ends[0] < 0 or ends[-1] > len(t.id_blob) or (np.diff(ends) < 0).any()):
            raise Damaged("the ids' ends are out of order or past the id blob")
        rows = np.arange(len(t))
        drows = np.arange(len(dkeys))
        if len(self._removed_sorted):
            rows = rows[~np.isin(t.keys, self._removed_sorted)]
            drows = drows[~np.isin(dkeys, self._removed_sorted)]
        blob, lengths = id_slices(t.id_blob, t.id_ends, rows)
        dblob, dends = encode_ids([self._delta_ids[r] for r in drows.tolist()])
        ends = np.concatenate((np.cumsum(lengths), dends + int(lengths.sum())))
        return (
            np.concatenate((t.keys[rows], dkeys[drows])),
            np.concatenate((t.hashes[rows], self._delta_hashes[drows])),
            np.concatenate((blob, dblob)),
            ends.astype(np.int64),
        )

    def find(self, ids: Iterable[str]) -> dict[str, Image]:
        """The stored Image of each id that is stored."""
        out = {}
        ids = list(ids)
        for lo in range(0, len(ids), 900):
            part = [_sql_text(i) for i in ids[lo : lo + 900]]
            marks = ",".join("?" * len(part))
            for row in self._sql(f"SELECT {self._columns} FROM images WHERE id IN ({marks})", part):
                image = _image(row)
                out[image.id] = image
        return out

    def images(self) -> Iterator[Image]:
        """Every stored image, in the order they were added."""
        for row in self._sql(f"SELECT {self._columns} FROM images ORDER BY seq"):
            yield _image(row)

    def descriptors(self) -> dict[str, bytes]:
        """The descriptor of every stored image that has one, by id (bare hashes not read)."""
        rows = self._sql("SELECT id, descriptor FROM images WHERE descriptor IS NOT NULL")
        return {_text(i): d for i, d in rows}

    def files(self, paths: Iterable[str] | None = None) -> dict[str, tuple]:
        """(size, mtime, dev, ino, mtime_ns) of each stored path among `paths`, looked up as ids
        (as ingest stores them); None: of every stored path. What resumable ingest compares
        against."""
        if paths is not None:
            return {i.path: file_fields(i) for i in self.find(paths).values() if i.path}
        names = ("path", "size", "mtime", "dev", "ino", "mtime_ns")
        what = ", ".join(self._column[c] for c in names) + " FROM images"
        rows = self._sql(f"SELECT {what} WHERE typeof(path) = 'text'")
        found = {p: (s, m, _unsigned(d), _unsigned(i), ns) for p, s, m, d, i, ns in rows}
        # Names that are not UTF-8 (see _sql_text) are few: read apart, the rest stays plain.
        for p, s, m, d, i, ns in self._sql(f"SELECT {what} WHERE typeof(path) = 'blob'"):
            found[_text(p)] = (s, m, _unsigned(d), _unsigned(i), ns)
        return found

    def describe(self) -> dict:
        """What `phashdb stats` shows of the storage."""
        self._refresh()
        disk = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        return {"backend": "embedded", "bands": list(self._tables.layout.widths), "disk_bytes": disk}

    def count(self) -> int:
        return self._sql("SELECT count(*) FROM images").fetchone()[0]

    # --- writes ---------------------------------------------------------------------------

    def put(self, images: Iterable[Image]) -> int:
        """Store images; an id already stored exactly so is left as it is, one stored with
        another hash or file is replaced. Returns how many rows were written."""
        now = time.time()
        images = list(images)
        with self.exclusive():
            first = self._take_seqs(len(images))
            rows = (
                (first + n, _sql_text(i.id), _signed(i.hash), _sql_text(i.path), i.size, i.mtime,
                 i.width, i.height, i.added or now, i.descriptor, _signed_or_none(i.dev),
                 _signed_or_none(i.ino), i.mtime_ns, i.digest)
                for n, i in enumerate(images)
            )
            return self._db.executemany(
                f"INSERT OR REPLACE INTO images (seq, {COLUMNS}) "
                "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 "
                "WHERE NOT EXISTS (SELECT 1 FROM images WHERE id = ?2 AND hash = ?3 "
                "AND path IS ?4 AND size IS ?5 AND mtime IS ?6 AND descriptor IS ?10 "
                "AND dev IS ?11 AND ino IS ?12 AND mtime_ns IS ?13 AND digest IS ?14)",
                rows,
            ).rowcount

    def put_hashes(self, ids: Sequence[str], hashes: np.ndarray) -> None:
        """Store (id, hash) pairs as `put` would, at bulk-load speed: a batch of ids not stored
        yet goes in with one plain INSERT, and the band tables take the new rows as they are
        instead of reading them back; a batch meeting a stored id falls back to `put`."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        with self.exclusive():
            self._catch_up()
            first = self._take_seqs(len(hashes))
            try:
                self._db.execute("SAVEPOINT bulk")
                self._db.executemany(
                    f"INSERT INTO images (seq, id, hash, added) VALUES (?, ?, ?, {time.time()!r})",
                    zip(
                        range(first, first + len(hashes)),
                        map(_sql_text, ids),
                        hashes.view(np.int64).tolist(),
                    ),
                )
                self._db.execute("RELEASE bulk")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK TO bulk")
                self._db.execute("RELEASE bulk")
                self.put(Image(i, h) for i, h in zip(ids, hashes.tolist()))
                return
            # We hold the write lock and were caught up: these are all the rows since.
            self._delta_keys = np.concatenate(
                (self._delta_keys, np.arange(first, first + len(hashes)))
            )
            self._delta_hashes = np.concatenate((self._delta_hashes, hashes))
            self._delta_ids.extend(ids)
            self._max_seq = first + len(hashes) - 1

    def _take_seqs(self, count: int) -> int:
        """Reserve `count` consecutive seqs (inside a write transaction); returns the first."""
        first = self._sql("SELECT next FROM sequence").fetchone()[0]
        self._sql("UPDATE sequence SET next = ?", (first + count,))
        return first

    def delete(self, ids: Iterable[str]) -> int:
        """Remove images by id; returns how many were stored."""
        with self.exclusive():
            cur = self._db.executemany(
                "DELETE FROM images WHERE id = ?", ((_sql_text(i),) for i in ids)
            )
            return cur.rowcount

    @contextmanager
    def claim(self, image: Image, radius: int):
        """Check-and-store as one step: the whole of it runs in one write transaction, so no
        other process can store a rival in between; there are never pending rivals."""
        with self.exclusive():
            yield []

    @contextmanager
    def exclusive(self):
        """One write transaction: no other process writes until it ends, and what is read
        inside it is the latest committed state. Nested uses join the outer transaction."""
        if self._in_transaction:
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
            raise StoreError(f"cannot write to the index at {self.path}: {_cause(e)}") from e
        self._in_transaction = True
        try:
            yield
            self._db.execute("UPDATE writes SET n = n + 1")
            self._db.execute("COMMIT")
        except BaseException as e:
            # SQLite rolls back by itself on some errors (a full disk): then there is no
            # transaction left to roll back, and the error to report is the first one.
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error as again:
                    log.warning("rolling back in %s failed too: %s", self.path, again)
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"cannot write to the index at {self.path}: {_cause(e)}") from e
            raise
        finally:
            self._in_transaction = False
            self._data_version = None  # our own commits do not change data_version

    def version(self) -> tuple | None:
        """A token that changes whenever what is stored changes, here or in another process,
        and stays the same across processes and reopenings while nothing is written: the
        database's id and its count of write transactions. None for an index made before that
        count and opened read-only (it cannot gain the table)."""
        if not self._counts_writes:
            return None
        with self._reading():
            return self._database_id(), self._sql("SELECT n FROM writes").fetchone()[0]

    @contextmanager
    def _reading(self):
        """One read transaction (a snapshot), unless inside a transaction already."""
        if self._in_transaction or self._db.in_transaction:
            yield
            return
        self._sql("BEGIN")
        try:
            yield
        finally:
            self._sql("COMMIT")

    def fsck(self, *, repair: bool = False) -> list[tuple[str, int]]:
        """SQLite's own integrity check (a write is all or nothing here, so there are no
        orphans to find), then the band tables read in full and compared with the database
        (rows, hashes, ids); `repair` rebuilds the tables from the database, the truth."""
        problems = [row[0] for row in self._sql("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StoreError(
                f"the database of the index at {self.path} is damaged: {'; '.join(problems[:5])} "
                "(the band tables cannot mend it: restore it from a backup, or save what is "
                "left with sqlite3's .recover)"
            )
        if repair:
            self._reload()
            self._save_tables(strict=True)
            return []
        self._tables, self._load_problem = None, None
        self._check_all = True  # read every byte of the table file, whatever it was before
        self._data_version = None
        self._refresh()
        if self._load_problem:
            raise StoreError(
                f"the band tables of the index at {self.path} were not usable: "
                f"{self._load_problem} (run phashdb fsck --repair to rebuild them)"
            )
        with self._reading():
            self._catch_up()
            keys, hashes, blob, ends = self._live()
            order = np.argsort(keys, kind="stable")
            keys, hashes = keys[order], hashes[order].view(np.int64)
            rows = self._sql("SELECT seq, hash, id FROM images ORDER BY seq")
            # Compared a piece at a time, ids as bytes: at 10M rows, all of them as Python
            # objects at once would take gigabytes.
            seen = differ = 0
            for piece in iter(lambda: rows.fetchmany(100_000), []):
                new = self._rows_array(piece)
                lo, hi = seen, min(seen + len(piece), len(keys))
                differ += len(piece) - (hi - lo)
                if hi > lo:
                    m = hi - lo
                    same = (keys[lo:hi] == new[:m, 0]) & (hashes[lo:hi] == new[:m, 1])
                    held, lengths = id_slices(blob, ends, order[lo:hi])
                    truth, truth_ends = encode_ids([_text(r[2]) for r in piece[:m]])
                    if not (
                        np.array_equal(lengths, np.diff(truth_ends, prepend=0))
                        and np.array_equal(held, truth)
                    ):
                        ids = decode_ids(held, lengths)
                        same &= np.array([a == _text(r[2]) for a, r in zip(ids, piece)], dtype=bool)
                    differ += int((~same).sum())
                seen += len(piece)
        differ += max(len(keys) - seen, 0)
        if differ:
            raise StoreError(
                f"the band tables of the index at {self.path} disagree with its database "
                f"({len(keys)} rows against {seen}, {differ} not the same): "
                "run phashdb fsck --repair to rebuild them from the database"
            )
        return []

    def close(self) -> None:
        if self._tables_dirty and not self._in_transaction and not self.read_only:
            self._save_tables()
        self._db.close()

    # --- keeping the band tables current -------------------------------------------------

    def _refresh(self) -> None:
        """Bring the band tables up to the database, rebuilding them if the delta grew large."""
        self._catch_up()
        # Scanning the delta costs a pass over it per query: fold it into the tables once it
        # is large against what a probe reads.
        stale = len(self._delta_keys) + len(self._removed)
        if stale > max(REBUILD_AT, len(self._tables) // 8):
            self._rebuild()

    def _catch_up(self) -> None:
        """Read the rows added and removed since the tables (and the delta) were made, as of
        one snapshot of the database."""
        version = self._sql("PRAGMA data_version").fetchone()[0]
        if self._tables is not None and version == self._data_version:
            return
        self._data_version = version
        with self._reading():
            if self._tables is None:
                self._load_tables()
            rows = self._sql(
                "SELECT seq, hash, id FROM images WHERE seq > ? ORDER BY seq", (self._max_seq,)
            ).fetchall()
            removals = self._sql(
                "SELECT n, seq FROM removals WHERE n > ? ORDER BY n", (self._removal_mark,)
            ).fetchall()
        if rows:
            new = self._rows_array(rows)
            self._delta_keys = np.concatenate((self._delta_keys, new[:, 0]))
            self._delta_hashes = np.concatenate((self._delta_hashes, new[:, 1].view(np.uint64)))
            self._delta_ids.extend(_text(r[2]) for r in rows)
            self._max_seq = int(new[-1, 0])
        if removals:
            self._removed.update(seq for _, seq in removals)
            self._removed_sorted = np.array(sorted(self._removed), dtype=np.int64)
            self._removal_mark = removals[-1][0]

    def _load_tables(self) -> None:
        """The saved tables if they are sound and were built from this database as it is;
        else tables rebuilt from the database (and saved on close)."""
        file = self.path / TABLES_FILE
        check_all, self._check_all = self._check_all, False
        if not file.exists():
            self._empty_tables()
            return
        try:
            tables, marks = BandTables.load(file, check_all=check_all)
            why = self._mismatch(marks)
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = f"{file} is unreadable or damaged ({e})"
        if why is None:
            self._empty_tables()
            self._tables = tables
            self._max_seq, self._removal_mark = marks["max_seq"], marks["removal_mark"]
            return
        log.warning("rebuilding the band tables from the database: %s", why)
        self._load_problem = why
        self._reload()

    def _mismatch(self, marks: dict) -> str | None:
        """Why tables saved with `marks` do not fit this database as it is now (None if they do)."""
        max_seq, removal_mark = marks["max_seq"], marks["removal_mark"]
        if marks.get("database_id") != self._database_id():
            return f"{TABLES_FILE} was built from another database"
        next_seq = self._sql("SELECT next FROM sequence").fetchone()[0]
        row = self._sql("SELECT id FROM images WHERE seq = ?", (max_seq,)).fetchone()
        if row is None and marks["last_id"] is not None:
            gone = self._sql(
                "SELECT 1 FROM removals WHERE seq = ? AND n > ?", (max_seq, removal_mark)
            ).fetchone()
            row = (marks["last_id"],) if gone else None
        removal = self._sql("SELECT seq FROM removals WHERE n = ?", (removal_mark,)).fetchone()
        if (
            next_seq <= max_seq
            or (_text(row[0]) if row else None) != marks["last_id"]
            or (removal[0] if removal else None) != marks["removal_seq"]
        ):
            return (
                f"{TABLES_FILE} was built from another state of the database "
                "(restored from a backup?)"
            )
        return None

    def _database_id(self) -> str | None:
        row = self._sql("SELECT value FROM meta WHERE key = 'database_id'").fetchone()
        return json.loads(row[0]) if row else None

    def _empty_tables(self) -> None:
        self._tables = BandTables.build(
            np.empty(0, np.int64), np.empty(0, np.uint64), BandLayout.for_size(0),
            np.empty(0, np.uint8), np.empty(0, np.int64),
        )
        self._delta_keys = np.empty(0, np.int64)
        self._delta_hashes = np.empty(0, np.uint64)
        self._delta_ids = []
        self._removed.clear()
        self._removed_sorted = np.empty(0, np.int64)
        self._max_seq = self._removal_mark = 0

    def _reload(self) -> None:
        """Rebuild the tables from the database alone (one snapshot of it), to be saved."""
        with self._reading():
            self._empty_tables()
            self._max_seq = self._sql("SELECT next FROM sequence").fetchone()[0] - 1
            self._removal_mark = self._sql(
                "SELECT coalesce(max(n), 0) FROM removals"
            ).fetchone()[0]
            rows = self._sql("SELECT seq, hash, id FROM images ORDER BY seq").fetchall()
            self._data_version = self._sql("PRAGMA data_version").fetchone()[0]
        new = self._rows_array(rows)
        self._delta_keys = new[:, 0].copy()
        self._delta_hashes = new[:, 1].view(np.uint64)
        self._delta_ids = [_text(r[2]) for r in rows]
        self._rebuild()

    def _rows_array(self, rows: list) -> np.ndarray:
        """(seq, hash) rows as an n x 2 int64 array; rows that break the schema (as a damaged
        database page can give) are an error, not a wrong hash."""
        if all(type(r[1]) is int and type(r[2]) in (str, bytes) for r in rows):
            return np.array([r[:2] for r in rows], dtype=np.int64).reshape(-1, 2)
        raise StoreError(
            f"the database of the index at {self.path} is damaged: a row's hash or id is not "
            "what was stored (run phashdb fsck; restore it from a backup)"
        )

    def _rebuild(self) -> None:
        keys, hashes, blob, ends = self._live()
        self._tables = BandTables.build(keys, hashes, BandLayout.for_size(len(keys)), blob, ends)
        last_id = None
        if len(keys) and keys[-1] == self._max_seq:
            last_id = self._tables.ids(np.array([len(keys) - 1]))[0]
        removal = self._sql(
            "SELECT seq FROM removals WHERE n = ?", (self._removal_mark,)
        ).fetchone()
        self._tables_marks = {
            "max_seq": self._max_seq, "removal_mark": self._removal_mark,
            "database_id": self._database_id(), "last_id": last_id,
            "removal_seq": removal[0] if removal else None,
        }
        self._delta_keys = np.empty(0, np.int64)
        self._delta_hashes = np.empty(0, np.uint64)
        self._delta_ids = []
        self._removed.clear()
        self._removed_sorted = np.empty(0, np.int64)
        self._tables_dirty = True

    def _damaged(self, e: Exception) -> None:
        """Tables found damaged while in use: rebuilt from the database, never read further."""
        log.warning("rebuilding the band tables of %s from the database: %s", self.path, e)
        self._reload()

    def _save_tables(self, *, strict: bool = False) -> None:
        try:
            self._tables.save(self.path / TABLES_FILE, self._tables_marks)
            self._tables_dirty = False
        except OSError as e:
            cause = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "failed"
            message = f"saving the band tables in {self.path}: {cause} ({e})"
            if strict:
                self._tables_dirty = False  # said once, here: close() need not try again
                raise StoreError(message) from e
            # The tables are derived data: the next open rebuilds them from the records.
            log.warning("%s; they are rebuilt from the database when needed", message)

    def _sql(self, statement: str, params: Sequence = ()) -> _Rows:
        try:
            return _Rows(self._db.execute(statement, params), self.path)
        except sqlite3.Error as e:
            raise StoreError(f"the index at {self.path} failed: {_cause(e)}") from e


class _Rows:
    """A cursor whose reads raise StoreError: a damaged database page is found while rows are
    read, not when the statement starts."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor, self._path = cursor, path

    @contextmanager
    def _wrapped(self):
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"the index at {self._path} failed: {_cause(e)}") from e

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


def _remove_stale_temporary_files(folder: Path) -> None:
    """Temporary table files (name.PID.tmp) left by processes that died while writing them."""
    for tmp in folder.glob(f"{TABLES_FILE}*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-2])
            if pid <= 0:
                continue
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:
            continue  # alive, another user's


def _cause(e: Exception, folder: Path | None = None) -> str:
    """SQLite's message, with what it means when the disk is full (SQLite says "disk I/O
    error" when it cannot make its shared-memory file: the free space tells)."""
    text = str(e)
    full = "disk is full" in text or getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    if not full and folder is not None and "I/O error" in text:
        try:
            full = os.statvfs(folder).f_bavail == 0
        except OSError:
            pass
    return f"the disk is full ({text})" if full else text

