"""frontends/common/attrs.py: framework params as hashable attrs, and imported nodes."""

from __future__ import annotations

import numpy as np

import graphaudit as ga
from graphaudit.frontends import common
from graphaudit.frontends.common import OpTable, Opaque, hashable_param


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
