"""Beyond photos: how today's default and the candidate parts of a new method find overlaid,
re-framed and cropped copies and transparent exports, on photos and on other images separately,
and how many false matches each part makes among >= 10^8 pairs of distinct images.

    python benchmarks/accuracy.py --beyond --candidates OTHERS PHOTOS [--hashed FILE.npz]
        [--workers 2]

OTHERS is built by benchmarks/corpus_beyond_photos.sh (its images/ folder), PHOTOS by
shared/photos/build.sh (its photos/ folder). Every part is a search key with the second stage
(phashdb.descriptor) confirming what it finds; "found" counts a copy when a part's key is within
its radius of its own original (candidate) and the descriptors confirm it (confirmed).
"""

from __future__ import annotations

import os

import numpy as np
from beyond_edits import on
from beyond_hash import KIND_OF_EDIT, corpus, hash_corpus
from beyond_match import Rows, candidate_pairs
from beyond_pairs import STORED_EDITS, originals, queried_and_stored, upper_bound, where
from beyond_pairs import groups as _groups
from PIL import Image, ImageOps

from phashdb import descriptor
from phashdb import phash as hashing

# Window keys are searched like the plain pHash: exactly, up to the threshold.
WINDOW_RADIUS = 8


def transparent_keys(paths, rows_h) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """Extra stored keys of transparent sources: the pHash and descriptor of the picture
    flattened on white, on black and with the alpha dropped, as-is; each only when it shows a
    picture (not near-constant) and is not within 4 of the stored hash or a key kept before."""
    img_of, hs, ds, names = [], [], [], []
    for i, path in enumerate(paths):
        with Image.open(path) as raw:
            if not raw.has_transparency_data:
                continue
            raw = ImageOps.exif_transpose(raw)
            raw.load()
            renders = {
                "on white": on(raw.convert("RGBA"), (255, 255, 255)),
                "on black": on(raw.convert("RGBA"), (0, 0, 0)),
                "alpha dropped": (raw.copy() if raw.mode == "P" else raw).convert("RGB"),
            }
        kept = [int(rows_h[i])]
        for name, im in renders.items():
            v = hashing.read_image(im).variants[0]
            if v.descriptor[32] < descriptor.LOW_QUALITY:
                continue
            if any((v.hash ^ k).bit_count() <= 4 for k in kept):
                continue
            kept.append(v.hash)
            img_of.append(i)
            hs.append(v.hash)
            ds.append(np.frombuffer(v.descriptor, np.uint8))
            names.append(name)
    return np.array(img_of), np.array(hs, np.uint64), np.array(ds), names


def parts(rows: Rows) -> list[tuple[str, tuple]]:
    """Every part measured: (label, how candidate_pairs and Rows find it)."""
    out = [(p, (p,)) for p in ("default", "inverted", "dct256")]
    out += [(name, ("key", k)) for k, name in enumerate(rows.keys)]
    for w, name in enumerate(rows.windows):
        for side in WINDOW_SIDES[name]:
            out.append((f"{side}: {name}", (side, w)))
    return out


# Which side's window each is measured on: a stored image's windows find the crops of it, a
# query's inner windows find the picture it frames, the halves find a band overlaid on both.
WINDOW_SIDES = {
    **{f"centre {r}": ("stored",) for r in ("16:9", "16:10", "4:3", "5:4", "1:1")},
    "centre 80%": ("stored", "query"),
    **{f"corner {c} 90%": ("stored",) for c in ("tl", "tr", "bl", "br")},
    "inside a 5% frame": ("query",),
    "top 80%": ("both",),
    "bottom 80%": ("both",),
}


def check_part(rows: Rows, how: tuple, qi, si):
    if how[0] in ("default", "inverted", "dct256"):
        return getattr(rows, how[0])(qi, si)
    if how[0] == "key":
        return rows.query_key(qi, si, how[1])
    return rows.window(qi, si, how[1], how[0], WINDOW_RADIUS)


