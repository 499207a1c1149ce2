"""What every installed front-end does alike, checked once for all of them (and for the toy front-end
written from outside graphaudit): its target is recognised by it and by no front-end asked before it,
it audits through the shared driver, its merged form is the joint form, its report survives a JSON
round trip and matches the schema exactly, and options it cannot honour are refused in one line.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from frontends.toy import toy_frontend
from graphaudit.analysis.schema import ReportData, mismatches
from graphaudit.frontends import cli_frontends
from graphaudit.frontends.common import AuditOptions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, function: str = "target"):
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)()


def toy_target():
    from frontends.toy.test_toy import mlp

    loss, params, inputs, _ = mlp()
    return loss, params, inputs


def own_graph():
    import graphaudit as ga

    model = ga.models.deep_chain(depth=3, width=4, batch=2)
    return model.loss, model.params


CASES = {  # front-end name -> (the module it needs, a target of it)
    "PyTorch": ("torch", lambda: example("torch_seed_mlp")),
    "JAX": ("jax", lambda: example("jax_seed_mlp")),
    "PyMC": ("pymc", lambda: example("pymc_eight_schools", "model")),
    "PyTensor": ("pytensor", lambda: example("pytensor_seed", "target")),
    "graphaudit graph": ("numpy", own_graph),
    "Toy": ("numpy", toy_target),
}


def frontends_with_the_toy() -> list:
    frontends = cli_frontends()
    return [*frontends[:-1], toy_frontend.CLI, frontends[-1]]


@pytest.mark.parametrize("name", list(CASES))
def test_a_front_end_recognises_its_target_audits_it_and_reports_in_the_one_schema(name, monkeypatch):
    module, build = CASES[name]
    pytest.importorskip(module)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import their neighbours
    target = build()
    recognised = [(frontend, t) for frontend in frontends_with_the_toy()
                  if (t := frontend.recognise(target, f"{name}.py:target")) is not None]
    frontend, parsed = recognised[0]  # the command line takes the first that recognises it
    assert frontend.name == name
    report = frontend.audit(parsed, AuditOptions(repeats=1), {})
    assert report.merged_equals_joint is True and report.duplicated["nodes"] > 0
    data = report.to_dict(timings=False)
    assert json.loads(json.dumps(data)) == data
    assert mismatches(data, ReportData, name) == []


def test_options_the_separate_form_needs_are_refused_in_one_line_for_every_front_end():
    for option in ("measure", "compile_check", "semantic"):
        with pytest.raises(ValueError, match=rf"^audit: {option}=True needs the separate form built; drop "
                                             "materialize=False$"):
            AuditOptions(materialize=False, **{option: True})
    with pytest.raises(ValueError, match=r"^audit: repeats must be >= 1, got 0$"):
        AuditOptions(repeats=0)
