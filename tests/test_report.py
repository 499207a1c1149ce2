"""The Report never changes after it is made, and its to_dict() is exactly the schema's TypedDicts."""

import dataclasses
import importlib.util
import json
from typing import TypedDict

import pytest

import graphaudit as ga
from graphaudit.analysis.frozen import FreezableDict, FrozenList, frozen, thawed
from graphaudit.analysis.report import Section
from graphaudit.analysis.schema import DuplicatedWork, ReportData, mismatches


def small_model():
    return ga.models.residual_mlp(depth=2, width=4, batch=3)


def grad_report(**options):
    model = small_model()
    return ga.audit(model.loss, model.params, **options)


class CountsData(TypedDict):
    name: str
    calls: dict[str, int]


class CountsSection(Section):
    """A front-end's section as the front-ends write them: filled, then attached."""

    schema = CountsData


# --- frozen -------------------------------------------------------------------------------


def test_a_report_refuses_every_change():
    report = grad_report()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.kind = "graph"
    changes = [
        lambda: report.duplicated.__setitem__("nodes", 0),
        lambda: report.duplicated["by_op"].pop("matmul"),
        lambda: report.duplicated["top"].append({}),
        lambda: report.duplicated["top"][0]["calls"].sort(),
        lambda: report.wrt.append("w9"),
        lambda: report.forms.__setitem__("joint", report.forms["separate"]),
        lambda: report.forms["separate"].outputs.clear(),
        lambda: report.names.update({}),
        lambda: report.merges.setdefault("x", None),
    ]
    before = report.to_json()
    for change in changes:
        with pytest.raises(TypeError, match="read-only: a Report never changes"):
            change()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.forms["separate"].build_seconds = 0.0
    assert report.to_json() == before


def test_an_attached_section_is_frozen_and_the_one_filled_is_left_as_it_was():
    report = grad_report()
    section = CountsSection(name="Frame")
    section["calls"] = {"separate": len(report.wrt), "joint": 1}  # front-ends fill a section, then attach it
    attached = dataclasses.replace(report, framework=section)
    with pytest.raises(TypeError, match="this CountsSection is read-only"):
        attached.framework["version"] = "2.0"
    with pytest.raises(TypeError, match="read-only"):
        attached.framework["calls"]["joint"] = 2
    assert type(attached.framework) is CountsSection and attached.framework is not section
    assert attached.to_dict()["framework"] == {"name": "Frame", "calls": {"separate": len(report.wrt), "joint": 1}}
    section["calls"]["joint"] = 2  # still the front-end's own, and writable
    assert attached.to_dict()["framework"]["calls"]["joint"] == 1
    assert report.framework is None  # replace made a new report


def test_replace_makes_a_changed_copy_and_keeps_what_is_frozen_already():
    report = grad_report()
    changed = dataclasses.replace(report, commutative=True)
    assert (report.commutative, changed.commutative) == (False, True)
    assert changed.duplicated is report.duplicated and changed.names is report.names


def test_what_the_caller_passed_stays_theirs():
    report = grad_report()
    duplicated = thawed(report.duplicated)
    made = dataclasses.replace(report, duplicated=duplicated)
    duplicated["nodes"] = -1
    duplicated["top"].append("mine")
    assert made.duplicated["nodes"] == report.duplicated["nodes"] != -1
    assert len(made.duplicated["top"]) == len(report.duplicated["top"])


def test_to_dict_is_a_plain_copy_yours_to_change():
    report = grad_report()
    data = report.to_dict()
    data["duplicated"]["nodes"] = -1
    data["duplicated"]["top"].clear()
    data["wrt"].append("w9")
    again = report.to_dict()
    assert again["duplicated"]["nodes"] != -1 and again["duplicated"]["top"] and "w9" not in again["wrt"]


def test_frozen_and_thawed_copy_deeply_and_keep_equality():
    value = {"a": [1, {"b": (2, [3])}], "c": "d"}
    cold = frozen(value)
    assert cold == value and json.dumps(cold) == json.dumps(value)
    assert type(cold) is FreezableDict and type(cold["a"]) is FrozenList and type(cold["a"][1]["b"][1]) is FrozenList
    assert frozen(cold) is cold
    warm = thawed(cold)
    assert warm == value and type(warm) is dict and type(warm["a"]) is list and type(warm["a"][1]["b"][1]) is list
    warm["a"][1]["b"][1].append(4)
    assert cold["a"][1]["b"][1] == [3] and value["a"][1]["b"][1] == [3]


# --- the schema ---------------------------------------------------------------------------


def reports():
    """Real reports, each with every optional part it can have, and rows in every breakdown."""
    model = small_model()
    semantic = importlib.util.find_spec("egglog") is not None
    yield "grad", ga.audit(model.loss, model.params, measure=True, feed=model.make_feed(), repeats=1,
                           semantic=semantic)
    yield "counted", ga.audit(model.loss, model.params, materialize=False)
    yield "graph", ga.audit_graph(ga.separate_grads(model.loss, model.params), semantic=semantic)


@pytest.mark.parametrize("timings", [True, False])
def test_to_dict_of_real_reports_is_exactly_the_schema(timings):
    seen = set()
    for name, report in reports():
        data = report.to_dict(timings)
        assert mismatches(data, ReportData, name) == []
        duplicated = data["duplicated"]
        assert duplicated["top"] and duplicated["by_call"] and duplicated["by_op"], name  # rows were checked
        seen |= {key for key, value in data.items() if value is not None}
        if data["kind"] == "grad" and data["materialized"]:
            assert data["measured"] is not None and data["merged_difference"] is not None
            assert duplicated["by_forward_node"]
    expected = (ReportData.__required_keys__ | ReportData.__optional_keys__) - {"framework"}  # attached below
    assert seen == (expected if importlib.util.find_spec("egglog") else expected - {"semantic"})


def test_a_section_declares_its_keys_in_its_schema():
    report = grad_report()
    attached = dataclasses.replace(report, framework=CountsSection(name="Frame", calls={"separate": 6}))
    data = attached.to_dict()
    assert mismatches(data, ReportData) == []
    assert mismatches(data["framework"], type(attached.framework).schema, "framework") == []
    wrong = dataclasses.replace(report, framework=CountsSection(name="Frame", calls={"separate": 6.0}, extra=1))
    assert mismatches(wrong.to_dict()["framework"], CountsSection.schema, "framework") == [
        "framework: undeclared key 'extra' (CountsData)",
        "framework['calls']['separate']: float 6.0, not int",
    ]


def test_mismatches_names_every_departure():
    data = grad_report().to_dict()
    data["duplicated"].pop("bounds")
    data["duplicated"]["by_op"]["matmul"]["flops"] = True
    data["duplicated"]["top"][0]["calls"] = ("grad(cost, [w1])",)
    data["duplicated"]["extra"] = 0
    data["kind"] = "graf"
    data["forms"] = {"separate": data["forms"]["separate"]}
    assert mismatches(data, ReportData, "report") == [
        "report['kind']: 'graf', not one of ('grad', 'graph')",
        "report['forms']: matches none of GradForms | GraphForms",
        "report['duplicated']: no key 'bounds' (DuplicatedWork)",
        "report['duplicated']: undeclared key 'extra' (DuplicatedWork)",
        "report['duplicated']['by_op']['matmul']['flops']: bool True, not int",
        "report['duplicated']['top'][0]['calls']: tuple, not a list",
    ]
    assert mismatches(None, DuplicatedWork | None) == [] and mismatches(None, DuplicatedWork) == [
        "data: NoneType, not a dict (DuplicatedWork)"]
