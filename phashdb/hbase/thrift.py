"""Talking to HBase's Thrift2 server: options from the URL, a pool of connections, retries,
and HBase's errors turned into one clear StoreError.

Thrift2 (`hbase thrift2`) is used for everything: its `getMultiple` and `putMultiple` carry
many rows in one call, which HBase's client then groups by region server and sends in parallel.
The IDL is HBase 2.6.1's, shipped in this package and loaded with thriftpy2.
"""

from __future__ import annotations

import importlib.resources
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar
from urllib.parse import parse_qsl, urlparse

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TException
from thriftpy2.transport import TBufferedTransport, TFramedTransportFactory

from ..errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

with importlib.resources.as_file(importlib.resources.files(__package__) / "thrift2.thrift") as _idl:
    hb = thriftpy2.load(str(_idl), module_name="phashdb_hbase_thrift2_thrift")


class _BigBufferedTransportFactory:
    """Buffered transport with a 1 MiB buffer: a search's answer (up to megabytes of band
    entries) comes in a few socket reads, not one per 4 KiB (the default buffer: 240 reads and
    a third of the client's time for one query at radius 10)."""

    def get_transport(self, trans):
        return TBufferedTransport(trans, buf_size=1 << 20)


# An index X keeps its records in table "X.images". Index names may not end in ".images", so no
# index's table is another index's (before, "X_images" was both X's records and the bands of an
# index named X_images). Tables named the old way ("X_images") are still opened.
RECORDS_SUFFIX = ".images"
OLD_RECORDS_SUFFIX = "_images"
# HBase's rule for a table name (TableName.isLegalTableQualifierName: letters and digits as
# Java sees them); the namespace is always "default", so ':' is no separator here.
_TABLE_NAME = re.compile(r"\w[\w.-]*")


def check_index_name(name: str) -> None:
    """Raise ValueError for a name HBase refuses as a table, or one ending in ".images"."""
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid HBase index name: letters, digits, '_', '-' and '.', not "
            "starting with '-' or '.' (HBase's rules for table names)"
        )
    if name.endswith(RECORDS_SUFFIX):
        raise ValueError(
            f"{name!r} is not a valid HBase index name: it may not end in {RECORDS_SUFFIX!r} "
            "(the suffix of an index's record table)"
        )


@dataclass(frozen=True)
class HBaseOptions:
    """Where HBase's Thrift2 server is and how to talk to it (all settable in the URL)."""

    host: str
    port: int = 9090
    table: str = "phashdb"
    transport: str = "buffered"  # or framed: as the Thrift server was started
    protocol: str = "binary"  # or compact
    pool_size: int = 8  # connections, and calls in flight at once
    batch_size: int = 1_000_000  # images per write batch: the more, the fewer band cells
    timeout: float = 60.0  # seconds per Thrift call
    retries: int = 3  # attempts after a transport failure, with backoff
    thrift2_port: int | None = None  # an older URL's way to name the Thrift2 port
    zookeeper: str = ""  # HOST:PORT of the cluster's ZooKeeper, for the HFile bulk load
    server_filter: int = 1  # 0: measure every band entry here, not in the region servers

    @classmethod
    def from_url(cls, url: str, **overrides) -> HBaseOptions:
        parts = urlparse(url)
        table = parts.path.strip("/")
        if parts.scheme != "hbase" or not parts.hostname or not table or "/" in table:
            raise ValueError(f"{url!r} is not an HBase URL like hbase://HOST:PORT/TABLE")
        check_index_name(table)
        query = dict(parse_qsl(parts.query))
        fields = cls.__dataclass_fields__
        unknown = set(query) - set(fields)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} in {url!r}")
        convert = {"timeout": float, "transport": str, "protocol": str, "zookeeper": str}
        try:
            values = {k: convert.get(k, int)(v) for k, v in {**query, **overrides}.items()}
        except ValueError as e:
            raise ValueError(f"bad option value in {url!r}: {e}") from e
        options = cls(parts.hostname, parts.port or 9090, table, **values)
        if options.transport not in ("buffered", "framed"):
            raise ValueError(f"'transport' must be buffered or framed, got {options.transport!r}")
        if options.protocol not in ("binary", "compact"):
            raise ValueError(f"'protocol' must be binary or compact, got {options.protocol!r}")
        if options.pool_size < 1:
            raise ValueError(f"'pool_size' must be at least 1, got {options.pool_size}")
        return options

    @property
    def server(self) -> int:
        """The Thrift2 server's port."""
        return self.thrift2_port or self.port

    @property
    def images_table(self) -> str:
        """The record table of a new index (an old one's may be named the old way:
        `schema.record_table`)."""
        return self.table + RECORDS_SUFFIX


class Unreachable(StoreError):
    """HBase's Thrift server cannot be reached (refused, timed out, or known to be down)."""


