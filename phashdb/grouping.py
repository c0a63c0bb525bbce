"""Duplicate pairs and groups of stored images, judged as a check judges them: the one place
`Index.dedupe` and the MapReduce dedupe job (phashdb.mr) get their answer from.

Two stored images are linked when a check of either one, with the other stored, names the other
(Index.check): as-is within the threshold as a plain pHash index says, as-is up to the reach
when their descriptors confirm it, or a flipped or rotated variant of one (its hashes kept in
its stored descriptor, phashdb.descriptor) within the threshold of the other and confirmed;
a near-constant image never (its blankness is no evidence); or one's query key (the picture framed, or on
white instead of a black backdrop: phashdb.trim, phashdb.backdrop, kept in its stored descriptor
since layout v3) within the threshold of the other and confirmed, as a check searches a query's
keys (whether or not flips are searched). A row without a descriptor (bare hashes), with one of
layout v1 (no variants) or a damaged one asks as-is only; one of layout v2 has no keys. Groups
are connected by links, less the pairs the user marked not duplicates; a group that would still
join such a pair (a third image linking both) is split: links are taken strongest first
(smallest distance, then best score) and a link that would join two images decided apart is
left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from . import confirm, descriptor
from .records import Image, pair_to_json

if TYPE_CHECKING:  # imported where used: opening an index and reading records need no numpy
    import numpy as np

AS_IS = descriptor.VARIANTS[0][0]
# Every way a stored image searches, numbered (as-is 0, the flips, then the keys): the job
# sends a query's number.
NAMES = tuple(name for name, *_ in descriptor.VARIANTS) + descriptor.KEYS
_ORDER = {name: k for k, name in enumerate(NAMES)}
# Close pairs a dedupe collects at most: they are held in memory (a pair costs ~200 bytes in
# Python), and more than this many means a threshold that groups nearly everything anyway.
MAX_PAIRS = 10_000_000


@dataclass(frozen=True)
class Group:
    """Stored images that are near-duplicates of one another (connected by links a check
    confirms), with every link as (id, id, distance)."""

    images: tuple[Image, ...]
    pairs: tuple[tuple[str, str, int], ...]

    def to_json(self) -> dict:
        """The group as JSON: its images as the API shows a record, its close pairs."""
        return {
            "images": [i.to_json() for i in self.images],
            "pairs": [pair_to_json(*p) for p in self.pairs],
        }


class Query(NamedTuple):  # a tuple: a dedupe makes one per stored image at least
    """One search a stored image makes: its id, which variant of it, that variant's pHash and
    compared descriptor (49 bytes or None), and the pHash radius searched."""

    id: str
    variant: str
    hash: int
    descriptor: bytes | None
    radius: int


class Link(NamedTuple):
    """Two stored images (a < b) a check would call duplicates: the pHash distance and second
    stage's score of the way found, and which variant of one matched the other."""

    a: str
    b: str
    distance: int
    score: float | None
    variant: str

    def strength(self) -> tuple:
        """Sorts the strongest link first: closest, best score, as-is before flips."""
        return (self.distance, 0.0 if self.score is None else self.score, _ORDER[self.variant])

    def to_json(self) -> list:
        return [self.a, self.b, self.distance, self.score, self.variant]


def link_from_json(fields: list) -> Link:
    return Link(*fields)


def queries(
    id: str, hash: int, stored: bytes | None, threshold: int, reach: int, variants: bool = True
) -> list[Query]:
    """The searches stored image `id` makes, as a check of it would: as-is up to the reach
    (only the threshold without a descriptor: nothing beyond it could be confirmed), each
    stored flip or rotation at the threshold (when `variants`), and each stored key at the
    threshold (a wide key up to the reach: confirm.key_radius)."""
    if stored is None:  # bare hashes, most rows of a large load: kept quick
        return [Query(id, AS_IS, hash, None, threshold)]
    mine = descriptor.core(stored)
    out = [Query(id, AS_IS, hash, mine, radius_of(AS_IS, mine is not None, threshold, reach))]
    if variants:
        found = descriptor.stored_variants(hash, stored)
        out += [Query(id, v.name, v.hash, v.descriptor, threshold) for v in found[1:]]
    keys = descriptor.stored_keys(stored)
    return out + [
        Query(id, k.name, k.hash, k.descriptor, radius_of(k.name, True, threshold, reach))
        for k in keys
    ]


def radius_of(variant: str, described: bool, threshold: int, reach: int) -> int:
    """The radius of a stored image's search by `variant` (as `queries` makes it; a row with a
    descriptor or not): as-is up to the reach when described, a key by confirm.key_radius."""
    if variant == AS_IS:
        return max(threshold, reach) if described else threshold
    return confirm.key_radius(variant, threshold, reach)