def check_keys(rows: Rows, keys, qi, ki):
    _, kh, kd, _ = keys
    return rows.against(qi, kh[ki], kd[ki])


def recall(z, rows: Rows, keys) -> dict:
    """found[label] = (candidate, confirmed) booleans per copy row, against its own original."""
    edit, image = z["edit"], z["image"]
    q = np.nonzero(edit > 0)[0]
    own = originals(z)[image[q]]
    found = {label: check_part(rows, how, q, own) for label, how in parts(rows)}
    k_img = keys[0]
    cand, ok = np.zeros(len(q), bool), np.zeros(len(q), bool)
    for k in range(len(k_img)):
        mine = np.nonzero(image[q] == k_img[k])[0]
        c, o = check_keys(rows, keys, q[mine], np.full(len(mine), k))
        cand[mine] |= c
        ok[mine] |= o
    found["transparent keys"] = (cand, ok)
    return q, found


def false_matches(z, rows: Rows, keys) -> tuple[int, dict]:
    """pairs, and per part the (candidate, confirmed) pairs of distinct images among every row
    queried against every stored row (STORED_EDITS) of the other images."""
    image = z["image"]
    q, stored, pairs = queried_and_stored(z)
    out = {}
    for label, how in parts(rows):
        qi, si = candidate_pairs(rows, q, stored, how[0], *how[1:], radius=WINDOW_RADIUS)
        other = image[qi] != image[si]
        qi, si = qi[other], si[other]
        c, ok = check_part(rows, how, qi, si)
        out[label] = (int(c.sum()), list(zip(qi[ok].tolist(), si[ok].tolist())))
    k_img = keys[0]
    qi, ki = candidate_pairs(rows, q, np.arange(len(k_img)), "keys", keys=keys[1])
    other = image[qi] != k_img[ki]
    qi, ki = qi[other], ki[other]
    c, ok = check_keys(rows, keys, qi, ki)
    orig = originals(z)
    # a key is its image's original row: a pair is a (query row, stored row)
    out["transparent keys"] = (
        int(c.sum()),
        list(zip(qi[ok].tolist(), orig[k_img[ki[ok]]].tolist())),
    )
    return pairs, out


# The new method: the default plus the parts chosen by measurement (see main's tables).
NEW = ("default", "backdrop", "trimmed")
# What stored keys would add (measured here, not in the library: the store keeps one key an
# image): the transparent source's renderings, and the stored image's windows.
STORED_KEYS = ("transparent keys", *(f"stored: centre {r}" for r in ("16:9", "16:10", "4:3", "5:4", "1:1")),
               "stored: centre 80%", *(f"stored: corner {c} 90%" for c in ("tl", "tr", "bl", "br")))  # fmt: skip


def _table(z, q, found, new: tuple, group: np.ndarray) -> list[tuple]:
    names = [str(n) for n in z["edit_names"]]
    edit = z["edit"][q]
    shows = z["d"][q, 0, 32] >= descriptor.LOW_QUALITY
    new_ok = np.logical_or.reduce([found[p][1] for p in new])
    at_all = np.logical_or.reduce([found[p][0] for p in new])
    more = new_ok | np.logical_or.reduce([found[p][1] for p in STORED_KEYS if p in found])
    rows = []
    for e in range(1, len(names)):
        m = (edit == e) & group[q]
        if KIND_OF_EDIT[names[e]] == "transparent":
            m &= shows  # an export showing nothing is not to be found
        if m.sum():
            rows.append((names[e], KIND_OF_EDIT[names[e]], int(m.sum()),
                         found["default"][1][m].mean(), at_all[m].mean(), new_ok[m].mean(),
                         more[m].mean()))  # fmt: skip
    return rows


