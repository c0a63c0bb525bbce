"""The ways a query row may match a stored row, each a search key and the second stage's
confirmation, written once on pairs of row numbers so that the same code counts the copies found
(each copy against its own original) and the false matches (brute force over pairs of distinct
images, the candidates first gathered by numpy in chunks).

Rows are those of benchmarks/beyond_hash.py: h (M, 8) the variants' pHashes, d (M, 8, 49) their
descriptors, wh/wd/wv the sub-window keys.
"""

from __future__ import annotations

import numpy as np

from phashdb import descriptor, index
from phashdb.confirm import CORRELATION_WEIGHT, SCORE_LIMIT

T = index.DEFAULT_THRESHOLD
REACH = index.DEFAULT_REACH
# The most 256-bit distance a confirmation allows: score = bits - 80 x correlation <= 20.
DCT_REACH = SCORE_LIMIT + CORRELATION_WEIGHT


def popcount(a: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a)


def confirm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """phashdb.confirm.confirms of each pair of descriptor rows (n, 49) of `a` and `b`."""
    shows, score = scores(a, b)
    return shows & (score <= SCORE_LIMIT)


def scores(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(neither near-constant, the second stage's score) of each pair of descriptor rows."""
    bits = popcount(a[:, :32] ^ b[:, :32]).sum(axis=1, dtype=np.int64)
    ta, tb = a[:, 33:].astype(np.float64), b[:, 33:].astype(np.float64)
    ac, bc = ta - ta.mean(axis=1, keepdims=True), tb - tb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ac * ac).sum(axis=1) * (bc * bc).sum(axis=1))
    corr = np.divide((ac * bc).sum(axis=1), norm, out=np.zeros(len(a)), where=norm > 0)
    score = bits - CORRELATION_WEIGHT * corr
    return (a[:, 32] >= descriptor.LOW_QUALITY) & (b[:, 32] >= descriptor.LOW_QUALITY), score


