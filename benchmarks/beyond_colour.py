"""Whether a stored value that sees more than pHash's 32x32 grey image (a descriptor layout v4)
could refuse the default's false matches beyond photos without losing copies: colour (the Cb/Cr
means of an 8x8 or 4x4 grid, compared only where both images have colour, so that a greyscale
copy or a grey image is never refused for it) and finer detail (the mean gradient of a 128x128
grey image in a 16x16 grid, by correlation), each as one more condition on the default's verdict.

    python benchmarks/beyond_colour.py HASHED.npz --values VALUES.npz [--workers 2]

HASHED.npz as for benchmarks/beyond_rules.py. The images taking part in a false match, and the
photos, are read again as benchmarks/beyond_pixels.py reads them, with JPEGs decoded in draft
mode "YCbCr" instead of "L" (their pHashes, checked against HASHED.npz, show the Y is the same);
the values are kept in VALUES.npz (made if missing) so the rules can be re-measured.
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool

import numpy as np
from beyond_pixels import _rows
from beyond_rules import beyond_pairs, verdict
from PIL import Image

from phashdb import descriptor, phash

_seen: list[tuple] = []
_picture = phash._picture


def values_of(img: Image.Image, grey: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(chroma_of, detail_of), both upright as the pHash's image."""
    orientation = img.getexif().get(0x0112, 1)
    if orientation in phash._TRANSPOSE:
        img = img.transpose(phash._TRANSPOSE[orientation])
        grey = grey.transpose(phash._TRANSPOSE[orientation])
    return chroma_of(img), detail_of(grey)


def chroma_of(img: Image.Image) -> np.ndarray:
    """Cb, Cr minus 128 of an 8x8 grid, (2, 8, 8); transparency on white."""
    if img.mode != "YCbCr":
        if img.has_transparency_data:
            rgba = (img.copy() if img.mode == "P" else img).convert("RGBA")
            img = Image.new("RGB", rgba.size, phash.BACKGROUND)
            img.paste(rgba, mask=rgba.getchannel("A"))
        img = img.convert("RGB").convert("YCbCr")
    small = np.asarray(img.resize((8, 8), Image.Resampling.BOX), dtype=np.float64)
    return np.moveaxis(small[:, :, 1:] - 128, -1, 0)


def detail_of(grey: Image.Image) -> np.ndarray:
    """The mean absolute steps of the 128x128 grey image in four directions in a 16x16 grid,
    (4, 16, 16): along a row, along a column, and the two diagonals (a flip swaps the
    diagonals, a transposition the first two)."""
    g = np.asarray(grey.resize((128, 128), Image.Resampling.LANCZOS), dtype=np.float64)
    steps = np.stack([np.abs(g[:-1, 1:] - g[:-1, :-1]), np.abs(g[1:, :-1] - g[:-1, :-1]),
                      np.abs(g[1:, 1:] - g[:-1, :-1]), np.abs(g[1:, :-1] - g[:-1, 1:])])  # fmt: skip
    steps = np.pad(steps, ((0, 0), (0, 1), (0, 1)), mode="edge")
    return steps.reshape(4, 16, 8, 16, 8).mean(axis=(2, 4))


def _kept(img, size, grey, want):
    pic = _picture(img, size, grey, want)
    _seen.append((pic.hash, *values_of(img, grey)))
    return pic


def read(source) -> tuple:
    _seen.clear()
    phash.read_image(source)
    return _seen[0]


def image_rows(path: str) -> list[tuple[int, tuple]]:
    """(edit number, (pHash, chroma, detail)) of the original and each copy."""
    import beyond_pixels

    phash._picture = _kept  # in the worker only: the library's decoding, in colour
    phash.DRAFT_MODE = "YCbCr"
    beyond_pixels.pixels_of = read
    return beyond_pixels.image_rows(path)


