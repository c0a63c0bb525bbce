"""The rendering keys' matches pair by pair, and what tells a copy from another image: every
(query row, stored row) pair a transparent source's key "on black" (phashdb.renderings) puts
within the threshold, both ways (a stored key met by the query as-is; the query's own key
meeting a stored row as-is), on the library's records of benchmarks/beyond_library.py
(`accuracy.py --beyond` keeps them in --records).

    python benchmarks/key_pairs.py HASHED.npz RECORDS.npz

Prints, for the second stage's confirmation (confirm.confirms, the rule before issue 24's
bounds) and then for bounds (below, above) of confirm.BETWEEN's kind (the other image's
thumbnail at most `below` grey levels under the key's in any cell, at most `above` over the
key's source's own picture on white), the false matches the key confirms (pairs of distinct
images) and the copies of the key's own image it no longer confirms, by edit (whether another
part of a check finds them is the one run's: benchmarks/accuracy.py --beyond).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from beyond_match import T
from beyond_pairs import STORED_EDITS

from phashdb import confirm, descriptor

NAME = "on black"
LIMITS = [(255, 255), (2, 255), (4, 255), (6, 255), (6, 4), (6, 6), (6, 8), (6, 12), (4, 8)]


def key_pairs(z, hashes: np.ndarray, blobs: list[bytes]) -> list[tuple]:
    """(query row, stored row, the row whose key it is, key descriptor, other descriptor) of
    every key NAME's candidate within the threshold."""
    names = [str(n) for n in z["edit_names"]]
    stored = np.nonzero(np.isin(z["edit"], [names.index(n) for n in STORED_EDITS]))[0]
    is_stored = np.zeros(len(blobs), bool)
    is_stored[stored] = True
    out = []
    for row, blob in enumerate(blobs):
        for key in descriptor.stored_keys(blob):
            if key.name != NAME:
                continue
            near = np.bitwise_count(hashes ^ np.uint64(key.hash)) <= T
            others = np.nonzero(near)[0]
            if is_stored[row]:  # a stored key, met by every query row as-is
                out += [(q, row, row, key.descriptor, blobs[q][:49]) for q in others if q != row]
            # the row's own key as a query, against every stored row as-is
            out += [(row, s, row, key.descriptor, blobs[s][:49]) for s in others[is_stored[others]] if s != row]  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("hashed")
    ap.add_argument("records")
    args = ap.parse_args()
    z, r = np.load(args.hashed), np.load(args.records)
    blobs = [bytes(d[:n]) for d, n in zip(r["descriptor"], r["length"])]
    pairs = key_pairs(z, r["hash"].astype(np.uint64), blobs)
    image, edit = z["image"], z["edit"]
    names = [str(n) for n in z["edit_names"]]
    key = np.array([np.frombuffer(p[3], np.uint8) for p in pairs])
    other = np.array([np.frombuffer(p[4], np.uint8) for p in pairs])
    seen = np.array([np.frombuffer(blobs[p[2]][:49], np.uint8) for p in pairs])
    ok = np.array([confirm.confirms(p[4], p[3])[0] for p in pairs])
    below = (key[:, 33:].astype(int) - other[:, 33:]).max(axis=1)
    above = (other[:, 33:].astype(int) - seen[:, 33:]).max(axis=1)
    own = np.array([image[p[0]] == image[p[1]] for p in pairs])
    # the copy's edit: the row that is not the key's
    copy_edit = np.array([edit[p[1] if p[0] == p[2] else p[0]] for p in pairs])
    exports = np.isin(copy_edit, [names.index("flattened on black"), names.index("alpha dropped")])
    print(f"{len(pairs)} candidates of keys {NAME!r} within {T}; confirmed: {int((ok & own).sum())} "
          f"of the key's own image ({int((ok & own & exports).sum())} its exports), "
          f"{int((ok & ~own).sum())} of another (false)")  # fmt: skip
    print(f"own exports: at most {below[ok & own & exports].max()} below the key, "
          f"{above[ok & own & exports].max()} above the picture")  # fmt: skip
    print("\n| bounds (below, above) | false matches | own copies no longer confirmed, by edit |")
    print("|---|---|---|")
    for b, a in LIMITS:
        keep = ok & (below <= b) & (above <= a)
        lost = Counter(names[e] for e in copy_edit[ok & own & ~keep])
        label = "none (before)" if (b, a) == (255, 255) else f"({b}, {a})"
        print(f"| {label} | {int((keep & ~own).sum())} | {dict(lost) or 0} |")


if __name__ == "__main__":
    main()
