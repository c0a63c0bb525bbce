"""Plain 8-bit PNGs decoded without Pillow's PNG decoder: the very same image, in less time.

PNG is lossless and its row filters are defined exactly, so any conforming decoder gives the
same samples. Pillow's decoder cost two thirds of hashing a small PNG (5.4 ms of 7.9 on a
0.23-megapixel photo); ISA-L's inflate (which checks the stream's Adler-32, as Pillow's decoder
does) and phashdb._png's unfiltering take about half of that. Only the kinds whose
samples Pillow keeps as they are in the file take this path; everything else (palette, 16-bit,
fewer than 8 bits a sample, interlaced, APNG, chunks after the image data, anything unexpected)
is left to Pillow, whose pixels and errors are then exactly what they were.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

try:  # built with phashdb; MapReduce tasks get phashdb's .py files only, and Pillow's decoder
    from . import _png
except ImportError:
    _png = None

try:  # ISA-L's inflate: zlib's checks (the Adler-32 too) and interface, in half the time
    from isal import isal_zlib as inflating
except ImportError:  # installed without its dependencies
    import zlib as inflating

# (bit depth, colour type) -> the mode Pillow gives such a PNG, whose samples it unpacks "raw"
# (as stored), and bytes a pixel. Pillow keeps the tRNS colour of "L" and "RGB" in info, as here.
MODES = {(8, 0): ("L", 1), (8, 2): ("RGB", 3), (8, 4): ("LA", 2), (8, 6): ("RGBA", 4)}

# Above this, Pillow's decoder streams the image data and holds only the pixels; this path holds
# the file, the inflated rows and the pixels at once. Small images are where the time goes.
MAX_PIXELS = 1 << 22
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decoded(img: Image.Image, grey: bool = False) -> Image.Image | None:
    """The image Pillow's load() would make of PNG `img` (opened by Pillow: header read, pixels
    not decoded), or None where this path does not apply or the data is not clean: Pillow then
    decodes `img` as before (and raises its own error for a bad file). With `grey`, an opaque
    RGB image comes as its `convert("L")`, converted row by row as the rows are unfiltered (the
    colour is needed only where there is transparency: phashdb.renderings)."""
    if _png is None or img.format != "PNG" or img.fp is None:
        return None
    if img.width * img.height > MAX_PIXELS:
        return None
    data = _read_all(img.fp, img.width * img.height)
    header = _header(data) if data else None
    if header is None or header[:2] != img.size:
        return None
    width, height, mode, bpp = header
    rows = _inflated(data, height * (1 + width * bpp))
    del data  # each large buffer let go as soon as it is used: fewer fresh pages to touch
    if rows is None:
        return None
    grey = grey and mode == "RGB" and "transparency" not in img.info
    try:
        pixels = _png.unfilter(rows, height, width * bpp, bpp, grey)
    except ValueError:  # an unknown filter type
        return None
    del rows
    mode = "L" if grey else mode
    image = Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
    image.info = dict(img.info)  # EXIF, tRNS, ICC: all in chunks Pillow read before the data
    return image


def _inflated(data: bytes, size: int) -> bytes | None:
    """The `size` bytes of filtered rows that PNG file `data` holds, or None unless its image
    data is exactly that, ends where its stream does, and passes the stream's checks."""
    compressed = _image_data(data)
    if compressed is None:
        return None
    inflater = inflating.decompressobj()
    try:  # a stream longer than the image stops at size + 1 bytes: no bomb
        rows = inflater.decompress(compressed, size + 1)
    except inflating.error:  # Pillow words it: "broken data stream"
        return None
    if len(rows) != size or not inflater.eof or inflater.unused_data:
        return None  # short, long, or its Adler-32 not reached: Pillow decides
    return rows


def _read_all(fp, pixels: int) -> bytes | None:
    """The whole file `fp` in one read, or None when it is far larger than `pixels` 4-byte
    pixels could make it (then Pillow streams it)."""
    if isinstance(fp, io.BytesIO):  # bytes given: CPython hands back the very object, no copy
        data = fp.getvalue()
        return data if len(data) <= 4 * pixels + (1 << 20) else None
    end = fp.seek(0, io.SEEK_END)
    if end > 4 * pixels + (1 << 20):
        return None
    fp.seek(0)
    return fp.read()


def _header(data: bytes) -> tuple[int, int, str, int] | None:
    """Width, height, Pillow's mode and bytes a pixel of a non-interlaced PNG of a kind in
    MODES, None for any other (Pillow checked the IHDR's CRC on opening)."""
    if not data.startswith(SIGNATURE + b"\x00\x00\x00\x0dIHDR") or len(data) < 33:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    kind = MODES.get((depth, colour))
    if kind is None or interlace:
        return None
    return width, height, *kind


def _image_data(data: bytes) -> bytes | None:
    """The IDAT chunks' data of PNG file `data` joined, when they follow each other and IEND
    follows them, and no chunk of an APNG comes before; else None. Pillow read (and checked) the
    chunks before the image data on opening; those after it are what load() would read."""
    view = memoryview(data)
    pos, parts = 8, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind == b"IDAT":
            parts.append(view[pos + 8 : end - 4])
        elif parts:
            return b"".join(parts) if kind == b"IEND" else None
        elif kind in (b"acTL", b"fcTL", b"fdAT"):
            return None
        pos = end
    return None
