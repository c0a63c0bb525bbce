"""Band layout and probe planning: the pigeonhole bound that makes the search exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phashdb.bands import (
    HASH_BITS,
    BandLayout,
    band_prefix,
    distances,
    flip_count,
    flip_masks,
)

layouts = st.one_of(
    st.integers(2, 16).map(BandLayout.even),
    st.integers(0, 10**9).map(BandLayout.for_size),
)


@given(layouts, st.integers(0, 40), st.data())
def test_every_hash_within_radius_is_caught_by_some_band(layout, radius, data):
    # Any way of spreading at most `radius` differing bits over the bands leaves at least one
    # band within its probe radius: that is what makes probing exact.
    counts = [data.draw(st.integers(0, w)) for w in layout.widths]
    while sum(counts) > radius:
        i = data.draw(st.sampled_from([i for i, c in enumerate(counts) if c]))
        counts[i] -= 1
    radii = layout.probe_radii(radius)
    assert any(c <= r for c, r in zip(counts, radii))


@given(layouts, st.integers(0, 40))
def test_probe_radii_are_no_larger_than_the_bound_needs(layout, radius):
    radii = layout.probe_radii(radius)
    # Spreading radius+1 bits as (r_i + 1) per band must be possible: sum(r_i + 1) == radius + 1.
    assert sum(r + 1 for r in radii) == radius + 1


def test_split_bands_put_the_hash_back_together():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**64, 1000, dtype=np.uint64, endpoint=False)
    for layout in (BandLayout.even(3), BandLayout.even(4), BandLayout((10, 30, 24))):
        parts = layout.split(hashes)
        rebuilt = sum(p.astype(np.uint64) << np.uint64(s) for p, s in zip(parts, layout.shifts))
        assert np.array_equal(rebuilt, hashes)
        assert all(int(p.max()) < 1 << w for p, w in zip(parts, layout.widths))


def test_band_zero_holds_the_most_significant_bits():
    layout = BandLayout.even(4)
    values = layout.split(np.array([0xABCD_0000_0000_1234], dtype=np.uint64))
    assert [int(v[0]) for v in values] == [0xABCD, 0, 0, 0x1234]


@pytest.mark.parametrize("width,radius", [(8, 0), (8, 2), (16, 3), (21, 2), (22, 4)])
def test_flip_masks_are_every_value_within_radius_once(width, radius):
    masks = flip_masks(width, radius)
    assert len(masks) == len(set(masks.tolist())) == flip_count(width, radius)
    assert int(np.bitwise_count(masks).max()) == radius
    assert int(masks.max()) < 1 << width


def test_flip_masks_of_a_negative_radius_are_empty():
    assert len(flip_masks(16, -1)) == 0 and flip_count(16, -1) == 0


def test_layout_for_size_uses_bands_of_about_log2_n_bits():
    assert BandLayout.for_size(1_000_000).widths == (22, 21, 21)
    assert BandLayout.for_size(10_000_000).widths == (22, 21, 21)
    assert len(BandLayout.for_size(1000).widths) == 6
    assert all(sum(BandLayout.for_size(n).widths) == HASH_BITS for n in (0, 1, 10, 10**12))


@pytest.mark.parametrize(
    "widths,message",
    [((32, 31), "adding up to 64"), ((64,), "1..32 bits"), ((0, 32, 32), "1..32 bits")],
)
def test_bad_layouts_are_refused_by_name(widths, message):
    with pytest.raises(ValueError, match="'bands'") as e:
        BandLayout(widths)
    assert message.split()[0] in str(e.value)


@pytest.mark.parametrize("radius", [-1, 65])
def test_radius_out_of_range_is_refused(radius):
    with pytest.raises(ValueError, match=r"'radius' must be in 0\.\.64"):
        BandLayout.even(4).probe_radii(radius)


def test_distances_are_popcounts_of_xor():
    a = np.array([0, 0xFFFF_FFFF_FFFF_FFFF, 0b1011], dtype=np.uint64)
    assert distances(a, 0).tolist() == [0, 64, 3]


def test_band_prefixes_sort_by_band_then_value():
    keys = [band_prefix(b, v, 21) for b in (0, 1) for v in (0, 1, 255, 256, 2**21 - 1)]
    assert keys == sorted(keys)
    assert band_prefix(2, 0x1234, 16) == b"\x02\x12\x34"
