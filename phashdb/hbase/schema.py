"""Creating phashdb's two tables, pre-split, through Thrift2 (or as an HBase shell script)."""

from __future__ import annotations

import json

from ..bands import HBASE_BANDS, BandLayout
from ..errors import StoreError
from . import keys
from .thrift import OLD_RECORDS_SUFFIX, RECORDS_SUFFIX, HBaseOptions, Pool, hb

# Measured on the test cluster (README, "On HBase"): a probe (a Get) costs HBase far more than
# the entries its packed cells return, so 5 bands of 13 bits (57 probes at radius 8) beat 4 of
# 16 (188 probes): at 1M images, 9.7x against 12.7x the one-Get floor at radius 8.
DEFAULT_BANDS = HBASE_BANDS
DEFAULT_REGIONS_PER_BAND = 6
# Every check reads blocks all over the band table (about 60 bytes an image): a region server
# loads a store file's blocks into its cache when it opens the file (after a flush, a
# compaction or a move), so no check waits for a disk read of them.
BAND_FAMILY_ATTRIBUTES = {b"PREFETCH_BLOCKS_ON_OPEN": b"true"}


def default_layout() -> BandLayout:
    return BandLayout.even(DEFAULT_BANDS)


def settings_for(layout: BandLayout, row_bits: int = keys.DEFAULT_ROW_BITS) -> dict:
    return {"bands": list(layout.widths), "row_bits": row_bits, "hbase_layout": keys.LAYOUT}


def _hex(key: bytes) -> str:
    return '"' + "".join(f"\\x{b:02x}" for b in key) + '"'


def schema_script(
    table: str, layout: BandLayout, regions_per_band: int, row_bits: int = keys.DEFAULT_ROW_BITS
) -> str:
    """An HBase shell script creating both tables, pre-split (for `hbase shell FILE`)."""
    splits = ", ".join(_hex(k) for k in keys.split_keys(layout, regions_per_band, row_bits))
    record_splits = ", ".join(_hex(k) for k in keys.record_split_keys(regions_per_band))
    settings = json.dumps(settings_for(layout, row_bits))
    return f"""# phashdb tables for HBase: band layout {list(layout.widths)}, {regions_per_band} regions per band.
# Band cells: one per band value per write batch, row = band + the band value's top bits,
# qualifier = the value's other bits + the batch's tag, value = the batch's images with that band
# value (hash + image number each). Reads are Gets with a column range, so no bloom filter
# helps; FAST_DIFF encoding stores each key as its difference from the previous; every check
# reads all over the table, so its blocks are cached as soon as a store file is opened.
create '{table}', {{NAME => 'b', VERSIONS => 1, BLOOMFILTER => 'NONE',
  DATA_BLOCK_ENCODING => 'FAST_DIFF', PREFETCH_BLOCKS_ON_OPEN => 'true'}},
  SPLITS => [{splits}]
# Records: image number -> record, id -> image number, the settings and the number counter.
create '{table}{RECORDS_SUFFIX}', {{NAME => 'i', VERSIONS => 1, BLOOMFILTER => 'ROW',
  DATA_BLOCK_ENCODING => 'FAST_DIFF'}},
  SPLITS => [{record_splits}]
put '{table}{RECORDS_SUFFIX}', "\\x00settings", 'i:s', '{settings}'
"""


def create_tables(
    url: str,
    *,
    bands: BandLayout | None = None,
    regions_per_band: int = DEFAULT_REGIONS_PER_BAND,
    row_bits: int = keys.DEFAULT_ROW_BITS,
) -> bool:
    """Create both tables, pre-split, through HBase's Thrift2 server. Returns False when both
    already exist."""
    options = HBaseOptions.from_url(url)
    pool = Pool(options)
    try:
        band_families = families(pool, options.table)
        records = record_table(pool, options)
        if band_families is not None and families(pool, records) is not None:
            return False
        if band_families is not None or families(pool, records) is not None:
            raise StoreError(_in_the_way(url, options, band_families))
        _create(pool, options.table, records, bands or default_layout(), regions_per_band, row_bits)
        return True
    finally:
        pool.close()


