"""The byte layout of phashdb's HBase tables: pure functions, the one place that knows it.

Band table `T` (family `b`): every stored image is an entry in one cell per band.

    row key    band number (1 byte) | the band value's top `row_bits` bits (2 bytes, big-endian)
    qualifier  the band value's other bits (2 bytes) | the writer's tag (5 bytes): a number
               from the counter that no image has, one per write batch, or the image's own
               number when it is written alone (so removing it removes exactly its cells)
    value      the entries: for each image of the batch with that band value, sorted, the hash
               rotated left so the band's bits come first, less its leading whole bytes of band
               bits (known from the key) | the image number (5 bytes)

HBase's cost is per row mutated and per cell far more than per byte: a batch of writes puts one
cell per band value it touches, many into each row (a row gathers 2**(width - row_bits) band
values), and a probe of one band value is an exact Get of its row with a column range (the
value's 2-byte prefix, `probe_range`), returning the few cells of that value whatever the number
of images in them; the client decodes their entries as one array. An entry whose image has no
record (removed, or a writer that died) is left out by the reader; `fsck --repair` rewrites
cells without them.

Record table `T_images` (family `i`):

    \\x00settings          i:s = the index settings (JSON)
    \\x00counter           i:n = the last image number given out (an HBase counter)
    n | block (5 bytes)   one row per 256 image numbers; `block` is number >> 8, bit-reversed
                          so consecutive blocks spread over the key space (and regions)
        qualifier [low]       the record of image number block<<8|low (`encode_record`): the
                              image is stored exactly when this cell exists
        qualifier [low] c     a writer's pending claim: its start and lease expiry (ms, 8
                              bytes each) | id
    i | bucket (2 bytes)  ids hashed into 4,096 buckets: qualifier id (UTF-8, surrogates
                          escaped) -> value the image number (8 bytes)

Ids are Python strings that may hold surrogate escapes (os.fsdecode of a non-UTF-8 file name):
they are encoded with 'surrogateescape' everywhere, so they come back exactly.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii

import numpy as np

from ..bands import BandLayout
from ..records import Image

BAND_FAMILY = b"b"
RECORD_FAMILY = b"i"
SETTINGS_ROW = b"\x00settings"
SETTINGS = b"s"
COUNTER_ROW = b"\x00counter"
# Pairs marked not duplicates: cells of one row of the record table (few; one Get reads all),
# qualifier = 4-byte length of the first id's bytes, its bytes, the second id's bytes; value =
# when the decision was made (8-byte big-endian milliseconds).
DECISIONS_ROW = b"\x00decisions"
COUNTER = b"n"
DEFAULT_ROW_BITS = 12
ID_BUCKET_BITS = 12
NUMBER_BYTES = 5  # image numbers in band cells and tags
MAX_NUMBER = 2 ** (8 * NUMBER_BYTES) - 1
LOW_BYTES = 2  # a band value's bits below the row's, first in a band cell's qualifier
BAND_TIME_STEP = 60_000  # band cells' timestamps are whole minutes (ms), see store.py


# Band rows of keys (an image's other hashes, phashdb.descriptor.KEYS; index format 2): laid
# out as the hashes' band rows, their band number plus KEY_BANDS, an entry per key holding its
# hash and its image's number. Which key of the image it is, the image's record says.
KEY_BANDS = 64
# Band rows of the wide keys alone (confirm.WIDE_KEYS, searched up to the reach; HBase layout
# 4): each wide key has its entries here as well as in the KEY_BANDS rows, so a check probes
# every key within the threshold and only these up to the reach. One search of every key up to
# the reach read ~9 times the entries of the images' search with nine window keys an image,
# and the record of every image with a key within the reach (benchmarks/hbase_windows.py).
WIDE_KEY_BANDS = 128
# What the band table of each HBase layout holds: 3, the KEY_BANDS rows; 4, the WIDE_KEY_BANDS
# rows too (a layout-3 index's wide keys are searched in the KEY_BANDS rows).
LAYOUT = 4
READS_LAYOUTS = (3, LAYOUT)


def band_index(first: int) -> int:
    """The band of a band row, by its first byte (a hash's or a key's)."""
    return first - band_set(first)


def band_set(first: int) -> int:
    """Where a band row's set of band rows starts, by its first byte: 0 (the hashes'),
    KEY_BANDS or WIDE_KEY_BANDS."""
    return WIDE_KEY_BANDS if first >= WIDE_KEY_BANDS else KEY_BANDS if first >= KEY_BANDS else 0


def encode_id(id: str) -> bytes:
    return id.encode("utf-8", "surrogateescape")


def decode_id(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


# --- band cells ---------------------------------------------------------------------------


def _rotl(h: int, k: int) -> int:
    k %= 64
    return ((h << k) | (h >> (64 - k))) & 0xFFFF_FFFF_FFFF_FFFF if k else h


def band_top(layout: BandLayout, band: int) -> int:
    """How many hash bits lie above the band: rotating left by this brings the band first."""
    return 64 - layout.shifts[band] - layout.widths[band]


def band_row(band: int, value: int, width: int, row_bits: int) -> bytes:
    return bytes([band]) + (value >> max(width - row_bits, 0)).to_bytes(2, "big")


def band_qualifier(value: int, width: int, row_bits: int, tag: int) -> bytes:
    low = value & ((1 << max(width - row_bits, 0)) - 1)
    return low.to_bytes(LOW_BYTES, "big") + tag.to_bytes(NUMBER_BYTES, "big")


def _kept_bytes(width: int) -> int:
    """Bytes of an entry's rotated hash that are stored: the whole bytes of band bits it
    starts with are the band value, known from the row and qualifier."""
    return 8 - width // 8


def entry_size(width: int) -> int:
    return _kept_bytes(width) + NUMBER_BYTES


def band_cells_many(
    layout: BandLayout, row_bits: int, hashes: np.ndarray, numbers: np.ndarray, tag: int,
    first_band: int = 0,
) -> dict[bytes, list[tuple[bytes, bytes]]]:  # fmt: skip
    """The band cells of a batch of images, as {row key: [(qualifier, value), ...]}: per band,
    one cell per band value, tagged with `tag`, holding every image of the batch with that
    value, as entries sorted by hash. The tag is a number from the counter no image has (a
    batch takes one more than it has images), or the image's own number when it is alone.
    Keys' cells: `first_band` KEY_BANDS."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    numbers = np.asarray(numbers, dtype=np.uint64)
    if not len(hashes):
        return {}
    number_raw = numbers.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - NUMBER_BYTES :]
    out: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for band, width in enumerate(layout.widths):
        top = band_top(layout, band)
        rotated = (
            hashes if top == 0 else (hashes << np.uint64(top)) | (hashes >> np.uint64(64 - top))
        )
        order = np.argsort(rotated, kind="stable")
        values = (rotated[order] >> np.uint64(64 - width)).tolist()
        kept = _kept_bytes(width)
        entries = np.empty((len(order), kept + NUMBER_BYTES), dtype=np.uint8)
        entries[:, :kept] = (
            rotated[order].astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - kept :]
        )
        entries[:, kept:] = number_raw[order]
        raw = entries.tobytes()
        size = kept + NUMBER_BYTES
        cuts = [0, *(np.flatnonzero(np.diff(rotated[order] >> np.uint64(64 - width))) + 1).tolist()]
        cuts.append(len(order))
        for a, b in itertools.pairwise(cuts):
            v = values[a]
            out.setdefault(band_row(first_band + band, v, width, row_bits), []).append(
                (band_qualifier(v, width, row_bits, tag), raw[a * size : b * size])
            )
    return out


