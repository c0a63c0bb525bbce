"""Creating phashdb's two tables, pre-split, through Thrift2 (or as an HBase shell script)."""

from __future__ import annotations

import json

from ..bands import HBASE_BANDS, BandLayout
from ..errors import StoreError
from . import keys
from .thrift import HBaseOptions, Pool, hb

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
    return {"bands": list(layout.widths), "row_bits": row_bits, "hbase_layout": 3}


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
create '{table}_images', {{NAME => 'i', VERSIONS => 1, BLOOMFILTER => 'ROW',
  DATA_BLOCK_ENCODING => 'FAST_DIFF'}},
  SPLITS => [{record_splits}]
put '{table}_images', "\\x00settings", 'i:s', '{settings}'
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
    layout = bands or default_layout()
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
    tables = [
        (options.table, band_family, keys.split_keys(layout, regions_per_band, row_bits)),
        (options.images_table, record_family, keys.record_split_keys(regions_per_band)),
    ]
    pool = Pool(options)
    try:
        names = [hb.TTableName(ns=b"default", qualifier=name.encode()) for name, _, _ in tables]
        exists = [pool.call(lambda c, n=n: c.tableExists(n)) for n in names]
        if all(exists):
            return False
        if any(exists):
            have = tables[exists.index(True)][0]
            raise StoreError(f"{url}: table {have!r} exists but not its partner: drop it first")
        for name, (_, family, splits) in zip(names, tables):
            desc = hb.TTableDescriptor(tableName=name, columns=[family])
            pool.call(lambda c, d=desc, s=splits: c.createTable(d, s))
        put = hb.TPut(
            row=keys.SETTINGS_ROW,
            columnValues=[
                hb.TColumnValue(
                    keys.RECORD_FAMILY,
                    keys.SETTINGS,
                    json.dumps(settings_for(layout, row_bits)).encode(),
                )
            ],
        )
        pool.call(lambda c: c.put(options.images_table.encode(), put))
        return True
    finally:
        pool.close()


def drop_tables(url: str) -> None:
    """Disable and delete both tables of the index at `url` (those that exist)."""
    options = HBaseOptions.from_url(url)
    pool = Pool(options)
    try:
        for table in (options.table, options.images_table):
            name = hb.TTableName(ns=b"default", qualifier=table.encode())
            if pool.call(lambda c, n=name: c.tableExists(n)):
                pool.call(lambda c, n=name: c.disableTable(n))
                pool.call(lambda c, n=name: c.deleteTable(n))
    finally:
        pool.close()
