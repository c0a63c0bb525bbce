"""The band tables: the embedded index's search structure (search.py, over integer rows), what
its rows stand for (ids.py: keys and ids kept beside), its file on disk (file.py), and the brute
force it is an optimisation of (scan.py)."""

from __future__ import annotations

from .file import load, read_header, save, save_built
from .ids import RowIds, decode_ids, encode_ids, id_slices, join_rows
from .scan import scan
from .search import BandTables, Damaged

__all__ = [
    "BandTables", "Damaged", "RowIds", "decode_ids", "encode_ids", "id_slices", "join_rows",
    "load", "read_header", "save", "save_built", "scan",
]  # fmt: skip
