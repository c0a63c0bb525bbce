"""Hostile PNGs against phashdb.png (its C unfiltering, its own chunk walk and inflate).

Each case is a PNG made from a real photo or a crafted one, then damaged: bits flipped
anywhere, IHDR lies (width, height, depth, colour, interlace) with or without a fixed CRC,
chunk lengths lying, IDAT split, merged or cut, IEND missing or doubled, chunks after the data,
zlib streams too short, too long or corrupt, huge sizes with little data. The fast path must
give exactly Pillow's image (mode, size, info, pixels), or step aside (None) for Pillow to
decide; and read_image must give the same hash, or the same error, as with the fast path off.
A crash kills the process: run it under `python -X faulthandler`, which names the case
(printed before each one), and again with the seed to reproduce it.

    .venv/bin/python -X faulthandler benchmarks/fuzz_png.py [CASES] [SEED]
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zlib

import numpy as np
from PIL import Image

from phashdb import png
from phashdb.phash import read_image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODES = ("L", "LA", "RGB", "RGBA")


def chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    """A chunk of `body`, its CRC right, its length field `length` if given (a lie)."""
    head = struct.pack(">I", len(body) if length is None else length) + kind
    return head + body + struct.pack(">I", zlib.crc32(kind + body))


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, body) of a well-formed PNG's chunks."""
    pos, out = 8, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def joined(parts: list[tuple[bytes, bytes]]) -> bytes:
    return SIGNATURE + b"".join(chunk(k, b) for k, b in parts)


def bases(rng: random.Random) -> list[bytes]:
    """Real photos and noise, saved by Pillow in each plain kind, several sizes and filters."""
    from skimage import data as photos

    out = []
    photo = Image.fromarray(photos.astronaut())
    for mode in MODES:
        for w, h in ((1, 1), (2, 3), (17, 5), (64, 48), (130, 7)):
            x, y = rng.randrange(0, 300), rng.randrange(0, 300)
            img = photo.crop((x, y, x + w, y + h)).convert(mode)
            buf = io.BytesIO()
            img.save(buf, "PNG", compress_level=rng.choice((0, 1, 6, 9)))
            out.append(buf.getvalue())
    return out


