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
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .bands import BandLayout
from .errors import StoreError
from .records import Image
from .tables import BandTables, decode_ids, encode_ids, id_slices, scan

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    hash INTEGER NOT NULL,
    path TEXT, size INTEGER, mtime REAL, width INTEGER, height INTEGER,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS removals (n INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL);
-- The next seq to give a row: seqs are never reused (band tables name rows by seq), and giving
-- them out here rather than by AUTOINCREMENT lets a bulk load know its rows' seqs up front.
CREATE TABLE IF NOT EXISTS sequence (next INTEGER NOT NULL);
INSERT INTO sequence SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM sequence);
-- Pairs of ids the user said are not duplicates (a < b); kept when either image goes, so that
-- an image trashed and restored is still not a duplicate of the other.
CREATE TABLE IF NOT EXISTS decisions (
    a TEXT NOT NULL, b TEXT NOT NULL, made REAL NOT NULL, PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decisions_b ON decisions (b);
CREATE TRIGGER IF NOT EXISTS images_removed AFTER DELETE ON images
    BEGIN INSERT INTO removals (seq) VALUES (old.seq); END;
"""
COLUMNS = "id, hash, path, size, mtime, width, height, added"
TABLES_FILE = "bands.bin"
# Rows added or removed since the tables were built are scanned on every query: past this many
# (or an eighth of the tables), the tables are rebuilt to include them.
REBUILD_AT = 20_000
DATABASE_FILE = "index.sqlite3"


def _signed(h: int) -> int:
    """SQLite integers are signed 64-bit: store the hash's bits as such."""
    return h - (1 << 64) if h >= 1 << 63 else h


def _image(row: Sequence) -> Image:
    return Image(row[0], row[1] & 0xFFFFFFFFFFFFFFFF, *row[2:])


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
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path / DATABASE_FILE, timeout=busy_timeout, isolation_level=None
            )
            _use_wal(self._db, busy_timeout)
            self._db.execute("PRAGMA synchronous=NORMAL")
            # REPLACE deletes the old row; only with this does that deletion fire the trigger.
            self._db.execute("PRAGMA recursive_triggers=ON")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the index at {self.path}: {e}") from e
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
            return self._sql("SELECT a, b, made FROM decisions").fetchall()
        ids, out = list(ids), set()
        for lo in range(0, len(ids), 400):
            part = ids[lo : lo + 400]
            marks = ",".join("?" * len(part))
            out.update(self._sql(
                f"SELECT a, b, made FROM decisions WHERE a IN ({marks}) OR b IN ({marks})",
                part + part,
            ))  # fmt: skip
        return list(out)

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        with self.exclusive():
            self._db.executemany(
                "INSERT OR REPLACE INTO decisions (a, b, made) VALUES (?, ?, ?)",
                [(a, b, made) for a, b in pairs],
            )

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        with self.exclusive():
            cur = self._db.executemany("DELETE FROM decisions WHERE a = ? AND b = ?", pairs)
            return cur.rowcount

    # --- reads ----------------------------------------------------------------------------

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances), one entry per (query, image) pair."""
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
        self._refresh()
        _, hashes, blob, ends = self._live()
        ids = decode_ids(blob, np.diff(ends, prepend=0))
        return np.array(ids, dtype=object), hashes

    def _live(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, hashes, id blob, id ends) of the rows in the tables and the delta not removed."""
        t, dkeys = self._tables, self._delta_keys
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
            part = ids[lo : lo + 900]
            marks = ",".join("?" * len(part))
            for row in self._sql(f"SELECT {COLUMNS} FROM images WHERE id IN ({marks})", part):
                out[row[0]] = _image(row)
        return out

    def images(self) -> Iterator[Image]:
        """Every stored image, in the order they were added."""
        for row in self._sql(f"SELECT {COLUMNS} FROM images ORDER BY seq"):
            yield _image(row)

    def files(self) -> dict[str, tuple[int | None, float | None]]:
        """(size, mtime) of every stored path: what resumable ingest compares against."""
        rows = self._sql("SELECT path, size, mtime FROM images WHERE path IS NOT NULL")
        return {p: (s, m) for p, s, m in rows}

    def describe(self) -> dict:
        """What `phashdb stats` shows of the storage."""
        self._refresh()
        disk = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        return {"backend": "embedded", "bands": list(self._tables.layout.widths), "disk_bytes": disk}

    def count(self) -> int:
        return self._sql("SELECT count(*) FROM images").fetchone()[0]

    # --- writes ---------------------------------------------------------------------------

    def put(self, images: Iterable[Image]) -> None:
        """Store images; an id already stored exactly so is left as it is, one stored with
        another hash or file is replaced."""
        now = time.time()
        images = list(images)
        with self.exclusive():
            first = self._take_seqs(len(images))
            rows = (
                (first + n, i.id, _signed(i.hash), i.path, i.size, i.mtime, i.width, i.height,
                 i.added or now)
                for n, i in enumerate(images)
            )
            self._db.executemany(
                f"INSERT OR REPLACE INTO images (seq, {COLUMNS}) "
                "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 "
                "WHERE NOT EXISTS (SELECT 1 FROM images WHERE id = ?2 AND hash = ?3 "
                "AND path IS ?4 AND size IS ?5 AND mtime IS ?6)",
                rows,
            )

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
                    zip(range(first, first + len(hashes)), ids, hashes.view(np.int64).tolist()),
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
            cur = self._db.executemany("DELETE FROM images WHERE id = ?", ((i,) for i in ids))
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
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the index at {self.path}: {e}") from e
        self._in_transaction = True
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False
            self._data_version = None  # our own commits do not change data_version

    def fsck(self, *, repair: bool = False) -> list[tuple[str, int]]:
        """SQLite's own integrity check (a write is all or nothing here, so there are no
        orphans to find); `repair` also rebuilds the band tables from the records."""
        problems = [row[0] for row in self._sql("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StoreError(f"the index at {self.path} is damaged: {'; '.join(problems[:5])}")
        if repair:
            self._refresh()
            self._rebuild()
        return []

    def close(self) -> None:
        if self._tables_dirty and not self._in_transaction:
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
        """Read the rows added and removed since the tables (and the delta) were made."""
        version = self._sql("PRAGMA data_version").fetchone()[0]
        if self._tables is not None and version == self._data_version:
            return
        self._data_version = version
        if self._tables is None:
            self._load_tables()
        rows = self._sql(
            "SELECT seq, hash, id FROM images WHERE seq > ? ORDER BY seq", (self._max_seq,)
        ).fetchall()
        if rows:
            new = np.array([r[:2] for r in rows], dtype=np.int64)
            self._delta_keys = np.concatenate((self._delta_keys, new[:, 0]))
            self._delta_hashes = np.concatenate((self._delta_hashes, new[:, 1].view(np.uint64)))
            self._delta_ids.extend(r[2] for r in rows)
            self._max_seq = int(new[-1, 0])
        removals = self._sql(
            "SELECT n, seq FROM removals WHERE n > ? ORDER BY n", (self._removal_mark,)
        ).fetchall()
        if removals:
            self._removed.update(seq for _, seq in removals)
            self._removed_sorted = np.array(sorted(self._removed), dtype=np.int64)
            self._removal_mark = removals[-1][0]

    def _load_tables(self) -> None:
        file = self.path / TABLES_FILE
        if file.exists():
            try:
                tables, marks = BandTables.load(file)
                self._tables = tables
                self._max_seq, self._removal_mark = marks["max_seq"], marks["removal_mark"]
                return
            except (OSError, ValueError, KeyError) as e:
                log.warning("rebuilding the band tables: %s is unreadable (%s)", file, e)
        self._tables = BandTables.build(
            np.empty(0, np.int64), np.empty(0, np.uint64), BandLayout.for_size(0),
            np.empty(0, np.uint8), np.empty(0, np.int64),
        )

    def _rebuild(self) -> None:
        keys, hashes, blob, ends = self._live()
        self._tables = BandTables.build(keys, hashes, BandLayout.for_size(len(keys)), blob, ends)
        self._tables_marks = {"max_seq": self._max_seq, "removal_mark": self._removal_mark}
        self._delta_keys = np.empty(0, np.int64)
        self._delta_hashes = np.empty(0, np.uint64)
        self._delta_ids = []
        self._removed.clear()
        self._removed_sorted = np.empty(0, np.int64)
        self._tables_dirty = True

    def _save_tables(self) -> None:
        try:
            self._tables.save(self.path / TABLES_FILE, self._tables_marks)
            self._tables_dirty = False
        except OSError as e:
            # The tables are derived data: the next open rebuilds them from the records.
            log.warning("could not save the band tables in %s: %s", self.path, e)

    def _sql(self, statement: str, params: Sequence = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(statement, params)
        except sqlite3.Error as e:
            raise StoreError(f"the index at {self.path} failed: {e}") from e
