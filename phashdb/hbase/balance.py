"""Where the band table lives: each region server's regions and share of the band cells."""

from __future__ import annotations

from collections import defaultdict

from ..bands import BandLayout


def _position(layout: BandLayout, row_bits: int, key: bytes | None, end: bool) -> float:
    """Where a region boundary lies in the band key space, in bands (0 .. band count)."""
    if not key:
        return float(len(layout.widths)) if end else 0.0
    band = key[0]
    if band >= len(layout.widths):
        return float(len(layout.widths))
    bits = min(layout.widths[band], row_bits)
    return band + int.from_bytes(key[1:3].ljust(2, b"\0"), "big") / 2**bits


def region_servers(layout: BandLayout, row_bits: int, regions: list) -> dict:
    """Per region server ("host:port"): its band-table regions and its share of the band cells
    (band values of pHashes are near uniform, so a region's share of the key space is its share
    of the cells); and max/min of the shares."""
    count: dict[str, int] = defaultdict(int)
    share: dict[str, float] = defaultdict(float)
    for r in regions:
        server = f"{r.serverName.hostName}:{r.serverName.port}"
        start = _position(layout, row_bits, r.regionInfo.startKey, False)
        stop = _position(layout, row_bits, r.regionInfo.endKey, True)
        count[server] += 1
        share[server] += (stop - start) / len(layout.widths)
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
