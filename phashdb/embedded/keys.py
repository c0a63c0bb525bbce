"""The embedded index's stored keys (descriptor.KEYS: an image's other hashes, kept in its
descriptor) for `search_keys`: band tables over the keys' hashes, a row per key, kept live,
saved and checked against the database exactly as the images' band tables are (live.py), in
their own file beside them (`KEYS_FILE`).

Nearly every image keeps keys since the windows (phashdb.windows: 5-9 each), so holding the keyed
rows' descriptors in memory and scanning every key's hash no longer did: at 1M images that was
~850 MB read at the first key search of every process. A table row holds only what a search
needs: the key's hash, and its image's seq and name byte (its row key: seq << 8 | name byte).
The ids of the few images found are read from the database afterwards, by seq.

The wide keys (confirm.WIDE_KEYS) are searched up to the reach (16), every other key within
the threshold (8): their rows are kept again in tables of their own (`WIDE_KEYS_FILE`), since
a radius-16 search of every key cost 75 times a radius-8 one at 2M images with 9 keys each
(31.6 against 0.42 ms), and the wide keys are a few images' (renderings of transparent or boxed
artwork). Any other choice of names is answered from the tables of every key, filtered.
"""

from __future__ import annotations

import numpy as np

from ..confirm import WIDE_KEYS
from ..descriptor import KEYS, key_rows
from .database import KEYED, Database, as_text
from .folder import KEYS_FILE, WIDE_KEYS_FILE
from .live import LiveTables
from .rows import Rows

# A row key's low byte is its key's place in KEYS + 1 (a window's in either stored form:
# descriptor.KEY_CODES), the rest its image's seq.
SHIFT = 8
NAME_BYTE = (1 << SHIFT) - 1
# The keyed rows are found by a partial index (database.KEYED_INDEX) in seq order.
SELECT = f"SELECT seq, id, descriptor FROM images WHERE {KEYED} AND seq > ? ORDER BY seq"
# The name bytes of the wide keys.
WIDE_BYTES = np.array(sorted(KEYS.index(name) + 1 for name in WIDE_KEYS), np.int64)
# Seqs looked up at once (SQLite's limit on a statement's parameters was 999 before 3.32).
LOOKUP = 900


def _key_rows(db: Database, rows: list) -> tuple[np.ndarray, np.ndarray, None]:
    """(seq, id, descriptor) rows: one table row per stored key (descriptor.stored_keys), read
    from the descriptors' bytes at once rather than key by key (descriptor.key_rows)."""
    at, codes, hashes = key_rows([d for _, _, d in rows])
    seqs = np.fromiter((r[0] for r in rows), np.int64, len(rows))[at]
    return seqs << SHIFT | codes, hashes, None


# Read 100,000 descriptors at a time when rebuilding: with 9 keys each (~850 bytes in layout
# v3, ~560 in v4), a million at once, as the images' rows are read, would hold ~850 MB of
# descriptors.
KEY_ROWS = Rows(KEYS_FILE, SELECT, _key_rows, shift=SHIFT, ids=False, piece=100_000)


def _wide_key_rows(db: Database, rows: list) -> tuple[np.ndarray, np.ndarray, None]:
    """`_key_rows` of the wide keys alone (their name byte in `WIDE_BYTES`)."""
    keys, hashes, _ = _key_rows(db, rows)
    wide = np.isin(keys & NAME_BYTE, WIDE_BYTES)
    return keys[wide], hashes[wide], None


WIDE_KEY_ROWS = Rows(WIDE_KEYS_FILE, SELECT, _wide_key_rows, shift=SHIFT, ids=False, piece=100_000)


class StoredKeys:
    """The keys of the images stored in database `db`: the live band tables of every key
    (`tables`) and of the wide keys alone (`wide`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tables = LiveTables(db, KEY_ROWS)
        self.wide = LiveTables(db, WIDE_KEY_ROWS)

    def search(self, queries: np.ndarray, radius: int, names: frozenset[str] | None = None):
        """(query numbers, ids, key names, distances) of every key within `radius`; only
        those named in `names` (None: every key)."""
        wide = names is not None and names <= WIDE_KEYS
        q, keys, d = (self.wide if wide else self.tables).search(queries, radius, keys=True)
        if names is not None:
            asked = np.array([KEYS.index(n) + 1 for n in names if n in KEYS], np.int64)
            kept = np.isin(keys & NAME_BYTE, asked)
            q, keys, d = q[kept], keys[kept], d[kept]
        seqs = keys >> SHIFT
        found = self._ids(np.unique(seqs))
        # An image removed since the tables caught up has no id now: its keys are gone too.
        here = np.array([s in found for s in seqs.tolist()], dtype=bool)
        q, seqs, codes, d = q[here], seqs[here], keys[here] & NAME_BYTE, d[here]
        ids = np.empty(len(seqs), dtype=object)
        ids[:] = [found[s] for s in seqs.tolist()]
        named = np.empty(len(codes), dtype=object)
        named[:] = [KEYS[c - 1] for c in codes.tolist()]
        return q, ids, named, d

    def _ids(self, seqs: np.ndarray) -> dict[int, str]:
        """The id of each of `seqs` still stored."""
        out = {}
        seqs = seqs.tolist()
        for lo in range(0, len(seqs), LOOKUP):
            part = seqs[lo : lo + LOOKUP]
            marks = ",".join("?" * len(part))
            rows = self.db.sql(f"SELECT seq, id FROM images WHERE seq IN ({marks})", part)
            out.update((seq, as_text(id)) for seq, id in rows)
        return out
