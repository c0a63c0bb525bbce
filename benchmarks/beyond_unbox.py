"""The unboxed query key (phashdb.unbox) measured on a corpus already hashed by
benchmarks/beyond_hash.py: every original and copy is made again, only its unboxed key is
worked out (as phashdb.read_image does), added to the hashed rows beside backdrop and trimmed,
and benchmarks/accuracy.py --beyond --candidates' report printed with it in the new method (the
default and the part's own row: what it adds, its false matches that are not the default's).

    python benchmarks/beyond_unbox.py HASHED.npz OTHERS PHOTOS [--out WITH_UNBOXED.npz] [--workers 2]

A new key otherwise means hashing again (the sub-window keys are most of that cost).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from accuracy_beyond import NEW, report, transparent_keys
from beyond_hash import again, same_corpus
from beyond_match import Rows

from phashdb import descriptor
from phashdb import phash as hashing
from phashdb.unbox import NAME


def key_row(source) -> tuple[int, np.ndarray, bool]:
    """(pHash, descriptor bytes, present) of `source`'s unboxed key."""
    keys = {k.name: k for k in hashing.read_image(source).keys}
    if NAME not in keys:
        return 0, np.zeros(descriptor.SIZE, np.uint8), False
    return keys[NAME].hash, np.frombuffer(keys[NAME].descriptor, np.uint8), True


def with_unboxed(z: dict, workers: int) -> dict:
    """`z` with the unboxed key added to its query keys (kh, kd, kv, key_names)."""
    h, d, v = zip(*again(z, key_row, workers))
    out = dict(z)
    out["kh"] = np.concatenate([z["kh"], np.array(h, np.uint64)[:, None]], axis=1)
    out["kd"] = np.concatenate([z["kd"], np.array(d, np.uint8)[:, None, :]], axis=1)
    out["kv"] = np.concatenate([z["kv"], np.array(v, bool)[:, None]], axis=1)
    out["key_names"] = np.array([*map(str, z["key_names"]), NAME])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hashed")
    ap.add_argument("others")
    ap.add_argument("photos")
    ap.add_argument("--out", help="where the rows with the key are kept (default: beside HASHED)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out = args.out or os.path.splitext(args.hashed)[0] + "-unboxed.npz"
    if os.path.exists(out):
        z = dict(np.load(out))
    else:
        z = dict(np.load(args.hashed))
        same_corpus(z, args.others, args.photos, args.hashed)
        z = with_unboxed(z, args.workers)
        np.savez(out, **z)
    rows = Rows(z)
    orig = z["h"][z["edit"] == 0, 0]
    keys = transparent_keys([str(p) for p in z["paths"]], orig)
    report(z, rows, keys, new=(*NEW, NAME))


if __name__ == "__main__":
    main()
