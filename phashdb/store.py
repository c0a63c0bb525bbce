"""The storage seam: what the index needs of a backend, and which backend a URL opens.

`Index` (phashdb.index) is written once against `Store`; the embedded store (phashdb.embedded,
SQLite beside in-memory band tables) and HBase (phashdb.hbase) implement it, and
tests/test_store_contract.py runs the same checks on both. A backend is registered by its URL
scheme and imported only when a URL of that scheme is opened, so a missing extra costs nothing
until it is used, and then says what to install.

What only some backends can do is not a string test of the URL but a capability: a method the
store may have (`getattr(store, "bulk_load", None)`) or a word in its backend's `capabilities`:

- "remote": the index is reachable from other machines by its URL (MapReduce tasks write to it
  themselves, `ingest --load online`);
- "layout": its band layout is chosen when its tables are created (`phashdb init --bands`,
  `--print-schema`), through the backend module's `create_tables` and `schema_script`;
- "bulk_load": the store has `bulk_load(images) -> int` (new images loaded), HBase's HFiles;
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlparse

from .errors import Error
from .records import Image

if TYPE_CHECKING:  # the seam's arrays; opening a store needs no numpy
    import numpy as np


@runtime_checkable
class Store(Protocol):
    """What the index asks of a storage backend. Ids are strings, hashes 64-bit ints (numpy
    uint64 arrays in bulk); every read sees every write acknowledged before it, by any process."""

    url: str  # how the user names the index (error messages name it)
    home: Path  # a local folder for the index's own files (the trash)

    def read_settings(self) -> dict:
        """The index's stored settings (threshold, versions, ...); {} for a new index."""

    def write_settings(self, settings: dict) -> None:
        """Merge `settings` into the stored ones."""

    def search(
        self, queries: np.ndarray, radius: int, *, records: dict[str, Image] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image within `radius` of each query, exactly: (query numbers, ids,
        distances), one per (query, image). A backend that reads the images' records to answer
        puts them in `records` (id -> Image) when given, so the caller need not read them
        again; one that does not leaves it alone."""

    def search_keys(
        self,
        queries: np.ndarray,
        radius: int,
        *,
        records: dict[str, Image] | None = None,
        names: frozenset[str] | None = None,
        reach: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every stored image with a key (an image's other hashes, kept in its descriptor:
        descriptor.KEYS, descriptor.stored_keys) within `radius` of each query, and with a
        wide key (confirm.WIDE_KEYS) up to `reach` when given (confirm.key_radius),
        exactly: (query numbers, ids, key names, distances), one per (query, image, key);
        only keys named in `names` (None: every key). A check asks for both in one search
        (matching.keys_met): a store searches the few wide keys alone up to the reach, since
        every key searched up to the reach cost most of a check (docs/wide-keys.md).
        `records` as in `search`. Since index format 2 (settings.FORMAT) keys are searchable."""

    def index_keys(self) -> int:
        """Make the keys of every stored record searchable (the migration of an index of
        format 1, whose records may hold keys no key search knows): how many images have."""

    def find(self, ids: Iterable[str]) -> dict[str, Image]:
        """The stored record of each of `ids` that is stored (one batched read)."""

    def files(self, paths: Iterable[str] | None = None) -> dict[str, tuple]:
        """(size, mtime) of each stored path among `paths`, looked up as ids (as ingest stores
        them) in batches; None: of every stored path (a full read of the records)."""

    def put(self, images: Iterable[Image]) -> int | None:
        """Store records as they are: an id stored with the same hash keeps its record (or is
        rewritten), with another hash it is replaced. How many were written, when told."""

    def put_hashes(self, ids: Sequence[str], hashes: np.ndarray) -> None:
        """`put` of bare (id, hash) pairs, without making an Image each."""

    def delete(self, ids: Iterable[str]) -> int:
        """Remove images; how many were stored."""

    def claim(self, image: Image, radius: int) -> AbstractContextManager[Iterable]:
        """Admission: inside it, check-and-store of `image` is atomic against other writers;
        it yields the Matches of rivals admitted meanwhile (a lock yields none)."""

    def hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, hashes) of every stored image."""

    def images(self) -> Iterator[Image]:
        """Every stored record."""

    def count(self) -> int:
        """How many images are stored."""

    def decisions(self, ids: Iterable[str] | None) -> list[tuple[str, str, float]]:
        """(a, b, when made) of each pair marked not duplicates that involves any of `ids`
        (None: every pair); a < b."""

    def put_decisions(self, pairs: Sequence[tuple[str, str]], made: float) -> None:
        """Record pairs (a < b) as not duplicates, made at `made` (seconds since the epoch)."""

    def delete_decisions(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Forget pairs; how many were recorded."""

    def fsck(self, *, repair: bool = False) -> list[tuple[str, int]]:
        """What a crashed writer left half-written, as (id, hash); `repair` removes it."""

    def describe(self) -> dict:
        """What `phashdb stats` shows of the backend ("backend": its name, and the like)."""

    def close(self) -> None:
        """Let go of connections and files."""


