"""What rules share: broadcast_shapes agrees with numpy's."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st


@given(st.lists(st.lists(st.integers(0, 3), max_size=4).map(tuple), min_size=1, max_size=3))
def test_broadcast_shapes_agrees_with_numpy(shapes):
    from graphaudit.core.ops import broadcast_shapes

    try:
        expected = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        expected = None
    assert broadcast_shapes(*shapes) == expected
