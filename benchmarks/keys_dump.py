"""Every image's hash, stored descriptor (variants and keys) and each key function's answer, one
line a file, to compare two phashdb trees byte for byte (`cmp` the two outputs).

    python benchmarks/keys_dump.py PACKAGE OUT [--numpy] FOLDER...

PACKAGE is `phashdb` or an importable copy of another tree (its imports are relative). Beside
phash.read_image's hash and descriptor, each line holds unbox.find_box's box on the 64-pixel
reduction and the unboxed, backdrop and trimmed keys (None included) of the greyscale image and
of it turned 90 degrees. --numpy looks for boxes without phashdb._regions (as the MapReduce
tasks' zip does).
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
from PIL import Image


def key(v) -> str:
    return repr(None if v is None else (v.name, v.hash, v.descriptor.hex()))


def line(path: str, m: dict) -> str:
    try:
        pic = m["phash"].read_image(path)
    except Exception as e:  # the same refusal is part of the same answer
        return f"{path}\tERR {type(e).__name__} {e}"
    row = [path, hex(pic.hash), pic.descriptor.hex()]
    img = Image.open(path)
    img.draft("L", (512, 512))
    img.load()
    grey = m["phash"]._greyscale_in_strips(img, path)
    for g in (grey, grey.transpose(Image.Transpose.ROTATE_90)):
        small = g.resize((min(64, g.width), min(64, g.height)), Image.Resampling.BOX)
        row.append(repr(m["unbox"].find_box(np.asarray(small, dtype=np.int16))))
        row.append(key(m["unbox"].unboxed_variant(g)))
        row.append(key(m["backdrop"].backdrop_variant(g)))
        row.append(key(m["trim"].trimmed_variant(g)))
    return "\t".join(row)


def main() -> None:
    package, out, *rest = sys.argv[1:]
    m = {
        n: importlib.import_module(f"{package}.{n}") for n in ("phash", "unbox", "backdrop", "trim")
    }
    if "--numpy" in rest:
        m["unbox"]._regions = None
    with open(out, "w") as f:
        for folder in (a for a in rest if a != "--numpy"):
            for dirpath, _, names in sorted(os.walk(folder)):
                for name in sorted(names):
                    f.write(line(os.path.join(dirpath, name), m) + "\n")


if __name__ == "__main__":
    main()
