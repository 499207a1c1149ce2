"""Every op: forward value against numpy, vjp against central finite differences (float64).

Each case gives the inputs, a graph builder and an independent numpy reference. Float
inputs become parameters and are differentiated; integer and bool inputs become
constants. The gradient checked is that of ``sum(op(...) * R)`` for a fixed random ``R``,
against central differences of the same expression computed with the numpy reference.
Bad shapes and dtypes, one per family, are refused when a node is built.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pytest
from conftest import central_difference

import graphaudit as ga


class Case(NamedTuple):
    id: str
    make: Callable  # rng -> list of input arrays
    build: Callable  # *nodes -> node
    ref: Callable  # *arrays -> array (numpy only)
    eps: float = 1e-6
    rtol: float = 1e-6
    atol: float = 1e-8


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape, low=0.5, high=2.0):
    return lambda rng: rng.uniform(low, high, size=shape)


def away_from_zero(*shape, margin=0.1):
    """Normal draws pushed at least ``margin`` away from 0 (for relu's kink)."""

    def make(rng):
        x = rng.standard_normal(shape)
        return np.where(x >= 0, x + margin, x - margin)

    return make


def inputs(*makers):
    return lambda rng: [m(rng) for m in makers]


def const(array):
    return lambda rng: np.array(array)


def np_softmax(x, axis):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def np_unslice(g, bounds, shape):
    out = np.zeros(shape)
    out[tuple(slice(*b) for b in bounds)] = g
    return out


def np_index_add(g, indices, shape):
    """Scatter-add written as an explicit loop over the broadcast index positions."""
    out = np.zeros(shape)
    index = np.broadcast_arrays(*indices)
    for position in np.ndindex(*index[0].shape):
        out[tuple(i[position] for i in index)] += g[position]
    return out


def _reductions():
    cases = []
    for name, np_fn in (("sum", np.sum), ("mean", np.mean), ("max", np.max)):
        fn = getattr(ga, name)
        for axis in (None, 1, -1, (0, 2), (2, 0)):
            for keepdims in (False, True):
                cases.append(
                    Case(
                        f"{name}-axis{axis}-keep{keepdims}",
                        inputs(normal(2, 3, 4)),
                        lambda x, fn=fn, axis=axis, keepdims=keepdims: fn(x, axis=axis, keepdims=keepdims),
                        lambda x, np_fn=np_fn, axis=axis, keepdims=keepdims: np_fn(x, axis=axis, keepdims=keepdims),
                    )
                )
    return cases


IDX4 = np.array([2, 0, 1, 2])
DUP = np.array([0, 2, 0, 3, 0])
SLICE_BOUNDS = ((1, 3, 1), (0, 5, 2))
INDEX_ADD_I = np.array([[0], [2]])
INDEX_ADD_J = np.array([1, 1, 3])

CASES = [
    # matmul
    Case("matmul-2d", inputs(normal(3, 4), normal(4, 2)), lambda a, b: a @ b, np.matmul),
    Case("matmul-batched", inputs(normal(2, 3, 4), normal(2, 4, 5)), ga.matmul, np.matmul),
    Case("matmul-broadcast-batch", inputs(normal(2, 1, 3, 4), normal(3, 4, 2)), ga.matmul, np.matmul),
    Case("matmul-broadcast-left", inputs(normal(3, 4), normal(2, 4, 3)), ga.matmul, np.matmul),
    # binary elementwise with broadcasting
    Case("add-(3,4)+(4,)", inputs(normal(3, 4), normal(4)), lambda a, b: a + b, np.add),
    Case("add-scalar-node", inputs(normal(3, 4), normal()), ga.add, np.add),
    Case("add-python-scalar", inputs(normal(3, 4)), lambda a: a + 1.5, lambda a: a + 1.5),
    Case("sub-(3,4)-(3,1)", inputs(normal(3, 4), normal(3, 1)), lambda a, b: a - b, np.subtract),
    Case("rsub-python-scalar", inputs(normal(2, 3)), lambda a: 2.0 - a, lambda a: 2.0 - a),
    Case("mul-(3,1)*(1,4)", inputs(normal(3, 1), normal(1, 4)), lambda a, b: a * b, np.multiply),
    Case("mul-same-input", inputs(normal(3, 4)), lambda a: a * a, lambda a: a * a),
    Case("mul-scalar-node", inputs(normal(), normal(2, 3)), ga.mul, np.multiply),
    Case("div-(3,4)/(4,)", inputs(normal(3, 4), positive(4)), lambda a, b: a / b, np.divide),
    Case("div-(4,)/(3,4)", inputs(normal(4), positive(3, 4)), ga.div, np.divide),
    Case("rdiv-python-scalar", inputs(positive(2, 3)), lambda a: 3.0 / a, lambda a: 3.0 / a),
    Case("pow-(3,4)**(4,)", inputs(positive(3, 4), normal(4)), lambda a, b: a**b, np.power),
    Case("pow-python-exponent", inputs(normal(3, 4)), lambda a: a**3, lambda a: a**3),
    Case("pow-scalar-base", inputs(positive(), normal(2, 3)), ga.pow, np.power),
    Case("maximum-(3,4),(3,1)", inputs(normal(3, 4), normal(3, 1)), ga.maximum, np.maximum),
    Case("maximum-(4,),(2,4)", inputs(normal(4), normal(2, 4)), ga.maximum, np.maximum),
    # unary elementwise
    Case("neg", inputs(normal(3, 4)), lambda a: -a, np.negative),
    Case("exp", inputs(normal(3, 4)), ga.exp, np.exp),
    Case("log", inputs(positive(3, 4)), ga.log, np.log),
    Case("sqrt", inputs(positive(3, 4)), ga.sqrt, np.sqrt),
    Case("tanh", inputs(normal(3, 4)), ga.tanh, np.tanh),
    Case("sigmoid", inputs(normal(3, 4)), ga.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    Case("relu", inputs(away_from_zero(3, 4)), ga.relu, lambda a: np.where(a > 0, a, 0.0)),
    # reductions (axis None / int / negative int / tuple, keepdims both ways)
    *_reductions(),
    # softmax family
    Case("softmax-axis-1", inputs(normal(3, 4)), lambda a: ga.softmax(a, axis=-1), lambda a: np_softmax(a, -1)),
    Case("softmax-axis0", inputs(normal(3, 4)), lambda a: ga.softmax(a, axis=0), lambda a: np_softmax(a, 0)),
    Case("softmax-3d-axis1", inputs(normal(2, 3, 2)), lambda a: ga.softmax(a, axis=1), lambda a: np_softmax(a, 1)),
    Case("log_softmax-axis-1", inputs(normal(3, 4)), lambda a: ga.log_softmax(a, axis=-1),
         lambda a: np_log_softmax(a, -1)),
    Case("log_softmax-axis0", inputs(normal(3, 4)), lambda a: ga.log_softmax(a, axis=0),
         lambda a: np_log_softmax(a, 0)),
    # shape and data movement
    Case("reshape", inputs(normal(2, 3, 4)), lambda a: ga.reshape(a, (6, 4)), lambda a: a.reshape(6, 4)),
    Case("reshape-minus1", inputs(normal(2, 3, 4)), lambda a: ga.reshape(a, (4, -1, 3)),
         lambda a: a.reshape(4, -1, 3)),
    Case("reshape-to-scalar", inputs(normal(1, 1)), lambda a: ga.reshape(a, ()), lambda a: a.reshape(())),
    Case("transpose-default", inputs(normal(2, 3, 4)), ga.transpose, np.transpose),
    Case("transpose-axes", inputs(normal(2, 3, 4)), lambda a: ga.transpose(a, (1, 2, 0)),
         lambda a: np.transpose(a, (1, 2, 0))),
    Case("T", inputs(normal(3, 4)), lambda a: a.T, lambda a: a.T),
    Case("broadcast_to", inputs(normal(3, 1)), lambda a: ga.broadcast_to(a, (2, 3, 4)),
         lambda a: np.broadcast_to(a, (2, 3, 4))),
    Case("broadcast_to-scalar", inputs(normal()), lambda a: ga.broadcast_to(a, (2, 3)),
         lambda a: np.broadcast_to(a, (2, 3))),
    Case("concat-axis0", inputs(normal(2, 3), normal(1, 3), normal(3, 3)), lambda *p: ga.concat(p, axis=0),
         lambda *p: np.concatenate(p, axis=0)),
    Case("concat-axis-1", inputs(normal(2, 1), normal(2, 3)), lambda *p: ga.concat(p, axis=-1),
         lambda *p: np.concatenate(p, axis=-1)),
    Case("cast-to-float32", inputs(positive(3, 4)), lambda a: ga.cast(ga.cast(a, "float32"), "float64"),
         lambda a: a.astype(np.float32).astype(np.float64), eps=1e-3, rtol=1e-3, atol=1e-6),
    Case("where", inputs(const(np.array([[True, False, True, True], [False, False, True, False],
                                          [True, True, False, False]])), normal(3, 4), normal(4)),
         ga.where, np.where),
    # integer-array indexing (gathers) and its scatter-add
    Case("index-arange-idx", inputs(normal(4, 3), const(IDX4)),
         lambda x, i: x[ga.arange(4), i], lambda x, i: x[np.arange(4), i]),
    Case("take-duplicates", inputs(normal(4, 3), const(DUP)), ga.take, lambda x, i: x[i]),
    Case("take-broadcast-indices", inputs(normal(3, 4, 2), const(np.array([[0], [2]])), const(np.array([1, 3, 3]))),
         ga.take, lambda x, i, j: x[i, j]),
    Case("getitem-numpy-arrays", inputs(normal(3, 4)), lambda x: x[np.array([0, 2, 2]), np.array([1, 1, 3])],
         lambda x: x[np.array([0, 2, 2]), np.array([1, 1, 3])]),
    Case("index_add", inputs(normal(2, 3, 5), const(INDEX_ADD_I), const(INDEX_ADD_J)),
         lambda g, i, j: ga.apply("index_add", (g, i, j), shape=(3, 4, 5)),
         lambda g, i, j: np_index_add(g, (i, j), (3, 4, 5))),
    # basic slicing
    Case("slice-[1:3,::2]", inputs(normal(4, 5)), lambda x: x[1:3, ::2], lambda x: x[1:3, ::2]),
    Case("slice-int", inputs(normal(4, 5)), lambda x: x[1], lambda x: x[1]),
    Case("slice-negative-int", inputs(normal(4, 5)), lambda x: x[-1, 1:], lambda x: x[-1, 1:]),
    Case("slice-column", inputs(normal(4, 5)), lambda x: x[:, 2], lambda x: x[:, 2]),
    Case("slice-negative-bounds", inputs(normal(6)), lambda x: x[-4:-1], lambda x: x[-4:-1]),
    Case("slice-1d-to-scalar", inputs(normal(3)), lambda x: x[2], lambda x: x[2]),
    Case("unslice", inputs(normal(2, 3)),
         lambda g: ga.apply("unslice", (g,), bounds=SLICE_BOUNDS, shape=(4, 5)),
         lambda g: np_unslice(g, SLICE_BOUNDS, (4, 5))),
]


def _materialise(case: Case, seed: int):
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a) for a in case.make(rng)]
    nodes = []
    for position, array in enumerate(arrays):
        if array.dtype.kind == "f":
            nodes.append(ga.parameter(f"in{position}", array.astype(np.float64)))
        else:
            nodes.append(ga.constant(array))
    out = case.build(*nodes)
    return rng, arrays, nodes, out


