"""The HBase backend: band cells in one pre-split table, image records in another, all through
HBase's Thrift2 server. `keys` holds the byte layout; `thrift` the connections; `table` the
thin table layer every read and write goes through; `records` the record table's cells;
`writes` the write path; `store` the index's storage seam; `claims` admission between
concurrent writers; `pack` band cells gathered; `schema` table creation; `balance` where the
regions live."""

from __future__ import annotations

from .keys import split_keys
from .schema import DEFAULT_BANDS, DEFAULT_REGIONS_PER_BAND, create_tables, schema_script
from .store import HBaseStore
from .thrift import HBaseOptions

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_REGIONS_PER_BAND",
    "HBaseOptions",
    "HBaseStore",
    "create_tables",
    "schema_script",
    "split_keys",
]
