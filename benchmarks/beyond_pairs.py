"""Which pairs the beyond-photos benchmarks count, one definition for all of them: each copy
against its own original (found or not), and every row against every other image's stored rows
(the false matches), with the rate per pair and its confidence bound.

The rows are those of benchmarks/beyond_hash.py's .npz: `image` (which original) and `edit`
(0: the original) per row, `kinds` per image ("photo", or the corpus's folder).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.stats import beta

# The stored side of the false-match count: every image's original and these copies.
STORED_EDITS = ("original", "jpeg q70", "resize 50%", "caption bottom", "white box 1/4",
                "logo in a corner", "centre crop 16:9", "corner crop 10%", "flattened on black")  # fmt: skip


def originals(z) -> np.ndarray:
    """The row of each image's original, by image number."""
    image, edit = z["image"], z["edit"]
    out = np.full(image.max() + 1, -1)
    out[image[edit == 0]] = np.nonzero(edit == 0)[0]
    return out


def queried_and_stored(z) -> tuple[np.ndarray, np.ndarray, int]:
    """Every row (the queries), the STORED_EDITS rows, and how many (query, stored) pairs are
    of distinct images."""
    edit, image = z["edit"], z["image"]
    names = [str(n) for n in z["edit_names"]]
    stored = np.nonzero(np.isin(edit, [names.index(n) for n in STORED_EDITS]))[0]
    q = np.arange(len(edit))
    per_image = np.bincount(image[stored], minlength=image.max() + 1)
    return q, stored, int(len(q) * len(stored) - per_image[image[q]].sum())


def groups(z) -> dict[str, np.ndarray]:
    """Rows of photos and rows of the other images (masks over the rows)."""
    photo = z["kinds"][z["image"]] == "photo"
    return {"photos": photo, "other images": ~photo}


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """Clopper-Pearson one-sided upper bound of a rate seen k times in n (3/n for k = 0)."""
    return float(beta.ppf(confidence, k + 1, n - k)) if k < n else 1.0


def where(z, pairs) -> str:
    """Where false matches (query row, stored row) are: how many against another image's
    original, by the two images' kinds and by the two edits."""
    names = [str(n) for n in z["edit_names"]]
    kinds, image, edit = z["kinds"], z["image"], z["edit"]
    by_kind = Counter(f"{kinds[image[a]]}~{kinds[image[b]]}" for a, b in pairs)
    by_edit = Counter(f"{names[edit[a]]}~{names[edit[b]]}" for a, b in pairs)
    against_originals = sum(edit[b] == 0 for _, b in pairs)
    return (f"{against_originals} against another image's original; by kinds "
            f"{dict(by_kind.most_common(6))}; by edits {dict(by_edit.most_common(6))}")  # fmt: skip


def counts(values) -> str:
    """The values' counts ("a 3, b 5"), in their sorted order."""
    return ", ".join(f"{v} {int(n)}" for v, n in zip(*np.unique(values, return_counts=True)))
