"""Local features with a geometric check as a confirmation of the default's matches beyond
photos (issue 24): ORB and AKAZE keypoints (OpenCV) of both images at a reduced size, matched
with the ratio test, a similarity fitted by RANSAC (cv2.estimateAffinePartial2D) and its inliers
counted, for every false match the default makes among the >= 10^8 pairs of distinct images of
benchmarks/accuracy.py --beyond and for every copy it finds of its own original.

    python benchmarks/beyond_local.py HASHED.npz --out RESULTS.npz [--workers 2]
        [--methods "ORB 256" ...] [--points 500] [--min-side 0] [--show "ORB 256" 10 3]

HASHED.npz as for benchmarks/beyond_rules.py: its images are read again, each copy made as
benchmarks/beyond_hash.py makes it (a JPEG copy decoded from its bytes, as uploaded), seen as
phashdb sees it (upright, transparency on white, grey). RESULTS.npz keeps every pair's counts and
the costs (made if missing; the images' pass in RESULTS.npz.part), so the tables can be
printed again. A pair the default matched by a
reflection (mirrored, flipped, transposed, transverse) is matched with the query mirrored: the
features follow a rotation, not a reflection. Needs OpenCV, not a dependency of phashdb:
pip install "opencv-python-headless<5" (OpenCV 5 moved AKAZE to opencv-contrib). Nothing here
is wired into the library.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections import Counter
from multiprocessing import Pool

import numpy as np
from beyond_hash import hash_one
from beyond_keys import grey_of
from beyond_rules import beyond_pairs, verdict

from phashdb import descriptor

METHODS = ("ORB 256", "ORB 512", "AKAZE 256", "AKAZE 512")
# Keypoints kept an image, the strongest first: what a stored set would hold.
MAX_POINTS = 500
RATIO = 0.8  # Lowe's ratio test
CELLS = 4  # inliers' spread: the cells of a 4x4 grid they fall in, the fewer of both images
THRESHOLDS = (4, 6, 8, 10, 12, 15, 20, 30)
SPREADS = (0, 3, 4, 6, 8)
POINT_BYTES = 4  # a stored keypoint's x and y, 16 bits each, beside its descriptor
REFLECTS = np.array([(t + r + c) % 2 == 1 for _, t, r, c in descriptor.VARIANTS])
_ALL = lambda f: np.ones(f["d"].shape, bool)  # noqa: E731

_feats: dict = {}  # row -> its features, for the false pairs (inherited by forked workers)
_false: tuple = ()


def _detector(method: str):
    import cv2

    kind, side = method.split()
    det = cv2.ORB_create(nfeatures=MAX_POINTS) if kind == "ORB" else cv2.AKAZE_create()
    return det, int(side)


def points(det, grey: np.ndarray, side: int) -> tuple:
    """(xy (n, 2), descriptors (n, D), (width, height)) of `grey` scaled to `side` pixels on its
    longer side (up or down), the MAX_POINTS strongest."""
    import cv2

    h, w = grey.shape
    f = side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    img = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    kps, desc = det.detectAndCompute(img, None)
    if desc is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 1), np.uint8), size
    order = np.argsort([-k.response for k in kps], kind="stable")[:MAX_POINTS]
    return np.array([kps[i].pt for i in order], np.float32).reshape(-1, 2), desc[order], size


def _cells(xy: np.ndarray, size: tuple) -> int:
    cx = np.minimum(CELLS - 1, (xy[:, 0] * CELLS / size[0]).astype(int))
    cy = np.minimum(CELLS - 1, (xy[:, 1] * CELLS / size[1]).astype(int))
    return len(set(zip(cx.tolist(), cy.tolist())))


def confirm(q: tuple, s: tuple, side: int) -> tuple[int, int, int]:
    """(matches passing the ratio test, RANSAC inliers of a similarity, cells they cover) of
    the query's points `q` against the stored image's `s`."""
    import cv2

    (qxy, qd, qsize), (sxy, sd, ssize) = q, s
    if len(qd) < 2 or len(sd) < 2:
        return 0, 0, 0
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(qd, sd, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 3:
        return len(good), 0, 0
    src = qxy[[g.queryIdx for g in good]]
    dst = sxy[[g.trainIdx for g in good]]
    model, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=side / 128
    )
    if model is None:
        return len(good), 0, 0
    keep = mask.ravel() == 1
    return len(good), int(keep.sum()), min(_cells(src[keep], qsize), _cells(dst[keep], ssize))


def pair_counts(q: dict, s: dict, mirror: bool, asis: bool, methods) -> tuple[np.ndarray, list]:
    """(counts (methods, 3), CPU seconds per method) of a pair: the better orientation asked."""
    out, cpu = np.zeros((len(methods), 3), np.int32), []
    for k, m in enumerate(methods):
        t = time.process_time()
        tries = [("as-is", m)] * bool(asis) + [("mirrored", m)] * bool(mirror)
        got = [confirm(q[o], s["as-is", m], int(m.split()[1])) for o in tries]
        out[k] = max(got, key=lambda c: (c[1], c[2]))
        cpu.append(time.process_time() - t)
    return out, cpu


def image_task(task: tuple) -> tuple:
    """One image's rows: the features asked (as-is, and mirrored for a query matched by a
    reflection), its copies confirmed against its original, the features the false pairs need,
    and each row's costs (decoding; per method, describing and the points kept)."""
    import cv2

    cv2.setNumThreads(1)  # one process, one thread: the cost of an image
    i, path, mirrored, pairs, kept, methods = task
    dets = {m: _detector(m) for m in methods}
    count = iter(range(1 << 30))

    def row(source):
        e = next(count)
        if e not in mirrored:
            return None
        t = time.process_time()
        grey = np.asarray(grey_of(source))
        out = {"cost": [time.process_time() - t]}
        for m, (det, side) in dets.items():
            t = time.process_time()
            out["as-is", m] = points(det, grey, side)
            out["cost"] += [time.process_time() - t, len(out["as-is", m][0])]
            if mirrored[e]:
                out["mirrored", m] = points(det, np.ascontiguousarray(grey[:, ::-1]), side)
        return out

    rows = dict(hash_one(path, row=row))
    true = [(p, *pair_counts(rows[e], rows[0], mi, asis, methods)) for p, e, mi, asis in pairs]
    costs = [(e, r.pop("cost")) for e, r in rows.items() if r is not None]
    return i, true, {e: rows[e] for e in kept}, costs