def _create(
    pool: Pool, table: str, records: str, layout: BandLayout, regions_per_band: int, row_bits: int
) -> None:
    """Create band table `table` and record table `records`, with the settings row."""
    band_family = hb.TColumnFamilyDescriptor(
        name=keys.BAND_FAMILY,
        maxVersions=1,
        bloomnFilterType=hb.TBloomFilterType.NONE,
        dataBlockEncoding=hb.TDataBlockEncoding.FAST_DIFF,
        attributes=BAND_FAMILY_ATTRIBUTES,
    )
    record_family = hb.TColumnFamilyDescriptor(
        name=keys.RECORD_FAMILY,
        maxVersions=1,
        bloomnFilterType=hb.TBloomFilterType.ROW,
        dataBlockEncoding=hb.TDataBlockEncoding.FAST_DIFF,
    )
    for name, family, splits in [
        (table, band_family, keys.split_keys(layout, regions_per_band, row_bits)),
        (records, record_family, keys.record_split_keys(regions_per_band)),
    ]:
        desc = hb.TTableDescriptor(tableName=_name(name), columns=[family])
        pool.call(lambda c, d=desc, s=splits: c.createTable(d, s))
    settings = json.dumps(settings_for(layout, row_bits)).encode()
    put = hb.TPut(
        row=keys.SETTINGS_ROW,
        columnValues=[hb.TColumnValue(keys.RECORD_FAMILY, keys.SETTINGS, settings)],
    )
    pool.call(lambda c: c.put(records.encode(), put))


def _in_the_way(url: str, options: HBaseOptions, band_families: set | None) -> str:
    """Why one table of the index's pair exists without the other, and what to do: never
    advice to drop a table another index owns."""
    table, records = options.table, options.images_table
    if band_families is None:  # "X.images": a name only index X makes
        return (
            f"{url}: the record table {records!r} exists without the band table {table!r} (an "
            f"interrupted `init`?): drop {records!r}, then run `init` again"
        )
    if keys.RECORD_FAMILY in band_families and table.endswith(OLD_RECORDS_SUFFIX):
        owner = table[: -len(OLD_RECORDS_SUFFIX)]
        return (
            f"{url}: table {table!r} holds the records of the index {owner!r} (tables named "
            "before phashdb's current naming): choose another name for this index"
        )
    return (
        f"{url}: table {table!r} exists without the record table {records!r}: it is not a "
        "phashdb index; choose another name for this index"
    )


def families(pool: Pool, table: str) -> set[bytes] | None:
    """The column families of `table`; None when there is no such table."""
    name = _name(table)
    if not pool.call(lambda c: c.tableExists(name)):
        return None
    return {f.name for f in pool.call(lambda c: c.getTableDescriptor(name)).columns or []}


def record_table(pool: Pool, options: HBaseOptions) -> str:
    """The record table of the index at `options`: "X.images", or "X_images" for an index
    made before that naming (a table with the record family by that name, and no "X.images")."""
    old = options.table + OLD_RECORDS_SUFFIX
    if families(pool, options.images_table) is None and keys.RECORD_FAMILY in (
        families(pool, old) or ()
    ):
        return old
    return options.images_table


def _name(table: str):
    return hb.TTableName(ns=b"default", qualifier=table.encode())


def drop_tables(url: str) -> None:
    """Disable and delete both tables of the index at `url` (those that exist)."""
    options = HBaseOptions.from_url(url)
    pool = Pool(options)
    try:
        for table in (options.table, record_table(pool, options)):
            name = _name(table)
            if pool.call(lambda c, n=name: c.tableExists(n)):
                pool.call(lambda c, n=name: c.disableTable(n))
                pool.call(lambda c, n=name: c.deleteTable(n))
    finally:
        pool.close()
