"""frontends/common/table.py: an op table's rows registered once, purity kept."""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga
from graphaudit.frontends import common
from graphaudit.frontends.common import ImportedOp, OpTable
from graphaudit.core.ops import OPS, elementwise_cost


def test_op_table_registers_a_row_once_with_its_rule():
    table = OpTable("test_common.", {"twice": ImportedOp("elementwise", elementwise_cost, lambda n, x: 2 * x)})
    name = table.op_name("twice")
    assert name == "test_common.twice" and OPS[name].kind == "elementwise" and OPS[name].cost is elementwise_cost
    assert table.op_name("twice") == name  # a second sighting registers nothing new
    x = ga.placeholder("x", (3,), "float64")
    node = common.imported_node(name, [x], [], (3,), np.dtype("float64"), call=None)
    (value,) = ga.evaluate([node], {x: np.arange(3.0)})
    np.testing.assert_array_equal(value, [0.0, 2.0, 4.0])
    assert ga.total_cost([node]).flops == 3


def test_op_table_unknown_ops_get_the_fallback_and_no_cost_rule():
    fallback = lambda node, *arrays: arrays[0]  # noqa: E731
    table = OpTable("test_common_fallback.", {}, fallback_impl=fallback)
    op = OPS[table.op_name("mystery")]
    assert op.cost is None and op.impl is fallback and op.kind == "imported"


def test_op_table_refuses_an_op_seen_pure_that_turns_effectful():
    table = OpTable("test_common_purity.", {"draw": ImportedOp("random"), "print": ImportedOp("random")})
    table.op_name("draw", pure=True)
    with pytest.raises(ValueError, match="'draw' has side effects here but was imported as pure before"):
        table.op_name("draw", pure=False)
    table.op_name("print", pure=False)
    assert not OPS[table.op_name("print", pure=True)].pure  # first seen effectful: stays apart
