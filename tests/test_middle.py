"""descriptor.middle is np.median to the bit on the rows hashing compares against (a change of
one bit there would change stored hashes)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from phashdb.descriptor import middle

values = st.floats(-1e9, 1e9, allow_nan=False) | st.sampled_from([0.0, -0.0, 1.0, 0.5])


@given(
    st.sampled_from([(64,), (8, 64), (8, 256)]).flatmap(
        lambda s: arrays(np.float64, s, elements=values)
    )
)
def test_middle_is_the_median(a):
    assert np.array_equal(middle(a), np.median(a, axis=-1, keepdims=True))
