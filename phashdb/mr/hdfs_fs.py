"""mrjob's file operations on `hdfs://` URLs through hdfs-native (phashdb.hdfs's client).

mrjob's hadoop runner does each of them (mkdir, put of every file a job needs, ls and cat of
the output, rm of its temp dir) with a `hadoop fs` command: a client JVM each, about a second
apiece, a third of a small job's time on the test cluster. This filesystem answers them over
the NameNode and DataNode protocols from this process instead; `hadoop` still submits the job.
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from mrjob.fs.base import Filesystem
from mrjob.fs.composite import CompositeFilesystem
from mrjob.fs.hadoop import HadoopFilesystem
from mrjob.fs.local import LocalFilesystem
from mrjob.hadoop import HadoopJobRunner

from ..hdfs import _client

GLOB = frozenset("*?[{")


class HdfsNativeFilesystem(Filesystem):
    def can_handle_path(self, path):
        # hdfs:///path (the configured default filesystem) is left to `hadoop fs`, which reads
        # the configuration.
        return path.startswith("hdfs://") and bool(urlsplit(path).netloc)

    def _statuses(self, url: str) -> tuple[str, list]:
        """(hdfs://HOST:PORT, statuses of every file at or under `url`, a glob allowed)."""
        parts = urlsplit(url)
        client, base = _client(f"hdfs://{parts.netloc}"), f"hdfs://{parts.netloc}"
        path = parts.path or "/"
        try:
            tops = client.glob_status(path) if GLOB & set(path) else [client.get_file_info(path)]
        except FileNotFoundError:
            return base, []
        found = []
        for top in tops:
            if top.isdir:
                found += [s for s in client.list_status(top.path, recursive=True) if not s.isdir]
            else:
                found.append(top)
        return base, found

    def ls(self, path_glob):
        base, statuses = self._statuses(path_glob)
        for status in statuses:
            yield base + status.path

    def du(self, path_glob):
        return sum(status.length for status in self._statuses(path_glob)[1])

    def exists(self, path_glob):
        parts = urlsplit(path_glob)
        client = _client(f"hdfs://{parts.netloc}")
        if GLOB & set(parts.path):
            return bool(client.glob_status(parts.path))
        try:
            client.get_file_info(parts.path or "/")
        except FileNotFoundError:
            return False
        return True

    def _cat_file(self, path):
        parts = urlsplit(path)
        with _client(f"hdfs://{parts.netloc}").read(parts.path) as f:
            while chunk := f.read(1 << 20):
                yield chunk

    def mkdir(self, path):
        parts = urlsplit(path)
        _client(f"hdfs://{parts.netloc}").mkdirs(parts.path, create_parent=True)

    def put(self, src, path):
        if path.endswith("/"):
            raise ValueError("put() destination may not be a directory")
        parts = urlsplit(path)
        client = _client(f"hdfs://{parts.netloc}")
        client.mkdirs(posixpath.dirname(parts.path), create_parent=True)
        with open(src, "rb") as source, client.create(parts.path) as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)

    def rm(self, path_glob):
        parts = urlsplit(path_glob)
        client = _client(f"hdfs://{parts.netloc}")
        paths = (
            [s.path for s in client.glob_status(parts.path)]
            if GLOB & set(parts.path)
            else [parts.path]
        )
        for path in paths:
            try:
                client.delete(path, recursive=True)
            except FileNotFoundError:
                pass

    def touchz(self, path):
        parts = urlsplit(path)
        client = _client(f"hdfs://{parts.netloc}")
        if self.exists(path) and client.get_file_info(parts.path).length:
            raise OSError(f"non-empty file {path!r} already exists")
        client.create(parts.path).close()


class HadoopRunner(HadoopJobRunner):
    """mrjob's hadoop runner, its hdfs:// file operations through hdfs-native."""

    @property
    def fs(self):
        if self._fs is None:
            self._fs = CompositeFilesystem()
            self._fs.add_fs("hdfs_native", HdfsNativeFilesystem())
            self._fs.add_fs("hadoop", HadoopFilesystem(self._opts["hadoop_bin"] or None))
            self._fs.add_fs("local", LocalFilesystem())
        return self._fs