def parse_band_cells(
    layout: BandLayout, band: int, value: int, raws: list[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, image numbers) of the entries in band cells of one band value."""
    raw = np.frombuffer(b"".join(raws), dtype=np.uint8).reshape(-1, entry_size(layout.widths[band]))
    values = np.full(len(raw), value, np.uint64)
    return decode_hashes(layout, band, values, raw), decode_numbers(raw)


def decode_hashes(layout: BandLayout, band: int, values: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The hashes of entries (rows of `raw`) of band cells of band `values`."""
    width = layout.widths[band]
    kept = _kept_bytes(width)
    wide = np.zeros((len(raw), 8), dtype=np.uint8)
    wide[:, 8 - kept :] = raw[:, :kept]
    rotated = wide.view(">u8")[:, 0].astype(np.uint64)
    if kept < 8:
        rotated |= (values >> np.uint64(width - 8 * (8 - kept))) << np.uint64(8 * kept)
    top = band_top(layout, band)
    if top:
        rotated = (rotated >> np.uint64(top)) | (rotated << np.uint64(64 - top))
    return rotated


def decode_numbers(raw: np.ndarray) -> np.ndarray:
    """The image numbers of entries (rows of `raw`)."""
    wide = np.zeros((len(raw), 8), dtype=np.uint8)
    wide[:, 8 - NUMBER_BYTES :] = raw[:, raw.shape[1] - NUMBER_BYTES :]
    return wide.view(">u8")[:, 0].astype(np.uint64)


def cell_value(row: bytes, qualifier: bytes, width: int, row_bits: int) -> int:
    """The band value a band cell holds entries of."""
    high = int.from_bytes(row[1:3], "big")
    return high << max(width - row_bits, 0) | int.from_bytes(qualifier[:LOW_BYTES], "big")


def cell_tag(qualifier: bytes) -> int:
    return int.from_bytes(qualifier[LOW_BYTES:], "big")


def probe_query(
    layout: BandLayout, band: int, values: list[int], query: int, radius: int
) -> tuple[int, bytes]:
    """What probes of band `values` ask of their entries (the server-side filter's terms):
    (the distance left for an entry's kept bytes, the query's same bytes), that is `radius`
    less the distance between the query and the nearest of `values` on the band bits the key
    gives (entries leave them out)."""
    width = layout.widths[band]
    kept = _kept_bytes(width)
    rotated = _rotl(query, band_top(layout, band))
    given = 64 - 8 * kept  # the leading bits of the rotated hash that entries leave out
    near = (
        min(((v >> (width - given)) ^ (rotated >> (64 - given))).bit_count() for v in values)
        if given
        else 0
    )
    return radius - near, (rotated & ((1 << 8 * kept) - 1)).to_bytes(kept, "big")


def value_prefix(value: int, width: int, row_bits: int) -> bytes:
    """The first bytes of the qualifiers of band value `value`'s cells in its row."""
    return (value & ((1 << max(width - row_bits, 0)) - 1)).to_bytes(LOW_BYTES, "big")


def probe_range(
    band: int, value: int, width: int, row_bits: int
) -> tuple[bytes, bytes, bytes | None]:
    """(row, first qualifier, end qualifier or None) of the cells of band value `value`."""
    low = value & ((1 << max(width - row_bits, 0)) - 1)
    return (
        band_row(band, value, width, row_bits),
        low.to_bytes(LOW_BYTES, "big"),
        (low + 1).to_bytes(LOW_BYTES, "big") if low + 1 < 1 << 8 * LOW_BYTES else None,
    )


def split_keys(
    layout: BandLayout, regions_per_band: int, row_bits: int = DEFAULT_ROW_BITS
) -> list[bytes]:
    """Where the band table is pre-split: at every band's start, and into `regions_per_band`
    equal slices of its rows, for the hashes' bands and the keys' (KEY_BANDS: with the window
    keys, nine entries an image to the hash's one); the wide keys' few rows (WIDE_KEY_BANDS)
    in a region of their own. Band values of pHashes are close to uniform, so equal slices hold
    about equal numbers of cells. (The keys' rows were once left in the last region: one region
    server answered every key probe and held most of the table's bytes.)"""
    keys = [bytes([WIDE_KEY_BANDS])]
    for first in (0, KEY_BANDS):
        for band, width in enumerate(layout.widths):
            bits = min(width, row_bits)
            for i in range(regions_per_band):
                start = ((i << bits) // regions_per_band).to_bytes(2, "big")
                keys.append(bytes([first + band]) + start)
    return sorted(set(keys))[1:]  # the first region starts at the empty key


# --- records ------------------------------------------------------------------------------


def _bitrev40(x: int) -> int:
    return int(f"{x:040b}"[::-1], 2)


def number_cell(number: int) -> tuple[bytes, bytes]:
    """(row key, record qualifier) of an image number."""
    return b"n" + _bitrev40(number >> 8).to_bytes(5, "big"), _LOW_BYTE[number & 0xFF]


_LOW_BYTE = [bytes([k]) for k in range(256)]


def number_rows(first: int, count: int) -> list[tuple[bytes, list[bytes]]]:
    """The record cells of the consecutive numbers first .. first + count - 1, as number_cell
    gives them, grouped by row: [(row key, [record qualifier of each number in it, in order])].
    One row key per 256 numbers is worked out, not one per number."""
    out = []
    n, end = first, first + count
    while n < end:
        stop = min(end, (n | 0xFF) + 1)
        out.append((number_cell(n)[0], _LOW_BYTE[n & 0xFF : ((stop - 1) & 0xFF) + 1]))
        n = stop
    return out


def claim_qualifier(number: int) -> bytes:
    return bytes([number & 0xFF]) + b"c"


def number_of(row: bytes, qualifier: bytes) -> int:
    return _bitrev40(int.from_bytes(row[1:6], "big")) << 8 | qualifier[0]


def record_split_keys(regions: int) -> list[bytes]:
    """Pre-split points of the record table: equal slices of the number rows and the id rows.
    An id row's 2 bytes hold a bucket of ID_BUCKET_BITS bits: the slices cut that range (cut
    at 1/4, 1/2, 3/4 of 2**16, every id went to the first id region)."""
    keys = [b"i", b"n"]
    for i in range(1, regions):
        keys.append(b"i" + ((i << ID_BUCKET_BITS) // regions).to_bytes(2, "big"))
        keys.append(b"n" + bytes([i * 256 // regions]))
    return sorted(keys)


def id_cell(id: str) -> tuple[bytes, bytes]:
    """(row key, qualifier) of the cell mapping an id to its image number."""
    raw = encode_id(id)
    bucket = int.from_bytes(hashlib.blake2b(raw, digest_size=2).digest(), "big") >> (
        16 - ID_BUCKET_BITS
    )
    return b"i" + bucket.to_bytes(2, "big"), raw


_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def encode_record(image: Image) -> bytes:
    """The record cell: the image as a compact JSON list (ids and paths with surrogate escapes
    survive JSON's \\u escapes); the second stage's descriptor next, in base64, when it has one;
    then, when the file's identity is known, its device, inode, mtime in ns and digest (the
    descriptor's place then null if it has none). Records written before the second stage end
    at `added`, before file identity at the descriptor: all three are read."""
    fields = [
        image.id,
        f"{image.hash:016x}",
        image.path,
        image.size,
        image.mtime,
        image.width,
        image.height,
        image.added,
    ]
    identity = [image.dev, image.ino, image.mtime_ns, image.digest]
    has_identity = any(v is not None for v in identity)
    if image.descriptor is not None or has_identity:
        fields.append(
            None if image.descriptor is None else base64.b64encode(image.descriptor).decode()
        )
    if has_identity:
        fields.extend(identity)
    return _compact_json(fields).encode()


def hash_records(ids: Sequence[str], hashes: np.ndarray, added: float) -> list[bytes]:
    """`encode_record(Image(id, hash, added=added))` of each pair, made without an Image or a
    JSON encoder call each: what loads of bare hashes (`add_hashes`, the bulk load) store."""
    tail = f",null,null,null,null,null,{added!r}]"
    return [
        f'[{encode_basestring_ascii(id)},"{h:016x}"{tail}'.encode()
        for id, h in zip(ids, np.asarray(hashes, dtype=np.uint64).tolist())
    ]


def decode_record(raw: bytes) -> Image:
    id, h, path, size, mtime, width, height, added, *rest = json.loads(raw)
    descriptor = base64.b64decode(rest[0]) if rest and rest[0] is not None else None
    return Image(id, int(h, 16), path, size, mtime, width, height, added, descriptor, *rest[1:5])


def decision_qualifier(a: str, b: str) -> bytes:
    first = encode_id(a)
    return len(first).to_bytes(4, "big") + first + encode_id(b)


def decode_decision(qualifier: bytes) -> tuple[str, str]:
    n = int.from_bytes(qualifier[:4], "big")
    return decode_id(qualifier[4 : 4 + n]), decode_id(qualifier[4 + n :])


def encode_claim(started_ms: int, expires_ms: int, id: str) -> bytes:
    return started_ms.to_bytes(8, "big") + expires_ms.to_bytes(8, "big") + encode_id(id)


def decode_claim(raw: bytes) -> tuple[int, int, str]:
    """(start ms, lease expiry ms, id) of a claim cell."""
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:16], "big"), decode_id(raw[16:])
