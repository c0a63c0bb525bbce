"""The embedded index's band tables (over the images' hashes, or the stored keys': rows.py)
kept live: loaded from their file when it fits the database, rows added and removed since
read as a delta, rebuilt when the delta grows large or the file is damaged, saved on close.

Band tables as SQLite rows answered a radius-8 query at 1M hashes slower than a numpy scan; as
memory-mapped counting-sort tables (phashdb.tables) they answer it in well under a millisecond
and open in no time. They are derived data: the database is the truth.

The table file is tied to the database it was built from: its `database_id`, the marks (the
last seq and removal read), the id of the row at the seq mark and the seq of the removal at the
removal mark. A database deleted and made again, or restored from a backup (its seqs given out
again to other images), does not match, and the tables are rebuilt from the database, as they
are when the file is damaged.
"""

from __future__ import annotations

import errno
import logging

import numpy as np

from ..bands import BandLayout
from ..errors import StoreError
from ..tables import (
    BandTables,
    Damaged,
    RowIds,
    decode_ids,
    encode_ids,
    join_rows,
    load,
    save,
    save_built,
    scan,
)
from .database import Database, as_text
from .rows import IMAGE_ROWS, Rows

log = logging.getLogger(__name__)

# Rows added or removed since the tables were built are scanned on every query, and read from
# the database again by every process that opens the index: past this many (or an eighth of the
# tables), the tables are rebuilt to include them (and saved on close). At 20,000 a small index
# never had a table file: each `check` read all of its rows (19,000: ~25 ms against ~2 ms from
# the file); building tables of a few thousand rows costs milliseconds.
REBUILD_AT = 1_000
# Tables of this many rows or more are built into their file a band at a time (and mapped from
# it) rather than whole in memory until close: ~72 bytes a row less memory for the build.
BUILD_INTO_FILE_AT = 1_000_000

Triples = tuple[np.ndarray, np.ndarray, np.ndarray]
# Below every seq: `kind.select` from here reads every row.
FIRST = -(2**63)


