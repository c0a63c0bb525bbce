"""The index: verdicts, thresholds and every operation, written once over a storage backend.

A backend (the embedded store, HBase) answers exact radius searches over stored hashes and keeps
image records; everything users see (add, check, query, dedupe, ...) is built here from that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import replace
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from .bands import HASH_BITS
from .collector import paused as collector_paused
from .decode import DEFAULT_MAX_PIXELS
from .descriptor import damaged
from .errors import Error
from .hashvalue import from_hex, hash_value
from .matching import best, by_keys, by_query, confirmed, keys_met, marked, queries, ranked
from .records import Decision, Image, Match, Verdict
from .settings import DEFAULT_REACH, DEFAULT_THRESHOLD, opened  # noqa: F401 (public here too)
from .settings import radius as _radius
from .store import open_store

if TYPE_CHECKING:  # imported where used: opening an index and reading records need no numpy
    import numpy as np

    from . import grouping
    from .grouping import Group


def __getattr__(name: str):
    # Group and connected_groups are public here too; phashdb.grouping (~1 ms of a `check`'s
    # imports) is loaded when a dedupe or one of them first needs it.
    if name in ("Group", "connected_groups"):
        from . import grouping

        return getattr(grouping, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Index:
    """A near-duplicate index over a storage backend. Use `phashdb.open()` to get one."""

    def __init__(
        self,
        store,
        *,
        threshold: int | None = None,
        max_pixels: int | None = None,
        reach: int | None = None,
        variants: bool | None = None,
    ):
        self.store = store
        self.max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        settings = opened(store, threshold)
        self.settings = settings
        self.threshold = settings["threshold"] if threshold is None else _radius(threshold)
        # How far the second stage reaches, and whether flips and rotations are searched.
        self.reach = settings.get("reach", DEFAULT_REACH) if reach is None else _radius(reach)
        self.variants = settings.get("variants", True) if variants is None else bool(variants)

    # --- images in, verdicts out ---------------------------------------------------------

    def check(self, source, id: str | None = None, *, threshold: int | None = None) -> Verdict:
        """The verdict on an image (a path, bytes, binary file or PIL image); nothing stored.
        `id` is the one it would be stored under (default as `add`'s): decisions about it count."""
        image, variants = self._read(source, id)
        radius = self._radius_or_threshold(threshold)
        found = self._undecided(image.id, self._confirmed(image, variants, radius))
        return Verdict(image.hash, ranked(image, found), image.path, image.id, False, radius, image)

    def add(
        self,
        source,
        id: str | None = None,
        *,
        keep_duplicate: bool = False,
        threshold: int | None = None,
    ) -> Verdict:
        """Check an image and store it if it is unique, as one atomic step: of several
        processes adding near-identical images at once, exactly one is stored as unique and the
        others are told they duplicate it. A duplicate is stored too when `keep_duplicate`
        (the user chose to keep it). Raises Error when `id` is already stored."""
        image, variants = self._read(source, id)
        radius = self._radius_or_threshold(threshold)
        if self.store.find([image.id]):
            raise Error(f"id {image.id!r} is already in the index at {self.store.url}")
        # The backend makes check-and-store atomic: a lock, or claims that see each other.
        with self.store.claim(image, radius) as rivals:
            if self.store.find([image.id]):
                raise Error(f"id {image.id!r} is already in the index at {self.store.url}")
            found = [*self._confirmed(image, variants, radius), *rivals]
            matches = ranked(image, self._undecided(image.id, found))
            store_it = keep_duplicate or not matches
            if store_it:
                self.store.put([image])
        return Verdict(image.hash, matches, image.path, image.id, store_it, radius, image)

    def insert(self, images: Iterable[Image]) -> int:
        """Store image records as they are (no check): for hashes made elsewhere, bulk loads.
        An id already stored with the same hash is kept; with another hash it is replaced.
        Returns how many were written (not already stored exactly so), when the backend
        tells; else how many were given."""
        images = list(images)
        written = self.store.put(images)
        return len(images) if written is None else written

    def bulk_load(self, images: Iterable[Image]) -> int:
        """Store image records made elsewhere through HBase's bulk-load path (HFiles; see
        phashdb.hbase.bulkload): for millions at once. Ids already stored are kept, or replaced
        online when changed (an id given twice: the last wins). Returns how many new images
        were loaded. HBase indexes only."""
        load = getattr(self.store, "bulk_load", None)
        if load is None:
            raise Error(f"the index at {self.store.url} is not in HBase: bulk load needs HBase")
        return load(images)

    def add_hashes(self, pairs: Iterable[tuple[str, int | str]], *, batch: int = 1_000_000) -> None:
        """Store (id, hash) pairs made elsewhere; a hash may be an int or imagehash's hex.
        As `insert`: a stored id keeps its record if the hash is the same, else is replaced."""
        pairs = iter(pairs)
        while True:
            with collector_paused():  # 14% of a bulk load's CPU was the collector's passes
                if not self._add_batch(list(islice(pairs, batch))):
                    return

    def _add_batch(self, chunk: list) -> int:
        """`add_hashes` of one batch of pairs; how many there were."""
        import numpy as np  # here: opening an index needs no numpy

        if chunk:
            # itemgetter maps, not zip(*chunk): splatting a quarter-million pairs into zip
            # cost more than SQLite's insert of them; types looked at in C, a loop in Python
            # only when some are not str and int.
            if set(map(len, chunk)) != {2}:
                bad = next(p for p in chunk if len(p) != 2)
                raise ValueError(f"add_hashes takes (id, hash) pairs, got {bad!r}")
            ids = list(map(itemgetter(0), chunk))
            values = list(map(itemgetter(1), chunk))
            if set(map(type, ids)) - {str}:
                ids = [i if type(i) is str else str(i) for i in ids]
            if set(map(type, values)) - {int}:
                values = [hash_value(h) for h in values]
            try:
                hashes = np.array(values, dtype=np.uint64)
            except OverflowError:
                bad = next(h for h in values if not 0 <= h < 1 << HASH_BITS)
                raise ValueError(f"a hash must be in 0..2**64-1, got {bad}") from None
            self.store.put_hashes(ids, hashes)
        return len(chunk)

    def remove(self, id: str) -> bool:
        """Forget an image; False when no image had that id."""
        return self.store.delete([id]) > 0

    # --- searching ------------------------------------------------------------------------

    def query(self, hash: int | str, radius: int | None = None) -> list[tuple[str, int]]:
        """Stored images within `radius` (default: the threshold) as (id, distance), nearest
        first, then by id."""
        return self.query_many([hash], radius)[0]

    def query_many(
        self, hashes: Iterable[int | str], radius: int | None = None
    ) -> list[list[tuple[str, int]]]:
        """`query` for many hashes at once: much faster per hash than one by one."""
        return self._query_many(hashes, radius, None)

    def _query_many(self, hashes, radius: int | None, records: dict | None):
        """`query_many`; the records the store read to answer go into `records` (a dict)."""
        import numpy as np

        queries = np.array(
            [from_hex(h) if isinstance(h, str) else h for h in hashes], dtype=np.uint64
        )
        radius = self._radius_or_threshold(radius)
        qidx, ids, dists = self.store.search(queries, radius, records=records)
        return by_query(len(queries), qidx, ids, dists)

    def matches(self, hashes: Iterable[int | str], radius: int | None = None) -> list[list[Match]]:
        """For each hash, the stored images within `radius` as Matches (with their stored
        paths), nearest first."""
        records: dict[str, Image] = {}
        found = self._query_many(hashes, radius, records)
        records.update(self.store.find({id for f in found for id, _ in f} - set(records)))
        return [[Match(id, d, records[id].path) for id, d in f if id in records] for f in found]

    def similar(self, source, top: int = 5) -> list[Match]:
        """The `top` stored images nearest to an image (or a hash), nearest first; a stored
        record of the very file asked about is marked `same_file`."""
        image = None if isinstance(source, int) else self._read(source, None, False)[0]
        h = source if image is None else image.hash
        for radius in (4, 8, 12, 16, 24, 32, HASH_BITS):
            found = self.matches([h], radius)[0]
            # Exact search: once `top` lie within the radius, none further out can beat them.
            if len(found) >= top or radius == HASH_BITS:
                return marked(image and image.path, found[:top])
        raise AssertionError("unreachable")

    def dedupe(self, threshold: int | None = None, *, reach: int | None = None) -> list[Group]:
        """Every group of stored near-duplicates, largest group first: images linked as a check
        of one, with the other stored, would call them duplicates (the second stage up to the
        `reach`, default the index's, and the stored flips and rotations; phashdb.grouping),
        groups never joining a pair marked not duplicates. Raises ValueError for a threshold
        beyond the index's reach (or threshold), whose pairs could fill the memory."""
        return self.groups(self.links(self.rows(), threshold, reach=reach))

    def rows(self) -> tuple[list[str], np.ndarray, dict[str, bytes]]:
        """What a dedupe searches: every stored image's id and pHash, and the descriptors by id."""
        ids, hashes = self.store.hashes()
        return ids.tolist(), hashes, self.descriptors()

    def links(
        self, rows: tuple, threshold: int | None = None, *, reach: int | None = None,
        touching: set[str] | None = None, searches: dict | None = None,
    ) -> dict[tuple[str, str], grouping.Link]:  # fmt: skip
        """The strongest link of each linked pair among `rows` (`rows()`), as `dedupe` finds
        them; with `touching` (ids), only the pairs with an image of it: what changed
        (`searches`: grouping.links_touching)."""
        from . import grouping

        radius = self.dedupe_bound(threshold)
        reach = self.reach if reach is None else _radius(reach)
        ids, hashes, stored = rows
        if touching is None:
            search = grouping.in_memory(ids, hashes)
            found = grouping.search_links(ids, hashes, stored, search, radius, reach, self.variants)
        else:
            ask = (radius, reach, self.variants, searches)
            found = grouping.links_touching(rows, touching, *ask)
        return grouping.best_links(found)

    def dedupe_bound(self, threshold: int | None) -> int:
        """The threshold a dedupe uses; ValueError beyond the index's reach (or threshold)."""
        radius = self._radius_or_threshold(threshold)
        bound = max(self.threshold, self.reach)
        if radius > bound:
            raise ValueError(
                f"'threshold' must be at most {bound} (the index's reach) for a dedupe, got "
                f"{radius}: a dedupe holds every close pair in memory, and beyond the reach "
                "unrelated photos match anyway"
            )
        return radius

    def groups(self, links: dict, records: dict[str, Image] | None = None) -> list[Group]:
        """The groups of `links` (phashdb.grouping.best_links) under the decisions stored;
        `records` (by id), when the caller has read them all already, are not read again."""
        from . import grouping

        decided = [(a, b) for a, b, _ in self.store.decisions(None)]
        if records is None:
            return grouping.groups(links, decided, self.store.find)
        return grouping.groups(links, decided, lambda ids: {i: records[i] for i in ids})

    def descriptors(self) -> dict[str, bytes]:
        """The stored descriptor of every image that has one, by id."""
        quick = getattr(self.store, "descriptors", None)  # a backend that can read them alone
        if quick is not None:
            return quick()
        return {i.id: i.descriptor for i in self.store.images() if i.descriptor is not None}

    # --- decisions: what the user said is not a duplicate -------------------------------

    def mark_not_duplicates(self, pairs: Iterable[tuple[str, str]]) -> list[Decision]:
        """Record that each pair of stored ids is not a duplicate: from then on neither is a
        match of the other (check, add, dedupe, and all built on them), until forgotten."""
        pairs = sorted({_pair(a, b) for a, b in pairs})
        stored = self.store.find({i for p in pairs for i in p})
        unknown = sorted({i for p in pairs for i in p} - set(stored))
        if unknown:
            raise Error(f"no image with id {unknown[0]!r} in the index at {self.store.url}")
        made = time.time()
        self.store.put_decisions(pairs, made)
        return [Decision(a, b, made) for a, b in pairs]

    def decisions(self) -> list[Decision]:
        """Every pair marked not a duplicate, oldest first."""
        found = self.store.decisions(None)
        return sorted((Decision(a, b, t) for a, b, t in found), key=lambda d: (d.made, d.a, d.b))

    def forget_decisions(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Forget that these pairs are not duplicates; returns how many were recorded."""
        return self.store.delete_decisions(sorted({_pair(a, b) for a, b in pairs}))

    def undecided(self, pairs: Iterable[tuple]) -> list[tuple]:
        """`pairs` (id, id, ...) less those marked not duplicates: where verdicts apply
        decisions (groups apply them in phashdb.grouping.groups, which also splits groups)."""
        pairs = list(pairs)
        ids = {i for p in pairs for i in p[:2]}
        if not ids:
            return pairs
        # Many ids (a whole dedupe): read every decision at once rather than ids by the batch.
        decided = {(a, b) for a, b, _ in self.store.decisions(None if len(ids) > 1000 else ids)}
        if not decided:
            return pairs
        return [p for p in pairs if (min(p[0], p[1]), max(p[0], p[1])) not in decided]

    def _undecided(self, id: str, matches: Iterable[Match]) -> list[Match]:
        return [m for _, _, m in self.undecided((id, m.id, m) for m in matches)]

    # --- the rest -------------------------------------------------------------------------

    def configure(
        self,
        *,
        threshold: int | None = None,
        reach: int | None = None,
        variants: bool | None = None,
    ) -> None:
        """Change the index's stored settings: the plain pHash `threshold`; the second stage's
        `reach` (pHash distance up to which descriptors may confirm a match; 0 or at most the
        threshold: off); whether flipped and rotated `variants` of a query are searched."""
        changes = {}
        if threshold is not None:
            changes["threshold"] = self.threshold = _radius(threshold)
        if reach is not None:
            changes["reach"] = self.reach = _radius(reach)
        if variants is not None:
            changes["variants"] = self.variants = bool(variants)
        self.store.write_settings(changes)
        self.settings.update(changes)

    @property
    def trash(self) -> Path:
        """The folder where `phashdb add` moves duplicates the user throws away."""
        return self.store.home / "trash"

    def fsck(self, *, repair: bool = False) -> list[tuple[str, int]]:
        """Check the storage: rows a crashed writer left half-written, as (id, hash);
        `repair` removes them."""
        return self.store.fsck(repair=repair)

    def damaged_descriptors(self, *, repair: bool = False) -> list[str]:
        """Ids of the stored images whose descriptor is of neither layout (a damaged row):
        every verdict treats it as missing (the plain threshold); `repair` removes it."""
        bad = [i for i in self.store.images() if damaged(i.descriptor)]
        if repair and bad:
            self.store.put([replace(i, descriptor=None) for i in bad])
        return [i.id for i in bad]

    def version(self):
        """A token that changes whenever the stored images, decisions or settings change, here
        or in another process: what is derived from them (the groups) may be kept while it
        stays the same. None when the backend cannot tell cheaply: then keep nothing."""
        version = getattr(self.store, "version", None)
        return None if version is None else version()

    def get(self, id: str) -> Image | None:
        return self.store.find([id]).get(id)

    def files(self, paths: Iterable[str] | None = None) -> dict[str, tuple]:
        """(size, mtime, dev, ino, mtime_ns) of each stored path among `paths` (looked up in
        batches, as ids: as ingest stores them), for resumable ingest; None: of every stored
        path (a full read)."""
        return self.store.files(paths)

    def images(self) -> Iterable[Image]:
        return self.store.images()

    def stats(self) -> dict:
        return {
            "url": self.store.url,
            "images": len(self),
            "threshold": self.threshold,
            "reach": self.reach,
            "variants": self.variants,
            "hash_version": self.settings["hash_version"],
            "descriptor_version": self.settings["descriptor_version"],
            "format": self.settings["format"],
            **self.store.describe(),
        }

    def __len__(self) -> int:
        return self.store.count()

    def __contains__(self, id: str) -> bool:
        return bool(self.store.find([id]))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- inside -----------------------------------------------------------------------------

    def _read(self, source, id: str | None, descriptor: bool = True) -> tuple[Image, tuple]:
        """The record of `source` (phashdb.source) and its variants and keys, as-is first."""
        from .source import read_source  # Pillow and numpy: only when an image is read

        image, picture = read_source(source, id, max_pixels=self.max_pixels, descriptor=descriptor)
        return image, picture.variants + picture.keys

    def _confirmed(self, image: Image, variants: tuple, radius: int) -> list[Match]:
        """The stored images that `image` (with its flipped and rotated `variants`, as-is
        first) duplicates (phashdb.matching.confirmed), and those whose stored keys it does
        (phashdb.matching.by_keys)."""
        asked = queries(image, variants, radius, self.reach, self.variants)
        read: dict[str, Image] = {}
        found = self._search(asked, read)
        keyed = keys_met(self.store, image.hash, radius, self.reach, read)
        # A check reads each record once: those the search read come with it.
        wanted = {id for _, id, _ in found} | {id for id, _, _ in keyed}
        records = {id: read[id] for id in wanted if id in read}
        records.update(self.store.find(wanted - set(records)))
        return best(
            [
                *confirmed(asked, found, records, radius, image.descriptor),
                *by_keys(image, keyed, records, radius),
            ]
        )

    def _search(self, queries: list, records: dict) -> list[tuple[int, str, int]]:
        """(query number, id, distance) of every stored image within each query's radius:
        one batched search per radius; the records the store read go into `records`."""
        out = []
        for r in sorted({q[3] for q in queries}):
            numbers = [n for n, q in enumerate(queries) if q[3] == r]
            hashes = [queries[n][1] for n in numbers]
            for n, found in zip(numbers, self._query_many(hashes, r, records)):
                out.extend((n, id, d) for id, d in found)
        return out

    def _radius_or_threshold(self, radius: int | None) -> int:
        return self.threshold if radius is None else _radius(radius)


def _pair(a: str, b: str) -> tuple[str, str]:
    """A decision's pair, in the one order it is stored in."""
    if not isinstance(a, str) or not isinstance(b, str) or a == b:
        raise ValueError(f"a decision is about two different ids, got {a!r} and {b!r}")
    return (a, b) if a < b else (b, a)


def default_location() -> Path:
    """Where the embedded index lives unless told otherwise: $XDG_DATA_HOME/phashdb."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "phashdb"


def open(url: str | os.PathLike | None = None, **options) -> Index:
    """Open (creating if needed) an index: a folder path for the embedded index (default:
    $PHASHDB_URL, else `default_location()`), or `hbase://HOST:PORT/TABLE?options`.
    `threshold`, `max_pixels`, `reach` and `variants` may be given as keyword options."""
    url = str(url or os.environ.get("PHASHDB_URL") or default_location())
    index_options = {
        k: options.pop(k) for k in ("threshold", "max_pixels", "reach", "variants") if k in options
    }
    store = open_store(url, **options)
    try:
        return Index(store, **index_options)
    except BaseException:
        store.close()
        raise
