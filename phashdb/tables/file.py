"""The band table file: band tables and the rows' keys and ids, in one flat binary that is
memory-mapped on open (opening a 10M-hash index reads a header, not 10M rows).

The file is derived data (SQLite holds the truth) and is never trusted blindly: its header
carries a CRC32 of itself and of every array, and `load` checks the header, the sizes and the
few values that bound every read (band starts, id ends) each time. The CRC32 of the arrays
(0.5 GB at 10M hashes) is checked once per version of the file: the first `load` that sees the
file as the file system describes it (inode, size, modification and change times) reads it all,
and records that in a small `.checked` file beside it; a file written or copied since does not
match and is read again.

The layout (PHDBTAB3) is a persisted format, pinned by tests/test_tables_file.py: the magic,
the header's length (8 bytes) and CRC32 (4), the header (JSON: band widths, the caller's
`extra`, each array's dtype, length, offset and CRC32), then the arrays, each on a cache line.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import zlib
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..bands import BandLayout
from .ids import RowIds
from .scan import threads
from .search import MAX_ROWS, MAX_TABLE_BITS, BandTables, Damaged, band_arrays

MAGIC = b"PHDBTAB3"
# What `save` writes after the magic: the header's length and CRC32, then the header (JSON).
PREFIX = len(MAGIC) + 8 + 4
# Reads of the CRC32 check go in pieces this large (kept out of the process's resident memory,
# unlike pages of the memory map).
CHUNK = 8 << 20
# Every array starts on a cache line, so the C loops read aligned words.
ALIGN = 64
# The arrays a band table file holds, and their types.
DTYPES = {"keys": "int64", "hashes": "uint64", "id_blob": "uint8", "id_ends": "int64",
          "order": "int32", "start": "int32", "sorted": "uint64"}  # fmt: skip


def save(path: Path, tables: BandTables, rows: RowIds, extra: dict) -> None:
    """Write `tables` and what their rows stand for to `path` atomically (a reader sees the old
    file or the new one), with `extra` in the header; a failed write leaves no temporary file."""
    arrays = {name: np.ascontiguousarray(a) for name, a in _named(tables, rows).items()}
    crcs = {name: zlib.crc32(a) for name, a in arrays.items()}
    head = _head(tables.layout.widths, extra, arrays, crcs)
    with _writing(path) as f:
        f.write(_prefixed(head))
        for a in arrays.values():
            _put(f, [a])


def save_built(
    path: Path, hashes: list[np.ndarray], layout: BandLayout, rows: list[RowIds], extra: dict
) -> None:
    """`save` of BandTables.build(the `hashes` pieces joined, layout) with `rows` (pieces, in
    the same order), built and written a band at a time: only one band's arrays are ever in
    memory (at 10^8 rows the whole tables were 4.4 GB more). Both lists are emptied once
    written, so that the caller's memory of the rows' keys and ids goes before the hashes are
    joined and the bands built. The file reads as `save`'s does; its header's JSON may end in
    spaces (the CRC32s are known only at the end, the arrays' place at the start)."""
    n, widths = sum(map(len, hashes)), layout.widths
    lengths = {"keys": n, "hashes": n, "id_blob": sum(len(r.id_blob) for r in rows), "id_ends": n}
    for b, width in enumerate(widths):
        lengths |= {f"order{b}": n, f"start{b}": (1 << width) + 1, f"sorted{b}": n}
    shapes = {name: np.empty(0, DTYPES[name.rstrip("0123456789")]) for name in lengths}
    worst = _head(widths, extra, shapes, dict.fromkeys(lengths, 2**32 - 1), lengths)
    base = _base(worst)
    with _writing(path) as f:
        f.seek(base)
        crcs = {"keys": _put(f, (r.keys for r in rows)), "hashes": _put(f, hashes)}
        crcs["id_blob"] = _put(f, (r.id_blob for r in rows))
        offsets = np.cumsum([0] + [len(r.id_blob) for r in rows]).tolist()
        crcs["id_ends"] = _put(f, (r.id_ends + o for r, o in zip(rows, offsets)))
        rows.clear()
        joined = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        hashes.clear()
        _give_back_freed_memory()
        for b, arrays in enumerate(band_arrays(joined, layout)):
            for kind, a in zip(("order", "start", "sorted"), arrays):
                crcs[f"{kind}{b}"] = _put(f, [a])
        head = _head(widths, extra, shapes, crcs, lengths)
        if _base(head) != base:
            head += b" " * (base - PREFIX - len(head))
        f.seek(0)
        f.write(_prefixed(head))


def _give_back_freed_memory() -> None:
    """Hand the heap's free pages back to the system before the bands are built. A bulk load's
    delta is thousands of arrays of ~8 MB, which glibc serves from its heap once its mmap
    threshold has grown past them: freed, they stayed resident (2.5 GB at 10^8 rows) while
    the bands' arrays, too large for the heap, were mapped anew beside them."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        return  # not glibc: its allocator gives memory back its own way


def _head(widths, extra: dict, arrays: dict, crcs: dict, lengths: dict | None = None) -> bytes:
    """The header (JSON) of a file of `arrays` (their dtypes; their lengths, unless given)."""
    header = {"widths": list(widths), "extra": extra, "arrays": {}}
    offset = 0
    for name, a in arrays.items():
        length = len(a) if lengths is None else lengths[name]
        header["arrays"][name] = [str(a.dtype), length, offset, crcs[name]]
        nbytes = length * a.itemsize
        offset += nbytes + -nbytes % ALIGN
    header["data_bytes"] = offset
    return json.dumps(header).encode()


def _base(head: bytes) -> int:
    """Where the arrays begin, after the header `head`."""
    return PREFIX + len(head) + -(PREFIX + len(head)) % ALIGN


def _prefixed(head: bytes) -> bytes:
    """The file's start: the magic, the header's length and CRC32, the header, padding."""
    start = MAGIC + len(head).to_bytes(8, "little") + zlib.crc32(head).to_bytes(4, "little")
    return start + head + b"\0" * (_base(head) - PREFIX - len(head))


def _put(f, pieces: Iterable[np.ndarray]) -> int:
    """Write one array (in pieces, end to end, each made when its turn comes) and its padding;
    returns its CRC32."""
    crc = nbytes = 0
    for a in pieces:
        # Written from the array's own memory: tobytes() and a join copied the largest
        # (0.8 GB at 10^8 rows) twice over.
        data = memoryview(np.ascontiguousarray(a)).cast("B")
        f.write(data)
        crc, nbytes = zlib.crc32(data, crc), nbytes + len(data)
    f.write(b"\0" * (-nbytes % ALIGN))
    return crc


@contextmanager
def _writing(path: Path):
    """A file to write that replaces `path` when done (fsynced), none left when it fails;
    written from memory just now, it is marked checked. (If another process replaced it
    meanwhile, its inode differs and its file is checked on its first load.)"""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            inode = os.fstat(f.fileno()).st_ino
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    st = path.stat()
    if st.st_ino == inode:
        _mark_checked(path, st)


def _named(tables: BandTables, rows: RowIds) -> dict[str, np.ndarray]:
    """The arrays in the order the file holds them."""
    arrays = {"keys": rows.keys, "hashes": tables.hashes}
    arrays["id_blob"], arrays["id_ends"] = rows.id_blob, rows.id_ends
    parts = zip(tables.orders, tables.starts, tables.sorted_hashes)
    for b, (order, start, sh) in enumerate(parts):
        arrays[f"order{b}"], arrays[f"start{b}"], arrays[f"sorted{b}"] = order, start, sh
    return arrays


def load(path: Path, *, check_all: bool = False) -> tuple[BandTables, RowIds, dict]:
    """Memory-map a file written by `save`: the tables, their rows' keys and ids, and the
    `extra` saved with them. Raises Damaged when the file is not what `save` wrote. The arrays'
    CRC32 is read when this version of the file was not checked before, or when `check_all`."""
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
    tables = BandTables(
        layout,
        arrays["hashes"],
        [arrays[f"order{b}"] for b in range(count)],
        [arrays[f"start{b}"] for b in range(count)],
        [arrays[f"sorted{b}"] for b in range(count)],
    )
    return tables, RowIds(arrays["keys"], arrays["id_blob"], arrays["id_ends"]), head["extra"]


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

    bad = [name for name in threads().map(crc, head["arrays"].items()) if name]
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