# A store may also have `version() -> token` (changes with every write: what is derived from
# the index may be kept while it stays the same) and `bulk_load(images) -> int`.
OPTIONAL_MEMBERS = ("version", "bulk_load")


@dataclass(frozen=True)
class Backend:
    """A storage backend as the registry knows it, before anything of it is imported."""

    scheme: str
    opener: Callable[..., Store]  # (url, **options) -> an open store
    module: str  # the module holding the backend (create_tables, schema_script for "layout")
    extra: str | None = None  # the extra installing what it needs: pip install 'phashdb[extra]'
    capabilities: frozenset[str] = frozenset()

    def load(self, url: str):
        """The backend's module, imported now: an Error naming `url` with the install hint
        when a library it needs is missing."""
        try:
            return importlib.import_module(self.module)
        except ImportError as e:
            hint = f": pip install 'phashdb[{self.extra}]'" if self.extra else ""
            raise Error(
                f"{url}: the {self.scheme} backend needs {e.name or 'a library that is missing'}{hint} "
                f"({e})"
            ) from e


_BACKENDS: dict[str, Backend] = {}


def register(
    scheme: str,
    opener: Callable[..., Store],
    module: str,
    *,
    extra: str | None = None,
    capabilities: Iterable[str] = (),
) -> None:
    """Make URLs of `scheme` open stores through `opener(url, **options)`, which may import
    `module` (where the backend lives) only when called."""
    _BACKENDS[scheme] = Backend(scheme, opener, module, extra, frozenset(capabilities))


def backend(url: str) -> Backend:
    """The backend of an index URL (a plain path: the embedded one)."""
    scheme = urlparse(str(url)).scheme
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    try:
        return _BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in sorted(_BACKENDS) if s)
        raise ValueError(
            f"unknown index URL scheme {scheme!r} in {url!r}: use a path or {known}"
        ) from None


def open_store(url: str, **options: Any) -> Store:
    """The store of an index URL, opened (created when new) with backend `options`."""
    found = backend(url)
    found.load(url)
    return found.opener(url, **options)


def capabilities(store: Store) -> frozenset[str]:
    """The capabilities of an open store's backend (see the module's docstring)."""
    return backend(store.url).capabilities


def _embedded(url: str, **options: Any) -> Store:
    from .embedded import EmbeddedStore

    parsed = urlparse(url)
    return EmbeddedStore(parsed.path if parsed.scheme == "file" else url, **options)


def _hbase(url: str, **options: Any) -> Store:
    from .hbase import HBaseStore

    return HBaseStore.from_url(url, **options)


register("", _embedded, "phashdb.embedded")
register("file", _embedded, "phashdb.embedded")
register(
    "hbase",
    _hbase,
    "phashdb.hbase",
    extra="hbase",
    capabilities={"remote", "layout", "bulk_load"},
)
