"""Hash a corpus and its edited copies once, for benchmarks/accuracy.py --beyond: every
original and copy as phashdb reads it (the 8 variants' pHashes and descriptors) plus the
sub-window keys of benchmarks/beyond_keys.py. Kept in an .npz so the analysis can be re-run.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from multiprocessing import Pool

import numpy as np
from beyond_edits import OVERLAYS, REFRAMES, TRANSPARENT
from beyond_keys import NAMES as WINDOW_NAMES
from beyond_keys import grey_of, window_keys
from edits import TRANSFORMS, upright_rgb
from PIL import Image, ImageOps

from phashdb import descriptor
from phashdb import phash as hashing
from phashdb.ingest import find_images

# A few of the earlier edits (benchmarks/accuracy.py measures them all on photos): their copies
# join the pairs of distinct images.
EARLIER = ("jpeg q70", "resize 50%", "crop 10%", "greyscale", "rotate 3°", "mirror + jpeg q70")
EDITS = {**{n: TRANSFORMS[n] for n in EARLIER}, **OVERLAYS, **REFRAMES}
EDIT_NAMES = ("original", *EDITS, *TRANSPARENT)
KIND_OF_EDIT = {
    **dict.fromkeys(EARLIER, "earlier"),
    **dict.fromkeys(OVERLAYS, "overlay"),
    **dict.fromkeys(REFRAMES, "re-framed"),
    **dict.fromkeys(TRANSPARENT, "transparent"),
}


def corpus(photos: str, others: str) -> list[tuple[str, str]]:
    """(path, kind) of every image: kind "photo" for the photos, else the folder under `others`
    (artwork, clipart, screenshot, icon, emoji) as benchmarks/corpus_beyond_photos.sh lays it."""
    out = [(p, "photo") for p in find_images([photos])]
    for p in find_images([others]):
        out.append((p, os.path.relpath(p, others).split(os.sep)[0]))
    return out


# Copies are made from the image reduced to this size on its longer side (copies circulate
# smaller than their source; a resize moves a pHash little: "resize 50%" is found 100%), which
# keeps the run to minutes on a shared machine.
COPY_SIDE = 640
# The query's other keys (Picture.keys), in this order.
KEY_NAMES = ("backdrop", "trimmed")


def _row(source) -> tuple:
    pic = hashing.read_image(source)
    h = np.array([v.hash for v in pic.variants], np.uint64)
    d = np.frombuffer(b"".join(v.descriptor for v in pic.variants), np.uint8).reshape(8, -1)
    wh, wd, wv = window_keys(grey_of(source))
    keys = {k.name: k for k in pic.keys}
    kh = np.array([keys[n].hash if n in keys else 0 for n in KEY_NAMES], np.uint64)
    kd = np.zeros((len(KEY_NAMES), descriptor.SIZE), np.uint8)
    for k, n in enumerate(KEY_NAMES):
        if n in keys:
            kd[k] = np.frombuffer(keys[n].descriptor, np.uint8)
    return h, d, wh, wd, wv, kh, kd, np.array([n in keys for n in KEY_NAMES])


def _reduced(img: Image.Image) -> Image.Image:
    if max(img.size) <= COPY_SIDE:
        return img
    f = COPY_SIDE / max(img.size)
    return img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.LANCZOS)


def hash_one(path: str, row=_row) -> list[tuple[int, tuple]]:
    """(edit number in EDIT_NAMES, `row` of it) for the original and each edit that applies."""
    rows = [(0, row(path))]
    img = _reduced(upright_rgb(path))
    for k, edit in enumerate(EDITS.values(), start=1):
        rows.append((k, row(edit(img))))
    with Image.open(path) as raw:
        if raw.has_transparency_data:
            raw = ImageOps.exif_transpose(raw)
            raw.load()
            for k, edit in enumerate(TRANSPARENT.values(), start=1 + len(EDITS)):
                rows.append((k, row(edit(raw))))
    return rows


def hash_corpus(images: list[tuple[str, str]], out: str, workers: int) -> None:
    """Hash `images` and their copies into the .npz file `out`."""
    with Pool(workers) as pool:
        done = pool.map(hash_one, [p for p, _ in images], chunksize=1)
    cols = {k: [] for k in ("image", "edit", "h", "d", "wh", "wd", "wv", "kh", "kd", "kv")}
    for i, rows in enumerate(done):
        for k, row in rows:
            for name, v in zip(cols, (i, k, *row)):
                cols[name].append(v)
    np.savez(
        out,
        paths=np.array([p for p, _ in images]),
        kinds=np.array([k for _, k in images]),
        edit_names=np.array(EDIT_NAMES),
        window_names=np.array(WINDOW_NAMES),
        key_names=np.array(KEY_NAMES),
        descriptor_version=descriptor.DESCRIPTOR_VERSION,
        **{k: np.array(v) for k, v in cols.items()},
    )


def same_corpus(z, others: str, photos: str, name: str) -> None:
    """Stop unless the rows of `z` (the .npz file `name`) are of the images of `others` and
    `photos`: rows made again from other images would be paired with the wrong ones."""
    if [str(p) for p in z["paths"]] != [p for p, _ in corpus(photos, others)]:
        raise SystemExit(f"{name}: its images are not those of {others} and {photos}")


def again(z, row, workers: int) -> list:
    """`row` of every row of `z` (hash_corpus's arrays), in its order: each original and its
    copies made again as hash_one makes them (`row` a module-level function of a source)."""
    at = {(int(i), int(e)): r for r, (i, e) in enumerate(zip(z["image"], z["edit"]))}
    out = [None] * len(at)
    paths = [str(p) for p in z["paths"]]
    with Pool(workers) as pool:
        done = pool.imap(partial(hash_one, row=row), paths, chunksize=1)
        for i, rows in enumerate(done):
            for e, value in rows:
                out[at[(i, e)]] = value
            if (i + 1) % 50 == 0:
                print(f"  {i + 1} of {len(paths)} images read again", file=sys.stderr)
    return out