def _false_chunk(idx: np.ndarray) -> list:
    q, s, mirror, asis, methods = _false
    return [(i, *pair_counts(_feats[q[i]], _feats[s[i]], mirror[i], asis[i], methods))
            for i in idx]  # fmt: skip


def _tasks(z, false: tuple, true: tuple, methods) -> list:
    """Per image: (image, path, {edit: whether mirrored features are asked too}, its copies'
    pairs (pair, edit, mirrored, as-is), the edits the false pairs need, methods)."""
    image, edit = z["image"], z["edit"]
    mirrored = [{} for _ in z["paths"]]
    for q, s, mirror, _ in (false, true):
        for r, m in zip(q.tolist(), mirror.tolist()):
            mirrored[image[r]][int(edit[r])] = mirrored[image[r]].get(int(edit[r]), False) or m
        for r in s.tolist():
            mirrored[image[r]].setdefault(int(edit[r]), False)
    pairs = [[] for _ in z["paths"]]
    tq, _, tm, ta = true
    for p, (r, m, a) in enumerate(zip(tq.tolist(), tm.tolist(), ta.tolist())):
        pairs[image[r]].append((p, int(edit[r]), m, a))
    kept = [set() for _ in z["paths"]]
    for r in np.union1d(false[0], false[1]).tolist():
        kept[image[r]].add(int(edit[r]))
    return [(i, str(z["paths"][i]), mirrored[i], pairs[i], kept[i], methods)
            for i in range(len(z["paths"])) if mirrored[i]]  # fmt: skip


