"""The library's own verdicts on the beyond-photos rows (benchmarks/beyond_hash.py's .npz): every
row read again by phashdb (its hash and the descriptor it would store, with every key: layout
v3), the stored rows put into a real embedded index, and every row checked against it as
`Index.check` checks an image: the same searches (phashdb.matching.queries, the store's exact
search of hashes and of stored keys) and the same judge (Index._confirmed, nothing copied).

Beside the verdict, each search is judged on its own with the library's functions
(matching.confirmed for one search, matching.by_keys for one kind of stored key): what it
finds at all (candidates) and what it confirms; their union must be the verdict (checked).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np
from beyond_hash import again, same_corpus
from beyond_pairs import originals

from phashdb import descriptor, matching
from phashdb import phash as hashing
from phashdb.records import Image

RECORD_SIZE = descriptor.STORED_SIZE + len(descriptor.KEYS) * descriptor.KEY_SIZE
FLIPS = tuple(name for name, *_ in descriptor.VARIANTS[1:])
# Each search of a check, as a part of the table: the as-is query within the threshold (a plain
# pHash index's answer) and beyond it (the second stage), the flips and rotations, each of the
# query's keys, and each kind of stored key met by the query as-is.
PARTS = ("as-is within the threshold", "as-is, second stage", "flips and rotations",
         *(f"query's {k}" for k in descriptor.KEYS), *(f"stored {k}" for k in descriptor.KEYS))  # fmt: skip
# The parts of the default before any key (issue 24's "today's default").
NO_KEYS = PARTS[:3]


def library_row(source) -> tuple[int, bytes]:
    """(pHash, stored descriptor) of `source` as phashdb reads it."""
    pic = hashing.read_image(source)
    return pic.hash, pic.descriptor


def records(z, others: str, photos: str, path: str, workers: int) -> list[Image]:
    """The record of every row of `z` as the library stores it today (id: the row number),
    kept in the .npz file `path` (made if missing: every image and copy read again)."""
    if not os.path.exists(path):
        same_corpus(z, others, photos, "the hashed rows")
        done = again(z, library_row, workers)
        blobs = np.zeros((len(done), RECORD_SIZE), np.uint8)
        for r, (_, d) in enumerate(done):
            blobs[r, : len(d)] = np.frombuffer(d, np.uint8)
        np.savez(path, hash=np.array([h for h, _ in done], np.uint64), descriptor=blobs,
                 length=np.array([len(d) for _, d in done]), paths=z["paths"], image=z["image"],
                 edit=z["edit"], descriptor_version=descriptor.DESCRIPTOR_VERSION)  # fmt: skip
    kept = np.load(path)
    if str(kept["descriptor_version"]) != descriptor.DESCRIPTOR_VERSION:
        raise SystemExit(f"{path}: descriptors of layout {kept['descriptor_version']}, "
                         f"not today's {descriptor.DESCRIPTOR_VERSION}: remove it to read again")  # fmt: skip
    if any(k not in kept or not np.array_equal(kept[k], z[k]) for k in ("paths", "image", "edit")):
        raise SystemExit(f"{path}: not the records of the hashed rows: remove it to read again")
    return [Image(str(r), int(h), descriptor=bytes(d[:n]))
            for r, (h, d, n) in enumerate(zip(kept["hash"], kept["descriptor"], kept["length"]))]  # fmt: skip


def part_of(name: str, distance: int, threshold: int, stored: bool = False) -> str:
    """The part (PARTS) a match by the search `name` at `distance` belongs to."""
    if stored:
        return f"stored {name}"
    if name == descriptor.VARIANTS[0][0]:
        return PARTS[0] if distance <= threshold else PARTS[1]
    return PARTS[2] if name in FLIPS else f"query's {name}"


@dataclass
class Checked:
    """Per row: the stored rows each part confirms, the verdict's (Index.check) and the plain
    pHash's (as-is within the threshold, no second stage); of the candidates, per part, whether
    each row's own original is one, and how many are of another image."""

    conf: list[dict[str, set]] = field(default_factory=list)
    verdict: list[set] = field(default_factory=list)
    plain: list[set] = field(default_factory=list)
    cand_own: dict[str, list[bool]] = field(default_factory=lambda: {p: [] for p in PARTS})
    cand_false: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))
    differ: int = 0  # rows whose parts' union is not the verdict


def check_row(index, image: Image, records: dict[str, Image]) -> tuple[dict, dict, set, set]:
    """(candidates by part, confirmed by part, verdict, plain pHash) of `image` (its stored
    record) against the index, as stored row numbers."""
    t = index.threshold
    variants = descriptor.stored_variants(image.hash, image.descriptor)
    variants += descriptor.stored_keys(image.descriptor)
    asked = matching.queries(image, variants, t, index.reach, index.variants)
    found = index._search(asked, {})
    # the stored keys as Index._confirmed searches them: a wide key up to the reach
    keyed = matching.keys_met(index.store, image.hash, t, index.reach)
    cand: dict[str, set] = {p: set() for p in PARTS}
    conf: dict[str, set] = {p: set() for p in PARTS}
    for k, entry in enumerate(asked):
        hits = [(0, id, d) for n, id, d in found if n == k]
        for _, id, d in hits:
            cand[part_of(entry[0], d, t)].add(int(id))
        for m in matching.confirmed([entry], hits, records, t, image.descriptor):
            conf[part_of(m.variant, m.distance, t)].add(int(m.id))
    for name in {n for _, n, _ in keyed}:
        mine = [k for k in keyed if k[1] == name]
        cand[f"stored {name}"].update(int(id) for id, _, _ in mine)
        conf[f"stored {name}"].update(int(m.id) for m in matching.by_keys(image, mine, records, t))
    verdict = {int(m.id) for m in index._confirmed(image, variants, t)}
    plain = {int(id) for n, id, d in found if n == 0 and d <= t}
    return cand, conf, verdict, plain


def check_rows(index, z, rows: list[Image], stored: np.ndarray) -> Checked:
    """Every row of `rows` (of `z`) checked against the index holding the `stored` rows."""
    records = {rows[s].id: rows[s] for s in stored}
    index.insert(records.values())
    image, own = z["image"], originals(z)[z["image"]]
    out = Checked()
    for r, row in enumerate(rows):
        cand, conf, verdict, plain = check_row(index, row, records)
        for p, found in cand.items():
            out.cand_own[p].append(z["edit"][r] > 0 and own[r] in found)
            out.cand_false[p] += int((image[list(found)] != image[r]).sum()) if found else 0
        out.conf.append(conf)
        out.verdict.append(verdict)
        out.plain.append(plain)
        out.differ += set().union(*conf.values()) != verdict
        if (r + 1) % 2000 == 0:
            print(f"  {r + 1} of {len(rows)} rows checked", file=sys.stderr)
    return out


def own_found(z, sets: list[set]) -> np.ndarray:
    """Per row, whether its own original is among `sets[row]` (the originals: False)."""
    own = originals(z)[z["image"]]
    return np.array([e > 0 and o in s for e, o, s in zip(z["edit"], own, sets)])


def false_pairs(z, sets: list[set]) -> set[tuple[int, int]]:
    """The (row, stored row) pairs of distinct images among `sets`."""
    image = z["image"]
    return {(q, s) for q, found in enumerate(sets) for s in found if image[s] != image[q]}