def plain(d: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The as-is rule: within the threshold, neither image near-constant."""
    low = descriptor.LOW_QUALITY
    return (d <= T) & (a[:, 32] >= low) & (b[:, 32] >= low)


def inverted(h: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pHash and descriptor of the negative of an image (255 - pixels), from its own: every
    DCT coefficient but the mean changes sign, so every bit but the first (the mean's, above
    the median either way) flips, and the thumbnail is 255 minus itself."""
    h2 = h ^ np.uint64((1 << 63) - 1)
    d2 = d.copy()
    d2[..., :32] ^= 0xFF
    d2[..., 0] ^= 0x80
    d2[..., 33:] = 255 - d[..., 33:]
    return h2, d2


class Rows:
    """The hashed rows, with the parts of a match as functions of aligned pairs (qi, si)."""

    def __init__(self, z):
        self.h, self.d = z["h"], z["d"]
        self.wh, self.wd, self.wv = z["wh"], z["wd"], z["wv"]
        self.ih, self.id = inverted(self.h[:, 0], self.d[:, 0])
        self.windows = [str(w) for w in z["window_names"]]
        self.kh, self.kd, self.kv = z["kh"], z["kd"], z["kv"]  # the query's other keys
        self.keys = [str(k) for k in z["key_names"]]

    # each part: (candidate found at all, confirmed) for every pair
    def default(self, qi, si):
        return self.against(qi, self.h[si, 0], self.d[si, 0])

    def against(self, qi, sh, sd):
        """The default's rule against stored keys `sh` with descriptors `sd` (one per pair)."""
        cand = np.zeros(len(qi), bool)
        ok = np.zeros(len(qi), bool)
        for v in range(8):
            d = popcount(self.h[qi, v] ^ sh)
            c = d <= (REACH if v == 0 else T)
            a, b = self.d[qi, v], sd
            good = c & confirm(a, b)
            if v == 0:
                good |= plain(d, a, b)
            cand |= c
            ok |= good
        return cand, ok

    def inverted(self, qi, si):
        d = popcount(self.ih[qi] ^ self.h[si, 0])
        c = d <= T
        return c, c & confirm(self.id[qi], self.d[si, 0])

    def query_key(self, qi, si, k: int):
        """The query's other key k (Picture.keys: backdrop, trimmed) against the stored image,
        as phashdb.index searches it: at the threshold, confirmed."""
        c = self.kv[qi, k] & (popcount(self.kh[qi, k] ^ self.h[si, 0]) <= T)
        return c, c & confirm(self.kd[qi, k], self.d[si, 0])

    def dct256(self, qi, si):
        a, b = self.d[qi, 0], self.d[si, 0]
        bits = popcount(a[:, :32] ^ b[:, :32]).sum(axis=1)
        c = bits <= DCT_REACH
        return c, c & confirm(a, b)

    def window(self, qi, si, w: int, side: str, radius: int):
        """A window key: `side` "stored" (the query's whole picture against the stored image's
        window w), "query" (the query's window w against the stored whole picture) or "both"."""
        if side == "stored":
            qh, qd, valid = self.h[qi, 0], self.d[qi, 0], self.wv[si, w]
            sh, sd = self.wh[si, w], self.wd[si, w]
        elif side == "query":
            qh, qd, valid = self.wh[qi, w], self.wd[qi, w], self.wv[qi, w]
            sh, sd = self.h[si, 0], self.d[si, 0]
        else:
            qh, qd, valid = self.wh[qi, w], self.wd[qi, w], self.wv[qi, w] & self.wv[si, w]
            sh, sd = self.wh[si, w], self.wd[si, w]
        c = valid & (popcount(qh ^ sh) <= radius)
        return c, c & confirm(qd, sd)


def candidate_pairs(rows: Rows, q: np.ndarray, s: np.ndarray, part: str, w: int = 0,
                    radius: int = T, keys: np.ndarray | None = None):  # fmt: skip
    """Pairs (qi, si) of query rows `q` and stored rows `s` whose search key is close enough
    for `part` to consider them: all-pairs popcounts in numpy, one chunk of queries at a time."""
    out_q, out_s = [], []
    step = max(1, 4_000_000 // max(1, len(s)))
    for lo in range(0, len(q), step):
        qq = q[lo : lo + step]
        if part in ("default", "keys"):
            sh = keys[s] if part == "keys" else rows.h[s, 0]
            d = popcount(rows.h[qq][:, :, None] ^ sh[None, None, :])
            hit = (d[:, 0] <= REACH) | (d[:, 1:] <= T).any(axis=1)
        elif part == "key":
            hit = rows.kv[qq, w][:, None] & (
                popcount(rows.kh[qq, w][:, None] ^ rows.h[s, 0][None, :]) <= T
            )
        elif part == "inverted":
            hit = popcount(rows.ih[qq][:, None] ^ rows.h[s, 0][None, :]) <= T
        elif part == "dct256":
            a = rows.d[qq, 0, :32].view(np.uint64)
            b = rows.d[s, 0, :32].view(np.uint64)
            hit = popcount(a[:, None, :] ^ b[None, :, :]).sum(axis=2) <= DCT_REACH
        elif part == "stored":
            hit = rows.wv[s, w][None, :] & (
                popcount(rows.h[qq, 0][:, None] ^ rows.wh[s, w][None, :]) <= radius
            )
        elif part == "query":
            hit = rows.wv[qq, w][:, None] & (
                popcount(rows.wh[qq, w][:, None] ^ rows.h[s, 0][None, :]) <= radius
            )
        else:
            hit = (rows.wv[qq, w][:, None] & rows.wv[s, w][None, :]) & (
                popcount(rows.wh[qq, w][:, None] ^ rows.wh[s, w][None, :]) <= radius
            )
        a, b = np.nonzero(hit)
        out_q.append(qq[a])
        out_s.append(s[b])
    return np.concatenate(out_q), np.concatenate(out_s)
