"""The band tables: the embedded index's search structure."""

from __future__ import annotations

from .search import (
    BandTables, Damaged, decode_ids, encode_ids, id_slices, probe_plan, read_header, scan,
)  # fmt: skip

__all__ = [
    "BandTables", "Damaged", "decode_ids", "encode_ids", "id_slices", "probe_plan",
    "read_header", "scan",
]  # fmt: skip
