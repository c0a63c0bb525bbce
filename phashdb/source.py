"""One road from a source to an Image record: a path, an `hdfs://` URL, bytes, a binary file
object (a pipe too) or a PIL image, read once, its SHA-256 taken from the very bytes decoded.

`Index.add`, `Index.check` and `ingest` all come this way, so what one accepts the others do,
and a source that cannot be read twice (a pipe, a socket) never is. The record says what the
index records of a file (phashdb.identity): for a local file its device, inode, size, times
and digest, of the very file opened; for an HDFS file its size and time and digest; for bytes
and file objects the digest. An image that came without a path is named by its content id.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import BinaryIO, NamedTuple

from PIL import Image as PILImage

from . import hdfs
from .decode import DEFAULT_MAX_PIXELS, check_max_pixels, name_of, open_regular_file
from .errors import ImageError
from .identity import fields
from .phash import Picture, read_image
from .records import Image

CHUNK = 1 << 20
# Sources up to this size are read whole before decoding (see _read_whole), costing their size
# in memory beside the decoded pixels for a moment; larger ones stream.
WHOLE_BYTES = 8 << 20


class Read(NamedTuple):
    """What reading a source gives: the record to store, and the Picture it was made from (the
    hash, the size, and when asked the second stage's variants and keys)."""

    image: Image
    picture: Picture


def read_source(
    source,
    id: str | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    descriptor: bool = True,
) -> Read:
    """Read `source` once and make its record: id `id`, or by default its absolute path (a
    URL for HDFS) or, without a path, its content id. Raises ImageError naming the source for
    anything that cannot be read or is not an image; TypeError for a source of no known kind."""
    check_max_pixels(max_pixels)
    name = name_of(source)
    path = None
    if isinstance(source, PILImage.Image):  # no bytes: no digest, its id is of its pixels
        picture, known = read_image(source, max_pixels=max_pixels, descriptor=descriptor), {}
    elif hdfs.is_hdfs(source):
        path = source
        picture, known = _read_hdfs(source, max_pixels, descriptor)
    elif isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(source)
        picture, known = read_file(path, max_pixels=max_pixels, descriptor=descriptor)
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            picture, digest = _read_whole(io.BytesIO(source), name, max_pixels, descriptor)
        else:
            picture, digest = _read_object(source, name, max_pixels, descriptor)
        known = {"digest": digest}
    if id is None:
        id = path or content_id(known.get("digest") or _pixels_digest(source))
    image = Image(
        id,
        picture.hash,
        path,
        width=picture.width,
        height=picture.height,
        descriptor=picture.descriptor,
        **known,
    )
    return Read(image, picture)


def content_id(digest: str) -> str:
    """The id of an image that came without a path, from the SHA-256 (hex) of its bytes: the
    same bytes checked, added or uploaded name one image."""
    return "sha256:" + digest[:32]


def _pixels_digest(img: PILImage.Image) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()


def read_file(
    path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, descriptor: bool = True
) -> tuple[Picture, dict]:
    """Decode the image file at `path` (see phash.read_image) and say what identifies it:
    ({"size", "mtime", "dev", "ino", "mtime_ns", "digest"}, of the very file opened and read,
    not of whatever the path names a moment later). Raises ImageError as read_image does."""
    try:
        f = open_regular_file(path, path)
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from e
    with f:
        size = os.fstat(f.fileno()).st_size
        picture, digest = _read_sized(f, os.fsdecode(path), size, max_pixels, descriptor)
        return picture, fields(os.fstat(f.fileno()), digest)


def _read_hdfs(url: str, max_pixels: int, descriptor: bool) -> tuple[Picture, dict]:
    """The picture of an image file or pack member in HDFS, and its size, time and digest."""
    fp = hdfs.open_image(url)  # one read of its bytes; ImageError when it cannot be read
    try:
        size, mtime = hdfs.stat(url)
    except (OSError, RuntimeError, KeyError) as e:
        raise ImageError(f"{url}: cannot read ({e})") from e
    picture, digest = _read_whole(fp, url, max_pixels, descriptor)
    return picture, {"size": size, "mtime": mtime, "digest": digest}


def _read_object(f: BinaryIO, name: str, max_pixels: int, descriptor: bool):
    """The picture and digest of a binary file object, read from its start (as Pillow reads
    it) if it can seek, else from where it is, once (a pipe)."""
    try:
        seekable = f.seekable() if hasattr(f, "seekable") else False
        size = f.seek(0, os.SEEK_END) if seekable else None
        if seekable:
            f.seek(0)
    except (OSError, ValueError) as e:  # a closed file
        raise ImageError(f"{name}: cannot read ({getattr(e, 'strerror', None) or e})") from e
    return _read_sized(f, name, size, max_pixels, descriptor)


def _read_sized(f: BinaryIO, name: str, size: int | None, max_pixels: int, descriptor: bool):
    """The picture and digest of `f` (at its start, `size` bytes long, None: unknown): read
    whole when small or of unknown size, else streamed through a _Digesting."""
    if size is None or size <= WHOLE_BYTES:
        return _read_whole(f, name, max_pixels, descriptor)
    reader = _Digesting(f, name)
    picture = read_image(reader, max_pixels=max_pixels, descriptor=descriptor)
    try:
        return picture, reader.hexdigest()
    except OSError as e:
        raise ImageError(f"{name}: cannot read ({e.strerror or e})") from e


def _read_whole(f: BinaryIO, name: str, max_pixels: int, descriptor: bool):
    """The picture and digest of a small file read in one go: decoders read a small file in
    hundreds of pieces (PNG chunks, JPEG segments), a third of the time spent on a 0.2 MB photo
    when each piece is a system call and a digest update."""
    try:
        data = f.read()
    except (OSError, ValueError) as e:
        raise ImageError(f"{name}: cannot read ({getattr(e, 'strerror', None) or e})") from e
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"'source' must be a binary file object, read gave {type(data).__name__}")
    buffer = io.BytesIO(data)
    buffer.name = name  # what errors name
    picture = read_image(buffer, max_pixels=max_pixels, descriptor=descriptor)
    return picture, hashlib.sha256(data).hexdigest()


class _Digesting:
    """A file read through, hashing its bytes as they go by: each byte once, in order, however
    the decoder seeks (a high-water mark); `hexdigest` reads what it skipped or left unread."""

    def __init__(self, f: BinaryIO, name: str) -> None:
        self._f, self._sha, self._done = f, hashlib.sha256(), 0
        self.name = name  # what errors name

    def read(self, size: int = -1) -> bytes:
        at = self._f.tell()
        data = self._f.read(size)
        if at <= self._done < at + len(data):
            self._sha.update(memoryview(data)[self._done - at :])
            self._done = at + len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        self._f.seek(self._done)
        while chunk := self._f.read(CHUNK):
            self._sha.update(chunk)
        return self._sha.hexdigest()
