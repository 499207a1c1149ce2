"""frontends/common/section.py: the framework's section of a report."""

from __future__ import annotations

import json

import graphaudit as ga
from graphaudit.frontends import common
from graphaudit.frontends.common import FrameworkSection


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
