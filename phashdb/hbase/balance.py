"""Where the band table lives: each region server's regions and share of the band key space."""

from __future__ import annotations

from collections import defaultdict

from ..bands import BandLayout
from . import keys


def _position(layout: BandLayout, row_bits: int, key: bytes | None, end: bool) -> float:
    """Where a region boundary lies in the band key space, in bands: the hashes' bands 0 ..
    band count, then the keys' (keys.KEY_BANDS) as many again; the wide keys' few rows
    (keys.WIDE_KEY_BANDS) at the end, of no width."""
    bands = len(layout.widths)
    if not key:
        return 2.0 * bands if end else 0.0
    first = keys.band_set(key[0])
    if first == keys.WIDE_KEY_BANDS:
        return 2.0 * bands
    band, before = key[0] - first, (bands if first else 0)
    if band >= bands:
        return float(before + bands)
    bits = min(layout.widths[band], row_bits)
    return before + band + int.from_bytes(key[1:3].ljust(2, b"\0"), "big") / 2**bits


def region_servers(layout: BandLayout, row_bits: int, regions: list) -> dict:
    """Per region server ("host:port"): its band-table regions and its share of the band key
    space, the hashes' bands and the keys' weighed alike (band values of pHashes are near
    uniform, so a region's share of a band's key space is its share of the band's cells); and
    max/min of the shares."""
    count: dict[str, int] = defaultdict(int)
    share: dict[str, float] = defaultdict(float)
    for r in regions:
        server = f"{r.serverName.hostName}:{r.serverName.port}"
        start = _position(layout, row_bits, r.regionInfo.startKey, False)
        stop = _position(layout, row_bits, r.regionInfo.endKey, True)
        count[server] += 1
        share[server] += (stop - start) / (2 * len(layout.widths))
    shares = list(share.values())
    return {
        "regions": len(regions),
        "region_servers": len(count),
        "per_region_server": {
            s: {"regions": count[s], "share": round(share[s], 4)} for s in sorted(count)
        },
        "max_min_share": round(max(shares) / min(shares), 3)
        if shares and min(shares) > 0
        else None,
    }
