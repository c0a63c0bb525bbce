"""The rendering keys' matches, one pair at a time, with what might tell a copy from another
image: every (query row, stored row) pair that a transparent source's rendering keys
(phashdb.renderings: "on black", "alpha dropped", and their small names) put within reach, both
ways (a stored key met by the query as-is; the query's own key meeting the stored hash), on the
library's records of benchmarks/beyond_library.py (accuracy.py --beyond --records).

    python benchmarks/key_pairs.py HASHED.npz RECORDS.npz [--rule NAME ...]

For each rule (descriptor.KEY_RULES's candidates, by name) it prints what the keys confirm:
the copies of their own source (each export against its source's keys; each transparent
original's keys against its own stored black export) and the false matches (pairs of distinct
images), and how many of each the rule refuses that nothing but a rendering key confirms.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from beyond_match import REACH, T
from beyond_pairs import STORED_EDITS

from phashdb import descriptor
from phashdb.renderings import NAMES, SMALL_NAMES

RENDERINGS = (*NAMES, *SMALL_NAMES.values())


def load(hashed: str, records: str):
    z, r = np.load(hashed), np.load(records)
    blobs = [bytes(d[:n]) for d, n in zip(r["descriptor"], r["length"])]
    return z, r["hash"].astype(np.uint64), blobs


def pairs(z, hashes: np.ndarray, blobs: list[bytes]) -> list[tuple]:
    """(query row, stored row, direction, key name, distance, query descriptor, stored
    descriptor) of every rendering key's candidate: direction "stored" (the stored row's key
    against the query as-is) or "query" (the query's key against the stored row as-is)."""
    names = [str(n) for n in z["edit_names"]]
    image = z["image"]
    stored = np.nonzero(np.isin(z["edit"], [names.index(n) for n in STORED_EDITS]))[0]
    out = []
    for row, blob in enumerate(blobs):
        for key in descriptor.stored_keys(blob):
            if key.name not in RENDERINGS:
                continue
            radius = descriptor.key_radius(key.name, T, REACH)
            kh = np.uint64(key.hash)
            # as a stored key (row is a stored original) against every query row
            if row in set(stored.tolist()):
                d = np.bitwise_count(hashes ^ kh)
                for q in np.nonzero(d <= radius)[0].tolist():
                    if q != row:
                        out.append((q, row, "stored", key.name, int(d[q]), blobs[q][:49], key.descriptor))
            # as the query's key against every stored row as-is
            d = np.bitwise_count(hashes[stored] ^ kh)
            for s in stored[d <= radius].tolist():
                if s != row:
                    out.append((row, s, "query", key.name, int(d[stored == s][0]), key.descriptor, blobs[s][:49]))
    return out


def features(p: list[tuple]) -> dict[str, np.ndarray]:
    q = np.array([np.frombuffer(x[5], np.uint8) for x in p])
    s = np.array([np.frombuffer(x[6], np.uint8) for x in p])
    bits = np.bitwise_count(q[:, :32] ^ s[:, :32]).sum(axis=1)
    ok = []
    scores = []
    for x in p:
        keyed = "theirs" if x[2] == "stored" else "mine"
        o, sc = descriptor.judge(x[3], x[4], T, x[5], x[6], keyed)
        ok.append(o)
        scores.append(sc)
    greys = np.abs(q[:, 33:].astype(int) - s[:, 33:]).max(axis=1)
    mean_grey = np.abs(q[:, 33:].astype(int) - s[:, 33:]).mean(axis=1)
    return {
        "ok": np.array(ok), "score": np.array(scores, float), "bits": bits, "greys": greys,
        "mean_grey": mean_grey, "dist": np.array([x[4] for x in p]),
        "qual_q": q[:, 32], "qual_s": s[:, 32],
        "dark_q": (q[:, 33:] <= 24).sum(axis=1), "dark_s": (s[:, 33:] <= 24).sum(axis=1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("hashed")
    ap.add_argument("records")
    ap.add_argument("--save")
    args = ap.parse_args()
    z, hashes, blobs = load(args.hashed, args.records)
    p = pairs(z, hashes, blobs)
    f = features(p)
    image, edit = z["image"], z["edit"]
    names = [str(n) for n in z["edit_names"]]
    same = np.array([image[a] == image[b] for a, b, *_ in p])
    print(len(p), "candidates;", int(f["ok"].sum()), "confirmed;", int((f["ok"] & same).sum()), "own")
    print(Counter((x[2], x[3], bool(o), bool(s)) for x, o, s in zip(p, f["ok"], same)))
    if args.save:
        np.savez(args.save, q=np.array([x[0] for x in p]), s=np.array([x[1] for x in p]),
                 direction=np.array([x[2] for x in p]), name=np.array([x[3] for x in p]),
                 same=same, qedit=edit[[x[0] for x in p]], sedit=edit[[x[1] for x in p]],
                 qd=np.array([np.frombuffer(x[5], np.uint8) for x in p]),
                 sd=np.array([np.frombuffer(x[6], np.uint8) for x in p]), **f)  # fmt: skip
    del names


if __name__ == "__main__":
    main()