def measure(z, false: tuple, true: tuple, methods, workers: int, part: str) -> dict:
    """Counts (pairs, methods, 3) of the false and the true pairs, and the costs (the images'
    pass kept in the pickle `part` too)."""
    global _false
    row_of = {(int(i), int(e)): r for r, (i, e) in enumerate(zip(z["image"], z["edit"]))}
    tc = np.zeros((len(true[0]), len(methods), 3), np.int32)
    fc = np.zeros((len(false[0]), len(methods), 3), np.int32)
    cpu, costs, tasks = np.zeros(len(methods)), [], _tasks(z, false, true, methods)
    start, load = time.time(), [os.getloadavg()[0]]
    try:  # the images' pass, kept apart: the pairs' pass may be run again without it
        with open(part, "rb") as f:
            tc, cpu, costs, feats, load = pickle.load(f)
        _feats.update(feats)
    except FileNotFoundError:
        with Pool(workers) as pool:
            for n, (i, done, kept, cost) in enumerate(pool.imap_unordered(image_task, tasks), 1):
                for p, counts, c in done:
                    tc[p], cpu = counts, cpu + c
                _feats.update({row_of[i, e]: f for e, f in kept.items()})
                costs += [[z["kinds"][i] == "photo", e == 0, *c] for e, c in cost]
                if n % 50 == 0:
                    print(
                        f"  {n}/{len(tasks)} images, {time.time() - start:.0f} s", file=sys.stderr
                    )
        load.append(os.getloadavg()[0])
        with open(part, "wb") as f:
            pickle.dump((tc, cpu, costs, _feats, load), f)
    _false = (*false, methods)  # the features go to the workers by fork
    with Pool(workers) as pool:
        for chunk in pool.imap_unordered(_false_chunk, np.array_split(np.arange(len(fc)), 200)):
            for i, counts, c in chunk:
                fc[i], cpu = counts, cpu + c
    load.append(os.getloadavg()[0])
    return {"false": fc, "true": tc, "match_cpu": cpu / (len(fc) + len(tc)),
            "costs": np.array(costs, np.float64), "load": np.array(load),
            "methods": np.array(methods), "seconds": time.time() - start}  # fmt: skip


def _pairs(f: dict) -> tuple:
    """(query rows, stored rows, mirrored asked, as-is asked) of the pairs the default matches:
    the orientations of the variants that matched."""
    ok = verdict(f, _ALL)
    mirror = verdict(f, lambda f: np.broadcast_to(REFLECTS, f["d"].shape))[ok]
    asis = verdict(f, lambda f: np.broadcast_to(~REFLECTS, f["d"].shape))[ok]
    q, s = f["rows"]
    return q[ok], s[ok], mirror, asis


def _costs(r: dict) -> None:
    methods, c = [str(m) for m in r["methods"]], r["costs"]
    orig = c[:, 1] == 1
    print(f"\ncost an image (CPU ms, one process, one thread; load average {r['load'].min():.1f}"
          f"-{r['load'].max():.1f}); decoding to grey at <= 512 px: originals "
          f"{1000 * c[orig, 2].mean():.1f} (photos {1000 * c[orig & (c[:, 0] == 1), 2].mean():.1f})"
          f", copies {1000 * c[~orig, 2].mean():.1f}")  # fmt: skip
    print("| method | describe, mean / median ms | points, mean | bytes stored, mean "
          "| match + RANSAC a pair, ms |\n|---|---|---|---|---|")  # fmt: skip
    for k, m in enumerate(methods):
        t, n = 1000 * c[:, 3 + 2 * k], c[:, 4 + 2 * k]
        size = n.mean() * ((32 if m.startswith("ORB") else 61) + POINT_BYTES)
        print(f"| {m} | {t.mean():.1f} / {np.median(t):.1f} | {n.mean():.0f} | {size:,.0f} "
              f"| {1000 * r['match_cpu'][k]:.2f} |")  # fmt: skip


def _left(counts: np.ndarray, k: int, inliers: int, cells: int) -> np.ndarray:
    return (counts[:, k, 1] >= inliers) & (counts[:, k, 2] >= cells)


