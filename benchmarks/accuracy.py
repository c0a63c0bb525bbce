"""How well the index finds edited copies of a photo, and how rarely it confuses distinct photos.

    python benchmarks/accuracy.py [FOLDER ...] [--workers 2] [--max-threshold 16] [--no-copies]
    python benchmarks/accuracy.py --beyond OTHERS PHOTOS [--hashed FILE.npz] [--workers 2]
        [--records FILE.npz] [--candidates]

The photos are scikit-image's bundled ones, or every image under FOLDER (the team's corpus:
shared/photos/build.sh). Each photo gets the TRANSFORMS below; a copy saved lossy (JPEG, WEBP)
or in another format is hashed from its encoded bytes, like an uploaded file; a lossless edit is
hashed as an image (saving it as PNG would give the same pixels). For each threshold t:

- recall: the fraction of copies within t of their own original (per transformation);
- false positives: pairs of distinct originals within t, and copies within t of an original
  other than their own. Mirrors and rotations by 90 degrees are left out of this plain recall:
  a plain pHash does not match them.

Ends with the recommended plain threshold (the largest with no false positive: recall only grows
with the threshold, so that one maximises it). Then the index's default decision (phashdb's
confirm.judge: flips and rotations of each copy, and the second stage up to index.DEFAULT_REACH)
next to plain pHash at the default threshold, per edit, with the false matches among the same
pairs and among every copy against every other photo's copies (about 35 times as many pairs),
and README-ready markdown tables.

With --beyond, the images beyond photos instead (benchmarks/beyond_table.py): overlays,
re-framed and cropped copies and transparent exports, photos and other images apart, in one
run: the plain pHash, the default without keys, and the library's default now with every key
(Index.check's verdicts), with the false matches among >= 10^8 pairs and what each part adds.
With --beyond --candidates, the candidate methods measured for issue 24 instead
(benchmarks/accuracy_beyond.py: sub-window keys, a second global key, ...).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import dataclass
from multiprocessing import Pool

import numpy as np
from edits import TRANSFORMS, upright_rgb

from phashdb import confirm, descriptor, index
from phashdb import phash as hashing
from phashdb.ingest import find_images

SKIMAGE_PHOTOS = [
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "moon.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "page.png",
    "text.png",
]
# Edits a plain pHash is not meant to find: left out of its recall, in the default's.
KNOWN_NEGATIVES = ("mirror", "rotate 90°", "rotate 180°", "rotate 270°")


def find_photos(folders: list[str]) -> list[str]:
    """The photo files under `folders`, or scikit-image's bundled photos when there are none."""
    if folders:
        return find_images(folders)
    import skimage.data

    here = os.path.dirname(skimage.data.__file__)
    return [os.path.join(here, name) for name in SKIMAGE_PHOTOS]


def hash_photo(path: str) -> list[tuple[list[int], list[bytes]]]:
    """The photo's and then each of its TRANSFORMS' variants, in order: 8 hashes, 8 descriptors."""
    img = upright_rgb(path)
    pictures = [hashing.read_image(path)] + [
        hashing.read_image(t(img)) for t in TRANSFORMS.values()
    ]
    return [([v.hash for v in p.variants], [v.descriptor for v in p.variants]) for p in pictures]


