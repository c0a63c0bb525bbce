"""The embedded index's stored keys (descriptor.KEYS: an image's other hashes, kept in its
descriptor), kept in memory for `search_keys` and brought up to the database as the band
tables are (live.py): the rows added since (their seqs grow) and the removals logged since.

Few images have keys (transparent sources, framed or black-backed pictures): the database
finds them by a partial index (database.KEYED_INDEX: only rows whose descriptor is longer than a
keyless one), and a search scans their hashes (keyrows.near_keys, the definition itself).
"""

from __future__ import annotations

import numpy as np

from ..keyrows import key_rows, near_keys
from .database import KEYED, Database, as_text


class StoredKeys:
    """The keys of the images stored in database `db`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.data_version = None
        self.max_seq = self.removal_mark = 0
        self.by_seq: dict[int, tuple[str, bytes]] = {}  # seq -> (id, descriptor), keyed rows
        self.rows: tuple[list, list, np.ndarray] = ([], [], np.empty(0, np.uint64))

    def search(self, queries: np.ndarray, radius: int):
        """(query numbers, ids, key names, distances) of every key within `radius`."""
        self.catch_up()
        return near_keys(queries, radius, *self.rows)

    def catch_up(self) -> None:
        """Read the keyed rows added and the removals logged since last time (one snapshot)."""
        db = self.db
        version = db.data_version()
        if version == self.data_version:
            return
        with db.reading():
            rows = db.sql(
                f"SELECT seq, id, descriptor FROM images WHERE {KEYED} AND seq > ?",
                (self.max_seq,),
            ).fetchall()
            removals = db.sql(
                "SELECT n, seq FROM removals WHERE n > ? ORDER BY n", (self.removal_mark,)
            ).fetchall()
            last = db.sql("SELECT next FROM sequence").fetchone()[0] - 1
        self.data_version = version
        self.by_seq.update((seq, (as_text(id), d)) for seq, id, d in rows)
        for _, seq in removals:
            self.by_seq.pop(seq, None)
        if removals:
            self.removal_mark = removals[-1][0]
        self.max_seq = max(self.max_seq, last)
        if rows or removals:
            self.rows = key_rows(self.by_seq.values())