def _table(r: dict, group: np.ndarray) -> None:
    methods, groups = [str(m) for m in r["methods"]], sorted(set(group))
    print(
        f"\nfalse matches left (of {len(r['false'])}) and copies lost (of those the default "
        "finds), per method, least inliers and least cells of a 4x4 grid covered"
    )
    print("| method | inliers | cells | false left | " + " | ".join(
        f"{g} ({int((group == g).sum())})" for g in groups) + " |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * len(groups))
    for k, m in enumerate(methods):
        for cells in SPREADS:
            for t in THRESHOLDS:
                kept = _left(r["true"], k, t, cells)
                lost = [int((~kept & (group == g)).sum()) for g in groups]
                print(f"| {m} | {t} | {cells} | {int(_left(r['false'], k, t, cells).sum())} | "
                      + " | ".join(map(str, lost)) + " |")  # fmt: skip


def _show(z, r: dict, false: tuple, true: tuple, show: tuple) -> None:
    """One rule in detail: copies lost per edit, and the false matches it leaves."""
    names, kinds = [str(n) for n in z["edit_names"]], z["kinds"]
    k = [str(m) for m in r["methods"]].index(show[0])
    kept = _left(r["true"], k, int(show[1]), int(show[2]))
    tq, photo = true[0], kinds[z["image"][true[0]]] == "photo"
    print(f"\n{show[0]}, >= {show[1]} inliers on >= {show[2]} cells: copies lost per edit "
          "(photos / other images)")  # fmt: skip
    for e in range(1, len(names)):
        m = z["edit"][tq] == e
        if m.any():
            print(f"  {names[e]:20} {int((~kept & m & photo).sum()):4d} of "
                  f"{int((m & photo).sum()):4d}   {int((~kept & m & ~photo).sum()):4d} of "
                  f"{int((m & ~photo).sum()):4d}")  # fmt: skip
    kind = kinds[z["image"][tq]]
    print("  by kind of image: " + ", ".join(
        f"{c} {int((~kept & (kind == c)).sum())} of {int((kind == c).sum())}" for c in np.unique(kind)))  # fmt: skip
    left = np.nonzero(_left(r["false"], k, int(show[1]), int(show[2])))[0]
    image, edit = z["image"], z["edit"]
    fq, fs = false[0][left], false[1][left]
    print(f"false matches left: {len(left)}; by kinds "
          f"{dict(Counter(f'{kinds[image[a]]}~{kinds[image[b]]}' for a, b in zip(fq, fs)))}; "
          f"by edits {dict(Counter(f'{names[edit[a]]}~{names[edit[b]]}' for a, b in zip(fq, fs)).most_common(8))}")  # fmt: skip
    confirmed = left[r["false"][left, k, 1] < 1 << 20]  # not those --min-side exempts
    for j in confirmed[np.argsort(-r["false"][confirmed, k, 1], kind="stable")][:30]:
        a, b = false[0][j], false[1][j]
        print(f"  {r['false'][j, k, 1]:4d} inliers {r['false'][j, k, 2]:2d} cells  "
              f"{names[edit[a]]} of {z['paths'][image[a]]}  ~  {names[edit[b]]} of "
              f"{z['paths'][image[b]]}")  # fmt: skip


def _exempt(z, r: dict, false: tuple, true: tuple, side: int) -> None:
    """Pairs with an image whose original is under `side` pixels on its longer side are not
    confirmed by features: they pass every rule."""
    from PIL import Image

    small = np.zeros(len(z["paths"]), bool)
    for i, path in enumerate(z["paths"]):
        with Image.open(str(path)) as img:
            small[i] = max(img.size) < side
    for name, (q, s, _, _) in (("false", false), ("true", true)):
        out = small[z["image"][q]] | small[z["image"][s]]
        r[name] = r[name].copy()
        r[name][out] = (1 << 20, 1 << 20, CELLS * CELLS)
        print(
            f"{name}: {int(out.sum())} pairs not confirmed by features (an image under {side} px)"
        )


def main() -> None:
    global MAX_POINTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hashed", help="the .npz of benchmarks/accuracy.py --beyond --hashed")
    parser.add_argument("--out", required=True, help="the .npz of the counts (made if missing)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--show", nargs=3, metavar=("METHOD", "INLIERS", "CELLS"),
                        help="a rule in detail: copies lost per edit, the false matches left")  # fmt: skip
    parser.add_argument("--points", type=int, default=MAX_POINTS, help="keypoints kept an image")
    parser.add_argument("--min-side", type=int, default=0,
                        help="confirm only pairs of images whose originals are this large")  # fmt: skip
    args = parser.parse_args()
    MAX_POINTS = args.points  # the workers are forked: they see it
    z = dict(np.load(args.hashed))
    f, t, pairs = beyond_pairs(z)
    false, true = _pairs(f), _pairs(t)
    group = t["group"][verdict(t, _ALL)]
    print(f"{pairs:,} pairs of distinct images: the default matches {len(false[0])} falsely; it "
          f"finds {len(true[0])} copies of {len(t['group'])}")  # fmt: skip
    if not os.path.exists(args.out):
        np.savez(
            args.out,
            **measure(z, false, true, tuple(args.methods), args.workers, args.out + ".part"),
        )
    r = dict(np.load(args.out))
    if r["false"].shape[0] != len(false[0]) or r["true"].shape[0] != len(true[0]):
        raise SystemExit(f"{args.out}: made from other pairs than {args.hashed}'s")
    print(f"measured in {float(r['seconds']):.0f} s")
    if args.min_side:
        _exempt(z, r, false, true, args.min_side)
    _costs(r)
    _table(r, group)
    if args.show:
        _show(z, r, false, true, args.show)


if __name__ == "__main__":
    main()