class LiveTables:
    """The band tables of the database `db` (kept in its folder) over rows of `kind` (one per
    image, or one per stored key: rows.py), with the rows added and removed since they were
    built; `rows` says what each of their rows stands for."""

    def __init__(self, db: Database, kind: Rows = IMAGE_ROWS) -> None:
        self.db = db
        self.kind = kind
        self.file = db.path / kind.file
        self.tables: BandTables | None = None
        self.rows: RowIds | None = None
        self.dirty = False  # built here, not yet saved
        self.marks: dict = {}  # the seq and removal marks the tables were built at
        self._forget_delta()
        self.max_seq = self.removal_mark = 0
        self.data_version = None
        self.check_all = False  # read every byte of the file on its next load
        self.load_problem: str | None = None  # why the saved tables were not used
        self.file_failed = False  # writing the table file failed: build in memory from now on

    def _forget_delta(self) -> None:
        # The rows added since the tables were built, a piece per batch read or written, ids
        # as bytes end to end: 10^8 of them as Python strings took 6 GB, and joining each
        # batch to all before it copied the delta a hundred times over.
        self.pieces: list[tuple[RowIds, np.ndarray]] = []
        self.delta_count = 0
        # Database rows read into the delta: more than its rows where few of them make a row
        # here (the wide keys': keys.py), and each process that opens the index reads them all
        # again until the tables are rebuilt past them.
        self.read_count = 0
        self.removed: set[int] = set()
        self.removed_sorted = np.empty(0, np.int64)

    # --- answers ---------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, radius: int, *, keys: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query numbers, ids, distances) of every live row within `radius` of each query;
        the rows' keys (int64) instead of their ids if `keys`."""
        try:
            return self._search(queries, radius, keys)
        except Damaged as e:
            self.damaged(e)
            return self._search(queries, radius, keys)

    def _search(self, queries: np.ndarray, radius: int, keys: bool) -> Triples:
        self.refresh()
        queries = np.asarray(queries, dtype=np.uint64)
        q1, rows, d1 = self.tables.search(queries, radius)
        delta, delta_hashes = self._delta()
        q2, drows, d2 = scan(delta_hashes, queries, radius)
        if len(self.removed_sorted):
            live = ~self._removed(self.rows.keys[rows])
            q1, rows, d1 = q1[live], rows[live], d1[live]
            live = ~self._removed(delta.keys[drows])
            q2, drows, d2 = q2[live], drows[live], d2[live]
        if keys:
            found = np.concatenate((self.rows.keys[rows], delta.keys[drows]))
            return np.concatenate((q1, q2)), found, np.concatenate((d1, d2))
        # Ids are made in the order the caller sorts answers in (query, then distance), so a
        # batch's many thousand strings are laid out in memory as they will be read.
        order = np.argsort(q1 << 8 | d1, kind="stable")
        q1, rows, d1 = q1[order], rows[order], d1[order]
        ids = np.empty(len(rows) + len(drows), dtype=object)
        ids[:] = self.rows.ids(rows) + delta.ids(drows)
        return np.concatenate((q1, q2)), ids, np.concatenate((d1, d2))

    def _removed(self, keys: np.ndarray) -> np.ndarray:
        """Whether the image of each row key was removed since the tables were built."""
        return np.isin(keys >> self.kind.shift, self.removed_sorted)

    def live(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, hashes, id blob, id ends) of the rows in the tables and the delta not removed."""
        parts = self._parts()
        joined = join_rows([rows for rows, _ in parts])
        hashes = np.concatenate([h for _, h in parts])
        return joined.keys, hashes, joined.id_blob, joined.id_ends

    def _parts(self) -> list[tuple[RowIds, np.ndarray]]:
        """`live`'s rows as pieces: the tables', then the delta's, without the removed rows."""
        self.rows.check()
        parts = [(self.rows, self.tables.hashes), *self.pieces]
        if len(self.removed_sorted):
            parts = [_without(rows, hashes, self._removed(rows.keys)) for rows, hashes in parts]
        return parts

    def _delta(self) -> tuple[RowIds, np.ndarray]:
        """The delta's rows and hashes, its pieces joined into one."""
        if len(self.pieces) != 1:
            joined = join_rows([rows for rows, _ in self.pieces])
            hashes = np.concatenate([h for _, h in self.pieces] or [np.empty(0, np.uint64)])
            self.pieces = [(joined, hashes)]
        return self.pieces[0]

    def _extend(self, keys: np.ndarray, hashes: np.ndarray, ids: list[str] | None) -> None:
        """Take rows (their keys, hashes and ids: None for tables that keep none) into the delta."""
        self.pieces.append((RowIds.of(keys, ids), np.ascontiguousarray(hashes, dtype=np.uint64)))
        self.delta_count += len(keys)

    def added(self, first: int, ids: list[str], hashes: np.ndarray) -> None:
        """Rows just written with seqs from `first` on, by a writer holding the write lock and
        caught up: taken into the delta as they are, not read back."""
        self._extend(np.arange(first, first + len(hashes)), hashes, ids)
        self.max_seq = first + len(hashes) - 1

    # --- keeping them current --------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the band tables up to the database, rebuilding them if the delta grew large."""
        self.catch_up()
        # Scanning the delta costs a pass over it per query: fold it into the tables once it
        # is large against what a probe reads.
        stale = max(self.delta_count, self.read_count) + len(self.removed)
        if stale > max(REBUILD_AT, len(self.tables) // 8):
            self.rebuild()

    def catch_up(self) -> None:
        """Read the rows added and removed since the tables (and the delta) were made, as of
        one snapshot of the database."""
        db = self.db
        version = db.data_version()
        if self.tables is not None and version == self.data_version:
            return
        self.data_version = version
        try:
            with db.reading():
                if self.tables is None:
                    self._load()
                found = db.sql(self.kind.select, (self.max_seq,))
                # A piece at a time (Rows.piece): with no table file, these are all the rows.
                for piece in iter(lambda: found.fetchmany(self.kind.piece), []):
                    self._extend(*self.kind.read(db, piece))
                    self.max_seq = piece[-1][0]
                    self.read_count += len(piece)
                removals = db.sql(
                    "SELECT n, seq FROM removals WHERE n > ? ORDER BY n", (self.removal_mark,)
                ).fetchall()
        except BaseException:
            self.forget()  # rows read in part: the next use loads the tables and reads again
            raise
        if removals:
            self.removed.update(seq for _, seq in removals)
            self.removed_sorted = np.array(sorted(self.removed), dtype=np.int64)
            self.removal_mark = removals[-1][0]

    def forget(self) -> None:
        """Drop the tables: the next use loads the file again, every byte of it checked."""
        self.tables, self.load_problem = None, None
        self.check_all = True
        self.data_version = None

    def _load(self) -> None:
        """The saved tables if they are sound and were built from this database as it is;
        else tables rebuilt from the database (and saved on close)."""
        check_all, self.check_all = self.check_all, False
        if not self.file.exists():
            self._empty()
            return
        try:
            tables, rows, marks = load(self.file, check_all=check_all)
            why = self._mismatch(marks)
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = f"{self.file} is unreadable or damaged ({e})"
        if why is None:
            self._empty()
            self.tables, self.rows = tables, rows
            self.max_seq, self.removal_mark = marks["max_seq"], marks["removal_mark"]
            return
        log.warning("rebuilding the band tables from the database: %s", why)
        self.load_problem = why
        self.reload()

    def _mismatch(self, marks: dict) -> str | None:
        """Why tables saved with `marks` do not fit this database as it is now (None if they do)."""
        sql = self.db.sql
        max_seq, removal_mark = marks["max_seq"], marks["removal_mark"]
        if marks.get("database_id") != self.db.database_id():
            return f"{self.file.name} was built from another database"
        next_seq = sql("SELECT next FROM sequence").fetchone()[0]
        row = sql("SELECT id FROM images WHERE seq = ?", (max_seq,)).fetchone()
        if row is None and marks["last_id"] is not None:
            gone = sql(
                "SELECT 1 FROM removals WHERE seq = ? AND n > ?", (max_seq, removal_mark)
            ).fetchone()
            row = (marks["last_id"],) if gone else None
        removal = sql("SELECT seq FROM removals WHERE n = ?", (removal_mark,)).fetchone()
        if (
            next_seq <= max_seq
            or (as_text(row[0]) if row else None) != marks["last_id"]
            or (removal[0] if removal else None) != marks["removal_seq"]
        ):
            return (
                f"{self.file.name} was built from another state of the database "
                "(restored from a backup?)"
            )
        return None

    def _empty(self) -> None:
        self.tables = BandTables.build(np.empty(0, np.uint64), BandLayout.for_size(0))
        self.rows = RowIds.of(np.empty(0, np.int64), [])
        self._forget_delta()
        self.max_seq = self.removal_mark = 0

    def reload(self) -> None:
        """Rebuild the tables from the database alone (one snapshot of it), to be saved."""
        db = self.db
        with db.reading():
            self._empty()
            self.max_seq = db.sql("SELECT next FROM sequence").fetchone()[0] - 1
            self.removal_mark = db.sql("SELECT coalesce(max(n), 0) FROM removals").fetchone()[0]
            found = db.sql(self.kind.select, (FIRST,))
            # A piece at a time (Rows.piece).
            for piece in iter(lambda: found.fetchmany(self.kind.piece), []):
                self._extend(*self.kind.read(db, piece))
            self.data_version = db.data_version()
        self.rebuild()

    def rebuild(self) -> None:
        """Fold the delta and the removals into new tables: when they are large and this
        process may write their file, built into it a band at a time and mapped from it; else
        built in memory (and saved on close)."""
        parts = self._parts()
        self._forget_delta()  # before building: `parts` is all it needs
        marks = self._marks(parts)
        into_file = self._into_file(sum(len(h) for _, h in parts))
        try:
            if into_file:
                self._build_into_file(parts, marks)
                return
            rows = join_rows([r for r, _ in parts])
            hashes = np.concatenate([h for _, h in parts])
            del parts
            self.tables = BandTables.build(hashes, BandLayout.for_size(len(hashes)))
        except OSError as e:
            if not into_file:
                self.forget()
                raise
            # Derived data, as on a failed save on close: built in memory, saved on close.
            log.warning("writing the band tables of %s failed (%s): built in memory", self.file, e)
            self.file_failed = True
            self.reload()
            return
        except BaseException:
            self.forget()  # the delta is gone: the next use loads the tables and reads it again
            raise
        self.rows, self.marks, self.dirty = rows, marks, True

    def _into_file(self, count: int) -> bool:
        """Whether tables of `count` rows are built into their file: large ones, by a process
        that may write it, outside a write transaction (whose rows could yet be rolled back)."""
        db = self.db
        return count >= BUILD_INTO_FILE_AT and not (
            db.read_only or db.in_transaction or self.file_failed
        )

    def _build_into_file(self, parts: list[tuple[RowIds, np.ndarray]], marks: dict) -> None:
        """Tables over `parts` written to their file a band at a time, then mapped from it: at
        10^8 rows the loading process peaked at 8.5 GB with the whole tables in memory."""
        hashes, rows = [h for _, h in parts], [r for r, _ in parts]
        parts.clear()  # the rows are freed as soon as they are written (save_built)
        self.tables = self.rows = None
        layout = BandLayout.for_size(sum(map(len, hashes)))
        save_built(self.file, hashes, layout, rows, marks)
        tables, rows, extra = load(self.file)
        if extra != marks:
            # Another process saved its tables over ours meanwhile: use its (checked as any).
            self.forget()
            self.catch_up()
            return
        self.tables, self.rows, self.marks, self.dirty = tables, rows, marks, False

    def _marks(self, parts: list[tuple[RowIds, np.ndarray]]) -> dict:
        """What tables over `parts` are saved with, to tell later whether they fit the database."""
        sql = self.db.sql
        last = next((rows for rows, _ in reversed(parts) if len(rows)), None)
        last_id = None
        if not self.kind.ids:
            # Not every image has rows here (an image without keys): its id is the database's.
            row = sql("SELECT id FROM images WHERE seq = ?", (self.max_seq,)).fetchone()
            last_id = as_text(row[0]) if row else None
        elif last is not None and last.keys[-1] == self.max_seq:
            last_id = last.ids(np.array([len(last) - 1]))[0]
        removal = sql("SELECT seq FROM removals WHERE n = ?", (self.removal_mark,)).fetchone()
        return {
            "max_seq": self.max_seq, "removal_mark": self.removal_mark,
            "database_id": self.db.database_id(), "last_id": last_id,
            "removal_seq": removal[0] if removal else None,
        }  # fmt: skip

    def damaged(self, e: Exception) -> None:
        """Tables found damaged while in use: rebuilt from the database, never read further."""
        log.warning("rebuilding the band tables of %s from the database: %s", self.db.path, e)
        self.reload()

    def save(self, *, strict: bool = False) -> None:
        """Write the tables to their file; a failure is logged (they are rebuilt from the
        records when needed) or, when `strict`, a StoreError."""
        if not self.dirty:
            return  # built into the file already
        try:
            save(self.file, self.tables, self.rows, self.marks)
            self.dirty = False
        except OSError as e:
            cause = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "failed"
            message = f"saving the band tables in {self.db.path}: {cause} ({e})"
            if strict:
                self.dirty = False  # said once, here: close() need not try again
                raise StoreError(message) from e
            # The tables are derived data: the next open rebuilds them from the records.
            log.warning("%s; they are rebuilt from the database when needed", message)

    def compare(self) -> tuple[int, int, int]:
        """The live rows compared with the database's, read in full: (rows held here, rows in
        the database, rows not the same: key, hash and id)."""
        db = self.db
        with db.reading():
            self.catch_up()
            keys, hashes, blob, ends = self.live()
            held = RowIds(keys, blob, ends)
            order = np.argsort(keys, kind="stable")
            keys, hashes = keys[order], hashes[order]
            found = db.sql(self.kind.select, (FIRST,))
            # Compared a piece at a time, ids as bytes: at 10M rows, all of them as Python
            # objects at once would take gigabytes.
            seen = differ = 0
            for piece in iter(lambda: found.fetchmany(100_000), []):
                new_keys, new_hashes, ids = self.kind.read(db, piece)
                # A piece's images come in seq order, their rows in any: sorted as `keys` are.
                by_key = np.argsort(new_keys, kind="stable")
                new_keys, new_hashes = new_keys[by_key], new_hashes[by_key]
                lo, hi = seen, min(seen + len(new_keys), len(keys))
                differ += len(new_keys) - (hi - lo)
                if hi > lo:
                    m = hi - lo
                    same = (keys[lo:hi] == new_keys[:m]) & (hashes[lo:hi] == new_hashes[:m])
                    truth = [""] * m if ids is None else [ids[i] for i in by_key[:m].tolist()]
                    same &= _same_ids(held, order[lo:hi], truth)
                    differ += int((~same).sum())
                seen += len(new_keys)
        return len(keys), seen, differ + max(len(keys) - seen, 0)


def _same_ids(held: RowIds, rows: np.ndarray, truth: list[str]) -> np.ndarray:
    """Whether each of `rows` holds the id of `truth` at its place: compared as bytes at once,
    one by one only when they differ."""
    blob, lengths = held.slices(rows)
    truth_blob, truth_ends = encode_ids(truth)
    if np.array_equal(lengths, np.diff(truth_ends, prepend=0)) and np.array_equal(blob, truth_blob):
        return np.ones(len(rows), dtype=bool)
    return np.array([a == b for a, b in zip(decode_ids(blob, lengths), truth)], dtype=bool)


def _without(rows: RowIds, hashes: np.ndarray, removed: np.ndarray) -> tuple[RowIds, np.ndarray]:
    """The rows (and their hashes) not `removed` (a bool per row)."""
    kept = np.flatnonzero(~removed)
    blob, lengths = rows.slices(kept)
    return RowIds(rows.keys[kept], blob, np.cumsum(lengths, dtype=np.int64)), hashes[kept]
