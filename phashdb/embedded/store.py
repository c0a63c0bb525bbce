"""The embedded index: a folder holding an SQLite database (the records, the truth:
database.py) and band table files (the search structures, derived from the records and kept
live beside them: live.py; the stored keys' in keys.py). This store joins them behind
phashdb.store.Store.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..records import Image
from .database import (
    COLUMNS,
    KEYED,
    Database,
    as_text,
    image_of,
    signed,
    signed_or_none,
    sql_text,
    unsigned,
)
from .folder import remove_stale_temporary_files

if TYPE_CHECKING:  # the band tables (numpy) are loaded on first need: see _live
    import numpy as np

    from .keys import StoredKeys
    from .live import LiveTables


class EmbeddedStore:
    """Storage of the embedded index in folder `path` (created when missing)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.url = str(self.path)
        self.home = self.path  # where local files of the index (the trash) go
        self._db = Database(self.path, busy_timeout=busy_timeout)
        self.read_only = self._db.read_only
        if not self.read_only:
            remove_stale_temporary_files(self.path)
        self._tables: LiveTables | None = None
        self._keys: StoredKeys | None = None

    @property
    def _live(self) -> LiveTables:
        """The band tables, made on first need: a store asked only about settings, files and
        records (a re-run's ingest, dedupe's kept groups) loads neither them nor numpy."""
        if self._tables is None:
            from .live import LiveTables

            self._tables = LiveTables(self._db)
        return self._tables

    # --- settings -------------------------------------------------------------------------

    def read_settings(self) -> dict:
        rows = self._db.sql("SELECT key, value FROM meta").fetchall()
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
            rows = self._db.sql("SELECT a, b, made FROM decisions").fetchall()
        else:
            ids, rows = [sql_text(i) for i in ids], set()
            for lo in range(0, len(ids), 400):
                part = ids[lo : lo + 400]
                marks = ",".join("?" * len(part))
                rows.update(self._db.sql(
                    f"SELECT a, b, made FROM decisions WHERE a IN ({marks}) OR b IN ({marks})",
                    part + part,
                ).fetchall())  # fmt: skip
        return [(as_text(a), as_text(b), made) for a, b, made in rows]

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        with self.exclusive():
            self._db.executemany(
                "INSERT OR REPLACE INTO decisions (a, b, made) VALUES (?, ?, ?)",
                [(sql_text(a), sql_text(b), made) for a, b in pairs],
            )

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        with self.exclusive():
            cur = self._db.executemany(
                "DELETE FROM decisions WHERE a = ? AND b = ?",
                [(sql_text(a), sql_text(b)) for a, b in pairs],
            )
            return cur.rowcount

    # --- reads ----------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, radius: int, *, records: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances), one entry per (query, image) pair. The band tables are in memory: no
        record is read, so `records` is left as it is."""
        return self._live.search(queries, radius)

    @property
    def _stored_keys(self) -> StoredKeys:
        """The stored keys' band tables, made on first need (as `_live`)."""
        if self._keys is None:
            from .keys import StoredKeys

            self._keys = StoredKeys(self._db)
        return self._keys

    def search_keys(
        self,
        queries: np.ndarray,
        radius: int,
        *,
        records: dict | None = None,
        names: frozenset[str] | None = None,
        reach: int | None = None,
    ):
        """Every stored key within `radius` of each query, and a wide key (WIDE_KEYS) up to
        `reach` when given, exactly: (query numbers, ids, key names, distances); only those
        named in `names` (None: all). The wide keys alone have tables of their own: with a
        reach, every key is searched within `radius` and the wide ones alone up to the reach,
        since one search of every key up to the reach (16) cost 75 times the radius-8 one at
        2M images with 9 keys each (31.6 against 0.42 ms) and most of a check at 10M. The
        keys' band tables are in memory (keys.py) and the ids of the images found read by
        seq: no record is read, so `records` is left as it is."""
        if reach is None or reach <= radius:
            return self._stored_keys.search(queries, radius, names)
        import numpy as np

        from ..confirm import WIDE_KEYS
        from ..descriptor import KEYS

        asked = frozenset(KEYS) if names is None else names
        near = self._stored_keys.search(queries, radius, asked - WIDE_KEYS)
        far = self._stored_keys.search(queries, reach, asked & WIDE_KEYS)
        return tuple(np.concatenate(p) for p in zip(near, far))

    def index_keys(self) -> int:
        """Nothing to do: the keys' band tables are built from the descriptors when first
        needed (found by the partial index the database gains when opened); how many images
        have keys."""
        return self._db.sql(f"SELECT count(*) FROM images WHERE {KEYED}").fetchone()[0]

    def hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, hashes) of every stored image."""
        import numpy as np

        from ..tables import Damaged, decode_ids

        try:
            self._live.refresh()
            _, hashes, blob, ends = self._live.live()
        except Damaged as e:
            self._live.damaged(e)
            _, hashes, blob, ends = self._live.live()
        ids = decode_ids(blob, np.diff(ends, prepend=0))
        return np.array(ids, dtype=object), hashes

    def find(self, ids: Iterable[str]) -> dict[str, Image]:
        """The stored Image of each id that is stored."""
        out = {}
        for row in self._rows(self._db.columns, ids):
            image = image_of(row)
            out[image.id] = image
        return out

    def _rows(self, what: str, ids: Iterable[str]) -> Iterator[tuple]:
        """The columns `what` of each stored image among `ids`, asked 900 ids at a time."""
        ids = list(ids)
        for lo in range(0, len(ids), 900):
            part = [sql_text(i) for i in ids[lo : lo + 900]]
            marks = ",".join("?" * len(part))
            yield from self._db.sql(f"SELECT {what} FROM images WHERE id IN ({marks})", part)

    def images(self) -> Iterator[Image]:
        """Every stored image, in the order they were added."""
        for row in self._db.sql(f"SELECT {self._db.columns} FROM images ORDER BY seq"):
            yield image_of(row)

    def descriptors(self) -> dict[str, bytes]:
        """The descriptor of every stored image that has one, by id (bare hashes not read)."""
        rows = self._db.sql("SELECT id, descriptor FROM images WHERE descriptor IS NOT NULL")
        return {as_text(i): d for i, d in rows}

    def files(self, paths: Iterable[str] | None = None) -> dict[str, tuple]:
        """(size, mtime, dev, ino, mtime_ns) of each stored path among `paths`, looked up as ids
        (as ingest stores them); None: of every stored path. What resumable ingest compares
        against."""
        names = ("path", "size", "mtime", "dev", "ino", "mtime_ns")
        if paths is not None:
            # These columns alone, not whole records: a re-run asks about every file it finds.
            rows = self._rows(", ".join(self._db.column[c] for c in names), paths)
            found = ((as_text(p), s, m, d, i, ns) for p, s, m, d, i, ns in rows)
            return {p: (s, m, unsigned(d), unsigned(i), ns) for p, s, m, d, i, ns in found if p}
        what = ", ".join(self._db.column[c] for c in names) + " FROM images"
        rows = self._db.sql(f"SELECT {what} WHERE typeof(path) = 'text'")
        found = {p: (s, m, unsigned(d), unsigned(i), ns) for p, s, m, d, i, ns in rows}
        # Names that are not UTF-8 (see sql_text) are few: read apart, the rest stays plain.
        for p, s, m, d, i, ns in self._db.sql(f"SELECT {what} WHERE typeof(path) = 'blob'"):
            found[as_text(p)] = (s, m, unsigned(d), unsigned(i), ns)
        return found

    def describe(self) -> dict:
        """What `phashdb stats` shows of the storage."""
        self._live.refresh()
        disk = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        bands = list(self._live.tables.layout.widths)
        return {"backend": "embedded", "bands": bands, "disk_bytes": disk}

    def count(self) -> int:
        return self._db.sql("SELECT count(*) FROM images").fetchone()[0]

    # --- writes ---------------------------------------------------------------------------

    def put(self, images: Iterable[Image]) -> int:
        """Store images; an id already stored exactly so is left as it is, one stored with
        another hash or file is replaced. Returns how many rows were written."""
        now = time.time()
        images = list(images)
        with self.exclusive():
            first = self._db.take_seqs(len(images))
            rows = (
                (
                    first + n,
                    sql_text(i.id),
                    signed(i.hash),
                    sql_text(i.path),
                    i.size,
                    i.mtime,
                    i.width,
                    i.height,
                    i.added or now,
                    i.descriptor,
                    signed_or_none(i.dev),
                    signed_or_none(i.ino),
                    i.mtime_ns,
                    i.digest,
                )
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
        import numpy as np

        hashes = np.asarray(hashes, dtype=np.uint64)
        with self.exclusive():
            self._live.catch_up()
            first = self._db.take_seqs(len(hashes))
            try:
                self._db.execute("SAVEPOINT bulk")
                ids, hashes = self._db.insert_new(first, ids, hashes, time.time())
                self._db.execute("RELEASE bulk")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK TO bulk")
                self._db.execute("RELEASE bulk")
                self.put(Image(i, h) for i, h in zip(ids, hashes.tolist()))
                return
            # We hold the write lock and were caught up: these are all the rows since.
            self._live.added(first, ids, hashes)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove images by id; returns how many were stored."""
        with self.exclusive():
            cur = self._db.executemany(
                "DELETE FROM images WHERE id = ?", ((sql_text(i),) for i in ids)
            )
            return cur.rowcount

    @contextmanager
    def claim(self, image: Image, radius: int):
        """Check-and-store as one step: the whole of it runs in one write transaction, so no
        other process can store a rival in between; there are never pending rivals."""
        with self.exclusive():
            yield []

    def exclusive(self):
        """One write transaction: no other process writes until it ends, and what is read
        inside it is the latest committed state. Nested uses join the outer transaction."""
        return self._db.exclusive()

    def version(self) -> tuple | None:
        """A token that changes whenever what is stored changes, here or in another process,
        and stays the same across processes and reopenings while nothing is written: the
        database's id and its count of write transactions. None for an index made before that
        count and opened read-only (it cannot gain the table)."""
        if not self._db.counts_writes:
            return None
        with self._db.reading():
            return self._db.database_id(), self._db.sql("SELECT n FROM writes").fetchone()[0]

    def fsck(self, *, repair: bool = False) -> list[tuple[str, int]]:
        """SQLite's own integrity check (a write is all or nothing here, so there are no
        orphans to find), then the band tables read in full and compared with the database
        (rows, hashes, ids); `repair` rebuilds the tables from the database, the truth."""
        self._db.check_integrity()
        keys = self._stored_keys
        for what, live in (
            ("band tables", self._live), ("keys", keys.tables), ("wide keys", keys.wide)
        ):  # fmt: skip
            if repair:
                live.reload()
                live.save(strict=True)
                continue
            live.forget()  # read every byte of the table file, whatever it was before
            live.refresh()
            if live.load_problem:
                raise StoreError(
                    f"the {what} of the index at {self.path} were not usable: "
                    f"{live.load_problem} (run phashdb fsck --repair to rebuild them)"
                )
            held, seen, differ = live.compare()
            if differ:
                raise StoreError(
                    f"the {what} of the index at {self.path} disagree with its database "
                    f"({held} rows against {seen}, {differ} not the same): "
                    "run phashdb fsck --repair to rebuild them from the database"
                )
        return []

    def close(self) -> None:
        keys = (self._keys.tables, self._keys.wide) if self._keys is not None else ()
        for live in (self._tables, *keys):
            if (
                live is not None
                and live.dirty
                and not self._db.in_transaction
                and not self.read_only
            ):
                live.save()
        self._db.close()
