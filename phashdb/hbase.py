"""The HBase backend: band rows in one pre-split table, image records in another, via Thrift.

Band table `T`: one tall row per image per band, keyed band number + band value + hash + id, so
every hash sharing a band value sits in one short row range and a probe is one short scan. The
table is pre-split at band boundaries and into equal slices of each band's values (band values
are near uniform), so regions are even and spread over the region servers; a query's probes
fan out over them in parallel, from a pool of Thrift connections.

Record table `T_images`: one row per image keyed by its id, plus the settings row. A record is
written after its band rows and deleted before them, so a band row without a record is never
an image: it is a writer's pending claim (see `claim`) or, after a crash, an orphan that
`fsck` removes. Queries verify against records and never return either.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import happybase
import numpy as np
from thriftpy2.thrift import TException
from thriftpy2.transport import TTransportException

from .bands import BandLayout, band_prefix, flip_masks
from .errors import StoreError
from .records import Image, Match

log = logging.getLogger(__name__)

SETTINGS_ROW = b"\x00settings"
CLAIM = b"b:c"  # on band rows: {"t": claim time, "p": path}
RECORD = b"i:r"  # on record rows: the Image as JSON
SETTINGS = b"i:s"
# Decisions (pairs marked not duplicates) are rows of the record table under this prefix, one
# per pair: key prefix + JSON [a, b], column DECISION = {"made": time}. Keys starting with a
# zero byte are never images (see `count`).
DECISION_PREFIX = b"\x00decision:"
DECISION = b"i:d"
# A claim not resolved within this many seconds belongs to a writer that died: ignore it.
CLAIM_TIMEOUT = 30.0
DEFAULT_BANDS = 5  # few probes per query: round trips, not rows read, dominate on HBase
DEFAULT_REGIONS_PER_BAND = 6


@dataclass(frozen=True)
class HBaseOptions:
    """Where the HBase Thrift server is and how to talk to it (all settable in the URL)."""

    host: str
    port: int = 9090
    table: str = "phashdb"
    transport: str = "buffered"  # or framed: as the Thrift server was started
    protocol: str = "binary"  # or compact
    pool_size: int = 8  # connections, and probes in flight at once
    batch_size: int = 1000  # mutations per round trip when writing
    timeout: float = 30.0  # seconds per Thrift call
    retries: int = 3  # attempts after a transport failure, with backoff
    thrift2_port: int | None = None  # lets `phashdb init` create pre-split tables

    @classmethod
    def from_url(cls, url: str, **overrides) -> HBaseOptions:
        parts = urlparse(url)
        table = parts.path.strip("/")
        if parts.scheme != "hbase" or not parts.hostname or not table or "/" in table:
            raise ValueError(f"{url!r} is not an HBase URL like hbase://HOST:PORT/TABLE")
        query = dict(parse_qsl(parts.query))
        fields = cls.__dataclass_fields__
        unknown = set(query) - set(fields)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} in {url!r}")
        convert = {"timeout": float, "transport": str, "protocol": str}
        try:
            values = {k: convert.get(k, int)(v) for k, v in {**query, **overrides}.items()}
        except ValueError as e:
            raise ValueError(f"bad option value in {url!r}: {e}") from e
        options = cls(parts.hostname, parts.port or 9090, table, **values)
        if options.transport not in ("buffered", "framed"):
            raise ValueError(f"'transport' must be buffered or framed, got {options.transport!r}")
        if options.protocol not in ("binary", "compact"):
            raise ValueError(f"'protocol' must be binary or compact, got {options.protocol!r}")
        return options

    @property
    def images_table(self) -> str:
        return f"{self.table}_images"


# --- row keys and schema (pure) -----------------------------------------------------------


def band_rows(layout: BandLayout, hash: int, id: str) -> list[bytes]:
    """The band row keys of one image: band prefix, then hash and id to make the row unique."""
    tail = hash.to_bytes(8, "big") + id.encode()
    values = layout.split(np.array([hash], dtype=np.uint64))
    return [
        band_prefix(b, int(v[0]), w) + tail for b, (w, v) in enumerate(zip(layout.widths, values))
    ]


def parse_band_row(layout: BandLayout, key: bytes) -> tuple[int, str]:
    """(hash, id) of a band row key."""
    start = 1 + (layout.widths[key[0]] + 7) // 8
    return int.from_bytes(key[start : start + 8], "big"), key[start + 8 :].decode()


def split_keys(layout: BandLayout, regions_per_band: int) -> list[bytes]:
    """Where the band table is pre-split: at every band's start, and into `regions_per_band`
    equal slices of the band's values. Band values of pHashes are close to uniform, so equal
    slices hold about equal numbers of rows."""
    keys = []
    for band, width in enumerate(layout.widths):
        for i in range(regions_per_band):
            keys.append(band_prefix(band, (i << width) // regions_per_band, width))
    return keys[1:]  # the first region starts at the empty key


def schema_script(table: str, layout: BandLayout, regions_per_band: int) -> str:
    """An HBase shell script creating both tables, pre-split (for `hbase shell FILE`)."""
    splits = ", ".join('"' + "".join(f"\\x{b:02x}" for b in k) + '"' for k in split_keys(layout, regions_per_band))
    prefix = 1 + (max(layout.widths) + 7) // 8
    return f"""# phashdb tables for HBase: band layout {list(layout.widths)}, {regions_per_band} regions per band.
