"""The keys kept in stored descriptors (descriptor.stored_keys) as rows, and their search by
brute force: what Store.search_keys answers (phashdb.store), by definition. HBase answers it
over the few records its key band cells find; the embedded index keeps band tables over every
stored key (phashdb/embedded/keys.py), an optimisation of this scan that the tests check
against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def key_rows(images: Iterable[tuple[str, bytes | None]]) -> tuple[list, list, np.ndarray]:
    """(ids, key names, key hashes) of the keys in (id, stored descriptor) pairs: one row per
    key; images without keys give none."""
    import numpy as np

    from .descriptor import stored_keys

    ids, names, hashes = [], [], []
    for id, stored in images:
        for key in stored_keys(stored):
            ids.append(id)
            names.append(key.name)
            hashes.append(key.hash)
    return ids, names, np.array(hashes, dtype=np.uint64)


def near_keys(queries: np.ndarray, radius: int, ids: list, names: list, hashes: np.ndarray):
    """`search_keys`'s answer over key rows (`key_rows`), by brute force: the definition."""
    import numpy as np

    from .tables import scan

    q, rows, d = scan(hashes, np.asarray(queries, dtype=np.uint64), radius)
    pick = rows.tolist()
    return (
        q,
        np.array([ids[r] for r in pick], dtype=object),
        np.array([names[r] for r in pick], dtype=object),
        d,
    )


def named(answer: tuple, names: frozenset[str] | None) -> tuple:
    """A `search_keys` answer (query numbers, ids, key names, distances) with only the keys
    named in `names` (None: all of them): what `search_keys(..., names=names)` answers."""
    if names is None:
        return answer
    import numpy as np

    q, ids, found, d = answer
    keep = np.fromiter((n in names for n in found.tolist()), bool, len(found))
    return q[keep], ids[keep], found[keep], d[keep]


def within_reach(answer: tuple, radius: int, reach: int) -> tuple:
    """A `search_keys` answer up to `reach` with only the keys within their own radius: `radius`,
    a wide key (confirm.WIDE_KEYS) `reach` (confirm.key_radius)."""
    if reach <= radius:
        return answer
    import numpy as np

    from .confirm import key_radius

    q, ids, found, d = answer
    keep = np.fromiter(
        (k <= key_radius(n, radius, reach) for n, k in zip(found.tolist(), d.tolist())),
        bool,
        len(found),
    )
    return q[keep], ids[keep], found[keep], d[keep]
