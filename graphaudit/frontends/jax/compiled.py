"""What XLA makes of the two forms: the optimised HLO's counts, and the jitted forms' run times.

:func:`xla_check` compiles the separate grads in one ``jit`` and the joint grad, with and
without XLA's CSE pass, and counts what the optimised HLO keeps (:func:`hlo_counts`);
:func:`timed_runs` gives the jitted forms to time, on arguments put on the device once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from graphaudit.analysis.timing import Run
from graphaudit.frontends import require
from graphaudit.frontends.jax.arguments import FlatFunction

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*)$")
_CONTRACTION_TARGET = re.compile(r'custom_call_target="[^"]*(?:matmul|conv|gemm)[^"]*"', re.IGNORECASE)


def _opcode(rest: str) -> str:
    """The opcode of an HLO instruction, given the text after ``name = `` (shape, then opcode)."""
    depth, position = 0, 0
    for position, char in enumerate(rest):  # skip the result shape, which may be a (nested) tuple
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == " " and depth == 0:
            break
    match = re.match(r"\s*([\w\-]+)\(", rest[position:])
    return match.group(1) if match else ""


def hlo_counts(text: str) -> dict[str, int]:
    """Instructions (in every computation, fused ones included) and dot/convolution ops of an HLO module."""
    instructions = dots = 0
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{") and not inside and ("(" in stripped or stripped.startswith("ENTRY")):
            inside = True
            continue
        if stripped == "}":
            inside = False
            continue
        if not inside:
            continue
        match = _INSTRUCTION.match(line)
        if match is None:
            continue
        instructions += 1
        opcode = _opcode(match.group(1))
        if opcode in ("dot", "convolution") or (opcode == "custom-call" and _CONTRACTION_TARGET.search(line)):
            dots += 1
    return {"instructions": instructions, "dots": dots}


def _compiled_counts(function: Callable, leaves: list, options: dict[str, str] | None = None) -> dict[str, Any]:
    jax = require("jax", "jax")
    start = time.perf_counter()
    lowered = jax.jit(function).lower(*leaves)
    compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
    seconds = time.perf_counter() - start
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    counts = hlo_counts(compiled.as_text())
    return {"nodes": counts["instructions"], "dots": counts["dots"], "flops": None if flops is None else int(flops),
            "seconds": seconds}


def xla_check(flat: FlatFunction, avals: list[Any]) -> dict[str, Any]:
    """What XLA keeps of the separate grads compiled in one jit and of the joint grad, with and without CSE."""
    jax = require("jax", "jax")
    leaves = [jax.ShapeDtypeStruct(aval.shape, aval.dtype) for aval in avals]
    rows = []
    for graph, options in (("optimised HLO", None),
                           ("optimised HLO, XLA's CSE pass disabled", {"xla_disable_hlo_passes": "cse"})):
        rows.append({
            "graph": graph,
            "separate": _compiled_counts(flat.separate_in_one, leaves, options),
            "joint": _compiled_counts(flat.joint(), leaves, options),
        })
    backend = jax.default_backend()
    return {"backend": backend, "title": f"XLA ({backend}): separate grads in one jit vs the joint grad", "rows": rows}


def timed_runs(flat: FlatFunction) -> tuple[str, dict[str, Run], dict[str, Any]]:
    """The jitted separate grads in one jit, the joint grad, and the separately jitted grads in turn.

    The arguments are put on the default device once, before any timing: handed host
    arrays, every call would copy them over first, and on an accelerator that copy can
    take longer than the gradients. The first, untimed run of each compiles it.
    """
    jax = require("jax", "jax")
    device = jax.devices()[0]
    leaves = jax.block_until_ready(jax.device_put(list(flat.leaves), device))
    in_one, joint = jax.jit(flat.separate_in_one), jax.jit(flat.joint())
    each = [jax.jit(flat.separate(group)) for group in range(len(flat.groups))]
    done = jax.block_until_ready  # a jitted call returns before its result is computed
    runs = {
        "joint": Run(lambda: done(joint(*leaves)), versus=None),
        "separate": Run(lambda: done(in_one(*leaves))),
        "separately jitted": Run(lambda: done([g(*leaves) for g in each])),
    }
    where = f"{device.platform}:{device.id} ({device.device_kind})"
    return f"jitted run time on {where}, arguments put on it once", runs, {"device": where}
