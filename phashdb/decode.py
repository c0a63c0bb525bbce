"""Decoding policy: which inputs become a Pillow image, and how everything else is refused.

A regular file only (a FIFO would block, a device may never end), the formats below only (the
long tail of Pillow's decoders is where decoder bugs live), HEIC/HEIF once pillow-heif is
there, and every failure an ImageError naming the input with what to do. What the pixels then
become (greyscale, orientation, the hash) is phashdb.phash's business.
"""

from __future__ import annotations

import importlib
import io
import os
import stat
import struct
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, BinaryIO

from .errors import ImageError

if TYPE_CHECKING:  # Pillow is imported where an image is read: listing files needs none of it
    from PIL import Image

# Pillow's own hard limit (2 x its default MAX_IMAGE_PIXELS): above every real camera's output
# (100-megapixel sensors, most panoramas), while a bomb can make us allocate at most ~0.7 GB.
DEFAULT_MAX_PIXELS = 178_956_970

# Pillow reads dozens of formats; we let it try only these: the long tail of rarely used decoders
# is where decoder bugs live, and EPS would run Ghostscript. JPEG includes cameras' MPO; HEIF
# joins when pillow-heif is installed.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

# The file names ingest, watch and the service take for images.
IMAGE_SUFFIXES = frozenset(
    [".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".dib", ".tif", ".tiff",
     ".heic", ".heif"]
)  # fmt: skip

# The leading bytes of each format read -> its suffix. WebP (RIFF....WEBP) and HEIF (....ftyp
# and a brand) are told apart further in: see format_suffix.
SIGNATURES = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF87a", ".gif"),
              (b"GIF89a", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))  # fmt: skip
# The ftyp brands of HEIF images (HEVC-coded and the generic image/sequence brands).
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
HEAD = 16  # the bytes format_suffix reads

# What Pillow's decoders raise on bad data (the exceptions its own fuzzing accepts).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


def format_suffix(head: bytes) -> str:
    """The suffix of the image format whose file starts with `head` (its first HEAD bytes);
    ".img" when it is none of them."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return ".heic"
    return next((suffix for magic, suffix in SIGNATURES if head.startswith(magic)), ".img")


def name_of(source) -> str:
    """What errors call `source`: its path, "<bytes>", "<PIL image>", a file object's name or
    "<file object>". TypeError for anything that is none of these."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    from PIL import Image

    if isinstance(source, Image.Image):
        return "<PIL image>"
    if hasattr(source, "read") and not isinstance(source, io.TextIOBase):
        return source.name if isinstance(getattr(source, "name", None), str) else "<file object>"
    raise TypeError(
        "'source' must be a path, bytes, a binary file object or a PIL image, "
        f"got {type(source).__name__}"
    )


def open_image(source, name: str, stack: ExitStack) -> Image.Image:
    """Pillow's lazy image of `source` (a path, bytes or a binary file object): header read,
    pixels not decoded yet; closed with `stack`. Raises ImageError naming `name`."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(source, (str, os.PathLike)):
            fp = stack.enter_context(open_regular_file(source, name))
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
            return stack.enter_context(Image.open(fp, formats=_formats_of(fp)))
        except UnidentifiedImageError:
            fp.seek(0)
            head = fp.read(HEAD)
            heif = format_suffix(head) == ".heic"
            if heif and register_heif():
                fp.seek(0)
                return stack.enter_context(Image.open(fp, formats=formats()))
    except Image.DecompressionBombError as e:
        raise ImageError(  # Pillow refuses above 2 x MAX_IMAGE_PIXELS, whatever max_pixels says
            f"{name}: more pixels than Pillow allows ({e}); hashing it needs a larger max_pixels "
            "and PIL.Image.MAX_IMAGE_PIXELS raised to at least half the image's pixels"
        ) from e
    except UnidentifiedImageError as e:  # pillow-heif did not recognise it either
        raise ImageError(f"{name}: truncated or corrupt image data (unreadable header)") from e
    except DECODE_ERRORS as e:
        raise ImageError(f"{name}: truncated or corrupt image data ({e})") from e
    raise _unidentified(name, head)


def _unidentified(name: str, head: bytes) -> ImageError:
    """Why Pillow could not open a file starting with `head`, in the user's words."""
    if not head:
        return ImageError(f"{name}: empty file (0 bytes)")
    if format_suffix(head) == ".heic":
        return ImageError(f"{name}: HEIC/HEIF needs pillow-heif: pip install 'phashdb[heic]'")
    if format_suffix(head) != ".img":
        return ImageError(f"{name}: truncated or corrupt image data (unreadable header)")
    return ImageError(f"{name}: not an image (unrecognised format; reads {', '.join(FORMATS)})")