def variant(base: bytes, rng: random.Random) -> bytes:
    """One damaged copy of `base`."""
    parts = chunks(base)
    how = rng.randrange(12)
    if how == 0:  # bits flipped anywhere
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if how == 1:  # bits flipped in a chunk, its CRC made right again
        i = rng.randrange(len(parts))
        body = bytearray(parts[i][1])
        for _ in range(rng.randint(1, 4)):
            if body:
                body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        parts[i] = (parts[i][0], bytes(body))
        return joined(parts)
    if how == 2:  # IHDR lies, with a right CRC
        w, h, depth, colour, comp, filt, lace = struct.unpack(">IIBBBBB", parts[0][1])
        sizes = (0, 1, 2, w - 1, w + 1, h + 1, 2048, 1 << 20, (1 << 31) - 1, (1 << 32) - 1)
        field = rng.randrange(5)
        if field == 0:
            w = rng.choice(sizes) % (1 << 32)
        elif field == 1:
            h = rng.choice(sizes) % (1 << 32)
        elif field == 2:
            depth = rng.choice((0, 1, 2, 4, 7, 8, 16, 255))
        elif field == 3:
            colour = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 255))
        else:
            lace = rng.choice((1, 2, 255))
        parts[0] = (b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, lace))
        return joined(parts)
    if how == 3:  # a chunk's length lies
        i = rng.randrange(len(parts))
        lie = rng.choice((0, 1, len(parts[i][1]) - 1, len(parts[i][1]) + 1, 1 << 31, (1 << 32) - 1))
        out = SIGNATURE
        for j, (k, b) in enumerate(parts):
            out += chunk(k, b, length=max(lie, 0) if j == i else None)
        return out
    idat = b"".join(b for k, b in parts if k == b"IDAT")
    head = [p for p in parts if p[0] not in (b"IDAT", b"IEND")]
    if how == 4:  # the image data split anywhere into many chunks, or merged into one
        cuts = sorted(rng.randrange(len(idat) + 1) for _ in range(rng.randint(0, 6)))
        pieces = [idat[a:b] for a, b in zip([0, *cuts], [*cuts, len(idat)])]
        return joined(head + [(b"IDAT", p) for p in pieces] + [(b"IEND", b"")])
    if how == 5:  # the stream cut short
        return joined(head + [(b"IDAT", idat[: rng.randrange(len(idat))]), (b"IEND", b"")])
    if how == 6:  # bytes after the stream, in or after its chunk
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
        return joined(head + [(b"IDAT", idat + extra), (b"IEND", b"")])
    if how == 7:  # IEND missing, doubled, or chunks after the data
        tail = rng.choice(([], [(b"IEND", b""), (b"IEND", b"")], [(b"tEXt", b"a\0b"), (b"IEND", b"")],
                           [(b"IDAT", b"")], [(b"IEND", b"x")]))  # fmt: skip
        return joined(head + [(b"IDAT", idat)] + tail) + rng.choice((b"", b"junk"))
    w, h, depth, colour, *_ = struct.unpack(">IIBBBBB", parts[0][1])
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour, 1)
    if how == 8:  # a stream of the wrong length: rows of another size
        size = h * (1 + w * bpp) + rng.choice((-2, -1, 1, 2, w * bpp, -(w * bpp)))
        rows = bytes(rng.randrange(5) if i % (1 + w * bpp) == 0 else rng.randrange(256)
                     for i in range(max(size, 0)))  # fmt: skip
        return joined(head + [(b"IDAT", zlib.compress(rows)), (b"IEND", b"")])
    if how == 9:  # the right length, filter bytes of any value
        rows = bytearray(zlib.decompress(idat))
        for y in range(h):
            if rng.random() < 0.3:
                rows[y * (1 + w * bpp)] = rng.randrange(256)
        return joined(head + [(b"IDAT", zlib.compress(bytes(rows))), (b"IEND", b"")])
    if how == 10:  # huge declared sizes under max_pixels, little data (a bomb's header)
        w2, h2 = rng.choice(((2048, 2048), (1, 4_000_000), (4_000_000, 1), (0, 4_000_000),
                             (4_000_000, 0), (1 << 20, 4), (3000, 1398)))  # fmt: skip
        ihdr = struct.pack(">IIBBBBB", w2, h2, 8, colour, 0, 0, 0)
        stream = zlib.compress(b"\0" * min(h2 * (1 + w2 * bpp), 1 << 24), 9)
        return joined([(b"IHDR", ihdr), (b"IDAT", stream), (b"IEND", b"")])
    # a corrupt stream: a zlib header, deflate blocks or the Adler-32 damaged
    stream = bytearray(idat)
    where = rng.choice((0, 1, len(stream) - 1, len(stream) - 4, rng.randrange(len(stream))))
    stream[where] ^= 1 << rng.randrange(8)
    return joined(head + [(b"IDAT", bytes(stream)), (b"IEND", b"")])


def outcome(data: bytes, fast: bool):
    """What decoding `data` gives: (mode, size, info, pixels), None (left to Pillow), or the
    error's type."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if fast:
                img = png.decoded(img)
                if img is None:
                    return None
            img.load()
            return (img.mode, img.size, img.info, img.tobytes())
    except Exception as e:  # Pillow's refusals are many kinds; a crash is not one
        return type(e).__name__


def hashed(data: bytes, monkeypatch_off: bool):
    saved = png._png
    if monkeypatch_off:
        png._png = None
    try:
        return read_image(data, descriptor=False, max_pixels=1 << 23).hash
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    finally:
        png._png = saved


def main(cases: int, seed: int) -> int:
    rng = random.Random(seed)
    np.random.seed(seed)
    sources = bases(rng)
    differ = taken = 0
    for case in range(cases):
        data = variant(rng.choice(sources), rng)
        print(f"case {case}", end="\r", flush=True)
        ours = outcome(data, fast=True)
        taken += ours is not None
        if ours is not None and ours != outcome(data, fast=False):
            differ += 1
            print(f"case {case}: the fast path differs from Pillow ({str(ours)[:80]})")
        if case % 10 == 0 and hashed(data, False) != hashed(data, True):
            differ += 1
            print(f"case {case}: read_image differs: {hashed(data, False)} {hashed(data, True)}")
    print(f"{cases} cases, seed {seed}: the fast path took {taken}, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
                  int(sys.argv[2]) if len(sys.argv) > 2 else 1))  # fmt: skip
