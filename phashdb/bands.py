"""Multi-index hashing: how the 64 hash bits split into bands, and which band values a search probes.

Pigeonhole: if two 64-bit hashes differ in at most r bits and the bits are cut into m bands,
then with r = m*s + a (0 <= a < m) at least one of any a+1 chosen bands differs in at most s
bits, or one of the other m-a-1 bands differs in at most s-1 bits. Otherwise the band distances
would add up to at least (a+1)(s+1) + (m-a-1)s = r+1. So probing a+1 bands with every value
within s bits of the query's band value, and the rest within s-1 bits, finds every hash within r.
Each band is a contiguous run of bits; band 0 holds the most significant bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

HASH_BITS = 64
MAX_BAND_BITS = 32
# The band count of a new HBase index (why 5, as measured: phashdb.hbase.schema). Here, not
# there, so that the command line's help gives it without loading the HBase client.
HBASE_BANDS = 5


@dataclass(frozen=True)
class BandLayout:
    """How the 64 bits of a hash are cut into bands: `widths[i]` bits for band i, high bits first."""

    widths: tuple[int, ...]

    def __post_init__(self) -> None:
        if sum(self.widths) != HASH_BITS or not all(1 <= w <= MAX_BAND_BITS for w in self.widths):
            raise ValueError(
                f"'bands' must be widths of 1..{MAX_BAND_BITS} bits adding up to {HASH_BITS}, "
                f"got {list(self.widths)}"
            )

    @classmethod
    def even(cls, count: int) -> BandLayout:
        """`count` bands as equal as 64 bits allow, the wider ones first."""
        if not 2 <= count <= HASH_BITS // 2:
            raise ValueError(f"'band count' must be in 2..{HASH_BITS // 2}, got {count}")
        base, extra = divmod(HASH_BITS, count)
        return cls(tuple(base + 1 if i < extra else base for i in range(count)))

    @classmethod
    def for_size(cls, n: int) -> BandLayout:
        """The classic multi-index rule: bands of about log2(n) bits, so that a band value
        holds about one hash and a probe costs one lookup. Never fewer than 3 bands: wider
        bands make the tables too large for the little they save."""
        bits = math.log2(max(n, 2))
        return cls.even(min(max(round(HASH_BITS / bits), 3), HASH_BITS // 4))

    @cached_property
    def shifts(self) -> tuple[int, ...]:
        """How far each band's bits sit from the least significant end."""
        out, low = [], HASH_BITS
        for w in self.widths:
            low -= w
            out.append(low)
        return tuple(out)

    @cached_property
    def masks(self) -> tuple[int, ...]:
        """Each band's bits, as a mask of the 64."""
        return tuple(((1 << w) - 1) << s for w, s in zip(self.widths, self.shifts))

    def split(self, hashes: np.ndarray) -> np.ndarray:
        """Each band's values (uint32) of an array of uint64 hashes: row i is band i's, band 0
        first. Whole-array operations, so a single query pays for three numpy calls, not a
        dozen."""
        import numpy as np  # here, not at the top: the command line's help reads this module

        hashes = np.asarray(hashes, dtype=np.uint64)
        shifts = np.array(self.shifts, dtype=np.uint64)[:, None]
        return (
            (hashes[None, :] & np.array(self.masks, dtype=np.uint64)[:, None]) >> shifts
        ).astype(np.uint32)

    def probe_radii(self, radius: int) -> tuple[int, ...]:
        """How many bits each band's probes may differ from the query's band value, by the
        pigeonhole bound; -1 means the band need not be probed at all. The extra bit goes to the
        widest bands, whose tables are sparser and so cheaper to probe at a larger radius."""
        if not 0 <= radius <= HASH_BITS:
            raise ValueError(f"'radius' must be in 0..{HASH_BITS}, got {radius}")
        s, a = divmod(radius, len(self.widths))
        by_width = sorted(range(len(self.widths)), key=lambda i: -self.widths[i])
        radii = [s - 1] * len(self.widths)
        for i in by_width[: a + 1]:
            radii[i] = s
        return tuple(radii)

    def probe_count(self, radius: int) -> int:
        """How many band values a query at `radius` looks up, over all bands."""
        return sum(flip_count(w, s) for w, s in zip(self.widths, self.probe_radii(radius)))

    def expected_candidates(self, radius: int, n: int) -> float:
        """Candidates a query at `radius` reads from `n` uniformly spread hashes."""
        return sum(
            flip_count(w, s) * n / 2**w for w, s in zip(self.widths, self.probe_radii(radius))
        )


@lru_cache(maxsize=1024)
def flip_count(width: int, radius: int) -> int:
    """How many values lie within `radius` bits of a `width`-bit value (0 when radius < 0)."""
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


@lru_cache(maxsize=256)
def flip_masks(width: int, radius: int) -> np.ndarray:
    """Every XOR mask of `width` bits with at most `radius` bits set, in increasing order (0
    first): a value XOR masks that share their high bits lie close together, so probes made in
    this order read neighbouring memory (and neighbouring HBase rows)."""
    masks = [
        sum(1 << b for b in bits)
        for k in range(min(radius, width) + 1)
        for bits in combinations(range(width), k)
    ]
    import numpy as np

    out = np.sort(np.array(masks, dtype=np.uint32))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=256)
def probe_plan(
    layout: BandLayout, radius: int
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """What a query at `radius` probes, band by band: (band, its XOR masks, the bit masks and
    probe radii of the bands probed before it). Made once per radius, not once per query; the
    band tables and HBase's probes both follow it."""
    import numpy as np

    probed = [(b, r) for b, r in enumerate(layout.probe_radii(radius)) if r >= 0]
    plan = []
    for i, (band, r) in enumerate(probed):
        earlier = np.array([layout.masks[b] for b, _ in probed[:i]], dtype=np.uint64)
        earlier_radii = np.array([r for _, r in probed[:i]], dtype=np.int32)
        earlier.flags.writeable = earlier_radii.flags.writeable = False  # shared by all callers
        plan.append((band, flip_masks(layout.widths[band], r), earlier, earlier_radii))
    return plan


def distances(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Hamming distances between uint64 hashes, element-wise (broadcasting)."""
    import numpy as np

    return np.bitwise_count(np.bitwise_xor(a, np.asarray(b, dtype=np.uint64))).astype(np.int8)


def band_prefix(band: int, value: int, width: int) -> bytes:
    """The row-key prefix of a band value: one byte of band number, then the value big-endian
    in as few whole bytes as its width needs, so every hash sharing the value sorts together."""
    return bytes([band]) + value.to_bytes((width + 7) // 8, "big")
