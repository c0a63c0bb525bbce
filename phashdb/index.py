"""The index: verdicts, thresholds and every operation, written once over a storage backend.

A backend (the embedded store, HBase) answers exact radius searches over stored hashes and keeps
image records; everything users see (add, check, query, dedupe, ...) is built here from that.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from itertools import islice, repeat
from pathlib import Path

import numpy as np

from . import grouping
from .bands import HASH_BITS
from .descriptor import (
    DESCRIPTOR_VERSION,
    READS_DESCRIPTOR_VERSIONS,
    VARIANTS,
    damaged,
    judge_many,
)
from .errors import Error, IndexMismatchError
from .grouping import Group, connected_groups  # noqa: F401 (public here too)
from .hashing import DEFAULT_MAX_PIXELS, HASH_VERSION, READS_HASH_VERSIONS, from_hex, read_image
from .identity import read_file
from .records import Decision, Image, Match, Verdict
from .store import open_store

# Chosen by benchmarks/accuracy.py on 231 real photos (README, "Accuracy"): the largest distance
# with no false match (at 10, one edited copy matched another photo: in a million-image index
# that would flag most unique uploads), still catching re-encodes, resizes and most small edits.
DEFAULT_THRESHOLD = 8
# The second stage (phashdb.descriptor): stored images up to this pHash distance are candidates,
# kept when the descriptors confirm them; the flipped and rotated variants of a query are
# searched at the threshold and confirmed the same way. Chosen by benchmarks/accuracy.py
# (README, "Accuracy") against the cost of a wider search (benchmarks/check_10m.py).
DEFAULT_REACH = 16
FORMAT = 1  # the layout of what a backend stores; bumped when that changes
# The layout of image records: 2 adds the file's identity (phashdb.identity); records of
# layout 1 are read as they are (their files are checked by size and mtime).
RECORD_VERSION = 2


class Index:
    """A near-duplicate index over a storage backend. Use `phashdb.open()` to get one."""

    def __init__(
        self, store, *, threshold: int | None = None, max_pixels: int | None = None,
        reach: int | None = None, variants: bool | None = None,
    ):
        self.store = store
        self.max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        settings = store.read_settings()
        if "hash_version" not in settings:  # a new index (HBase's tables come with their bands)
            settings = {
                **settings,
                "format": FORMAT,
                "hash_version": HASH_VERSION,
                "descriptor_version": DESCRIPTOR_VERSION,
                "threshold": DEFAULT_THRESHOLD if threshold is None else _radius(threshold),
                "record_version": RECORD_VERSION,
            }
            store.write_settings(settings)
        elif "descriptor_version" not in settings:  # made before the second stage: rows lack it
            if not getattr(store, "read_only", False):  # (read-only: reading needs no setting)
                store.write_settings({"descriptor_version": DESCRIPTOR_VERSION})
            settings = {**settings, "descriptor_version": DESCRIPTOR_VERSION}
        settings = _record_version(store, settings)
        # An index made with layout v1 or v2 keeps saying so while new rows get v3: rows are
        # told apart by their length (phashdb.descriptor).
        if settings["descriptor_version"] not in READS_DESCRIPTOR_VERSIONS:
            raise IndexMismatchError(
                f"the index at {store.url} holds descriptors of version "
                f"{settings['descriptor_version']!r}, but this phashdb makes "
                f"{DESCRIPTOR_VERSION!r}: ingest the images into a new index"
            )
        if settings.get("hash_version") not in READS_HASH_VERSIONS or settings.get("format") != FORMAT:
            raise IndexMismatchError(
                f"the index at {store.url} holds hashes of version "
                f"{settings.get('hash_version')!r} (format {settings.get('format')}), but this "
                f"phashdb makes {HASH_VERSION!r} (format {FORMAT}): ingest the images into a "
                "new index instead of mixing the two"
            )
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
        return Verdict(image.hash, _ranked(image, found), image.path, image.id, False, radius, image)

    def add(
        self, source, id: str | None = None, *, keep_duplicate: bool = False,
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
            matches = _ranked(image, self._undecided(image.id, found))
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

    def add_hashes(
        self, pairs: Iterable[tuple[str, int | str]], *, batch: int = 1_000_000
    ) -> None:
        """Store (id, hash) pairs made elsewhere; a hash may be an int or imagehash's hex.
        As `insert`: a stored id keeps its record if the hash is the same, else is replaced."""
        pairs = iter(pairs)
        while chunk := list(islice(pairs, batch)):
            # Two comprehensions, not zip(*chunk): splatting a quarter-million pairs into zip
            # cost more than SQLite's insert of them.
            ids = [i if type(i) is str else str(i) for i, _ in chunk]
            values = [h for _, h in chunk]
            if not all(type(h) is int for h in values):
                values = [_hash_value(h) for h in values]
            try:
                hashes = np.array(values, dtype=np.uint64)
            except OverflowError:
                bad = next(h for h in values if not 0 <= h < 1 << HASH_BITS)
                raise ValueError(f"a hash must be in 0..2**64-1, got {bad}") from None
            self.store.put_hashes(ids, hashes)

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
        queries = np.array(
            [from_hex(h) if isinstance(h, str) else h for h in hashes], dtype=np.uint64
        )
        radius = self._radius_or_threshold(radius)
        qidx, ids, dists = self.store.search(queries, radius, records=records)
        out: list[list[tuple[str, int]]] = [[] for _ in queries]
        # numpy orders the matches by query and distance; each run of one query's matches at one
        # distance is then sorted as plain strings, so thousands of matches cost little.
        key = np.asarray(qidx, dtype=np.int64) << 8 | np.asarray(dists, dtype=np.int64)
        order = np.argsort(key, kind="stable")
        if (order[1:] < order[:-1]).any():  # the embedded store answers in this order already
            key, ids = key[order], ids[order]
        ids = ids.tolist()
        cuts = np.flatnonzero(key[1:] != key[:-1]) + 1
        firsts = np.concatenate(([0], cuts)) if len(key) else cuts
        for a, b, k in zip(firsts.tolist(), [*cuts.tolist(), len(ids)], key[firsts].tolist()):
            out[k >> 8].extend(zip(sorted(ids[a:b]), repeat(k & 0xFF)))
        return out

    def matches(self, hashes: Iterable[int | str], radius: int | None = None) -> list[list[Match]]:
        """For each hash, the stored images within `radius` as Matches (with their stored
        paths), nearest first."""
        records: dict[str, Image] = {}
        found = self._query_many(hashes, radius, records)
        records.update(self.store.find({id for f in found for id, _ in f} - set(records)))
        return [[Match(id, d, records[id].path) for id, d in f if id in records] for f in found]

    def similar(self, source, top: int = 5) -> list[Match]:
        """The `top` stored images nearest to an image (or a hash), nearest first."""
        h = source if isinstance(source, int) else self._read(source, None)[0].hash
        for radius in (4, 8, 12, 16, 24, 32, HASH_BITS):
            found = self.matches([h], radius)[0]
            # Exact search: once `top` lie within the radius, none further out can beat them.
            if len(found) >= top or radius == HASH_BITS:
                return found[:top]
        raise AssertionError("unreachable")

    def dedupe(self, threshold: int | None = None, *, reach: int | None = None) -> list[Group]:
        """Every group of stored near-duplicates, largest group first: images linked as a check
        of one, with the other stored, would call them duplicates (the second stage up to the
        `reach`, default the index's, and the stored flips and rotations; phashdb.grouping),
        groups never joining a pair marked not duplicates. Raises ValueError for a threshold
        beyond the index's reach (or threshold), whose pairs could fill the memory."""
        radius = self.dedupe_bound(threshold)
        reach = self.reach if reach is None else _radius(reach)
        ids, hashes = self.store.hashes()
        stored = self.descriptors()
        ids = ids.tolist()
        search = grouping.in_memory(ids, hashes)
        links = grouping.search_links(ids, hashes, stored, search, radius, reach, self.variants)
        return self.groups(grouping.best_links(links))

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

    def groups(self, links: dict) -> list[Group]:
        """The groups of `links` (phashdb.grouping.best_links) under the decisions stored."""
        decided = [(a, b) for a, b, _ in self.store.decisions(None)]
        return grouping.groups(links, decided, self.store.find)

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
        self, *, threshold: int | None = None, reach: int | None = None,
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

    def _read(self, source, id: str | None) -> tuple[Image, tuple]:
        path, known = None, {}
        if isinstance(source, (str, os.PathLike)):
            path = os.path.abspath(source)
            # What identifies the file, from the very bytes hashed (phashdb.identity).
            picture, known = read_file(path, max_pixels=self.max_pixels)
        else:
            picture = read_image(source, max_pixels=self.max_pixels)
        if id is None:
            id = path or _content_id(source)
        image = Image(
            id, picture.hash, path, width=picture.width, height=picture.height,
            descriptor=picture.descriptor, **known,
        )
        return image, picture.variants + picture.keys

    def _confirmed(self, image: Image, variants: tuple, radius: int) -> list[Match]:
        """The stored images that `image` (with its flipped and rotated `variants`, as-is
        first) duplicates. As-is within `radius` of the pHash, as a plain pHash index says;
        as-is within the reach, or flipped or rotated within `radius`, when the descriptors
        confirm it; a near-constant image only by its descriptor (phashdb.descriptor.confirms).
        Each stored image once, by its closest way of matching."""
        reach = max(radius, self.reach)
        queries = [(VARIANTS[0][0], image.hash, image.descriptor, reach)]
        if variants and self.variants:
            queries += [(v.name, v.hash, v.descriptor, radius) for v in variants[1:len(VARIANTS)]]
        # the query's other keys (phashdb.backdrop, phashdb.trim): confirmed like a variant
        queries += [(v.name, v.hash, v.descriptor, radius) for v in variants[len(VARIANTS):]]
        read: dict[str, Image] = {}
        found = self._search(queries, read)
        # A check reads each record once: those the search read come with it.
        records = {id: read[id] for _, id, _ in found if id in read}
        records.update(self.store.find({id for _, id, _ in found} - set(records)))
        best: dict[str, Match] = {}
        for q, (name, _, mine, _) in enumerate(queries):
            hits = [(id, d) for n, id, d in found if n == q and id in records]
            verdicts = judge_many(
                name, [d for _, d in hits], radius, mine, [records[id].descriptor for id, _ in hits]
            )
            for (id, d), (ok, score) in zip(hits, verdicts):
                match = Match(id, d, records[id].path, score, name)
                if ok and (id not in best or match.rank() < best[id].rank()):
                    best[id] = match
        return sorted(best.values(), key=Match.rank)

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


def _ranked(image: Image, matches: Iterable[Match]) -> tuple[Match, ...]:
    """The matches best first (Match.rank), those whose stored file is the file checked
    (`image.path`: the same device and inode) marked `same_file`."""
    mine = _inode(image.path)
    if mine is not None:
        matches = [replace(m, same_file=_inode(m.path) == mine) for m in matches]
    return tuple(sorted(matches, key=Match.rank))


def _inode(path: str | None) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if path else None
    except (OSError, ValueError):  # gone, unreadable, or a name the system cannot take
        return None
    return None if st is None else (st.st_dev, st.st_ino)


def _record_version(store, settings: dict) -> dict:
    """An index of older records gains the newer layout's version once opened to write (its
    records are read as they are, and those written from now on carry file identity); one
    of a newer layout than this code knows is refused."""
    version = settings.get("record_version", 1)
    if version > RECORD_VERSION:
        raise IndexMismatchError(
            f"the index at {store.url} holds records of layout {version}, but this phashdb "
            f"reads up to {RECORD_VERSION}: upgrade phashdb"
        )
    if version < RECORD_VERSION and not getattr(store, "read_only", False):
        store.write_settings({"record_version": RECORD_VERSION})
        settings = {**settings, "record_version": RECORD_VERSION}
    return settings


def _pair(a: str, b: str) -> tuple[str, str]:
    """A decision's pair, in the one order it is stored in."""
    if not isinstance(a, str) or not isinstance(b, str) or a == b:
        raise ValueError(f"a decision is about two different ids, got {a!r} and {b!r}")
    return (a, b) if a < b else (b, a)


def _radius(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"'radius' must be a whole number of bits, got {value!r}")
    if not 0 <= value <= HASH_BITS:
        raise ValueError(f"'radius' must be in 0..{HASH_BITS}, got {value}")
    return int(value)


def _hash_value(h) -> int:
    """A hash given as an int (Python's or numpy's) or as imagehash's 16 hex digits."""
    if isinstance(h, str):
        return from_hex(h)
    if isinstance(h, (int, np.integer)) and not isinstance(h, bool):
        return int(h)
    raise ValueError(f"a hash must be an int or 16 hex digits, got {h!r}")


def _content_id(source) -> str:
    """An id for an image that came without a path: a digest of its bytes (or pixels)."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, io.IOBase) or hasattr(source, "read"):
        source.seek(0)
        data = source.read()
    else:
        data = source.tobytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


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
