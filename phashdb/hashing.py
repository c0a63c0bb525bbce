"""Perceptual hashing: decode an image safely, orient it, and compute its 64-bit DCT pHash.

The hash has the same bits as `imagehash.phash(img)` for the same decoded pixels (greyscale,
LANCZOS to 32x32, 2-D DCT-II, top-left 8x8 against their median, first bit most significant),
so `to_hex(h)` equals `str(imagehash.phash(img))`. Decoding adds what a photo collection needs:
a pixel limit checked before decoding, EXIF orientation, the first frame of animations,
transparency flattened onto white, and JPEGs decoded at reduced scale.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from .backdrop import backdrop_variant
from .descriptor import LOW_QUALITY, Variant, middle, pack, quality, variants
from .errors import ImageError
from .trim import trimmed_variant

# The name of the hash definition below; indexes record it, so change it with any change of bits.
# v2: a transparent image that is blank on white (white shapes on transparency) is hashed on
# black instead; every other image keeps its v1 bits, so indexes of v1 are read as they are.
HASH_VERSION = "phash-dct64-v2"
READS_HASH_VERSIONS = (HASH_VERSION, "phash-dct64-v1")

# Pillow's own hard limit (2 x its default MAX_IMAGE_PIXELS): above every real camera's output
# (100-megapixel sensors, most panoramas), while a bomb can make us allocate at most ~0.7 GB.
DEFAULT_MAX_PIXELS = 178_956_970

# Transparent pixels are shown on white by browsers and viewers, so that is what we hash.
BACKGROUND = (255, 255, 255)

# JPEGs are decoded by libjpeg at the smallest 1/2, 1/4 or 1/8 scale that keeps both sides at
# least 512 pixels (16 times the 32 pixels hashed), luma channel only. Measured on 231 real photos
# by benchmarks/draft_check.py: within Hamming distance 2 of a full decode (mean 0.03 at their own
# size, 0.16 upscaled to 12 megapixels) and 6.7x faster on 12 megapixels; asking for 256 was a
# little faster but moved one photo by 4.
DRAFT_MODE = "L"
DRAFT_SIZE = (512, 512)

# Pillow reads dozens of formats; we let it try only these: the long tail of rarely used decoders
# is where decoder bugs live, and EPS would run Ghostscript. JPEG includes cameras' MPO; HEIF
# joins when pillow-heif is installed.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1"}
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")

# The same table as PIL.ImageOps.exif_transpose, applied to the greyscale image instead (it
# commutes with the point-wise greyscale conversion and is a quarter of the size to move).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# What Pillow's decoders raise on bad data (the exceptions its own fuzzing accepts).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

# The first 8 rows of scipy.fftpack's unnormalised 32-point DCT-II matrix: only the 8x8 lowest
# frequencies are kept, and a matrix product spares the CLI the slow import of scipy.
_k, _n = np.arange(8)[:, None], np.arange(32)[None, :]
_DCT = 2 * np.cos(np.pi * _k * (2 * _n + 1) / 64)

Source = str | os.PathLike | bytes | BinaryIO | Image.Image


@dataclass(frozen=True)
class Picture:
    """What reading an image yields: its 64-bit hash and its upright size in pixels; and for the
    second stage, its eight flipped and rotated variants (phashdb.descriptor), as-is first."""

    hash: int
    width: int
    height: int
    variants: tuple[Variant, ...] = field(default=(), compare=False, repr=False)
    # A query's other keys, searched beside the variants and confirmed like them, and kept in
    # the stored descriptor for a batch pass: the picture on a black backdrop seen on white
    # (phashdb.backdrop), the picture inside a plain frame (phashdb.trim). Empty for most images.
    keys: tuple[Variant, ...] = field(default=(), compare=False, repr=False)

    @property
    def descriptor(self) -> bytes | None:
        """The stored second-stage descriptor (phashdb.descriptor, with the variants' hashes
        and the keys), None if not computed."""
        return pack(self.variants, self.keys) if self.variants else None


def hash_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The 64-bit pHash of `source`; see read_image for what it may be."""
    return read_image(source, max_pixels=max_pixels).hash


