"""What the rows of the band tables stand for: each row's key and id, kept beside the tables.

The tables search integer rows only (as ThreatExchange's SignalTypeIndex keeps its index on
integers beside a mapping to ids): whoever builds them owns what a row means. The embedded index
keeps each row's seq (its key in SQLite) and id here, so that a query answers with ids without a
database read per match; the dedupe job's tables need no ids at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _hamming

# Ids are file paths, which need not be UTF-8: such bytes travel as os.fsdecode gives them.
UTF8 = ("utf-8", "surrogateescape")


@dataclass
class RowIds:
    """Row i's key is `keys[i]`; its id, UTF-8, ends at `id_ends[i]` in `id_blob` (ids end to
    end, so that millions of them are three arrays, not millions of Python strings)."""

    keys: np.ndarray  # int64, one per row
    id_blob: np.ndarray  # uint8
    id_ends: np.ndarray  # int64, one per row

    @classmethod
    def of(cls, keys: np.ndarray, ids: list[str] | None) -> RowIds:
        """Rows of `keys` and `ids` (None: rows that keep no ids, each one's id empty)."""
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if ids is None:
            return cls(keys, np.empty(0, np.uint8), np.zeros(len(keys), np.int64))
        return cls(keys, *encode_ids(ids))

    def __len__(self) -> int:
        return len(self.keys)

    def ids(self, rows: np.ndarray) -> list[str]:
        """The ids of some rows: copied out end to end by C, decoded as one string and split
        at the NULs put after each; only when an id holds a NUL itself (no path can) is each
        decoded on its own."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        try:
            ids = _hamming.ids(self.id_blob, self.id_ends, rows).decode(*UTF8).split("\0")
            if len(ids) == len(rows) + 1:
                return ids[:-1]
            return decode_ids(*self.slices(rows))
        except UnicodeDecodeError as e:  # surrogateescape takes any bytes; kept for safety
            raise _hamming.Damaged(f"an id is not UTF-8: {e}") from None

    def slices(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bytes of some rows' ids, end to end, and each one's length."""
        return id_slices(self.id_blob, self.id_ends, rows)

    def check(self) -> None:
        """Raise Damaged unless the ids' ends rise and stay within the blob (what reading
        them all at once relies on; `ids` is checked by C row by row)."""
        ends = self.id_ends
        if len(ends) and (ends[0] < 0 or ends[-1] > len(self.id_blob) or (np.diff(ends) < 0).any()):
            raise _hamming.Damaged("the ids' ends are out of order or past the id blob")


def join_rows(parts: list[RowIds]) -> RowIds:
    """The rows of `parts` one after the other, as one RowIds (a single part as it is)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return RowIds.of(np.empty(0, np.int64), [])
    offsets = np.cumsum([0] + [len(p.id_blob) for p in parts[:-1]])
    return RowIds(
        np.concatenate([p.keys for p in parts]),
        np.concatenate([p.id_blob for p in parts]),
        np.concatenate([p.id_ends + o for p, o in zip(parts, offsets.tolist())]),
    )


def encode_ids(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids as (blob, ends), the layout RowIds keeps them in."""
    # Encoded as one string: a bulk load's million ids a batch in 30 ms, not 300. When the
    # bytes are as many as the characters, every character took one byte, so each id's
    # length in characters is its length in bytes.
    blob = "".join(ids).encode(*UTF8)
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    if len(blob) != lengths.sum():
        lengths = np.fromiter((len(i.encode(*UTF8)) for i in ids), np.int64, len(ids))
    return np.frombuffer(blob, dtype=np.uint8), np.cumsum(lengths, dtype=np.int64)


def decode_ids(blob: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Ids laid end to end (`blob`, each one's length) back into strings. A large answer is
    thousands of ids, so they are decoded as one string and split at NULs put between them;
    only when an id holds a NUL itself (no path can) is each decoded on its own."""
    if not (blob == 0).any():
        joined = np.zeros(len(blob) + len(lengths), np.uint8)
        joined[np.arange(len(blob)) + np.repeat(np.arange(len(lengths)), lengths)] = blob
        return joined.tobytes().decode(*UTF8).split("\0")[:-1]
    data, ends = blob.tobytes(), np.cumsum(lengths).tolist()
    return [data[a:b].decode(*UTF8) for a, b in zip([0, *ends[:-1]], ends)]


def id_slices(
    blob: np.ndarray, ends: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of some rows' ids, end to end, and each one's length (no Python loop)."""
    rows = np.asarray(rows, dtype=np.int64)
    stop = ends[rows]
    start = np.where(rows > 0, ends[np.maximum(rows - 1, 0)], 0)
    lengths = stop - start
    total = np.cumsum(lengths)
    flat = np.arange(total[-1] if len(total) else 0) - np.repeat(total - lengths - start, lengths)
    return blob[flat], lengths