def read_all(z, images, workers: int) -> dict:
    paths = [str(z["paths"][i]) for i in images]
    with Pool(workers) as pool:
        done = pool.map(image_rows, paths, chunksize=1)
    row_of = {(int(i), int(e)): r for r, (i, e) in enumerate(zip(z["image"], z["edit"]))}
    n = len(z["edit"])
    out = {"have": np.zeros(n, bool), "chroma": np.zeros((n, 2, 8, 8), np.float32),
           "detail": np.zeros((n, 4, 16, 16), np.float32), "same_hash": np.zeros(n, bool)}  # fmt: skip
    for i, rows in zip(images, done):
        for e, (h, chroma, detail) in rows:
            r = row_of[(int(i), e)]
            out["have"][r], out["chroma"][r], out["detail"][r] = True, chroma, detail
            out["same_hash"][r] = h == int(z["h"][r, 0])
    return out


def _undo(a: np.ndarray, transpose: bool, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    a = np.swapaxes(a, -1, -2) if transpose else a
    a = a[..., :: -1 if flip_rows else 1, :: -1 if flip_cols else 1]
    if a.shape[1] != 4:  # chroma
        return a
    order = [1, 0] if transpose else [0, 1]
    return a[:, order + ([3, 2] if flip_rows != flip_cols else [2, 3])]


def per_variant(values: np.ndarray, qi, si, measure) -> np.ndarray:
    """measure(query's values undone to the variant, stored values) per pair and variant."""
    out = np.zeros((len(qi), 8))
    for v, (_, *how) in enumerate(descriptor.VARIANTS):
        out[:, v] = measure(_undo(values[qi], *how), values[si])
    return out


def colourful(chroma: np.ndarray) -> np.ndarray:
    """Each image's mean chroma (the length of (Cb, Cr) - 128 over the cells)."""
    return np.hypot(chroma[:, 0], chroma[:, 1]).reshape(len(chroma), -1).mean(axis=1)


def chroma_apart(cells: int, at_least: float, how: str):
    """The chroma grids' difference (mean or largest over cells of |dCb| + |dCr|) where both
    images have colour (colourful >= at_least); 0 where either has none."""

    def measure(a, b):
        if cells == 4:
            a, b = (x.reshape(len(x), 2, 4, 2, 4, 2).mean(axis=(3, 5)) for x in (a, b))
        d = np.abs(a - b).sum(axis=1).reshape(len(a), -1)
        d = d.mean(axis=1) if how == "mean" else np.percentile(d, 90, axis=1)
        both = (colourful(a) >= at_least) & (colourful(b) >= at_least)
        return np.where(both, d, 0.0)

    return measure


def coloured_cells(at_least: float):
    """The chroma grids' mean |dCb| + |dCr| over the cells where either image has colour
    (chroma at least 6), where both images have colour (colourful >= at_least); else 0."""

    def measure(a, b):
        d = np.abs(a - b).sum(axis=1).reshape(len(a), -1)
        cells = np.maximum(*(np.hypot(x[:, 0], x[:, 1]).reshape(len(x), -1) for x in (a, b))) >= 6
        mean = np.divide((d * cells).sum(1), cells.sum(1), out=np.zeros(len(a)),
                         where=cells.any(1))  # fmt: skip
        both = (colourful(a) >= at_least) & (colourful(b) >= at_least)
        return np.where(both, mean, 0.0)

    return measure


def correlation(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    ac, bc = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    norm = np.sqrt((ac * ac).sum(1) * (bc * bc).sum(1))
    return np.divide((ac * bc).sum(1), norm, out=np.zeros(len(a)), where=norm > 0)


def detail_total(a, b):
    return correlation(a.sum(axis=1), b.sum(axis=1))


# (label, value, measure, [(limit label, condition on the measure)])
_AT_MOST = [(f"<= {t}", lambda m, t=t: m <= t) for t in (8, 12, 16, 24, 32)]
_AT_LEAST = [(f">= {t}", lambda m, t=t: m >= t) for t in (0.3, 0.5, 0.7)]
CANDIDATES = [
    *[(f"chroma 8x8 {how}, both colourful >= {c}", "chroma", chroma_apart(8, c, how), _AT_MOST)
      for how in ("mean", "p90") for c in (2, 4)],
    *[(f"chroma 4x4 {how}, both colourful >= {c}", "chroma", chroma_apart(4, c, how), _AT_MOST)
      for how in ("mean", "p90") for c in (2, 4)],
    *[(f"chroma 8x8 of coloured cells, both colourful >= {c}", "chroma", coloured_cells(c),
       _AT_MOST) for c in (0.5, 2)],
    ("detail 16x16 of 128x128, correlation", "detail", detail_total, _AT_LEAST),
    ("detail 16x16 x 4 directions, correlation", "detail", correlation, _AT_LEAST),
]  # fmt: skip
# Two conditions at once: (candidate label, limit label) each.
_DETAIL = "detail 16x16 x 4 directions, correlation"
COMBINED = [
    (("chroma 8x8 mean, both colourful >= 2", "<= 16"), (_DETAIL, ">= 0.3")),
    (("chroma 8x8 mean, both colourful >= 2", "<= 16"), (_DETAIL, ">= 0.5")),
    (("chroma 8x8 of coloured cells, both colourful >= 0.5", "<= 16"), (_DETAIL, ">= 0.3")),
    (("chroma 8x8 of coloured cells, both colourful >= 0.5", "<= 12"), (_DETAIL, ">= 0.5")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed")
    parser.add_argument("--values", required=True, help="the .npz of values read (made if missing)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    z = dict(np.load(args.hashed))
    false, true, pairs = beyond_pairs(z)
    keep = lambda f: np.ones(f["d"].shape, bool)  # noqa: E731
    fq, fs = (r[verdict(false, keep)] for r in false["rows"])
    try:
        v = dict(np.load(args.values))
    except FileNotFoundError:
        images = np.union1d(z["image"][fq], z["image"][fs])
        images = np.union1d(images, np.nonzero(z["kinds"] == "photo")[0])
        v = read_all(z, images, args.workers)
        np.savez(args.values, **v)
    have = v["have"]
    print(f"{pairs:,} pairs; rows read again {int(have.sum())}, of them pHash as stored "
          f"(JPEGs decoded in YCbCr): {int(v['same_hash'][have].sum())}")  # fmt: skip
    tq, ts = true["rows"]
    found = verdict(true, keep) & have[tq] & have[ts]
    group = true["group"][found]
    columns = sorted(set(group))
    print(
        f"{len(fq)} false matches of the default; {int(found.sum())} copies it finds among "
        "the images read again: " + ", ".join(f"{c} {int((group == c).sum())}" for c in columns)
    )
    print("\n| value | limit | false left | copies lost: " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    conditions = {}
    for label, value, measure, limits in CANDIDATES:
        mf = per_variant(v[value], fq, fs, measure)
        mt = per_variant(v[value], tq[found], ts[found], measure)
        for limit, cond in limits:
            conditions[label, limit] = cond(mf), cond(mt)
            _line(f"{label} | {limit}", false, true, keep, found, *conditions[label, limit])
    for one, two in COMBINED:
        both = [conditions[one][k] & conditions[two][k] for k in (0, 1)]
        _line(f"{one[0]} {one[1]} and {two[0]} | {two[1]}", false, true, keep, found, *both)


def _line(label: str, false, true, keep, found, cf, ct) -> None:
    group = true["group"][found]
    left = verdict(_rows(false, verdict(false, keep)), lambda f: cf).sum()
    kept = verdict(_rows(true, found), lambda f: ct)
    lost = [int((~kept & (group == c)).sum()) for c in sorted(set(group))]
    print(f"| {label} | {int(left)} | " + " | ".join(map(str, lost)) + " |")


if __name__ == "__main__":
    main()
