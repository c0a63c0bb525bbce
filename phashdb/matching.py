"""From what a search found to the matches a verdict lists: results ordered by query and
distance, the searches a check makes (the image as-is, its flips and rotations, its other
keys), the second stage's confirmation of each, and the ranking of what is kept."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from itertools import repeat

from .confirm import judge_many, key_radius
from .descriptor import VARIANTS, stored_keys
from .records import Image, Match


def by_query(count: int, qidx, ids, dists) -> list[list[tuple[str, int]]]:
    """A search's answer (query number, id, distance arrays) as, for each of `count` queries,
    its (id, distance) pairs nearest first, then by id."""
    import numpy as np  # here: opening an index and reading records need no numpy

    out: list[list[tuple[str, int]]] = [[] for _ in range(count)]
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


def queries(image: Image, variants: tuple, radius: int, reach: int, flips: bool) -> list:
    """The searches a check of `image` makes, as (name, hash, descriptor, radius): as-is up to
    the reach (or `radius`), its flipped and rotated `variants` (as-is first) within `radius`
    when `flips`, and its other keys (phashdb.backdrop, phashdb.trim, phashdb.unbox) within
    `radius` (a wide key up to the reach: confirm.key_radius)."""
    out = [(VARIANTS[0][0], image.hash, image.descriptor, max(radius, reach))]
    if variants and flips:
        out += [(v.name, v.hash, v.descriptor, radius) for v in variants[1 : len(VARIANTS)]]
    # the query's other keys: confirmed like a variant (a wide one searched up to the reach)
    out += [
        (v.name, v.hash, v.descriptor, key_radius(v.name, radius, reach))
        for v in variants[len(VARIANTS) :]
    ]
    return out


def confirmed(
    queries: list, found: list, records: dict[str, Image], radius: int, source: bytes | None = None
) -> list[Match]:
    """The stored images (`records`) that the searches `queries` found (as (query number, id,
    distance)) and the second stage confirms (phashdb.confirm.judge_many): as-is within
    `radius` as a plain pHash index says, else when the descriptors agree. Each stored image
    once, by its closest way of matching, best first. `source`: the stored descriptor of the
    image whose searches they are (its keys' bounds: confirm.BETWEEN)."""
    best: dict[str, Match] = {}
    for q, (name, _, mine, _) in enumerate(queries):
        hits = [(id, d) for n, id, d in found if n == q and id in records]
        theirs = [records[id].descriptor for id, _ in hits]
        verdicts = judge_many(name, [d for _, d in hits], radius, mine, theirs, source=source)
        for (id, d), (ok, score) in zip(hits, verdicts):
            match = Match(id, d, records[id].path, score, name)
            if ok and (id not in best or match.rank() < best[id].rank()):
                best[id] = match
    return sorted(best.values(), key=Match.rank)


def keys_met(store, hash: int, radius: int, reach: int, records: dict | None = None) -> list:
    """(id, key name, distance) of every stored key that `hash` (an image as-is) meets: within
    `radius`, a wide key (confirm.WIDE_KEYS) up to the reach (confirm.key_radius), as a
    batch pass searches each stored key against the images as-is (phashdb.grouping). One
    search: each store searches the few wide keys alone up to the reach (Store.search_keys)."""
    import numpy as np  # here: opening an index needs no numpy

    asked = np.array([hash], dtype=np.uint64)
    _, ids, names, dists = store.search_keys(asked, radius, records=records, reach=reach)
    return list(zip(ids.tolist(), names.tolist(), dists.tolist()))


def by_keys(image: Image, found: list, records: dict[str, Image], radius: int) -> list[Match]:
    """The stored images whose keys (`found`: (id, key name, distance), Store.search_keys)
    image `image` as-is met (within `radius`, a wide key up to the reach: confirm.key_radius)
    and the second stage confirms against the key's own descriptor, as a variant is
    (Match.variant names the key; a wide key beyond `radius` strictly: confirm.judge)."""
    out = []
    for name in sorted({n for _, n, _ in found}):
        hits = [(id, d) for id, n, d in found if n == name and id in records]
        theirs = [_key(records[id].descriptor, name) for id, _ in hits]
        sources = [records[id].descriptor for id, _ in hits]
        verdicts = judge_many(
            name, [d for _, d in hits], radius, image.descriptor, theirs, "theirs", sources
        )
        out += [
            Match(id, d, records[id].path, score, name)
            for (id, d), (ok, score) in zip(hits, verdicts)
            if ok
        ]
    return out


def _key(stored: bytes | None, name: str) -> bytes | None:
    return next((k.descriptor for k in stored_keys(stored) if k.name == name), None)


def best(matches: Iterable[Match]) -> list[Match]:
    """Each stored image once, by its best way of matching (Match.rank), best first."""
    out: dict[str, Match] = {}
    for m in matches:
        if m.id not in out or m.rank() < out[m.id].rank():
            out[m.id] = m
    return sorted(out.values(), key=Match.rank)


def ranked(image: Image, matches: Iterable[Match]) -> tuple[Match, ...]:
    """The matches best first (Match.rank), those whose stored file is the file checked
    marked `same_file` (see `marked`)."""
    return tuple(sorted(marked(image.path, matches), key=Match.rank))


def marked(path: str | None, matches: Iterable[Match]) -> list[Match]:
    """The matches in their order, those whose stored file is the file at `path` (the same
    device and inode) marked `same_file`."""
    mine = _inode(path)
    if mine is None:
        return list(matches)
    return [replace(m, same_file=_inode(m.path) == mine) for m in matches]


def _inode(path: str | None) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if path else None
    except (OSError, ValueError):  # gone, unreadable, or a name the system cannot take
        return None
    return None if st is None else (st.st_dev, st.st_ino)
