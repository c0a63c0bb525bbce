"""In-memory band tables: the embedded index's search structure, and its file on disk.

For every band, `orders[b]` lists the rows sorted by that band's value and `starts[b][v]` is
where value v begins in that list (a counting sort), so a probe is two array reads, and a whole
batch of probes is a handful of numpy operations. The file is one flat binary that is memory-
mapped on open: opening a 10M-hash index reads a header, not 10M rows.

The file is derived data (SQLite holds the truth) and is never trusted blindly: its header
carries a CRC32 of itself and of every array, and `load` checks the header, the sizes and the
few values that bound every read (band starts, id ends) each time. The CRC32 of the arrays
(0.5 GB at 10M hashes) is checked once per version of the file: the first `load` that sees the
file as the file system describes it (inode, size, modification and change times) reads it all,
and records that in a small `.checked` file beside it; a file written or copied since does not
match and is read again. The C loops check every start and row number they read whatever the
file says, and raise `Damaged` instead of reading outside an array.
"""

from __future__ import annotations

import json
import mmap
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import _hamming
from ..bands import BandLayout, flip_masks

MAGIC = b"PHDBTAB3"
# What `save` writes after the magic: the header's length and CRC32, then the header (JSON).
PREFIX = len(MAGIC) + 8 + 4
# The rows' numbers are int32 in the band orders.
MAX_ROWS = 2**31 - 1
# Reads of the CRC32 check go in pieces this large (kept out of the process's resident memory,
# unlike pages of the memory map).
CHUNK = 8 << 20
# The damage that `load`, `search` and `ids` refuse (raised by the C loops too).
Damaged = _hamming.Damaged
# Every array starts on a cache line, so the C loops read aligned words.
ALIGN = 64
# Beyond this many bits a band's start table (4 bytes per value) costs more memory than it saves.
MAX_TABLE_BITS = 24
# What a probe and a candidate cost, in units of a scan's per-hash work (the scan reads 10M
# hashes in 3 ms on 2 cores; a probe, a cache miss, costs ~50 ns; a candidate ~1 ns): fitted by
# least squares to forced probing at radii 8 to 16 on 10M uniform and clustered hashes. Only the
# ratios matter, for the probe-or-scan choice.
PROBE_COST, CANDIDATE_COST = 157.0, 4.0
# Fewer hashes than this are scanned in one thread: starting another would cost more.
SCAN_SHARE = 1 << 16
# Read once: os.cpu_count() reads a file in /sys, a twentieth of a small query's time.
CORES = os.cpu_count() or 1


