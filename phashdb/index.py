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
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .bands import HASH_BITS
from .descriptor import DESCRIPTOR_VERSION, VARIANTS, judge, judge_many
from .errors import Error, IndexMismatchError
from .hashing import DEFAULT_MAX_PIXELS, HASH_VERSION, READS_HASH_VERSIONS, from_hex, read_image
from .records import Decision, Image, Match, Verdict

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


@dataclass(frozen=True)
class Group:
    """Stored images that are near-duplicates of one another (connected by distance <= the
    threshold), with every close pair as (id, id, distance)."""

    images: tuple[Image, ...]
    pairs: tuple[tuple[str, str, int], ...]


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
            }
            store.write_settings(settings)
        elif "descriptor_version" not in settings:  # made before the second stage: rows lack it
            store.write_settings({"descriptor_version": DESCRIPTOR_VERSION})
            settings = {**settings, "descriptor_version": DESCRIPTOR_VERSION}
        if settings["descriptor_version"] != DESCRIPTOR_VERSION:
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
        matches = tuple(self._undecided(image.id, self._confirmed(image, variants, radius)))
        return Verdict(image.hash, matches, image.path, image.id, False, radius)

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
            matches = tuple(sorted(
                self._undecided(image.id, [*self._confirmed(image, variants, radius), *rivals]),
                key=lambda m: (m.distance, m.id),
            ))
            store_it = keep_duplicate or not matches
            if store_it:
                self.store.put([image])
        return Verdict(image.hash, matches, image.path, image.id, store_it, radius)

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
        if not self.store.url.startswith("hbase://"):
            raise Error(f"the index at {self.store.url} is not in HBase: bulk load needs HBase")
        from .hbase.bulkload import load

        return load(self.store, images).added

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
        queries = np.array(
            [from_hex(h) if isinstance(h, str) else h for h in hashes], dtype=np.uint64
        )
        qidx, ids, dists = self.store.search(queries, self._radius_or_threshold(radius))
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
        found = self.query_many(hashes, radius)
        records = self.store.find({id for f in found for id, _ in f})
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
        """Every group of stored near-duplicates, largest group first. With `reach` (e.g. the
        index's), pairs beyond the threshold up to that pHash distance are kept when their
        stored descriptors confirm them, as a check does (as-is only: flips need the pixels).
        Not by default: searching every stored hash that far costs far more than a check (at
        radius 16, seconds a hash on HBase). Near-constant images pair only as a check says."""
        radius = self._radius_or_threshold(threshold)
        ids, hashes = self.store.hashes()
        reach = radius if reach is None else max(radius, _radius(reach))
        qidx, found, dists = self.store.search(hashes, reach)
        keys_list, found_list = ids.tolist(), found.tolist()
        pairs = {}
        for q, k, d in zip(qidx.tolist(), found_list, dists.tolist()):
            a = keys_list[q]
            if a != k:
                pairs[min(a, k), max(a, k)] = d
        pairs = {(a, b): d for a, b, d in self.undecided((a, b, d) for (a, b), d in pairs.items())}
        records = self.store.find({k for p in pairs for k in p})
        # Another process may have removed some of them since: the groups are of those left.
        pairs = {
            (a, b): d
            for (a, b), d in pairs.items()
            if a in records
            and b in records
            and judge("as-is", d, radius, records[a].descriptor, records[b].descriptor)[0]
        }
        members = connected_groups(pairs)
        group_of = {k: n for n, ks in enumerate(members) for k in ks}
        group_pairs: list[list] = [[] for _ in members]
        for (a, b), d in pairs.items():
            group_pairs[group_of[a]].append((a, b, d))
        groups = [
            Group(tuple(sorted((records[k] for k in ks), key=lambda i: i.id)), tuple(sorted(ps)))
            for ks, ps in zip(members, group_pairs)
        ]
        groups.sort(key=lambda g: (-len(g.images), g.images[0].id))
        return groups

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
        """`pairs` (id, id, ...) less those marked not duplicates: the one place decisions
        are applied (verdicts and groups, here and in the MapReduce dedupe)."""
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

    def version(self):
        """A token that changes whenever the stored images, decisions or settings change, here
        or in another process: what is derived from them (the groups) may be kept while it
        stays the same. None when the backend cannot tell cheaply: then keep nothing."""
        version = getattr(self.store, "version", None)
        return None if version is None else version()

    def get(self, id: str) -> Image | None:
        return self.store.find([id]).get(id)

    def files(self) -> dict[str, tuple[int | None, float | None]]:
        """(size, mtime) of every stored path, for resumable ingest."""
        return self.store.files()

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
        picture = read_image(source, max_pixels=self.max_pixels)
        path = size = mtime = None
        if isinstance(source, (str, os.PathLike)):
            path = os.path.abspath(source)
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime
        if id is None:
            id = path or _content_id(source)
        image = Image(
            id, picture.hash, path, size, mtime, picture.width, picture.height,
            descriptor=picture.descriptor,
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
        found = self._search(queries)
        records = self.store.find({id for _, id, _ in found})
        best: dict[str, Match] = {}
        for q, (name, _, mine, _) in enumerate(queries):
            hits = [(id, d) for n, id, d in found if n == q and id in records]
            verdicts = judge_many(
                name, [d for _, d in hits], radius, mine, [records[id].descriptor for id, _ in hits]
            )
            for (id, d), (ok, score) in zip(hits, verdicts):
                if ok and (id not in best or (d, score or 0) < (best[id].distance, best[id].score or 0)):
                    best[id] = Match(id, d, records[id].path, score, name)
        return sorted(best.values(), key=lambda m: (m.distance, m.id))

    def _search(self, queries: list) -> list[tuple[int, str, int]]:
        """(query number, id, distance) of every stored image within each query's radius:
        one batched search per radius."""
        out = []
        for r in sorted({q[3] for q in queries}):
            numbers = [n for n, q in enumerate(queries) if q[3] == r]
            for n, found in zip(numbers, self.query_many([queries[n][1] for n in numbers], r)):
                out.extend((n, id, d) for id, d in found)
        return out

    def _radius_or_threshold(self, radius: int | None) -> int:
        return self.threshold if radius is None else _radius(radius)


def connected_groups(pairs: Iterable[tuple]) -> list[list]:
    """The connected components of the graph whose edges are `pairs`, each sorted, largest
    first (union-find with path halving)."""
    parent: dict = {}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(a)] = root(b)
    members: dict = {}
    for x in parent:
        members.setdefault(root(x), []).append(x)
    return sorted((sorted(m) for m in members.values()), key=lambda g: (-len(g), g))


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
    scheme = urlparse(url).scheme
    if scheme == "hbase":
        try:
            from .hbase import HBaseStore
        except ImportError as e:
            raise Error(f"{url}: the HBase backend needs thriftpy2: pip install 'phashdb[hbase]' ({e})") from e
        store = HBaseStore.from_url(url, **options)
    elif scheme in ("", "file"):
        from .embedded import EmbeddedStore

        store = EmbeddedStore(urlparse(url).path if scheme == "file" else url, **options)
    else:
        raise ValueError(f"unknown index URL scheme {scheme!r} in {url!r}: use a path or hbase://")
    try:
        return Index(store, **index_options)
    except BaseException:
        store.close()
        raise