class Pool:
    """Thrift2 clients, one per call in flight. A connection that failed is dropped and a new
    one made; once connecting itself has failed (after the retries), the server is known down
    and every call fails at once for `down_for` seconds, so a command over many inputs gives up
    in seconds instead of retrying for each of them."""

    def __init__(self, options: HBaseOptions, *, down_for: float = 30.0) -> None:
        self.options = options
        self.down_for = down_for
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(options.pool_size)
        self._down_until = 0.0
        self._down_reason = ""
        self.where = f"HBase Thrift2 server at {options.host}:{options.server}"

    def _connect(self):
        o = self.options
        return make_client(
            hb.THBaseService,
            o.host,
            o.server,
            timeout=int(o.timeout * 1000),
            proto_factory=TCompactProtocolFactory()
            if o.protocol == "compact"
            else TBinaryProtocolFactory(),
            trans_factory=TFramedTransportFactory()
            if o.transport == "framed"
            else _BigBufferedTransportFactory(),
        )

    def call(self, fn: Callable[..., T]) -> T:
        """fn(client) on a pooled client; transport failures retried on a new connection with
        backoff; HBase's own errors become StoreError at once."""
        if time.monotonic() < self._down_until:
            raise Unreachable(f"{self.where} is not reachable ({self._down_reason}); not retried")
        for attempt in range(self.options.retries + 1):
            client = None
            with self._slots:
                try:
                    try:
                        client = self._idle.get_nowait()
                    except queue.Empty:
                        client = self._connect()
                    result = fn(client)
                    self._idle.put(client)
                    return result
                except hb.TIOError as e:
                    self._idle.put(client)
                    raise StoreError(
                        f"{self.options.host}: HBase error: {_first_line(e.message)}"
                    ) from e
                except hb.TIllegalArgument as e:
                    self._idle.put(client)
                    raise StoreError(
                        f"{self.options.host}: HBase refused the call: {_first_line(e.message)}"
                    ) from e
                except (TException, OSError, EOFError) as e:
                    if client is not None:
                        client.close()
                    connecting = client is None
                    error = e
            if connecting and attempt == self.options.retries:
                self._down_until = time.monotonic() + self.down_for
                self._down_reason = f"{type(error).__name__}: {error}"
            if attempt == self.options.retries:
                raise Unreachable(
                    f"{self.where} is not reachable or timed out after {attempt + 1} attempts: {error}"
                ) from error
            log.info("retrying after a Thrift transport failure: %s", error)
            time.sleep(0.25 * 2**attempt if connecting else 0.05)
        raise AssertionError("unreachable")

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _first_line(message) -> str:
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    message = (message or "").strip()
    return (message.splitlines()[0] if message else "(no message)")[:300]


# --- filters, serialized as HBase's protobuf (TGet.filterBytes) ----------------------------


def _varint(x: int) -> bytes:
    if x < 0x80:
        return _BYTE[x]
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_BYTE = [bytes([b]) for b in range(0x80)]


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@lru_cache(maxsize=4096)
def column_range_filter(first: bytes, end: bytes | None) -> bytes:
    """HBase's ColumnRangeFilter [first, end) as a serialized FilterProtos.Filter: Thrift2
    decodes any stock filter from these bytes, arbitrary binary bounds included."""
    inner = _field(1, first) + _field(2, 1)
    if end is not None:
        inner += _field(3, end) + _field(4, 0)
    return _field(1, b"org.apache.hadoop.hbase.filter.ColumnRangeFilter") + _field(2, inner)


@lru_cache(maxsize=4096)
def column_prefix_filter(prefixes: tuple[bytes, ...]) -> bytes:
    """HBase's MultipleColumnPrefixFilter (the cells whose qualifier starts with any of
    `prefixes`, reached by seeks), serialized."""
    inner = b"".join(_field(1, p) for p in sorted(prefixes))
    return _field(1, b"org.apache.hadoop.hbase.filter.MultipleColumnPrefixFilter") + _field(
        2, inner
    )


# phashdb's own filter (java/hbase: phashdb.hbase.HammingFilter), on the region servers'
# classpath; without it the store measures every entry itself (HBaseStore.server_filter).
HAMMING_FILTER = "phashdb.hbase.HammingFilter"


def hamming_filter(size: int, left: int, query: bytes) -> bytes:
    """The band entries (of `size` bytes, starting with the `len(query)` kept bytes of their
    hash) within `left` of `query`'s, as a serialized FilterProtos.Filter."""
    return _field(1, HAMMING_FILTER.encode()) + _field(2, bytes([size, len(query), left]) + query)


_FILTER_LIST = _field(1, b"org.apache.hadoop.hbase.filter.FilterList")
_MUST_PASS_ALL = _field(1, 1)


def all_of(*filters: bytes) -> bytes:
    """FilterList(MUST_PASS_ALL) of serialized filters, serialized."""
    inner = _MUST_PASS_ALL + b"".join(_field(2, f) for f in filters)
    return _FILTER_LIST + _field(2, inner)