def _seed(case: Case) -> int:
    return sum(map(ord, case.id))  # fixed per case, different across cases


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forward_matches_numpy(case):
    _, arrays, nodes, out = _materialise(case, _seed(case))
    expected = np.asarray(case.ref(*arrays))
    got = ga.evaluate(out)
    assert out.shape == expected.shape
    assert got.shape == out.shape
    assert got.dtype == out.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vjp_matches_central_differences(case):
    rng, arrays, nodes, out = _materialise(case, _seed(case))
    weights = rng.standard_normal(out.shape)
    cost = ga.sum(out * ga.constant(weights))
    float_positions = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    grads = ga.evaluate(ga.grad(cost, [nodes[i] for i in float_positions]))

    def f(*xs):
        return float(np.sum(case.ref(*xs) * weights))

    for position, got in zip(float_positions, grads):
        assert got.shape == arrays[position].shape
        assert got.dtype == nodes[position].dtype
        expected = central_difference(f, arrays, position, eps=case.eps)
        np.testing.assert_allclose(got, expected, rtol=case.rtol, atol=case.atol)


def test_every_differentiable_op_has_a_gradient_check():
    """A new op with a vjp rule must get a case above."""
    covered = set()
    for case in CASES:
        _, _, _, out = _materialise(case, 0)
        covered |= {n.op for n in ga.topological_order([out])}
    with_vjp = {name for name, op in ga.OPS.items() if op.vjp is not None}
    assert with_vjp <= covered, f"no gradient check for {sorted(with_vjp - covered)}"


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda x: ga.reshape(x, (5, 5)), ga.ShapeError),
        (lambda x: ga.reshape(x, (-1, 5)), ga.ShapeError),
        (lambda x: ga.sum(x, axis=2), ga.ShapeError),
        (lambda x: ga.sum(x, axis=(0, 0)), ga.ShapeError),
        (lambda x: ga.transpose(x, (0, 0)), ga.ShapeError),
        (lambda x: ga.broadcast_to(x, (4, 3)), ga.ShapeError),
        (lambda x: ga.concat([x, ga.placeholder("z", (3, 3))], axis=1), ga.ShapeError),
        (lambda x: ga.softmax(x, axis=2), ga.ShapeError),
        (lambda x: x[0, 0, 0], ga.ShapeError),
        (lambda x: x[5], IndexError),
        (lambda x: ga.where(x, x, x), TypeError),
        (lambda x: ga.exp(ga.arange(3)), TypeError),
        (lambda x: ga.apply("add", (x, np.ones(3))), TypeError),
    ],
    ids=["reshape-count", "reshape-minus1", "sum-axis", "sum-repeated-axis", "transpose-perm", "broadcast_to",
         "concat-off-axis", "softmax-axis", "too-many-indices", "int-index-range", "where-cond-dtype",
         "exp-int", "apply-non-node"],
)
def test_bad_shapes_and_types_raise(build, error):
    x = ga.placeholder("x", (2, 3), "float64")
    with pytest.raises(error):
        build(x)