@dataclass
class BandTables:
    """Rows (`keys`, `hashes`, ids) indexed by every band of `layout`."""

    layout: BandLayout
    keys: np.ndarray  # int64, one per row
    hashes: np.ndarray  # uint64, one per row
    orders: list[np.ndarray]  # per band: row numbers sorted by band value
    starts: list[np.ndarray]  # per band: 2**width + 1 offsets into orders[b]
    # Per band: the hashes in orders[b]'s order, so that the candidates of a probe are read
    # from one contiguous run instead of gathered from all over `hashes`.
    sorted_hashes: list[np.ndarray]
    # The rows' ids, UTF-8, end to end; row i's id ends at id_ends[i]. Kept here so that a
    # query answers with ids without a database read per match.
    id_blob: np.ndarray  # uint8
    id_ends: np.ndarray  # int64, one per row

    @classmethod
    def build(
        cls, keys: np.ndarray, hashes: np.ndarray, layout: BandLayout,
        id_blob: np.ndarray, id_ends: np.ndarray,
    ) -> BandTables:
        if max(layout.widths) > MAX_TABLE_BITS:
            raise ValueError(
                f"'bands' of the embedded index must be at most {MAX_TABLE_BITS} bits wide, "
                f"got {list(layout.widths)}"
            )
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        orders, starts = [], []
        for width, values in zip(layout.widths, layout.split(hashes)):
            orders.append(np.argsort(values, kind="stable").astype(np.int32))
            counts = np.bincount(values, minlength=1 << width)
            starts.append(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))
        sorted_hashes = [hashes[order] for order in orders]
        return cls(layout, keys, hashes, orders, starts, sorted_hashes, id_blob, id_ends)

    def __len__(self) -> int:
        return len(self.keys)

    def search(
        self, queries: np.ndarray, radius: int, *, strategy: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row within `radius` of each query, exactly: (query numbers, row numbers,
        distances). Each query probes the bands or scans all rows, whichever costs less: first
        by the estimate for uniform hashes, then by the candidates its probes would really read
        (clustered hashes make some band values far fuller than others). `strategy` "probe"
        or "scan" forces one (the tests check both against each other)."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        n = len(self)
        if n == 0 or len(queries) == 0:
            return _empty()
        if strategy == "scan":
            return scan(self.hashes, queries, radius)
        values = self.layout.split(queries)
        dense = np.zeros(len(queries), dtype=bool)
        if strategy == "auto":
            probes = PROBE_COST * self.layout.probe_count(radius)
            if probes + CANDIDATE_COST * self.layout.expected_candidates(radius, n) >= n:
                return scan(self.hashes, queries, radius)
            dense = probes + CANDIDATE_COST * self._candidates(values, radius) >= n
        if not dense.any():
            return self._probe(queries, values, radius)
        parts = [
            self._probe(queries[~dense], values[:, ~dense], radius),
            scan(self.hashes, queries[dense], radius),
        ]
        numbers = [np.flatnonzero(~dense), np.flatnonzero(dense)]
        return (
            np.concatenate([number[q] for number, (q, _, _) in zip(numbers, parts)]),
            np.concatenate([rows for _, rows, _ in parts]),
            np.concatenate([d for _, _, d in parts]),
        )

    def _candidates(self, values: np.ndarray, radius: int) -> np.ndarray:
        """How many rows the probes of each query (its band `values`) would read."""
        total = np.zeros(values.shape[1], dtype=np.int64)
        for band, masks, _, _ in probe_plan(self.layout, radius):
            _hamming.count(values[band], masks, self.starts[band], total)
        return total

    def _probe(
        self, queries: np.ndarray, values: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`search` by probing the bands: each probed band's rows with a band value within the
        band's probe radius of the query's, those within `radius` of the query kept once."""
        plan = probe_plan(self.layout, radius)

        def share(lo: int, hi: int) -> np.ndarray:
            found = [
                _hamming.probe(
                    queries[lo:hi], np.ascontiguousarray(values[band, lo:hi]), masks,
                    self.starts[band], self.orders[band], self.sorted_hashes[band], radius,
                    earlier, earlier_radii,
                )
                for band, masks, earlier, earlier_radii in plan
            ]
            triples = _triples(found)
            triples[:, 0] += lo
            return triples

        return _in_threads(share, len(queries), 1)

    def ids(self, rows: np.ndarray) -> list[str]:
        """The ids of some rows: copied out end to end by C, decoded as one string and split
        at the NULs put after each; only when an id holds a NUL itself (no path can) is each
        decoded on its own."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        try:
            ids = _hamming.ids(self.id_blob, self.id_ends, rows).decode(*UTF8).split("\0")
            if len(ids) == len(rows) + 1:
                return ids[:-1]
            return decode_ids(*id_slices(self.id_blob, self.id_ends, rows))
        except UnicodeDecodeError as e:  # surrogateescape takes any bytes; kept for safety
            raise Damaged(f"an id is not UTF-8: {e}") from None

    def save(self, path: Path, extra: dict) -> None:
        """Write the tables to `path` atomically (a reader sees the old file or the new one);
        a failed write leaves no temporary file behind."""
        arrays = self._arrays()
        header = {"widths": list(self.layout.widths), "extra": extra, "arrays": {}}
        offset = 0
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            header["arrays"][name] = [str(a.dtype), len(a), offset, zlib.crc32(a)]
            offset += a.nbytes + -a.nbytes % ALIGN
        header["data_bytes"] = offset
        head = json.dumps(header).encode()
        base = PREFIX + len(head)
        base += -base % ALIGN
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(MAGIC + len(head).to_bytes(8, "little"))
                f.write(zlib.crc32(head).to_bytes(4, "little") + head)
                f.write(b"\0" * (base - f.tell()))
                for a in arrays.values():
                    f.write(np.ascontiguousarray(a).tobytes() + b"\0" * (-a.nbytes % ALIGN))
                f.flush()
                os.fsync(f.fileno())
                inode = os.fstat(f.fileno()).st_ino
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # Written from memory just now: checked. (If another process replaced it meanwhile,
        # its inode differs and its file is checked on its first load.)
        st = path.stat()
        if st.st_ino == inode:
            _mark_checked(path, st)

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"keys": self.keys, "hashes": self.hashes}
        arrays["id_blob"], arrays["id_ends"] = self.id_blob, self.id_ends
        for b, (order, start, sh) in enumerate(zip(self.orders, self.starts, self.sorted_hashes)):
            arrays[f"order{b}"], arrays[f"start{b}"], arrays[f"sorted{b}"] = order, start, sh
        return arrays

    @classmethod
    def load(cls, path: Path, *, check_all: bool = False) -> tuple[BandTables, dict]:
        """Memory-map tables written by `save`; returns them and the `extra` saved with them.
        Raises Damaged when the file is not what `save` wrote. The arrays' CRC32 is read when
        this version of the file was not checked before, or when `check_all`."""
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head, base = _read_header(f, path, st.st_size)
            whole = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if st.st_size else b""
            try:
                widths = tuple(head["widths"])
                layout = BandLayout(widths)
                if max(widths) > MAX_TABLE_BITS:
                    raise Damaged(f"band widths {list(widths)} are too wide")
                arrays = _arrays(head, base, whole, len(widths))
            except (ValueError, KeyError, TypeError) as e:
                raise Damaged(f"{path} has a damaged header: {e}") from None
            _check_bounds(arrays, widths, path)
            if check_all or not _was_checked(path, st):
                _check_crc(f, head, base, path)
                _mark_checked(path, st)
        count = len(layout.widths)
        tables = cls(
            layout,
            arrays["keys"],
            arrays["hashes"],
            [arrays[f"order{b}"] for b in range(count)],
            [arrays[f"start{b}"] for b in range(count)],
            [arrays[f"sorted{b}"] for b in range(count)],
            arrays["id_blob"],
            arrays["id_ends"],
        )
        return tables, head["extra"]


def read_header(path: Path) -> tuple[dict, int]:
    """The header of a band table file, and where its arrays begin (offsets count from there)."""
    with open(path, "rb") as f:
        return _read_header(f, path, os.fstat(f.fileno()).st_size)


def _read_header(f, path: Path, size: int) -> tuple[dict, int]:
    prefix = f.read(PREFIX)
    if prefix[: len(MAGIC)] != MAGIC or len(prefix) < PREFIX:
        raise Damaged(f"{path} is not a phashdb band table file of this version")
    head_len = int.from_bytes(prefix[len(MAGIC) : len(MAGIC) + 8], "little")
    if head_len > size - PREFIX:
        raise Damaged(f"{path} is truncated or its header is damaged")
    head = f.read(head_len)
    if zlib.crc32(head) != int.from_bytes(prefix[-4:], "little"):
        raise Damaged(f"{path} has a damaged header (CRC32)")
    try:
        header = json.loads(head)
    except ValueError as e:
        raise Damaged(f"{path} has a damaged header: {e}") from None
    base = PREFIX + head_len
    base += -base % ALIGN
    if not isinstance(header, dict) or header.get("data_bytes") != size - base:
        raise Damaged(f"{path} is truncated or padded: {size} bytes, not what its header says")
    return header, base


# The arrays a band table file holds, and their types.
DTYPES = {"keys": "int64", "hashes": "uint64", "id_blob": "uint8", "id_ends": "int64",
          "order": "int32", "start": "int32", "sorted": "uint64"}  # fmt: skip


def _arrays(head: dict, base: int, whole, bands: int) -> dict[str, np.ndarray]:
    names = ["keys", "hashes", "id_blob", "id_ends"]
    names += [f"{kind}{b}" for b in range(bands) for kind in ("order", "start", "sorted")]
    if sorted(head["arrays"]) != sorted(names):
        raise ValueError(f"arrays {sorted(head['arrays'])}, not {sorted(names)}")
    out = {}
    for name in names:
        dtype, length, offset, _ = head["arrays"][name]
        if dtype != DTYPES[name.rstrip("0123456789")] or offset % ALIGN:
            raise ValueError(f"array {name} is {dtype} at {offset}")
        out[name] = np.frombuffer(whole, dtype=dtype, count=length, offset=base + offset)
    return out


def _check_bounds(arrays: dict[str, np.ndarray], widths: tuple[int, ...], path: Path) -> None:
    """The sizes, and the few values every read is bounded by: each band's starts begin at 0
    and end at the row count, the ids end at the blob's end (the C loops check the rest)."""
    n = len(arrays["keys"])
    sizes = [len(arrays[k]) for k in ("hashes", "id_ends")]
    for b, width in enumerate(widths):
        sizes += [len(arrays[f"order{b}"]), len(arrays[f"sorted{b}"])]
        start = arrays[f"start{b}"]
        if len(start) != (1 << width) + 1 or start[0] != 0 or start[-1] != n:
            raise Damaged(f"{path}: the starts of band {b} are damaged")
    if n > MAX_ROWS or any(size != n for size in sizes):
        raise Damaged(f"{path}: its arrays' lengths disagree")
    ends, blob = arrays["id_ends"], arrays["id_blob"]
    if (ends[-1] if n else 0) != len(blob):
        raise Damaged(f"{path}: the ids' ends are damaged")


def _check_crc(f, head: dict, base: int, path: Path) -> None:
    """Read every array (in threads, with plain reads) and compare its CRC32 with the header's."""

    def crc(spec: tuple[str, list]) -> str | None:
        name, (dtype, length, offset, expected) = spec
        at, left, value = base + offset, length * np.dtype(dtype).itemsize, 0
        while left:
            piece = os.pread(f.fileno(), min(left, CHUNK), at)
            if not piece:
                return name
            value = zlib.crc32(piece, value)
            at, left = at + len(piece), left - len(piece)
        return None if value == expected else name

    bad = [name for name in _threads().map(crc, head["arrays"].items()) if name]
    if bad:
        raise Damaged(f"{path}: array {', '.join(bad)} damaged (CRC32)")


def _checked_file(path: Path) -> Path:
    return path.with_name(f"{path.name}.checked")


def _was_checked(path: Path, st: os.stat_result) -> bool:
    try:
        return json.loads(_checked_file(path).read_text()) == _identity(st)
    except (OSError, ValueError):
        return False


def _mark_checked(path: Path, st: os.stat_result) -> None:
    """Record that the file `st` describes was checked in full (best effort: a read-only
    index checks again next time)."""
    checked = _checked_file(path)
    tmp = checked.with_name(f"{checked.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_identity(st)))
        os.replace(tmp, checked)
    except OSError:
        tmp.unlink(missing_ok=True)


def _identity(st: os.stat_result) -> list[int]:
    # Any write to the file, a copy, or a rename over it changes one of these (the change
    # time cannot be set back from user space).
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


@lru_cache(maxsize=256)
def probe_plan(layout: BandLayout, radius: int) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """What a query at `radius` probes, band by band: (band, its XOR masks, the bit masks and
    probe radii of the bands probed before it). Made once per radius, not once per query."""
    probed = [(b, r) for b, r in enumerate(layout.probe_radii(radius)) if r >= 0]
    plan = []
    for i, (band, r) in enumerate(probed):
        earlier = np.array([layout.masks[b] for b, _ in probed[:i]], dtype=np.uint64)
        earlier_radii = np.array([r for _, r in probed[:i]], dtype=np.int32)
        earlier.flags.writeable = earlier_radii.flags.writeable = False  # shared by all callers
        plan.append((band, flip_masks(layout.widths[band], r), earlier, earlier_radii))
    return plan


# Ids are file paths, which need not be UTF-8: such bytes travel as os.fsdecode gives them.
UTF8 = ("utf-8", "surrogateescape")


def encode_ids(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids as (blob, ends), the layout BandTables keeps them in."""
    encoded = [i.encode(*UTF8) for i in ids]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, np.cumsum([len(e) for e in encoded], dtype=np.int64)


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


def id_slices(blob: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of some rows' ids, end to end, and each one's length (no Python loop)."""
    rows = np.asarray(rows, dtype=np.int64)
    stop = ends[rows]
    start = np.where(rows > 0, ends[np.maximum(rows - 1, 0)], 0)
    lengths = stop - start
    total = np.cumsum(lengths)
    flat = np.arange(total[-1] if len(total) else 0) - np.repeat(total - lengths - start, lengths)
    return blob[flat], lengths


def scan(hashes: np.ndarray, queries: np.ndarray, radius: int):
    """Brute force: (query numbers, row numbers, distances) of every row within `radius`."""
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    if len(hashes) == 0 or len(queries) == 0:
        return _empty()

    def share(lo: int, hi: int) -> np.ndarray:
        triples = _triples([_hamming.scan(hashes[lo:hi], queries, radius)])
        triples[:, 1] += lo
        return triples

    return _in_threads(share, len(hashes), SCAN_SHARE)


def _in_threads(share, n: int, least: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`share(lo, hi)` over 0..n cut into one piece per core (pieces of at least `least`),
    run at once in threads (the C loops release the GIL), as (query numbers, row numbers,
    distances)."""
    workers = max(1, min(CORES, n // least))
    cuts = [n * w // workers for w in range(workers + 1)]
    if workers > 1:
        parts = list(_threads().map(share, cuts[:-1], cuts[1:]))
    else:
        parts = [share(0, n)]
    triples = np.concatenate(parts)
    return triples[:, 0], triples[:, 1], triples[:, 2].astype(np.int8)


def _triples(found: list[bytes]) -> np.ndarray:
    """The (query, row, distance) triples that _hamming returned, as one writable array."""
    return np.frombuffer(b"".join(found), dtype=np.int64).reshape(-1, 3).copy()


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _threads() -> ThreadPoolExecutor:
    """One thread per core, kept for the life of the process (threads made afresh for every
    query scanned slower by a third); a forked child makes its own."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(CORES))
    return _pool[1]


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8)