def short(path: str) -> str:
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def within(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between uint64 arrays `a` and `b` (broadcast)."""
    return np.bitwise_count(np.bitwise_xor(a, b))


def default_matches(
    hashes, descs, stored, stored_descs, skip, reach=index.DEFAULT_REACH
) -> list[tuple[int, int, int, float]]:
    """Every (query, stored, pHash distance, score) the index's default calls a duplicate:
    queries are (image, variant) hashes and descriptors (as-is first), `stored` as-is ones;
    `skip(query, stored)` masks pairs that are not to be counted (a photo and its own copies)."""
    threshold = index.DEFAULT_THRESHOLD
    names = [v[0] for v in descriptor.VARIANTS]
    out = []
    for lo in range(0, len(hashes), 256):
        d = within(hashes[lo : lo + 256, :, None], stored[None, None, :])  # (q, variant, stored)
        d[:, 0][d[:, 0] > reach] = 99
        d[:, 1:][d[:, 1:] > threshold] = 99
        for q, v, s in zip(*np.nonzero(d < 99)):
            q = q + lo
            if skip(q, s):
                continue
            ok, score = confirm.judge(
                names[v], int(d[q - lo, v, s]), threshold, descs[q][v], stored_descs[s]
            )
            if ok:
                out.append((q, s, int(d[q - lo, v, s]), score))
    return out


@dataclass
class Hashed:
    """The photos hashed with their copies, and the distances every table is made of."""

    photos: list[str]
    variants: np.ndarray  # (n, 1+T, 8): every variant's hash of each photo and copy
    descs: list  # [photo][photo or copy]: its variants' descriptors
    names: list[str]  # the transformations
    originals: np.ndarray
    own: np.ndarray  # (n, transforms): each copy's distance to its original
    pairs: np.ndarray  # distances of distinct originals
    positive: list[int]  # the transformations plain pHash is meant to find
    cross: np.ndarray  # (photo, transform, other photo); its own never counts
    cross_pairs: int

    @property
    def n(self) -> int:
        return len(self.photos)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="folders of photos (default: scikit-image's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-threshold", type=int, default=16)
    parser.add_argument(
        "--no-copies",
        action="store_true",
        help="skip the copies-against-copies negatives (the slow part)",
    )
    parser.add_argument(
        "--beyond",
        action="store_true",
        help="FOLDER is OTHERS PHOTOS: report beyond photos (benchmarks/beyond_table.py)",
    )
    parser.add_argument(
        "--hashed", help="with --beyond: the .npz of hashed copies (made if missing)"
    )
    parser.add_argument(
        "--records",
        help="with --beyond: the .npz of the library's records of the rows (made if missing; "
        "default: beside --hashed)",
    )
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="with --beyond: the candidate methods' report (benchmarks/accuracy_beyond.py)",
    )
    args = parser.parse_args()
    if args.beyond and len(args.folders) != 2:
        parser.error("--beyond takes two folders: OTHERS PHOTOS")
    return args


def hash_all(folders: list[str], workers: int) -> Hashed:
    photos = find_photos(folders)
    with Pool(workers) as pool:
        hashed = pool.map(hash_photo, photos, chunksize=2)
    variants = np.array([[h for h, _ in row] for row in hashed], dtype=np.uint64)  # (n, 1+T, 8)
    descs = [[d for _, d in row] for row in hashed]
    hashes = variants[:, :, 0]
    n, names = len(photos), list(TRANSFORMS)
    originals, copies = hashes[:, 0], hashes[:, 1:]
    own = within(copies, originals[:, None])  # (n, transforms)
    pairs = within(originals[:, None], originals[None, :])[np.triu_indices(n, 1)]
    positive = [i for i, name in enumerate(names) if name not in KNOWN_NEGATIVES]
    # each copy against every original: (photo, transform, other photo); its own never counts
    cross = within(copies[:, :, None], originals[None, None, :])
    cross[np.arange(n), :, np.arange(n)] = 65
    cross_pairs = n * len(names) * (n - 1)
    return Hashed(
        photos, variants, descs, names, originals, own, pairs, positive, cross, cross_pairs
    )


def print_distances(h: Hashed, thresholds: range) -> None:
    """The closest pairs, then plain pHash's recall per transformation."""
    print(
        f"{h.n} photos, {len(h.names)} transformations, {len(h.pairs)} pairs of distinct photos, "
        f"{h.cross_pairs} copy-vs-other-original pairs"
    )
    print(
        f"distinct photos: min distance {h.pairs.min()}, mean {h.pairs.mean():.1f}; "
        f"copies vs other originals: min {h.cross.min()}. Closest of these:"
    )
    for flat in np.argsort(h.cross, axis=None)[:5]:
        i, j, k = np.unravel_index(flat, h.cross.shape)
        print(
            f"  {h.cross[i, j, k]:2d}  {short(h.photos[i])} [{h.names[j]}] ~ {short(h.photos[k])}"
        )
    shown = [t for t in thresholds if t % 2 == 0 or t == thresholds[-1]]
    print("\nplain pHash recall (fraction of copies within t of their original)")
    print(f"{'transformation':24} {'mean':>5} {'max':>4}  " + " ".join(f"t={t:<3}" for t in shown))
    for i, name in enumerate(h.names):
        d = h.own[:, i]
        cells = " ".join(f"{(d <= t).mean():5.3f}" for t in shown)
        print(f"{name:24} {d.mean():5.2f} {d.max():4d}  {cells}")


def print_false_positives(h: Hashed, thresholds: range, corpus: bool) -> dict:
    """Plain pHash's false positives per threshold and the recommended threshold; returns
    the false positives by threshold: (distinct pairs, copies vs other originals)."""
    print(
        "\nplain pHash false positives: pairs within t; per query in a 1M-image index = rate x 1e6"
    )
    print("t   recall  distinct pairs (rate)   copy vs other original (rate)   per query in 1M")
    recall = {t: (h.own[:, h.positive] <= t).mean() for t in thresholds}
    fp = {t: (int((h.pairs <= t).sum()), int((h.cross <= t).sum())) for t in thresholds}
    for t in thresholds:
        a, b = fp[t]
        rate = (a + b) / (len(h.pairs) + h.cross_pairs)
        print(
            f"{t:<3} {recall[t]:6.3f}  {a:6d} ({a / len(h.pairs):.1e})   "
            f"{b:10d} ({b / h.cross_pairs:.1e})          {rate * 1e6:8.2f}"
        )
    # Each hash has exactly 32 one-bits (half the coefficients lie above their median), so
    # distances are even and an odd threshold finds what the even one below it finds.
    best = max((t for t in thresholds if fp[t] == (0, 0) and t % 2 == 0), default=0)
    print(
        f"\nRecommended plain threshold: {best}, the largest with no false positive "
        f"(recall {recall[best]:.1%}); distances are even, so {best + 1} is the same."
    )
    if corpus:
        print(
            "Caveat: shared/photos/build.sh keeps no two photos closer than 14, so its "
            "distinct pairs cannot fall under 14: the copies-vs-other-originals column is the "
            "one that tests the threshold."
        )
    return fp


def variant_of(h: Hashed, q: int) -> str:
    """The name of flat query `q`'s variant: "original" or its transformation."""
    return (["original"] + h.names)[q % (1 + len(h.names))]


def default_stages(h: Hashed) -> dict:
    """What each stage of the index's default finds: label -> (found own copies, false matches)."""
    n, t0 = h.n, index.DEFAULT_THRESHOLD
    flat_v = h.variants.reshape(n * (1 + len(h.names)), 8)
    flat_d = [row for photo in h.descs for row in photo]
    photo_of = np.repeat(np.arange(n), 1 + len(h.names))
    stored_d = [h.descs[i][0][0] for i in range(n)]
    # what each stage adds: the variants alone (as-is reach cut to the threshold), the default,
    # and the default with a shorter reach (14: a cheaper search, see check_10m.py)
    stages = {}
    for label, reach in (("+variants", t0), ("reach 14", 14), ("default", index.DEFAULT_REACH)):
        found = default_matches(flat_v, flat_d, h.originals, stored_d, lambda q, s: False, reach)
        mine = np.zeros((n, 1 + len(h.names)), dtype=bool)
        false = []
        for q, s, d, score in found:
            if photo_of[q] == s:
                mine[s, q % (1 + len(h.names))] = True
            else:
                false.append((q, s, d, score))
        stages[label] = (mine, false)
    return stages


def print_default(h: Hashed, stages: dict, fp: dict) -> list[tuple]:
    """The default next to plain pHash, per edit; returns its rows (name, plain, variants,
    default, reach 14)."""
    t0 = index.DEFAULT_THRESHOLD
    false_matches = stages["default"][1]
    print(
        f"\nthe default: as-is up to pHash distance {index.DEFAULT_REACH} and flips/rotations "
        f"up to {t0}, confirmed by the descriptor ({descriptor.DESCRIPTOR_VERSION})"
    )
    print(
        f"{'transformation':24} {'plain t=' + str(t0):>10} " + " ".join(f"{k:>10}" for k in stages)
    )
    rows = []
    for i, name in enumerate(h.names):
        plain = (h.own[:, i] <= t0).mean()
        var, r14, new = (stages[k][0][:, i + 1].mean() for k in stages)
        rows.append((name, plain, var, new, r14))
        print(f"{name:24} {plain:10.3f} {var:10.3f} {r14:10.3f} {new:10.3f}")
    print(
        f"{'false matches':24} {fp[t0][0] * 2 + fp[t0][1]:10d} "
        + " ".join(f"{len(stages[k][1]):10d}" for k in stages)
    )
    allp, allv, alln, all14 = (np.mean([r[c] for r in rows]) for c in (1, 2, 3, 4))
    print(f"{'all edits':24} {allp:10.3f} {allv:10.3f} {all14:10.3f} {alln:10.3f}")
    print(
        f"false matches among the {len(h.pairs) * 2 + h.cross_pairs:,} (query, other photo) pairs: "
        f"{len(false_matches)}"
    )
    photo_of = np.repeat(np.arange(h.n), 1 + len(h.names))
    for q, s, d, score in false_matches[:5]:
        print(
            f"  {short(h.photos[photo_of[q]])} [{variant_of(h, q)}] "
            f"~ {short(h.photos[s])}: distance {d}, score {score}"
        )
    return rows


def print_copies(h: Hashed) -> None:
    """The false matches with every copy stored and every copy queried (different photos)."""
    t0 = index.DEFAULT_THRESHOLD
    flat_v = h.variants.reshape(h.n * (1 + len(h.names)), 8)
    flat_d = [row for photo in h.descs for row in photo]
    photo_of = np.repeat(np.arange(h.n), 1 + len(h.names))
    fm = default_matches(
        flat_v,
        flat_d,
        flat_v[:, 0],
        [d[0] for d in flat_d],
        lambda q, s: photo_of[q] == photo_of[s],
    )
    total = len(flat_v) * (len(flat_v) - (1 + len(h.names)))
    print(f"false matches among {total:,} (copy, another photo's copy) pairs: {len(fm)}")
    edit_pairs = Counter(tuple(variant_of(h, x) for x in (q, s)) for q, s, _, _ in fm)
    plain = sum(d <= t0 for _, _, d, _ in fm)
    print(
        f"  of which within the plain threshold {t0} (as plain pHash says): {plain}; "
        f"by edits: {dict(edit_pairs.most_common(6))}"
    )
    for q, s, d, score in fm[:5]:
        print(
            f"  {short(h.photos[photo_of[q]])} [{variant_of(h, q)}] ~ "
            f"{short(h.photos[photo_of[s]])} [{variant_of(h, s)}]: "
            f"distance {d}, score {score}"
        )


def print_markdown(rows: list[tuple]) -> None:
    t0 = index.DEFAULT_THRESHOLD
    allp, allv, alln, all14 = (np.mean([r[c] for r in rows]) for c in (1, 2, 3, 4))
    print()
    print(
        f"| edit | plain pHash t={t0} | + flips and rotations | reach 14 | "
        "default (+ second stage) |"
    )
    print("|---|---|---|---|---|")
    for name, plain, var, new, r14 in rows:
        print(f"| {name} | {plain:.1%} | {var:.1%} | {r14:.1%} | {new:.1%} |")
    print(f"| **all edits** | **{allp:.1%}** | **{allv:.1%}** | **{all14:.1%}** | **{alln:.1%}** |")


def main() -> None:
    args = parse_args()
    if args.beyond and args.candidates:
        from accuracy_beyond import main as candidates

        return candidates(*args.folders, args.hashed, args.workers)
    if args.beyond:
        from beyond_table import main as beyond

        return beyond(*args.folders, args.hashed, args.workers, args.records)
    h = hash_all(args.folders, args.workers)
    thresholds = range(args.max_threshold + 1)
    print_distances(h, thresholds)
    fp = print_false_positives(h, thresholds, bool(args.folders))
    rows = print_default(h, default_stages(h), fp)
    if not args.no_copies:
        print_copies(h)
    print_markdown(rows)


if __name__ == "__main__":
    main()