def judge_hits(
    found: Sequence[Query], q: Iterable[int], ids: Iterable[str], distances: Iterable[int],
    stored: Mapping[str, bytes], threshold: int,
) -> list[Link]:  # fmt: skip
    """The links among search hits: query `found[q[k]]` met stored image `ids[k]` at pHash
    distance `distances[k]`. `stored`: the descriptors of the stored images that have one.
    Hits beyond a query's radius and of an image with itself are dropped, as-is hits kept
    once (from the larger id's query: as-is judging is symmetric)."""
    links = []
    by_variant: dict[str, list] = {}  # judged a variant's every hit at once
    for k, id, d in zip(q, ids, distances):
        query = found[k]
        if id == query.id or d > query.radius or (query.variant == AS_IS and id > query.id):
            continue
        theirs = stored.get(id)
        if query.descriptor is None and theirs is None:  # bare hashes: the plain threshold
            if d <= threshold:
                links.append(_link(query, id, d, None))
        else:
            by_variant.setdefault(query.variant, []).append((query, id, d, theirs))
    for variant, hits in by_variant.items():
        verdicts = confirm.judge_pairs(
            variant, [d for _, _, d, _ in hits], threshold,
            [query.descriptor for query, *_ in hits], [t for *_, t in hits],
            sources=[stored.get(query.id) for query, *_ in hits],
        )  # fmt: skip
        links += [_link(qy, id, d, s) for (qy, id, d, _), (ok, s) in zip(hits, verdicts) if ok]
    return links


def _link(query: Query, id: str, distance: int, score: float | None) -> Link:
    a, b = (query.id, id) if query.id < id else (id, query.id)
    return Link(a, b, distance, score, query.variant)


def band_tables(hashes: np.ndarray):
    """phashdb's band tables over `hashes` (rows numbered in their order), built in memory."""
    from .bands import BandLayout
    from .tables import BandTables

    return BandTables.build(hashes, BandLayout.for_size(len(hashes)))