def _per_kind(z, q, found, new, kind) -> None:
    """Each kind of image: the share of its overlaid, re-framed and transparent-export copies
    found, default -> new (exports that show nothing left out)."""
    new_ok = np.logical_or.reduce([found[p][1] for p in new])
    image_kind = z["kinds"][z["image"][q]]
    shows = z["d"][q, 0, 32] >= descriptor.LOW_QUALITY
    print("\nper kind of image: found, default -> new")
    for k in np.unique(image_kind):
        cells = []
        for edit_kind in ("overlay", "re-framed", "transparent"):
            m = (image_kind == k) & (kind == edit_kind) & (shows | (edit_kind != "transparent"))
            cells.append(f"{edit_kind} {found['default'][1][m].mean():6.1%} -> "
                         f"{new_ok[m].mean():6.1%}" if m.any() else f"{edit_kind} -")  # fmt: skip
        print(f"  {k:11} " + "   ".join(cells))


def _false_kinds(z, pairs: list) -> None:
    """Where the default's false matches are: by the images' kinds and by the two edits."""
    print(f"  the default's: {where(z, pairs)}")


def report(z, rows: Rows, keys, new: tuple = NEW) -> None:
    q, found = recall(z, rows, keys)
    pairs, fm = false_matches(z, rows, keys)
    print(f"{len(z['paths'])} originals ({dict(zip(*np.unique(z['kinds'], return_counts=True)))}), "
          f"{len(z['edit'])} rows (originals and copies); {pairs:,} pairs of distinct images "
          f"(every row against every other image's {', '.join(STORED_EDITS)})")  # fmt: skip
    names = [str(n) for n in z["edit_names"]]
    kind = np.array([KIND_OF_EDIT.get(names[e], "") for e in z["edit"][q]])
    base = found["default"][1]
    print("\nwhat each part adds (copies not found by the default; false matches among the pairs)")
    print(f"{'part':28} {'overlay':>8} {'re-framed':>9} {'transparent':>11}   candidates  false"
          "  false, not the default's")  # fmt: skip
    default_false = set(fm["default"][1])
    for label, (_cand, ok) in found.items():
        adds = [
            int((ok & ~base & (kind == k)).sum()) for k in ("overlay", "re-framed", "transparent")
        ]
        fc, fok = fm[label]
        if label == "default" or any(adds) or fok:
            print(f"{label:28} {adds[0]:8d} {adds[1]:9d} {adds[2]:11d}   {fc:10d} {len(fok):6d}"
                  f" {len(set(fok) - default_false):6d}")  # fmt: skip
    for gname, g in _groups(z).items():
        print(f"\n{gname}: found by the default, by the new method's keys at all, and confirmed "
              f"(new = {' + '.join(new)})")  # fmt: skip
        print("| edit | kind | copies | default | new: candidate | new: confirmed "
              "| + stored keys (not wired) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for name, k, n, d, a, o, m in _table(z, q, found, new, g):
            print(f"| {name} | {k} | {n} | {d:.1%} | {a:.1%} | {o:.1%} | {m:.1%} |")
    _per_kind(z, q, found, new, kind)
    for label, method in (("default", ("default",)), ("new", new),
                          ("new + stored keys", new + STORED_KEYS)):  # fmt: skip
        k = len({pair for p in method if p in fm for pair in fm[p][1]})
        print(
            f"false matches, {label}: {k} in {pairs:,} pairs: rate {k / pairs:.1e}, "
            f"95% upper bound {upper_bound(k, pairs):.1e}"
        )
    _false_kinds(z, fm["default"][1])
    blank = (z["d"][q, 0, 32] < descriptor.LOW_QUALITY) & (kind == "transparent")
    print(
        f"transparent exports showing nothing (near-constant): {int(blank.sum())}, matched to "
        f"their source: {int((np.logical_or.reduce([found[p][1] for p in new]) & blank).sum())}"
    )


def main(others: str, photos: str, hashed: str | None, workers: int) -> None:
    images = corpus(photos, others)
    path = hashed or os.path.join(os.path.dirname(os.path.abspath(others)), "hashed.npz")
    if not os.path.exists(path):
        hash_corpus(images, path, workers)
    z = dict(np.load(path))
    rows = Rows(z)
    orig = z["h"][z["edit"] == 0, 0]
    keys = transparent_keys([str(p) for p in z["paths"]], orig)
    report(z, rows, keys)
