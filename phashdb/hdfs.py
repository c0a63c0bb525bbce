"""Images in HDFS: listing, reading and packing `hdfs://HOST:PORT/...` URLs.

The client is hdfs-native (Rust, speaks the NameNode and DataNode protocols itself: no JVM, no
Hadoop install, no WebHDFS port); `pip install 'phashdb[hdfs]'`.

Packs answer HDFS's small-files problem (every file and block is an object in the NameNode's
memory): `write_packs` puts many images into one plain tar file, and a listing shows each image
in a pack as `hdfs://.../pack-00000.tar#NAME`, which reads that member's bytes (one ranged read
at its offset). Packs made by `tar` are read too.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from .errors import Error, ImageError

PACK_SUFFIX = ".tar"


def is_hdfs(location: str | os.PathLike) -> bool:
    return isinstance(location, str) and location.startswith("hdfs://")


@lru_cache(maxsize=8)
def _client(namenode: str):
    # One connection per process and NameNode: pool workers and map tasks read many files.
    try:
        import hdfs_native
    except ImportError as e:
        raise Error("reading hdfs:// URLs needs hdfs-native: pip install 'phashdb[hdfs]'") from e
    return hdfs_native.Client(namenode)


def _split(url: str) -> tuple:
    """(client, path in HDFS, member of a pack or None) of an hdfs:// URL."""
    parts = urlsplit(url)
    if parts.scheme != "hdfs" or not parts.netloc:
        raise ValueError(f"'url' must be hdfs://HOST:PORT/PATH, got {url!r}")
    return _client(f"hdfs://{parts.netloc}"), parts.path or "/", parts.fragment or None


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"hdfs://{parts.netloc}"


def listing(url: str, suffixes: Iterable[str]) -> dict[str, tuple[int, float]]:
    """Every image under `url` (a folder or a file) by its URL, with its size in bytes and its
    modification time in seconds: files by suffix, and the members of packs (`*.tar`). Folders
    whose name starts with a dot are skipped, as on the local disk."""
    client, path, member = _split(url)
    suffixes = frozenset(suffixes)
    base = _base(url)
    if member is not None:  # one member of a pack
        return {url: stat(url)} if posixpath.splitext(member)[1].lower() in suffixes else {}
    try:
        top = client.get_file_info(path)
        statuses = [top] if not top.isdir else client.list_status(path, recursive=True)
        found = {}
        for st in statuses:
            if st.isdir or any(p.startswith(".") for p in st.path[len(path) :].split("/")[:-1]):
                continue
            file_url = base + st.path
            suffix = posixpath.splitext(st.path)[1].lower()
            if suffix == PACK_SUFFIX:
                for name, (_, size, mtime) in pack_members(file_url).items():
                    if posixpath.splitext(name)[1].lower() in suffixes:
                        found[f"{file_url}#{name}"] = (size, mtime)
            elif suffix in suffixes:
                found[file_url] = (st.length, st.modification_time / 1000)
    except (OSError, RuntimeError) as e:  # hdfs-native raises FileNotFoundError, OSError, ...
        raise Error(f"{url}: cannot list ({e})") from e
    return found


def stat(url: str) -> tuple[int, float]:
    """(size in bytes, modification time in seconds) of an image file or pack member."""
    client, path, member = _split(url)
    if member is not None:
        _, size, mtime = pack_members(url.split("#", 1)[0])[member]
        return size, mtime
    st = client.get_file_info(path)
    return st.length, st.modification_time / 1000


def open_image(url: str) -> io.BytesIO:
    """The bytes of an image file or pack member, as a file object named by its URL (so
    errors name it). Raises ImageError when it cannot be read."""
    try:
        client, path, member = _split(url)
        if member is None:
            with client.read(path) as f:
                data = f.read()
        else:
            offset, size, _ = pack_members(url.split("#", 1)[0])[member]
            with client.read(path) as f:
                data = f.read_range(offset, size)
    except (OSError, RuntimeError, KeyError) as e:
        raise ImageError(f"{url}: cannot read ({e})") from e
    fp = io.BytesIO(data)
    fp.name = url
    return fp


@lru_cache(maxsize=64)
def pack_members(pack_url: str) -> dict[str, tuple[int, int, float]]:
    """Each regular file in a pack: name -> (offset of its bytes, size, modification time).
    Reads only the tar headers (a seek past each member's data). Cached per process: a map
    task or pool worker reads the members of a pack one after another."""
    import tarfile  # here: every command imports this module, few read packs

    client, path, _ = _split(pack_url)
    with client.read(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
        return {m.name: (m.offset_data, m.size, float(m.mtime)) for m in tar if m.isfile()}


def write_packs(
    images: Iterable[str], target: str, *, pack_bytes: int = 256 << 20, prefix: str = "pack"
) -> list[str]:
    """Pack local image files into tar files of about `pack_bytes` each under `target` (an
    hdfs:// folder or a local folder), named PREFIX-00000.tar, ...; each member is named by
    the image's path relative to the common folder of `images`. Returns the packs' locations."""
    import tarfile

    images = sorted(os.path.abspath(p) for p in images)
    if not images:
        return []
    root = os.path.commonpath([os.path.dirname(p) for p in images])
    packs: list[str] = []
    tar = out = None
    written = 0

    def close():
        if tar is not None:
            tar.close()
            out.close()

    try:
        for image in images:
            if tar is None or written >= pack_bytes:
                close()
                location = _join(target, f"{prefix}-{len(packs):05d}{PACK_SUFFIX}")
                out = _create(location)
                tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
                packs.append(location)
                written = 0
            tar.add(image, arcname=os.path.relpath(image, root), recursive=False)
            written += os.path.getsize(image) + 512
    finally:
        close()
    return packs


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name if is_hdfs(folder) else str(Path(folder) / name)


def _create(location: str):
    if not is_hdfs(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        return open(location, "wb")
    client, path, _ = _split(location)
    client.mkdirs(posixpath.dirname(path), create_parent=True)
    return client.create(path)
