"""Whether anything in the 32x32 grey image that pHash and the descriptor read could refuse the
default's false matches beyond photos: the correlation of its 8x8 and 16x16 block means, of all
its 1,024 pixels, and of its 8x8 blocks leaving out those uniform and alike in both (a shared
box or backdrop), each as one more condition on the default's verdict.

    python benchmarks/beyond_pixels.py HASHED.npz [--workers 2]

HASHED.npz as for benchmarks/beyond_rules.py. The 32x32 images are not in it: the images taking
part in a false match, and the photos, are read again (their copies made as
benchmarks/beyond_hash.py makes them), and their pHashes checked against HASHED.npz.
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool

import numpy as np
from beyond_edits import TRANSPARENT
from beyond_hash import EDITS, _reduced
from beyond_rules import beyond_pairs, verdict
from edits import upright_rgb
from PIL import Image, ImageOps

from phashdb import descriptor, phash

_seen: list[np.ndarray] = []


def _kept(pixels: np.ndarray):
    # read_image's 32x32 image, as descriptor.variants receives it
    _seen.append(pixels)
    return descriptor.variants(pixels)


def pixels_of(source) -> np.ndarray:
    _seen.clear()
    phash.read_image(source)
    return _seen[0]


def image_rows(path: str) -> list[tuple[int, np.ndarray]]:
    """(edit number, 32x32 image) of the original and each copy, as beyond_hash.hash_one."""
    phash.variants = _kept  # in the worker only: the library's own decoding and resizing
    rows = [(0, pixels_of(path))]
    img = _reduced(upright_rgb(path))
    rows += [(k, pixels_of(edit(img))) for k, edit in enumerate(EDITS.values(), start=1)]
    with Image.open(path) as raw:
        if raw.has_transparency_data:
            raw = ImageOps.exif_transpose(raw)
            raw.load()
            start = 1 + len(EDITS)
            rows += [(k, pixels_of(e(raw))) for k, e in enumerate(TRANSPARENT.values(), start)]
    return rows


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ac, bc = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    norm = np.sqrt((ac * ac).sum(1) * (bc * bc).sum(1))
    return np.divide((ac * bc).sum(1), norm, out=np.zeros(len(a)), where=norm > 0)


def _blocks(a: np.ndarray, n: int) -> np.ndarray:
    return a.reshape(len(a), n, 32 // n, n, 32 // n)


def blocks_correlation(n: int):
    return lambda a, b: _corr(_blocks(a, n).mean(axis=(2, 4)).reshape(len(a), -1),
                              _blocks(b, n).mean(axis=(2, 4)).reshape(len(b), -1))  # fmt: skip


def outside_shared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation of the 8x8 block means, leaving out blocks uniform in both and alike."""
    ma, mb = (_blocks(x, 8).mean(axis=(2, 4)).reshape(len(x), -1) for x in (a, b))
    sa, sb = (_blocks(x, 8).std(axis=(2, 4)).reshape(len(x), -1) for x in (a, b))
    shared = (sa < 3) & (sb < 3) & (np.abs(ma - mb) < 6)
    out = np.zeros(len(a))
    for i in np.nonzero((~shared).sum(1) >= 4)[0]:
        keep = ~shared[i]
        out[i] = _corr(ma[i : i + 1, keep], mb[i : i + 1, keep])[0]
    return out


MEASURES = {
    "8x8 blocks": blocks_correlation(8),
    "16x16 blocks": blocks_correlation(16),
    "all 1,024 pixels": blocks_correlation(32),
    "8x8 blocks outside a shared uniform part": outside_shared,
}


def per_variant(pix: np.ndarray, qi, si, measure) -> np.ndarray:
    """measure(query undone to the variant, stored) for each pair and variant: (n, 8)."""
    out = np.zeros((len(qi), 8))
    for v, (_, *how) in enumerate(descriptor.VARIANTS):
        query = np.stack([descriptor._undo(pix[q], *how) for q in qi])
        out[:, v] = measure(query, pix[si])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    z = dict(np.load(args.hashed))
    false, true, _ = beyond_pairs(z)
    keep = lambda f: np.ones(f["d"].shape, bool)  # noqa: E731
    fq, fs = (r[verdict(false, keep)] for r in false["rows"])
    images = np.union1d(z["image"][fq], z["image"][fs])
    images = np.union1d(images, np.nonzero(z["kinds"] == "photo")[0])
    paths = [str(z["paths"][i]) for i in images]
    with Pool(args.workers) as pool:
        done = pool.map(image_rows, paths, chunksize=1)
    row_of = {(int(i), int(e)): r for r, (i, e) in enumerate(zip(z["image"], z["edit"]))}
    pix, have = np.zeros((len(z["edit"]), 32, 32)), np.zeros(len(z["edit"]), bool)
    for i, rows in zip(images, done):
        for e, p in rows:
            r = row_of[(int(i), e)]
            pix[r], have[r] = p, True
            assert descriptor.variants(p)[0].hash == int(z["h"][r, 0]), r
    tq, ts = true["rows"]
    found = verdict(true, keep) & have[tq] & have[ts]
    photo = np.char.startswith(true["group"], "photos")
    print(f"{len(fq)} false matches of the default; {int(found.sum())} copies it finds "
          f"({int((found & photo).sum())} of photos) among the images read again")  # fmt: skip
    print("\n| measure | at least | false left | copies lost | of them photos |")
    print("|---|---|---|---|---|")
    for name, measure in MEASURES.items():
        mf = per_variant(pix, fq, fs, measure)
        mt = per_variant(pix, tq[found], ts[found], measure)
        for at in (0.5, 0.7, 0.9):
            left = verdict(_rows(false, verdict(false, keep)), lambda f, m=mf, at=at: m >= at).sum()
            kept = verdict(_rows(true, found), lambda f, m=mt, at=at: m >= at)
            print(f"| {name} | {at} | {int(left)} | {int((~kept).sum())} | "
                  f"{int((~kept & photo[found]).sum())} |")  # fmt: skip


def _rows(f: dict, mask: np.ndarray) -> dict:
    return {k: v[mask] for k, v in f.items() if k not in ("rows", "group")}


if __name__ == "__main__":
    main()