# Band rows: one per image per band; reads are short prefix scans, so a row-prefix bloom filter
# over the band prefix ({prefix} bytes) skips store files without the band value; FAST_DIFF
# encoding suits long keys sharing prefixes; one version is all an index needs.
create '{table}', {{NAME => 'b', VERSIONS => 1, BLOOMFILTER => 'ROWPREFIX_FIXED_LENGTH',
  CONFIGURATION => {{'RowPrefixBloomFilter.prefix_length' => '{prefix}'}},
  DATA_BLOCK_ENCODING => 'FAST_DIFF', COMPRESSION => 'SNAPPY'}},
  SPLITS => [{splits}]
# Records: one row per image id; point reads, so a row bloom filter.
create '{table}_images', {{NAME => 'i', VERSIONS => 1, BLOOMFILTER => 'ROW',
  DATA_BLOCK_ENCODING => 'FAST_DIFF', COMPRESSION => 'SNAPPY'}}
put '{table}_images', "\\x00settings", 'i:s', '{json.dumps({"bands": list(layout.widths)})}'
"""


def create_tables(
    url: str, *, bands: BandLayout | None = None, regions_per_band: int = DEFAULT_REGIONS_PER_BAND,
    compression: str = "NONE",
) -> bool:
    """Create both tables, the band table pre-split, through HBase's Thrift2 server (Thrift1,
    which happybase speaks, cannot pre-split). Needs `thrift2_port` in the URL. Returns False
    when both already exist."""
    import importlib.resources

    import thriftpy2
    from thriftpy2.rpc import make_client

    options = HBaseOptions.from_url(url)
    if options.thrift2_port is None:
        raise StoreError(
            f"{url}: creating pre-split tables needs HBase's Thrift2 server: add "
            "?thrift2_port=PORT to the URL, or create them with the HBase shell script that "
            "`phashdb init --print-schema` prints"
        )
    layout = bands or BandLayout.even(DEFAULT_BANDS)
    idl = importlib.resources.files("phashdb") / "hbase_thrift2.thrift"
    with importlib.resources.as_file(idl) as path:
        t2 = thriftpy2.load(str(path), module_name="phashdb_hbase2_thrift")
    prefix = 1 + (max(layout.widths) + 7) // 8
    band_family = t2.TColumnFamilyDescriptor(
        name=b"b", maxVersions=1, bloomnFilterType=t2.TBloomFilterType.ROWPREFIX_FIXED_LENGTH,
        configuration={"RowPrefixBloomFilter.prefix_length": str(prefix)},
        dataBlockEncoding=t2.TDataBlockEncoding.FAST_DIFF,
        compressionType=getattr(t2.TCompressionAlgorithm, compression),
    )
    record_family = t2.TColumnFamilyDescriptor(
        name=b"i", maxVersions=1, bloomnFilterType=t2.TBloomFilterType.ROW,
        dataBlockEncoding=t2.TDataBlockEncoding.FAST_DIFF,
        compressionType=getattr(t2.TCompressionAlgorithm, compression),
    )
    try:
        client = make_client(
            t2.THBaseService, options.host, options.thrift2_port, timeout=options.timeout * 1000
        )
    except (TTransportException, OSError) as e:
        raise StoreError(f"HBase Thrift2 at {options.host}:{options.thrift2_port} is not reachable: {e}") from e
    try:
        tables = [
            (options.table, band_family, split_keys(layout, regions_per_band)),
            (options.images_table, record_family, None),
        ]
        names = [t2.TTableName(ns=b"default", qualifier=name.encode()) for name, _, _ in tables]
        exists = [client.tableExists(n) for n in names]
        if all(exists):
            return False
        if any(exists):
            have = tables[exists.index(True)][0]
            raise StoreError(f"{url}: table {have!r} exists but not its partner: drop it first")
        for name, (_, family, splits) in zip(names, tables):
            client.createTable(t2.TTableDescriptor(tableName=name, columns=[family]), splits)
        put = t2.TPut(
            row=SETTINGS_ROW,
            columnValues=[t2.TColumnValue(b"i", b"s", json.dumps({"bands": list(layout.widths)}).encode())],
        )
        client.put(options.images_table.encode(), put)
        return True
    except t2.TIOError as e:
        raise StoreError(f"{url}: HBase refused to create the tables: {e.message}") from e
    finally:
        client.close()


# --- the store --------------------------------------------------------------------------------


class HBaseStore:
    """Storage of an index in HBase, reached through its Thrift server."""

    @classmethod
    def from_url(cls, url: str, **options) -> HBaseStore:
        return cls(HBaseOptions.from_url(url, **options))

    def __init__(self, options: HBaseOptions) -> None:
        self.options = options
        self.url = f"hbase://{options.host}:{options.port}/{options.table}"
        self.home = Path.home() / ".local" / "share" / "phashdb" / f"hbase-{options.host}-{options.port}-{options.table}"
        try:
            self._pool = happybase.ConnectionPool(
                options.pool_size, host=options.host, port=options.port,
                timeout=int(options.timeout * 1000), transport=options.transport,
                protocol=options.protocol,
            )
        except (TException, OSError) as e:
            raise StoreError(
                f"HBase Thrift server at {options.host}:{options.port} is not reachable: {e}"
            ) from e
        self._threads = ThreadPoolExecutor(options.pool_size, thread_name_prefix="phashdb-hbase")
        tables = {t.decode() for t in self._call(lambda c: c.tables())}
        missing = [t for t in (options.table, options.images_table) if t not in tables]
        if missing:
            self.close()
            raise StoreError(
                f"{self.url}: table {missing[0]!r} does not exist: create the tables with "
                f"`phashdb init --db '{self.url}?thrift2_port=PORT'` or with the HBase shell "
                "script `phashdb init --print-schema` prints"
            )
        settings = self.read_settings()
        if "bands" not in settings:
            self.close()
            raise StoreError(f"{self.url}: the tables have no band layout: were they made by phashdb?")
        self.layout = BandLayout(tuple(settings["bands"]))

    # --- settings -------------------------------------------------------------------------

    def read_settings(self) -> dict:
        row = self._call(lambda c: c.table(self.options.images_table).row(SETTINGS_ROW, [SETTINGS]))
        return json.loads(row[SETTINGS]) if row else {}

    def write_settings(self, settings: dict) -> None:
        merged = {**self.read_settings(), **settings}
        self._call(
            lambda c: c.table(self.options.images_table).put(SETTINGS_ROW, {SETTINGS: json.dumps(merged)})
        )

    # --- decisions (pairs marked not duplicates) ------------------------------------------

    def decisions(self, ids: Iterable[str] | None) -> list[tuple[str, str, float]]:
        """(a, b, made) of every decision about any of `ids` (None: every decision). Decisions
        are few: one prefix scan reads them all."""
        def scan(conn):
            table = conn.table(self.options.images_table)
            return list(table.scan(row_prefix=DECISION_PREFIX, columns=[DECISION]))

        out = []
        wanted = None if ids is None else set(ids)
        for key, data in self._call(scan):
            a, b = json.loads(key[len(DECISION_PREFIX) :])
            if wanted is None or a in wanted or b in wanted:
                out.append((a, b, json.loads(data[DECISION])["made"]))
        return out

    def put_decisions(self, pairs: list[tuple[str, str]], made: float) -> None:
        def put(conn):
            with conn.table(self.options.images_table).batch() as b:
                for pair in pairs:
                    b.put(_decision_key(pair), {DECISION: json.dumps({"made": made})})

        self._call(put)

    def delete_decisions(self, pairs: list[tuple[str, str]]) -> int:
        keys = [_decision_key(p) for p in pairs]

        def delete(conn):
            table = conn.table(self.options.images_table)
            found = [k for k, _ in table.rows(keys, [DECISION])] if keys else []
            with table.batch() as b:
                for k in found:
                    b.delete(k)
            return len(found)

        return self._call(delete)

    # --- reads ----------------------------------------------------------------------------

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances). Pending claims and orphans (band rows without a record) are left out."""
        qidx, ids, dists, _ = self._candidates(np.asarray(queries, dtype=np.uint64), radius)
        stored = self.find(set(ids.tolist()))
        keep = np.array([i in stored for i in ids.tolist()], dtype=bool)
        return qidx[keep], ids[keep], dists[keep]

    def _candidates(self, queries: np.ndarray, radius: int):
        """Band rows within `radius` of each query: (query numbers, ids, distances, claims),
        one per (query, id), whatever the rows' records say."""
        ranges = self.probes(queries, radius)
        found: dict[tuple[int, str], tuple[int, dict]] = {}
        for q, rows in zip(
            [q for q, _ in ranges], self._threads.map(self._scan_prefix, [p for _, p in ranges])
        ):
            for key, claim in rows:
                h, id = parse_band_row(self.layout, key)
                d = (h ^ int(queries[q])).bit_count()
                if d <= radius:
                    found[q, id] = (d, claim)
        qidx = np.array([q for q, _ in found], dtype=np.int64)
        ids = np.array([i for _, i in found], dtype=object)
        dists = np.array([d for d, _ in found.values()], dtype=np.int8)
        return qidx, ids, dists, [c for _, c in found.values()]

    def probes(self, queries: np.ndarray, radius: int) -> list[tuple[int, bytes]]:
        """(query number, band prefix) of every probe the queries need at `radius`."""
        out = []
        radii = self.layout.probe_radii(radius)
        for band, (width, r, values) in enumerate(zip(self.layout.widths, radii, self.layout.split(queries))):
            if r < 0:
                continue
            masks = flip_masks(width, r)
            for q, v in enumerate(values.tolist()):
                out.extend((q, band_prefix(band, v ^ int(m), width)) for m in masks.tolist())
        return out

    def _scan_prefix(self, prefix: bytes) -> list[tuple[bytes, dict]]:
        def scan(conn):
            rows = conn.table(self.options.table).scan(row_prefix=prefix, columns=[CLAIM])
            return [(key, json.loads(data.get(CLAIM, b"{}"))) for key, data in rows]

        return self._call(scan)

    def find(self, ids: Iterable[str]) -> dict[str, Image]:
        ids = [i for i in ids]
        out = {}
        for lo in range(0, len(ids), self.options.batch_size):
            part = [i.encode() for i in ids[lo : lo + self.options.batch_size]]
            rows = self._call(lambda c: c.table(self.options.images_table).rows(part, [RECORD]))
            for key, data in rows:
                out[key.decode()] = _image(key.decode(), data[RECORD])
        return out

    def images(self) -> Iterator[Image]:
        def scan(conn):
            rows = conn.table(self.options.images_table).scan(columns=[RECORD])
            return [_image(k.decode(), d[RECORD]) for k, d in rows if k != SETTINGS_ROW]

        yield from self._call(scan)

    def hashes(self) -> tuple[np.ndarray, np.ndarray]:
        images = list(self.images())
        return (
            np.array([i.id for i in images], dtype=object),
            np.array([i.hash for i in images], dtype=np.uint64),
        )

    def files(self) -> dict[str, tuple[int | None, float | None]]:
        return {i.path: (i.size, i.mtime) for i in self.images() if i.path}

    def count(self) -> int:
        def scan(conn):
            rows = conn.table(self.options.images_table).scan(filter=b"FirstKeyOnlyFilter() AND KeyOnlyFilter()")
            return sum(1 for key, _ in rows if not key.startswith(b"\x00"))

        return self._call(scan)

    def regions(self) -> list[dict]:
        """The band table's regions, each with the server hosting it (happybase's dicts)."""
        return self._call(lambda c: c.table(self.options.table).regions())

    def describe(self) -> dict:
        regions = self.regions()
        return {
            "backend": "hbase",
            "bands": list(self.layout.widths),
            "regions": len(regions),
            "region_servers": len({(r["server_name"], r["port"]) for r in regions}),
        }

    # --- writes ---------------------------------------------------------------------------

    def put(self, images: Iterable[Image]) -> None:
        """Store images: band rows first, records last (an image is visible only once its
        record is). An id stored exactly so is left alone; with another hash it is replaced."""
        images = list(images)
        for lo in range(0, len(images), self.options.batch_size):
            part = images[lo : lo + self.options.batch_size]
            old = self.find(i.id for i in part)
            part = [i for i in part if i.id not in old or old[i.id] != replace(i, added=old[i.id].added)]
            now = time.time()
            part = [i if i.added else replace(i, added=now) for i in part]
            self._write_band_rows(part, now)
            self._call(lambda c: self._write_records(c, part))
            stale = [old[i.id] for i in part if i.id in old and old[i.id].hash != i.hash]
            self._delete_band_rows(stale)

    def put_hashes(self, ids: list[str], hashes: np.ndarray) -> None:
        self.put(Image(i, h) for i, h in zip(ids, np.asarray(hashes, np.uint64).tolist()))

    def _write_band_rows(self, images: list[Image], when: float) -> None:
        def write(conn):
            with conn.table(self.options.table).batch(batch_size=self.options.batch_size) as b:
                for i in images:
                    claim = json.dumps({"t": when, "p": i.path}).encode()
                    for key in band_rows(self.layout, i.hash, i.id):
                        b.put(key, {CLAIM: claim})

        self._call(write)

    def _write_records(self, conn, images: list[Image]) -> None:
        with conn.table(self.options.images_table).batch(batch_size=self.options.batch_size) as b:
            for i in images:
                b.put(i.id.encode(), {RECORD: _record_json(i)})

    def _delete_band_rows(self, images: Iterable[Image]) -> None:
        keys = [k for i in images for k in band_rows(self.layout, i.hash, i.id)]
        if keys:

            def delete(conn):
                with conn.table(self.options.table).batch(batch_size=self.options.batch_size) as b:
                    for k in keys:
                        b.delete(k)

            self._call(delete)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove images: record first (invisible at once), then band rows."""
        stored = self.find(ids)

        def delete(conn):
            with conn.table(self.options.images_table).batch() as b:
                for id in stored:
                    b.delete(id.encode())

        self._call(delete)
        self._delete_band_rows(stored.values())
        return len(stored)

    @contextmanager
    def claim(self, image: Image, radius: int):
        """Admission without a global lock. The writer records a pending claim (its band rows,
        no record) before it searches. Among claims within `radius` of each other, the earlier
        (time, id) wins: a writer yields to an earlier pending claim it sees, and waits for a
        later one it sees to be committed or withdrawn (that writer may not have seen this
        one). Of two writers, at least one sees the other's claim, so exactly one of a set of
        near-identical concurrent adds is admitted. Yields the earlier rivals as Matches;
        a `put` of the image inside commits the claim, leaving without one withdraws it."""
        when = time.time()
        self._write_band_rows([image], when)
        try:
            yield self._rivals(image, radius, when)
        finally:
            stored = self.find([image.id]).get(image.id)
            if stored is None or stored.hash != image.hash:
                self._delete_band_rows([image])

    def _rivals(self, image: Image, radius: int, when: float) -> list[Match]:
        deadline = time.monotonic() + CLAIM_TIMEOUT
        me = (when, image.id)
        while True:
            _, ids, dists, claims = self._candidates(np.array([image.hash], np.uint64), radius)
            stored = self.find(ids.tolist())
            earlier, waiting = [], False
            for id, d, claim in zip(ids.tolist(), dists.tolist(), claims):
                if id == image.id or id in stored:
                    continue  # committed images are ordinary matches
                theirs = (claim.get("t", 0.0), id)
                if time.time() - theirs[0] > CLAIM_TIMEOUT:
                    continue  # a dead writer's claim
                if theirs < me:
                    earlier.append(Match(id, d, claim.get("p")))
                else:
                    waiting = True
            if earlier or not waiting or time.monotonic() > deadline:
                return sorted(earlier, key=lambda m: (m.distance, m.id))
            time.sleep(0.05)

    def fsck(self, *, repair: bool = False, min_age: float = CLAIM_TIMEOUT) -> list[tuple[str, int]]:
        """Orphans: band rows older than `min_age` whose image has no record (a writer died
        between writes). Returns them as (id, hash); `repair` deletes them."""
        now = time.time()

        def scan(conn):
            return list(conn.table(self.options.table).scan(columns=[CLAIM]))

        rows = self._call(scan)
        seen = {}
        for key, data in rows:
            h, id = parse_band_row(self.layout, key)
            if now - json.loads(data.get(CLAIM, b"{}")).get("t", 0.0) >= min_age:
                seen[id, h] = None
        stored = self.find({id for id, _ in seen})
        orphans = sorted((id, h) for id, h in seen if id not in stored or stored[id].hash != h)
        if repair:
            self._delete_band_rows(Image(id, h) for id, h in orphans)
        return orphans

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        # happybase's pool has no close: close each idle connection it holds.
        while True:
            try:
                conn = self._pool._queue.get_nowait()
            except queue.Empty:
                break
            conn.close()

    # --- calls, retries and errors ------------------------------------------------------------

    def _call(self, fn):
        """Run fn(connection) with a pooled connection; retry transport failures (a dropped
        or timed-out connection is replaced by the pool), turn HBase errors into StoreError."""
        from Hbase_thrift import IOError as HBaseIOError

        for attempt in range(self.options.retries + 1):
            try:
                with self._pool.connection(timeout=self.options.timeout) as conn:
                    return fn(conn)
            except HBaseIOError as e:
                message = e.message.decode(errors="replace") if isinstance(e.message, bytes) else str(e.message)
                first = message.strip().splitlines()[0] if message.strip() else type(e).__name__
                raise StoreError(f"{self.url}: HBase error: {first[:300]}") from e
            except (OSError, TTransportException, TException, happybase.NoConnectionsAvailable) as e:
                if attempt == self.options.retries:
                    raise StoreError(
                        f"HBase Thrift server at {self.options.host}:{self.options.port} is "
                        f"not reachable or timed out after {attempt + 1} attempts: {e}"
                    ) from e
                log.info("retrying after a Thrift transport failure: %s", e)
                time.sleep(0.2 * 2**attempt)


def _decision_key(pair: tuple[str, str]) -> bytes:
    return DECISION_PREFIX + json.dumps(list(pair)).encode()


def _record_json(image: Image) -> bytes:
    return json.dumps(
        {"hash": f"{image.hash:016x}", "path": image.path, "size": image.size,
         "mtime": image.mtime, "width": image.width, "height": image.height, "added": image.added}
    ).encode()


def _image(id: str, raw: bytes) -> Image:
    r = json.loads(raw)
    return Image(id, int(r["hash"], 16), r["path"], r["size"], r["mtime"], r["width"], r["height"], r["added"])
