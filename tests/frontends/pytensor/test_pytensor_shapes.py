"""frontends/pytensor/shapes.py: shapes PyTensor leaves open, inferred from the shapes given and small known values.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")
from pytensor_networks import SMALL, op_nodes, seed_network  # noqa: E402


def test_shapes_flow_through_shape_arithmetic_reshape_indexing_and_matmul_operator():
    x = pt.matrix("x", shape=(None, 4))
    w = pt.matrix("W", shape=(4, 6))
    h = (x @ w).reshape((x.shape[0] * 2, -1))  # Blockwise{Dot}, then a shape computed from x's batch
    picked = h[pt.arange(h.shape[0] // 2), 0:3:2]
    imported = gp.from_pytensor(picked, shapes={"x": (5, 4)})
    nodes = {n.op: n for n in op_nodes(imported.outputs)}
    assert nodes["pytensor.Blockwise{Dot}"].shape == (5, 6)
    assert ga.analysis.cost.node_flops(nodes["pytensor.Blockwise{Dot}"]) == 2 * 5 * 4 * 6
    assert nodes["pytensor.Reshape"].shape == (10, 3)
    assert imported.outputs[0].shape == (5, 2)
    rng = np.random.default_rng(3)
    xv, wv = rng.standard_normal((5, 4)), rng.standard_normal((4, 6))
    expected = pytensor.function([x, w], picked, mode="FAST_COMPILE")(xv, wv)
    np.testing.assert_allclose(ga.evaluate(imported.outputs[0], {"x": xv, "W": wv}), expected, rtol=1e-12)


def test_missing_or_wrong_shapes_are_errors_that_name_the_input():
    x, y, params, loss = seed_network(SMALL)
    with pytest.raises(ga.ShapeError, match=r"shape of input 'x'.*not known.*shapes=\{'x'"):
        gp.from_pytensor(loss)
    with pytest.raises(ga.ShapeError, match=r"shape of input 'y'"):
        gp.from_pytensor(loss, shapes={"x": (4, SMALL[0])})
    with pytest.raises(ga.ShapeError, match=r"input 'x'.*\(4, 3\).*static shape \(\?, 7\)"):
        gp.from_pytensor(loss, shapes={"x": (4, 3), "y": (4,)})
    with pytest.raises(ga.ShapeError, match=r"shared variable 'W1' holds a value of shape \(7, 6\), not \(7, 5\)"):
        gp.from_pytensor(loss, shapes={"x": (4, 7), "y": (4,), "W1": (7, 5)})
    with pytest.raises(ValueError, match=r"'z' is not an input of the graph \(its inputs: x, W1"):
        gp.from_pytensor(loss, shapes={"x": (4, 7), "y": (4,), "z": (1,)})
    with pytest.raises(ga.ShapeError, match=r"pytensor.Dot.*inner dimensions differ"):
        a, b = pt.matrix("a"), pt.matrix("b")
        gp.from_pytensor(pt.dot(a, b), shapes={"a": (2, 3), "b": (4, 5)})
    with pytest.raises(TypeError, match=r"outputs\[0\] is a int"):
        gp.from_pytensor([3])


def test_unknown_values_in_shapes_are_errors_naming_the_op():
    x = pt.vector("x", shape=(6,))
    n = pt.iscalar("n")
    with pytest.raises(ga.ShapeError, match=r"pytensor.Subtensor.*value of input 1 \(a slice bound\)"):
        gp.from_pytensor(x[:n], shapes={"n": ()})
