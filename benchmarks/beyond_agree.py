"""Whether the one-run table (benchmarks/beyond_table.py: the library's own verdicts) agrees
with the separate scripts (benchmarks/beyond_match.py's rules in numpy, which
accuracy_beyond.py, beyond_rules.py, beyond_unbox.py and stored_keys.py count with) on the same
rows, and where not, why: the rows hashed before (the .npz) against the rows the library reads
today, then the separate scripts' rules on both against the library's verdicts.
"""

from __future__ import annotations

import numpy as np
from beyond_library import NO_KEYS as DEFAULT_PARTS
from beyond_library import false_pairs, own_found
from beyond_match import Rows, candidate_pairs
from beyond_pairs import groups, originals, queried_and_stored

from phashdb import descriptor
from phashdb.records import Image

NO_KEYS = "default without keys"
# The separate scripts' methods as unions of the library's parts, and the edits they reported
# (stored_keys.py's renderings: a small source's under their wide names, docs/wide-keys.md).
METHODS = {
    "default + backdrop + trimmed (accuracy_beyond.py's new)": ("query's backdrop", "query's trimmed"),
    "+ query's unboxed (beyond_unbox.py)": ("query's backdrop", "query's trimmed", "query's unboxed"),
    "+ stored renderings (stored_keys.py)": ("query's backdrop", "query's trimmed", "stored on black",
                                             "stored alpha dropped", "stored on black, small",
                                             "stored alpha dropped, small"),
}  # fmt: skip
SHOWN = ("frame 5%", "white box 1/4", "black box 1/4", "flattened on black", "alpha dropped")


def today(z, rows: list[Image]) -> dict:
    """`z` with its hashes, descriptors and query keys (backdrop, trimmed) as read today."""
    h = np.zeros_like(z["h"])
    d = np.zeros_like(z["d"])
    kh, kd, kv = np.zeros_like(z["kh"]), np.zeros_like(z["kd"]), np.zeros_like(z["kv"])
    names = [str(n) for n in z["key_names"]]
    for r, image in enumerate(rows):
        for v, var in enumerate(descriptor.stored_variants(image.hash, image.descriptor)):
            h[r, v], d[r, v] = var.hash, np.frombuffer(var.descriptor, np.uint8)
        for key in descriptor.stored_keys(image.descriptor):
            if key.name in names:
                k = names.index(key.name)
                kh[r, k], kd[r, k], kv[r, k] = key.hash, np.frombuffer(key.descriptor, np.uint8), 1
    return {**z, "h": h, "d": d, "kh": kh, "kd": kd, "kv": kv}


def drift(z, now: dict) -> None:
    """How many rows the library reads otherwise today than when the .npz was made."""
    cells = {
        "pHash": (z["h"][:, 0] != now["h"][:, 0]),
        "a flip's or rotation's pHash": (z["h"][:, 1:] != now["h"][:, 1:]).any(axis=1),
        "compared bytes (as-is)": (z["d"][:, 0] != now["d"][:, 0]).any(axis=1),
        "a query key (backdrop, trimmed)": (z["kv"] != now["kv"]).any(axis=1)
        | (z["kv"] & (z["kh"] != now["kh"])).any(axis=1),
    }
    print("rows read otherwise today than in the hashed rows: "
          + ", ".join(f"{k} {int(v.sum())}" for k, v in cells.items()))  # fmt: skip


def default_of(z) -> tuple[np.ndarray, set]:
    """The separate scripts' default (beyond_match.Rows.default: search and second stage, no
    keys) on rows `z`: per row its own original found, and the false matches."""
    rows = Rows(z)
    q, stored, _ = queried_and_stored(z)
    own = originals(z)[z["image"]]
    found = rows.default(q, own)[1] & (z["edit"] > 0)
    qi, si = candidate_pairs(rows, q, stored, "default")
    other = z["image"][qi] != z["image"][si]
    ok = rows.default(qi[other], si[other])[1]
    return found, set(zip(qi[other][ok].tolist(), si[other][ok].tolist()))


def query_key_of(z, checked, key: str) -> tuple[int, int, int]:
    """Own originals found by query key `key`: by the separate scripts' rule on rows `z`, by
    the library's part, and by one of them only."""
    names = [str(n) for n in z["key_names"]]
    q = np.nonzero(z["edit"] > 0)[0]
    mine = np.zeros(len(z["edit"]), bool)
    mine[q] = Rows(z).query_key(q, originals(z)[z["image"][q]], names.index(key))[1]
    own = originals(z)[z["image"]]
    lib = np.array([o in c[f"query's {key}"] for o, c in zip(own, checked.conf)]) & (z["edit"] > 0)
    return int(mine.sum()), int(lib.sum()), int((mine != lib).sum())


def agreement(z, rows: list[Image], checked, found: dict, false: dict) -> None:
    """Print how the separate scripts' figures compare with the table's on the same rows."""
    now = today(z, rows)
    print("\nagreement with the separate scripts (benchmarks/beyond_match.py's rules)")
    drift(z, now)
    lib_found, lib_false = found[NO_KEYS] & (z["edit"] > 0), false[NO_KEYS]
    for label, rows_of in (("the hashed rows", z), ("the rows read today", now)):
        f, fm = default_of(rows_of)
        print(f"  default, on {label}: copies found {int(f.sum())} (library {int(lib_found.sum())}"
              f", differing {int((f != lib_found).sum())}); false matches {len(fm)} (library "
              f"{len(lib_false)}, in both {len(fm & lib_false)})")  # fmt: skip
        for key in (str(k) for k in z["key_names"]):
            a, b, c = query_key_of(rows_of, checked, key)
            print(f"  query's {key}, on {label}: copies found {a} (library {b}, differing {c})")


def methods(z, checked, wanted: np.ndarray) -> None:
    """The separate scripts' methods made of the library's parts: the shares they reported
    (of the copies in `wanted`) and their false matches."""
    names = [str(n) for n in z["edit_names"]]
    for label, parts in METHODS.items():
        use = (*DEFAULT_PARTS, *parts)
        sets = [set().union(*(c[p] for p in use)) for c in checked.conf]
        found = own_found(z, sets) & wanted
        cells = []
        for g, m in groups(z).items():
            shares = [f"{e} {found[m & wanted & (z['edit'] == names.index(e))].mean():.1%}"
                      for e in SHOWN if (m & wanted & (z["edit"] == names.index(e))).any()]  # fmt: skip
            cells.append(f"{g}: " + ", ".join(shares))
        print(f"  {label}: {'; '.join(cells)}; false matches {len(false_pairs(z, sets)):,}")