def read_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode `source` and return its hash and its original size, EXIF orientation applied.

    `source` is a path, the bytes of an image file, a binary file object, or a PIL image (hashed
    as it is: no reduced-scale decoding, its current frame). Images over `max_pixels` are refused
    before decoding. Raises ImageError naming the input for anything that is not a readable image.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"'max_pixels' must be a positive int, got {max_pixels!r}")
    name = _name(source)
    # max_pixels is the limit that counts: Pillow's warning at half its hard limit would be
    # noise, or (warnings as errors) a refusal below max_pixels. catch_warnings is process-wide
    # before Python 3.14, so threads hashing at once may briefly see each other's filter.
    with warnings.catch_warnings(), ExitStack() as stack:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = source if isinstance(source, Image.Image) else _open(source, name, stack)
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"{name}: {width}x{height} = {width * height:,} pixels is more than the limit "
                f"of {max_pixels:,} (a guard against decompression bombs); raise max_pixels "
                "to hash it"
            )
        try:
            if img is not source and img.format in ("JPEG", "MPO"):
                img.draft(DRAFT_MODE, DRAFT_SIZE)
            img.load()
            grey = _greyscale_in_strips(img, name)
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            if orientation in _TRANSPOSE:
                grey = grey.transpose(_TRANSPOSE[orientation])
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            pixels = _pixels(grey)
            keys = tuple(k for k in (backdrop_variant(grey), trimmed_variant(grey)) if k)
            return Picture(_phash_of(pixels), width, height, variants(pixels), keys)
        except Image.DecompressionBombError as e:
            raise ImageError(f"{name}: a frame is larger than Pillow's pixel limit ({e})") from e
        except _DECODE_ERRORS as e:
            # Pillow's words for a file that ends early count what is left, not what is missing.
            why = "the file ends before the image does" if _ends_early(e) else e
            raise ImageError(f"{name}: truncated or corrupt image data ({why})") from e


def _ends_early(error: BaseException) -> bool:
    return isinstance(error, OSError) and str(error).startswith("image file is truncated")


def to_hex(h: int) -> str:
    """`h` as imagehash writes a pHash: 16 lowercase hex digits."""
    if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < 1 << 64:
        raise ValueError(f"'h' must be a 64-bit unsigned int, got {h!r}")
    return f"{h:016x}"


def from_hex(s: str) -> int:
    """The hash written as 16 hex digits in `s` (as imagehash and to_hex write it)."""
    if not isinstance(s, str) or not re.fullmatch(r"[0-9a-fA-F]{16}", s):
        raise ValueError(f"{s!r} is not a 16-hex-digit pHash")
    return int(s, 16)


def _name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, Image.Image):
        return "<PIL image>"
    if hasattr(source, "read") and not isinstance(source, io.TextIOBase):
        return source.name if isinstance(getattr(source, "name", None), str) else "<file object>"
    raise TypeError(
        "'source' must be a path, bytes, a binary file object or a PIL image, "
        f"got {type(source).__name__}"
    )


def _open(source: Source, name: str, stack: ExitStack) -> Image.Image:
    """Pillow's lazy image of `source`: header read, pixels not decoded yet."""
    try:
        if isinstance(source, (str, os.PathLike)):
            fp = stack.enter_context(_open_regular_file(source, name))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            fp = io.BytesIO(source)
        elif getattr(source, "seekable", lambda: False)():
            fp = source
        else:  # the head may be read twice (Pillow, then our sniffing): keep what a pipe gives
            fp = io.BytesIO(source.read())
    except (OSError, ValueError) as e:  # missing, a directory, no permission, a closed file
        raise ImageError(f"{name}: cannot read ({getattr(e, 'strerror', None) or e})") from e
    try:
        try:
            return stack.enter_context(Image.open(fp, formats=_formats()))
        except UnidentifiedImageError:
            fp.seek(0)
            head = fp.read(12)
            heif = head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS
            if heif and _register_heif():
                fp.seek(0)
                return stack.enter_context(Image.open(fp, formats=_formats()))
    except Image.DecompressionBombError as e:
        raise ImageError(  # Pillow refuses above 2 x MAX_IMAGE_PIXELS, whatever max_pixels says
            f"{name}: more pixels than Pillow allows ({e}); hashing it needs a larger max_pixels "
            "and PIL.Image.MAX_IMAGE_PIXELS raised to at least half the image's pixels"
        ) from e
    except UnidentifiedImageError as e:  # pillow-heif did not recognise it either
        raise ImageError(f"{name}: truncated or corrupt image data (unreadable header)") from e
    except _DECODE_ERRORS as e:
        raise ImageError(f"{name}: truncated or corrupt image data ({e})") from e
    if not head:
        raise ImageError(f"{name}: empty file (0 bytes)")
    if heif:
        raise ImageError(f"{name}: HEIC/HEIF needs pillow-heif: pip install 'phashdb[heic]'")
    if head.startswith(_MAGIC):
        raise ImageError(f"{name}: truncated or corrupt image data (unreadable header)")
    raise ImageError(f"{name}: not an image (unrecognised format; reads {', '.join(FORMATS)})")


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device",
          stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}  # fmt: skip