def in_memory(ids: Sequence[str], hashes: np.ndarray) -> Callable:
    """A search over the rows (`ids`, `hashes`) given, answering as a store's `search` does
    (query numbers, ids, distances), from band tables built here: a dedupe has read every hash
    anyway, and in memory a search to the reach costs the same on every backend (on HBase, a
    check's probes for each stored image would take hours at a million)."""
    import numpy as np

    tables = band_tables(hashes)
    ids = np.asarray(ids, dtype=object)

    def search(queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q, rows, d = tables.search(queries, radius)
        return q, ids[rows], d

    return search


def search_links(
    ids: Sequence[str], hashes: np.ndarray, stored: Mapping[str, bytes],
    search: Callable, threshold: int, reach: int, variants: bool = True, chunk: int = 100_000,
) -> list[Link]:  # fmt: skip
    """Every link among stored images (`ids`, `hashes`, `stored` descriptors by id), found by
    `search(hashes, radius)` (a store's: query numbers, ids, distances), a chunk of queries at
    a time. Raises ValueError past MAX_PAIRS hits."""
    import numpy as np

    found = [
        query
        for id, h in zip(ids, hashes.tolist())
        for query in queries(id, h, stored.get(id), threshold, reach, variants)
    ]
    links: list[Link] = []
    hits = 0
    for radius in sorted({query.radius for query in found}):
        numbers = [n for n, query in enumerate(found) if query.radius == radius]
        for lo in range(0, len(numbers), chunk):
            part = numbers[lo : lo + chunk]
            q, got, d = search(np.array([found[n].hash for n in part], dtype=np.uint64), radius)
            hits += len(q)
            if hits > MAX_PAIRS:
                raise ValueError(too_many(threshold))
            subset = [found[n] for n in part]
            links += judge_hits(subset, q.tolist(), got.tolist(), d.tolist(), stored, threshold)
    return links


def links_touching(
    rows: tuple, touching: set[str], threshold: int, reach: int, variants: bool = True,
    searches: Mapping[str, list[int]] | None = None,
) -> list[Link]:  # fmt: skip
    """The links among `rows` (ids, hashes, descriptors by id, as `search_links` takes them)
    with an end in `touching`: what `search_links` over all rows finds of them, from both
    sides (a check need not be symmetric: a flip or key of either may be the one that meets
    the other), the added images' searches over all rows and every row's over the added.
    `searches` (id -> `search_hashes`), when known, spares making every row's queries: only
    rows with a search within reach of an image touching (or not in it) search again."""
    ids, hashes, stored = rows
    mine = [k for k, id in enumerate(ids) if id in touching]
    if not mine:
        return []
    mine_ids, mine_hashes = [ids[k] for k in mine], hashes[mine]
    ask = (threshold, reach, variants)
    links = search_links(mine_ids, mine_hashes, stored, in_memory(ids, hashes), *ask)
    near = in_memory(mine_ids, mine_hashes)
    if searches is not None:
        again = _near_rows(ids, searches, near, max(threshold, reach))
        ids, hashes = [ids[k] for k in again], hashes[again]
    return links + search_links(ids, hashes, stored, near, *ask)


def _near_rows(ids: list[str], searches: Mapping, near: Callable, radius: int) -> list[int]:
    """The rows with a search (`searches`) within `radius` of a row of `near`, or none known:
    no other row's search can meet one of `near` (each searches at most that far)."""
    import numpy as np

    owner = [k for k, id in enumerate(ids) for _ in searches.get(id, ())]
    flat = np.array([h for id in ids for h in searches.get(id, ())], dtype=np.uint64)
    q, _, _ = near(flat, radius)
    unknown = {k for k, id in enumerate(ids) if id not in searches}
    return sorted({owner[n] for n in q.tolist()} | unknown)


def search_hashes(hash: int, stored: bytes | None, variants: bool = True) -> list[int]:
    """The pHashes the searches of a stored image use (its `queries`, whatever their radii),
    read from the descriptor without making the queries' descriptors."""
    if stored is None:
        return [hash]
    found = descriptor.stored_hashes(hash, stored)[1:] if variants else ()
    return [hash, *found, *(key.hash for key in descriptor.stored_keys(stored))]


def too_many(threshold: int) -> str:
    return (
        f"more than {MAX_PAIRS:,} close pairs at threshold {threshold}: a dedupe holds them in "
        "memory; use a lower threshold"
    )


def best_links(links: Iterable[Link]) -> dict[tuple[str, str], Link]:
    """One link per pair of images: the strongest of the ways it was found."""
    best: dict[tuple[str, str], Link] = {}
    for link in links:
        kept = best.get((link.a, link.b))
        if kept is None or link.strength() < kept.strength():
            best[link.a, link.b] = link
    return best


def groups(
    links: Mapping[tuple[str, str], Link], decided: Iterable[tuple[str, str]], find: Callable
) -> list[Group]:
    """The groups of linked images (`best_links`), pairs in `decided` (a < b) never in one:
    `find(ids)` gives the stored records (an image removed since is left out). Largest group
    first, then by first id."""
    decided = set(decided)
    kept = [link for pair, link in links.items() if pair not in decided]
    records = find({i for link in kept for i in (link.a, link.b)})
    kept = [link for link in kept if link.a in records and link.b in records]
    members = connected_groups((link.a, link.b) for link in kept)
    if decided and any(_splits(ids, decided) for ids in members):
        kept = apart(kept, decided)
        members = connected_groups((link.a, link.b) for link in kept)
    group_of = {i: n for n, ids in enumerate(members) for i in ids}
    pairs: list[list] = [[] for _ in members]
    for link in kept:
        pairs[group_of[link.a]].append((link.a, link.b, link.distance))
    out = [
        Group(tuple(records[i] for i in ids), tuple(sorted(ps))) for ids, ps in zip(members, pairs)
    ]
    out.sort(key=lambda g: (-len(g.images), g.images[0].id))
    return out


def _splits(ids: list, decided: set) -> bool:
    members = set(ids)
    return any(a in members and b in members for a, b in decided)


def apart(links: list[Link], decided: set) -> list[Link]:
    """`links` less those that would join a decided pair, taken strongest first (Kruskal's
    order): each left-out link is the weakest on every path it would have closed between them."""
    apart: dict[str, set] = {}
    for a, b in decided:
        apart.setdefault(a, set()).add(b)
        apart.setdefault(b, set()).add(a)
    root: dict[str, str] = {}
    members: dict[str, set] = {}

    def find(x: str) -> str:
        root.setdefault(x, x)
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    out = []
    for link in sorted(links, key=lambda k: (k.strength(), k.a, k.b)):
        ra, rb = find(link.a), find(link.b)
        if ra != rb:
            sa, sb = members.setdefault(ra, {ra}), members.setdefault(rb, {rb})
            if len(sa) > len(sb):
                ra, rb, sa, sb = rb, ra, sb, sa
            if any(apart.get(x, set()) & sb for x in sa):
                continue
            root[ra] = rb
            sb |= members.pop(ra)
        out.append(link)
    return out


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
