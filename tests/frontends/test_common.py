"""frontends/common.py: the op table, hashable params, imported nodes and the framework section."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphaudit as ga
from graphaudit.frontends import common
from graphaudit.frontends.common import FrameworkSection, ImportedOp, OpTable, Opaque, hashable_param
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


def test_hashable_param_keeps_plain_values_and_wraps_the_rest():
    assert hashable_param(np.float32(1.5)) == 1.5 and type(hashable_param(np.float32(1.5))) is float
    assert hashable_param([1, (2, 3)]) == (1, (2, 3))
    wrapped = hashable_param({"b": np.ones(2), "a": 1})
    assert isinstance(wrapped, Opaque)
    assert wrapped == hashable_param({"a": 1, "b": np.ones(2)})  # key order does not matter
    assert wrapped != hashable_param({"a": 1, "b": np.zeros(2)})


def test_canonical_text_has_no_addresses_and_a_rule_can_take_over():
    class Thing:
        def __init__(self, size):
            self.size = size

    assert " at 0x" not in common.canonical_text(Thing(3))
    assert common.canonical_text(Thing(3)) == common.canonical_text(Thing(3)) != common.canonical_text(Thing(4))
    rule = lambda value, depth: "thing" if isinstance(value, Thing) else None  # noqa: E731
    common.TEXT_RULES.append(rule)
    try:
        assert common.canonical_text([Thing(3)]) == "list(thing)"
    finally:
        common.TEXT_RULES.remove(rule)


def test_imported_node_tells_outputs_apart_and_takes_its_provenance_explicitly():
    name = OpTable("test_common_split.", {}).op_name("split")
    x = ga.placeholder("x", (4,))
    call = ga.GradCall(["x"])
    with ga.core.graph.building(ga.GradCall(["other"])):
        first = common.imported_node(name, [x], [("sizes", (2, 2))], (2,), x.dtype, call=call, output=0)
        second = common.imported_node(name, [x], [("sizes", (2, 2))], (2,), x.dtype, call=call, output=1)
    assert first.attrs == (("output", 0), ("sizes", (2, 2))) and second.attr("output") == 1
    assert first.call is call and first.origin is None
    assert ga.merge([first, second]).removed == 0  # output=0 and output=1 never merge


def test_spread_of_times():
    s = common.spread([3.0, 1.0, 2.0, 4.0])
    assert (s["median"], s["mean"], s["min"], s["max"]) == (2.5, 2.5, 1.0, 4.0)
    assert s["q1"] <= s["median"] <= s["q3"]
    assert common.spread([2.0])["stdev"] == 0.0


def test_framework_section_renders_its_data_and_the_report_prints_it():
    model = ga.models.deep_chain(depth=2, width=3, batch=2)
    report = ga.audit(model.loss, model.params)
    row = {"nodes": 5, "dots": 2, "seconds": None}
    section = FrameworkSection(name="Frame", version="1.0",
                               compile_check={"title": "what Frame keeps", "rows": [
                                   {"graph": "compiled", "separate": row, "joint": row}]})
    attached = common.attach_section(report, section)
    assert report.framework is None  # the given report is not patched
    text = attached.to_text()
    assert "what Frame keeps (op nodes / matmuls):" in text and "5 / 2" in text
    assert json.loads(attached.to_json())["framework"]["name"] == "Frame"