@contextmanager
def decoding(name: str) -> Iterator[None]:
    """Pillow's errors while decoding the pixels of `name`, as ImageErrors naming it."""
    from PIL import Image

    try:
        yield
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: a frame is larger than Pillow's pixel limit ({e})") from e
    except DECODE_ERRORS as e:
        # Pillow's words for a file that ends early count what is left, not what is missing.
        why = "the file ends before the image does" if _ends_early(e) else e
        raise ImageError(f"{name}: truncated or corrupt image data ({why})") from e


def _ends_early(error: BaseException) -> bool:
    return isinstance(error, OSError) and str(error).startswith("image file is truncated")


def check_pixels(img: Image.Image, name: str, max_pixels: int) -> None:
    """ImageError when `img` has more than `max_pixels` pixels, from its header alone."""
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} = {width * height:,} pixels is more than the limit "
            f"of {max_pixels:,} (a guard against decompression bombs); raise max_pixels "
            "to hash it"
        )


def check_max_pixels(max_pixels) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"'max_pixels' must be a positive int, got {max_pixels!r}")


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device",
          stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}  # fmt: skip


def open_regular_file(path: str | os.PathLike, name: str) -> BinaryIO:
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


def _formats_of(fp: BinaryIO) -> tuple[str, ...]:
    """The formats for Pillow to try on `fp`: the one its leading bytes name, with only that
    plugin imported. Pillow's first open imports five plugins (PNG's, GIF's with subprocess,
    BMP's, PPM's): ~8 ms of a one-image `check`. Each format accepts only its own signature,
    so trying the one named is what trying them all in turn comes to; a file that names none
    goes the usual way."""
    from PIL import Image

    head = fp.read(HEAD)
    fp.seek(0)
    plugin = _PLUGINS.get(format_suffix(head))
    if plugin is None:
        return formats()
    importlib.import_module(f"PIL.{plugin[1]}")
    # The other plugins are imported when first needed: Image.open and save import every
    # plugin when asked for a format not loaded (`init`). `_initialized` is Pillow's own (its
    # preinit sets it so); a Pillow without it just imports its five plugins first.
    if getattr(Image, "_initialized", 1) < 1:
        Image._initialized = 1
    return (plugin[0],)


# The suffix format_suffix gives -> (Pillow's format, its plugin module).
_PLUGINS = {".jpg": ("JPEG", "JpegImagePlugin"), ".png": ("PNG", "PngImagePlugin"),
            ".gif": ("GIF", "GifImagePlugin"), ".bmp": ("BMP", "BmpImagePlugin"),
            ".tif": ("TIFF", "TiffImagePlugin"), ".webp": ("WEBP", "WebPImagePlugin")}  # fmt: skip


def formats() -> tuple[str, ...]:
    # HEIF joins once pillow-heif has registered its opener (by us on first need, or the caller).
    from PIL import Image

    return FORMATS + ("HEIF",) if "HEIF" in Image.OPEN else FORMATS


def register_heif() -> bool:
    """Teach Pillow HEIC/HEIF if pillow-heif is installed; done on first need, since importing
    it costs every CLI start."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True