def _open_regular_file(path: str | os.PathLike, name: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file; anything else is refused without
    waiting: opening a FIFO blocks until a writer comes, and a device may never end. Opened
    non-blocking, then checked by its descriptor, so a file swapped in between is seen."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
            raise ImageError(f"{name}: cannot read (not a regular file: {kind})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _formats() -> tuple[str, ...]:
    # HEIF joins once pillow-heif has registered its opener (by us on first need, or the caller).
    return FORMATS + ("HEIF",) if "HEIF" in Image.OPEN else FORMATS


def _register_heif() -> bool:
    """Teach Pillow HEIC/HEIF if pillow-heif is installed; done on first need, since importing
    it costs every CLI start."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


# Converting a whole decoded image at once takes several full-size copies: an RGBA one needs a
# copy, an RGB canvas, its alpha channel and the greyscale result, 13 bytes a pixel on top of
# the 4 decoded (2.2 GB for a 13000x13000 PNG). Every step is point-wise, so converting a band
# of rows at a time gives the same pixels with only the greyscale image (1 byte a pixel) beside
# the decoded one, and about 16 MB for the band in hand.
STRIP_PIXELS = 1 << 20


def _greyscale_in_strips(img: Image.Image, name: str) -> Image.Image:
    """`_greyscale(img)`, converted STRIP_PIXELS at a time when the image is larger."""
    width, height = img.size
    rows = max(1, STRIP_PIXELS // max(width, 1))
    if height <= rows:
        return _greyscale(img, name)
    extrema = img.getextrema() if img.mode in ("I", "F") else None  # stretched as a whole
    grey = Image.new("L", img.size)
    for top in range(0, height, rows):
        strip = img.crop((0, top, width, min(top + rows, height)))
        grey.paste(_greyscale(strip, name, extrema), (0, top))
    return grey


def _greyscale(img: Image.Image, name: str, extrema: tuple | None = None) -> Image.Image:
    """`img` as 8-bit greyscale ("L"), transparency flattened onto BACKGROUND first; a 32-bit
    image is stretched from `extrema` (default: its own) to 0..255."""
    if img.mode.startswith("I;16"):
        # Pillow would clip 16-bit samples to 255, turning a photo white: keep the high byte.
        return Image.fromarray((np.asarray(img) >> 8).astype(np.uint8))
    if img.mode in ("I", "F"):
        # 32-bit samples have no agreed range; a pHash barely notices a positive linear
        # change of intensity, so stretch min..max to 0..255.
        a = np.asarray(img, dtype=np.float64)
        low, high = extrema or (a.min(), a.max())
        span = high - low
        a = (a - low) * (255 / span) if span else np.zeros_like(a)
        return Image.fromarray(np.rint(a).astype(np.uint8))
    try:  # the pixels are loaded: a ValueError here can only be a conversion Pillow lacks
        if img.has_transparency_data:
            # Pillow's P -> RGBA writes the transparency into the source's palette (a caller's
            # image would then save as a broken GIF): convert a copy.
            return _flatten((img.copy() if img.mode == "P" else img).convert("RGBA"))
        return img.convert("L")
    except ValueError as e:
        raise ImageError(f"{name}: unsupported pixel mode {img.mode!r} ({e})") from e


def _flatten(rgba: Image.Image) -> Image.Image:
    """A transparent image in greyscale as it is seen: on white; but when that is a blank page
    and black shows a picture (white shapes on transparency, whose content lies in the alpha
    channel), on black, as a JPEG export onto black, or Pillow's convert("RGB") of the usual
    black under transparent pixels, shows it."""
    alpha = rgba.getchannel("A")
    seen = []
    for background in (BACKGROUND, (0, 0, 0)):
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=alpha)
        grey = flat.convert("L")
        seen.append((quality(_pixels(grey)), grey))
        if seen[0][0] >= LOW_QUALITY:
            break
    return max(seen, key=lambda s: s[0])[1]


def _pixels(grey: Image.Image) -> np.ndarray:
    """The 32x32 image pHash reads."""
    return np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)


def _phash_of(pixels: np.ndarray) -> int:
    """imagehash.phash's bits of the 32x32 image pHash reads, as an int with the first bit
    most significant."""
    # Rounding drops the ~1e-10 noise of the matrix product, which scipy's FFT does not make:
    # without it, coefficients that are exactly equal (all of them in a flat image) compare
    # at random; with it, the bits match imagehash on flat and symmetric images too.
    low = np.round(_DCT @ pixels @ _DCT.T, 6)
    bits = low > middle(low.ravel())
    return int.from_bytes(np.packbits(bits).tobytes(), "big")
