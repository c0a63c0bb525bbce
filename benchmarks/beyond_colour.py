"""Whether a stored value that sees more than pHash's 32x32 grey image (a descriptor layout v4)
could refuse the default's false matches beyond photos without losing copies: colour (the Cb/Cr
means of an 8x8 or 4x4 grid, compared only where both images have colour, so that a greyscale
copy or a grey image is never refused for it) and finer detail (the mean steps of a 128x128
grey image, summed or in four directions, in a 16x16 grid, by correlation), each alone and in
pairs as one more condition on the default's verdict.

    python benchmarks/beyond_colour.py HASHED.npz --values VALUES.npz [--workers 2]
        [--photos PHOTOS --photos-hashed FILE.npz --photo-values FILE.npz]

HASHED.npz as for benchmarks/beyond_rules.py. The images taking part in a false match, and the
photos, are read again as benchmarks/beyond_pixels.py reads them, with JPEGs decoded in draft
mode "YCbCr" instead of "L" (their pHashes, checked against HASHED.npz, show the Y is the same);
the values are kept in VALUES.npz (made if missing) so the rules can be re-measured. With
--photos, the copies lost among the 27 edits of benchmarks/accuracy.py's photo benchmark too
(FILE.npz of the hashes as for benchmarks/beyond_rules.py; the values read again likewise).
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


def photo_rows(path: str) -> list[tuple]:
    """(pHash, chroma, detail) of the photo and of each of benchmarks/accuracy.py's 27 edits."""
    from edits import TRANSFORMS, upright_rgb

    phash._picture = _kept  # in the worker only, as image_rows
    phash.DRAFT_MODE = "YCbCr"
    img = upright_rgb(path)
    return [read(path)] + [read(t(img)) for t in TRANSFORMS.values()]


def photo_copies(folder: str, hashed: str, values: str, workers: int) -> tuple[dict, dict]:
    """(features of each of the 27 edits of every photo against its original, as
    beyond_rules.photo_features gives them with their "rows"; the values of those rows)."""
    from accuracy import find_photos
    from beyond_rules import photo_features

    f = photo_features(folder, hashed, workers)
    try:
        v = dict(np.load(values))
    except FileNotFoundError:
        with Pool(workers) as pool:
            done = pool.map(photo_rows, find_photos([folder]), chunksize=1)
        rows = [r for photo in done for r in photo]
        v = {"h": np.array([r[0] for r in rows], np.uint64),
             "chroma": np.array([r[1] for r in rows], np.float32),
             "detail": np.array([r[2] for r in rows], np.float32)}  # fmt: skip
        np.savez(values, **v)
    n, per = np.load(hashed)["h"].shape[:2]
    if not np.array_equal(v["h"], np.load(hashed)["h"][:, :, 0].ravel()):
        raise SystemExit(f"{values}: the pHashes read differ from {hashed}'s")
    q = np.arange(n * per).reshape(n, per)
    f["rows"] = (q[:, 1:].ravel(), np.repeat(q[:, 0], per - 1))
    return f, v


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


def conditions(v: dict, qi, si) -> dict:
    """Each candidate's condition (and each pair of them, COMBINED) per pair and variant of the
    rows `qi` (queries) and `si` (stored), keyed by (label, limit)."""
    out = {}
    for label, value, measure, limits in CANDIDATES:
        m = per_variant(v[value], qi, si, measure)
        out.update({(label, limit): cond(m) for limit, cond in limits})
    for one, two in COMBINED:
        out[f"{one[0]} {one[1]} and {two[0]}", two[1]] = out[one] & out[two]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed")
    parser.add_argument("--values", required=True, help="the .npz of values read (made if missing)")
    parser.add_argument("--photos", help="the photo folder: its 27-edit benchmark too")
    parser.add_argument("--photos-hashed", help="with --photos: as for beyond_rules.py")
    parser.add_argument("--photo-values", help="with --photos: its values' .npz (made if missing)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.photos and not (args.photos_hashed and args.photo_values):
        parser.error("--photos needs --photos-hashed FILE.npz and --photo-values FILE.npz")
    z = dict(np.load(args.hashed))
    false, true, pairs = beyond_pairs(z)
    fq, fs = (r[verdict(false, _KEEP)] for r in false["rows"])
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
    found = verdict(true, _KEEP) & have[tq] & have[ts]
    group = true["group"][found]
    columns = sorted(set(group))
    print(
        f"{len(fq)} false matches of the default; {int(found.sum())} copies it finds among "
        "the images read again: " + ", ".join(f"{c} {int((group == c).sum())}" for c in columns)
    )
    sets = [(_rows(false, verdict(false, _KEEP)), conditions(v, fq, fs), None),
            (_rows(true, found), conditions(v, tq[found], ts[found]), group)]  # fmt: skip
    if args.photos:
        f, pv = photo_copies(args.photos, args.photos_hashed, args.photo_values, args.workers)
        pq, ps = f["rows"]
        ok = verdict(f, _KEEP)
        print(f"27-edit photos: the default finds {int(ok.sum())} of {len(ok)}")
        sets.append((_rows(f, ok), conditions(pv, pq[ok], ps[ok]), np.full(int(ok.sum()), "")))
    _table(sets, columns, bool(args.photos))


def _table(sets: list, columns: list, photos: bool) -> None:
    """Per condition: the false matches left (the first set), the copies lost (the others)."""
    print("\n| value | limit | false left | copies lost: " + " | ".join(columns)
          + (" | 27-edit photos" if photos else "") + " |")  # fmt: skip
    print("|---|---|---|" + "---|" * (len(columns) + photos))
    (false, false_conds, _), *copies = sets
    for key in false_conds:
        counts = [int(verdict(false, lambda _, c=false_conds[key]: c).sum())]
        for feats, conds, groups in copies:
            lost = ~verdict(feats, lambda _, c=conds[key]: c)
            counts += [int((lost & (groups == g)).sum()) for g in sorted(set(groups))]
        print(f"| {key[0]} | {key[1]} | " + " | ".join(map(str, counts)) + " |")


_KEEP = lambda f: np.ones(f["d"].shape, bool)  # noqa: E731


if __name__ == "__main__":
    main()
