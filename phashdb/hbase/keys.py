"""The byte layout of phashdb's HBase tables: pure functions, the one place that knows it.

Band table `T` (family `b`): every stored image has one cell per band.

    row key    band number (1 byte) | the band value's top `row_bits` bits (2 bytes, big-endian)
    qualifier  the hash rotated left so the band's bits come first (8 bytes, big-endian)
               | the image number (1 to 6 bytes, big-endian, no leading zero bytes)
    value      empty

A row gathers 2**(width - row_bits) band values, so a batch of writes puts many cells into each
row (HBase's cost is per row mutated far more than per cell). A probe of one band value is an
exact Get of its row with a column range (the values' 8-byte prefixes, `probe_range`), so it
reads only the hashes sharing that band value. The hash is recovered from the qualifier alone.

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
import json
from functools import lru_cache

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
MAX_NUMBER = 2**48 - 1
BAND_TIME_STEP = 60_000  # band cells' timestamps are whole minutes (ms), see store.py


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


def number_bytes(number: int) -> bytes:
    return number.to_bytes(max((number.bit_length() + 7) // 8, 1), "big")


def band_cells(
    layout: BandLayout, row_bits: int, hash: int, number: int
) -> list[tuple[bytes, bytes]]:
    """(row key, qualifier) of each band cell of one image."""
    tail = number_bytes(number)
    out = []
    for band, width in enumerate(layout.widths):
        value = (hash >> layout.shifts[band]) & ((1 << width) - 1)
        qualifier = _rotl(hash, band_top(layout, band)).to_bytes(8, "big") + tail
        out.append((band_row(band, value, width, row_bits), qualifier))
    return out


@lru_cache(maxsize=64)
def _row_keys(band: int, width: int, row_bits: int) -> list[bytes]:
    bits = min(width, row_bits)
    return [bytes([band]) + r.to_bytes(2, "big") for r in range(1 << bits)]


def band_cells_many(
    layout: BandLayout, row_bits: int, hashes: np.ndarray, numbers: np.ndarray
) -> dict[bytes, list[bytes]]:
    """The band cells of many images at once, as {row key: [qualifier, ...]}: the same cells
    as `band_cells`, made with whole-array operations (a bulk load makes millions)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    numbers = np.asarray(numbers, dtype=np.uint64)
    sizes = np.ones(len(numbers), dtype=np.int64)
    for k in range(1, 6):
        sizes += numbers >= np.uint64(1 << (8 * k))
    out: dict[bytes, list[bytes]] = {}
    for band, width in enumerate(layout.widths):
        top = band_top(layout, band)
        rotated = (
            hashes if top == 0 else (hashes << np.uint64(top)) | (hashes >> np.uint64(64 - top))
        )
        values = (hashes >> np.uint64(layout.shifts[band])) & np.uint64((1 << width) - 1)
        rows = (values >> np.uint64(max(width - row_bits, 0))).astype(np.int64)
        keys_of_rows = _row_keys(band, width, row_bits)
        order = np.argsort(rows, kind="stable")
        for size in np.unique(sizes).tolist():
            pick = order[sizes[order] == size]
            cells = np.empty((len(pick), 8 + size), dtype=np.uint8)
            cells[:, :8] = rotated[pick].astype(">u8").view(np.uint8).reshape(-1, 8)
            for k in range(size):
                cells[:, 8 + k] = (numbers[pick] >> np.uint64(8 * (size - 1 - k))) & np.uint64(0xFF)
            raw = cells.tobytes()
            n = 8 + size
            qualifiers = [raw[i : i + n] for i in range(0, len(raw), n)]
            picked_rows = rows[pick]
            cuts = np.flatnonzero(picked_rows[1:] != picked_rows[:-1]) + 1
            starts = [0, *cuts.tolist()]
            ends = [*cuts.tolist(), len(pick)]
            for a, b in zip(starts, ends):
                out.setdefault(keys_of_rows[int(picked_rows[a])], []).extend(qualifiers[a:b])
    return out


def parse_band_cell(layout: BandLayout, row: bytes, qualifier: bytes) -> tuple[int, int]:
    """(hash, image number) of a band cell."""
    rotated = int.from_bytes(qualifier[:8], "big")
    return _rotl(rotated, -band_top(layout, row[0])), int.from_bytes(qualifier[8:], "big")


def probe_range(
    band: int, value: int, width: int, row_bits: int
) -> tuple[bytes, bytes, bytes | None]:
    """(row, first qualifier, end qualifier or None) of the cells whose band value is `value`."""
    low = value << (64 - width)
    high = (value + 1) << (64 - width)
    return (
        band_row(band, value, width, row_bits),
        low.to_bytes(8, "big"),
        high.to_bytes(8, "big") if high < 1 << 64 else None,
    )


def split_keys(
    layout: BandLayout, regions_per_band: int, row_bits: int = DEFAULT_ROW_BITS
) -> list[bytes]:
    """Where the band table is pre-split: at every band's start, and into `regions_per_band`
    equal slices of its rows. Band values of pHashes are close to uniform, so equal slices hold
    about equal numbers of cells."""
    keys = []
    for band, width in enumerate(layout.widths):
        bits = min(width, row_bits)
        for i in range(regions_per_band):
            keys.append(bytes([band]) + ((i << bits) // regions_per_band).to_bytes(2, "big"))
    return sorted(set(keys))[1:]  # the first region starts at the empty key


# --- records ------------------------------------------------------------------------------


def _bitrev40(x: int) -> int:
    return int(f"{x:040b}"[::-1], 2)


def number_cell(number: int) -> tuple[bytes, bytes]:
    """(row key, record qualifier) of an image number."""
    return b"n" + _bitrev40(number >> 8).to_bytes(5, "big"), bytes([number & 0xFF])


def claim_qualifier(number: int) -> bytes:
    return bytes([number & 0xFF]) + b"c"


def number_of(row: bytes, qualifier: bytes) -> int:
    return _bitrev40(int.from_bytes(row[1:6], "big")) << 8 | qualifier[0]


def record_split_keys(regions: int) -> list[bytes]:
    """Pre-split points of the record table: equal slices of the number rows and the id rows."""
    keys = [b"i", b"n"]
    for i in range(1, regions):
        keys.append(b"i" + ((i << 16) // regions).to_bytes(2, "big"))
        keys.append(b"n" + bytes([i * 256 // regions]))
    return sorted(keys)


def id_cell(id: str) -> tuple[bytes, bytes]:
    """(row key, qualifier) of the cell mapping an id to its image number."""
    raw = encode_id(id)
    bucket = int.from_bytes(hashlib.blake2b(raw, digest_size=2).digest(), "big") >> (
        16 - ID_BUCKET_BITS
    )
    return b"i" + bucket.to_bytes(2, "big"), raw


def encode_record(image: Image) -> bytes:
    """The record cell: the image as a compact JSON list (ids and paths with surrogate escapes
    survive JSON's \\u escapes); the second stage's descriptor last, in base64, when it has one
    (records written before the second stage end at `added`)."""
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
    if image.descriptor is not None:
        fields.append(base64.b64encode(image.descriptor).decode())
    return json.dumps(fields, separators=(",", ":")).encode()


def decode_record(raw: bytes) -> Image:
    id, h, path, size, mtime, width, height, added, *rest = json.loads(raw)
    descriptor = base64.b64decode(rest[0]) if rest else None
    return Image(id, int(h, 16), path, size, mtime, width, height, added, descriptor)


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
