"""What a set of live band tables (live.py) holds a row for, and how those rows are read from
the database: one row per image (its pHash; the image band tables, `IMAGE_ROWS`) or one per
stored key (keys.py). Everything else about keeping tables live (the file, its marks, the
delta, removals, rebuilds) is the same for both, so it is written once, in live.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .database import Database, as_text
from .folder import TABLES_FILE

if TYPE_CHECKING:
    import numpy as np

# What `read` makes of rows selected from the database: each table row's key (int64: its
# image's seq, shifted left by `shift`, or'ed with what tells its rows apart), hash (uint64) and
# id (str; None instead of the list where the tables keep no ids).
Read = Callable[[Database, list], tuple["np.ndarray", "np.ndarray", list]]


@dataclass(frozen=True)
class Rows:
    """A kind of table row: `file` names the table file in the index's folder; `select` reads
    the rows of the images after a seq (its one parameter), in seq order, for `read`; a row's
    image is its key >> `shift`; `ids` says whether the tables keep each row's id; `piece` is
    how many selected rows a rebuild reads at a time (all of them as Python objects at once
    would take gigabytes)."""

    file: str
    select: str
    read: Read
    shift: int = 0
    ids: bool = True
    piece: int = 1_000_000


def _image_rows(db: Database, rows: list) -> tuple[np.ndarray, np.ndarray, list]:
    """(seq, hash, id) rows: one table row per image, keyed by its seq."""
    import numpy as np

    new = db.rows_array(rows)
    hashes = np.ascontiguousarray(new[:, 1]).view(np.uint64)
    return new[:, 0], hashes, [as_text(r[2]) for r in rows]


IMAGE_ROWS = Rows(
    TABLES_FILE, "SELECT seq, hash, id FROM images WHERE seq > ? ORDER BY seq", _image_rows
)
