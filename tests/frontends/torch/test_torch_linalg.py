"""frontends/torch: linear algebra. Energies whose forces are their gradients (a loss on the forces: double
backward through inv, det, solve, cholesky, ...), each factorization's and solve's FLOP rule against its dense
count, and calls that return nothing (linalg's error checks), which the importer drops.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.fx.experimental.proxy_tensor import make_fx  # noqa: E402

import torch_models as tm  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.analysis.cost import node_flops  # noqa: E402
from graphaudit.core.graph import placeholder  # noqa: E402
from graphaudit.frontends.torch import audit, audit_function, from_fx, named_leaves  # noqa: E402
from graphaudit.frontends.torch.aten import numpy_dtype  # noqa: E402

aten = torch.ops.aten


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


# --- energies and their forces ------------------------------------------------------------------

N, ATOMS = 4, 3  # matrices n x n, one per row of the positions x (ATOMS x N)


def _quadratic(matrix_times_x):
    """``x^T M x / 2`` summed over the rows of x, given ``M x`` as an (atoms, n, 1) tensor."""
    return lambda A, x: 0.5 * (x.unsqueeze(-1) * matrix_times_x(A, x.unsqueeze(-1))).sum()


ENERGIES = {  # E(A(x), x), each through one linear algebra function of torch
    "inv": _quadratic(lambda A, x: torch.linalg.inv(A) @ x),
    "det": lambda A, x: torch.linalg.det(A).sum(),
    "slogdet": lambda A, x: torch.linalg.slogdet(A).logabsdet.sum(),
    "logdet": lambda A, x: torch.logdet(A).sum(),
    "solve": _quadratic(lambda A, x: torch.linalg.solve(A, x)),
    "cholesky": lambda A, x: 2 * torch.linalg.cholesky(A).diagonal(dim1=-2, dim2=-1).log().sum(),
    "cholesky_solve": _quadratic(lambda A, x: torch.cholesky_solve(x, torch.linalg.cholesky(A))),
    "solve_triangular": lambda A, x: 0.5 * (
        torch.linalg.solve_triangular(torch.linalg.cholesky(A), x.unsqueeze(-1), upper=False) ** 2).sum(),
}


class Energy(torch.nn.Module):
    """``E(x)`` through ``A(x) = W W^T + I + diag(c x^2)`` (symmetric positive definite for c >= 0), one per atom.

    ``written``: the diagonal added in place, through a view (the program then writes, and the importer reads
    its functionalized trace)."""

    def __init__(self, energy, written=False):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.W = torch.nn.Parameter(torch.randn(N, N, dtype=torch.float64, generator=generator) / 2)
        self.c = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64))
        self.energy, self.written = energy, written

    def forward(self, x):
        if self.written:
            A = (self.W @ self.W.T).expand(x.shape[0], N, N).clone()
            A.diagonal(dim1=-2, dim2=-1).add_(1 + self.c * x * x)
        else:
            A = self.W @ self.W.T + torch.eye(N, dtype=torch.float64) + torch.diag_embed(self.c * x * x)
        return self.energy(A, x)


def forces(model, x):
    """``-dE/dx``, differentiable (``create_graph=True``): forces a loss can be taken on."""
    x = x.detach().requires_grad_(True)
    return -torch.autograd.grad(model(x), x, create_graph=True)[0]


def force_loss(model, x, target):
    """Force matching: the squared error of the forces, whose gradients run the energy's double backward."""
    return ((forces(model, x) - target) ** 2).sum()


def positions():
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(ATOMS, N, dtype=torch.float64, generator=generator),
            torch.randn(ATOMS, N, dtype=torch.float64, generator=generator))


@pytest.mark.parametrize("written", [False, True], ids=["A built", "A written in place"])
@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_force_loss_audits_and_its_forms_evaluate_to_eager_gradients(name, written):
    model, (x, target) = Energy(ENERGIES[name], written), positions()
    report = audit(force_loss, x, target, params=model)
    assert report.wrt == ["W", "c"] and report.merged_equals_joint
    assert all(form.cost.no_cost_rule == () for form in report.forms.values())
    feed = named_leaves(force_loss, x, target, params=model)
    eager = torch.autograd.grad(force_loss(model, x, target), [model.W, model.c])
    for form in ("separate", "joint", "separate_merged", "joint_merged"):
        for wrt, got, want in zip(report.wrt, ga.evaluate(report.forms[form].outputs, feed), eager, strict=True):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{name} {form} {wrt}")


def test_the_inverse_is_costed_once_in_the_joint_form():
    """``inv``'s gradients, first and second, are products with the inverse: the forward's one inverse of the
    atoms' matrices is the only linear algebra kernel, ``ATOMS * 2n^3`` FLOPs (inverse by LU)."""
    model, (x, target) = Energy(ENERGIES["inv"]), positions()
    report = audit(force_loss, x, target, params=model)
    nodes = ga.topological_order(report.forms["joint"].outputs)
    kernels = [n for n in nodes if n.op.startswith(("aten.linalg", "aten._linalg"))]
    assert [(n.op, n.attr("output")) for n in kernels] == [("aten.linalg_inv_ex", 0)]
    assert node_flops(kernels[0]) == ATOMS * 2 * N ** 3


def test_audit_function_of_energy_forces_and_force_loss_gradients():
    """All the energies at once, through ``audit_function``: its forms evaluate to what eager PyTorch computes."""
    model, (x, target) = Energy(lambda A, x: sum(energy(A, x) for energy in ENERGIES.values())), positions()

    def program(model, x, target):
        loss = force_loss(model, x, target)
        return [model(x), forces(model, x), loss, *torch.autograd.grad(loss, [model.W, model.c])]

    report = audit_function(program, x, target, params=model)
    assert all(form.cost.no_cost_rule == () for form in report.forms.values())
    feed = named_leaves(program, x, target, params=model)
    eager = program(model, x, target)
    for form in ("original", "original_merged"):
        for i, (got, want) in enumerate(zip(ga.evaluate(report.forms[form].outputs, feed), eager, strict=True)):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{form} {i}")


# --- each kernel's FLOPs --------------------------------------------------------------------------
# LAPACK's dense counts, a multiply-add 2 FLOPs, per matrix (rounded down) times the batch. For batch 2 of
# n x n matrices, n = 3, and k = 4 right-hand sides:
BATCH, n, k = 2, 3, 4
LU = 2 * n ** 3 // 3  # LU with partial pivoting: 2n^3/3 = 18
CHOLESKY = n ** 3 // 3  # n^3/3 = 9
INVERSE = 2 * n ** 3  # LU 2n^3/3, then the inverse from it 4n^3/3: 54
CHOLESKY_INVERSE = 2 * n ** 3 // 3  # the factor's inverse n^3/3, times its transpose n^3/3: 18
TRIANGULAR = n * n * k  # one triangular solve, n^2/2 multiply-adds per right-hand side: 36
SVD_THIN, SVD_FULL, SVD_VALUES = 22 * n ** 3, 21 * n ** 3, 4 * n ** 3 - 4 * n ** 3 // 3  # Golub-Reinsch (G&VL)


def _matrices():
    generator = torch.Generator().manual_seed(2)
    W = torch.randn(BATCH, n, n, dtype=torch.float64, generator=generator)
    A = W @ W.mT + torch.eye(n, dtype=torch.float64)
    B = torch.randn(BATCH, n, k, dtype=torch.float64, generator=generator)
    return A, torch.linalg.cholesky(A), B


A, L, B = _matrices()
LU_FACTOR, PIVOTS = torch.linalg.lu_factor(A)
WIDE = torch.randn(BATCH, 5, n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))  # 5 x 3

CASES = {  # call, its arguments, each result's FLOPs
    "cholesky": (aten.linalg_cholesky_ex.default, (A,), [BATCH * CHOLESKY, 0]),
    "cholesky n=4, 64/3 rounded down": (aten.linalg_cholesky_ex.default, (torch.eye(4).expand(BATCH, 4, 4),),
                                        [BATCH * 21, 0]),
    "lu_factor": (aten.linalg_lu_factor_ex.default, (A,), [BATCH * LU, 0, 0]),
    # m x n, m >= n: mn^2 - n^3/3 (LAPACK Working Note 41), 45 - 9 for 5 x 3
    "lu_factor 5x3": (aten.linalg_lu_factor_ex.default, (WIDE,), [BATCH * 36, 0, 0]),
    "lu_factor 3x5": (aten.linalg_lu_factor_ex.default, (WIDE.mT,), [BATCH * 36, 0, 0]),
    "lu": (aten.linalg_lu.default, (A,), [0, BATCH * LU, 0]),
    "det": (aten._linalg_det.default, (A,), [BATCH * LU, 0, 0]),
    "slogdet": (aten._linalg_slogdet.default, (A,), [0, BATCH * LU, 0, 0]),
    "inv": (aten.linalg_inv_ex.default, (A,), [BATCH * INVERSE, 0]),
    "cholesky_inverse": (aten.cholesky_inverse.default, (L,), [BATCH * CHOLESKY_INVERSE]),
    "solve": (aten._linalg_solve_ex.default, (A, B), [BATCH * (LU + 2 * TRIANGULAR), 0, 0, 0]),
    # one A for a batch of B: A factored once, the solves per batch element
    "solve broadcast": (aten._linalg_solve_ex.default, (A[0], B), [LU + BATCH * 2 * TRIANGULAR, 0, 0, 0]),
    "solve a vector each": (aten._linalg_solve_ex.default, (A, B[..., 0]), [BATCH * (LU + 2 * n * n), 0, 0, 0]),
    "lu_solve": (aten.linalg_lu_solve.default, (LU_FACTOR, PIVOTS, B), [BATCH * 2 * TRIANGULAR]),
    "cholesky_solve": (aten.cholesky_solve.default, (B, L), [BATCH * 2 * TRIANGULAR]),
    "solve_triangular": (aten.linalg_solve_triangular.default, (L, B), [BATCH * TRIANGULAR], {"upper": False}),
    "solve_triangular X A = B": (aten.linalg_solve_triangular.default, (L, B.mT), [BATCH * TRIANGULAR],
                                 {"upper": False, "left": False}),
    "solve_triangular broadcast": (aten.linalg_solve_triangular.default, (L[0], B), [BATCH * TRIANGULAR],
                                   {"upper": False}),
    "triangular_solve": (aten.triangular_solve.default, (B, L, False), [BATCH * TRIANGULAR, 0]),
    "svd thin": (aten._linalg_svd.default, (A,), [0, BATCH * SVD_THIN, 0]),
    "svd full": (aten._linalg_svd.default, (A, True), [0, BATCH * SVD_FULL, 0]),
    "svd values": (aten._linalg_svd.default, (A, False, False), [0, BATCH * SVD_VALUES, 0]),
    # m x n, m >= n, thin: 14mn^2 + 8n^3 = 630 + 216 for 5 x 3, and the same for its transpose
    "svd 3x5": (aten._linalg_svd.default, (WIDE.mT,), [0, BATCH * 846, 0]),
    "lu_unpack": (aten.lu_unpack.default, (LU_FACTOR, PIVOTS), [0, 0, 0]),
    # values and indices each a pass over the input, as amax and argmax: 2 x 3 x 3
    "max by a dim": (aten.max.dim, (A, 1), [BATCH * n * n, BATCH * n * n]),
    "cumprod": (aten.cumprod.default, (B, 1), [BATCH * n * k]),
    "scatter": (aten.scatter.value, (B, 1, torch.zeros(BATCH, 1, k, dtype=torch.int64), 1.0), [0]),
    "scatter, adding": (aten.scatter.value_reduce, (B, 1, torch.zeros(BATCH, 1, k, dtype=torch.int64), 1.0),
                        [BATCH * k], {"reduce": "add"}),
    "diag_embed": (aten.diag_embed.default, (B,), [0]),
    "diagonal_backward": (aten.diagonal_backward.default, (B[..., 0], (BATCH, n, n), 0, -2, -1), [0]),
}


def test_torch_counts_none_of_these_kernels():
    """torch's own flop counter has no formula for linear algebra: the counts above are graphaudit's."""
    from torch.utils.flop_counter import flop_registry

    assert {case[0].overloadpacket for case in CASES.values()} & set(flop_registry) == set()


def imported_call(target, args, kwargs):
    """The nodes :func:`from_fx` makes of one call (one per result, every result read), and a feed for them."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]

    def call(*values):
        swapped = iter(values)
        result = target(*(next(swapped) if isinstance(a, torch.Tensor) else a for a in args), **kwargs)
        return list(result) if isinstance(result, tuple) else [result]

    leaves = [placeholder(f"t{i}", tuple(t.shape), numpy_dtype(t.dtype)) for i, t in enumerate(tensors)]
    outputs, _, _ = from_fx(make_fx(call)(*tensors), leaves, [])
    return outputs, {leaf: t.numpy() for leaf, t in zip(leaves, tensors)}, call(*tensors)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_result_costs_its_dense_count_and_evaluates_as_pytorch(case):
    target, args, flops, *kwargs = CASES[case]
    outputs, feed, eager = imported_call(target, args, kwargs[0] if kwargs else {})
    assert [node_flops(o) for o in outputs] == flops
    for got, want in zip(ga.evaluate(outputs, feed), eager, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12, err_msg=case)


# --- calls that return nothing -------------------------------------------------------------------------


def _cholesky_program(check):
    def program(params, x):
        factor, info = torch.linalg.cholesky_ex(params["W"] @ params["W"].T + torch.diag(x * x + 1))
        check(factor, info)
        return [factor]

    return program


CHECKS = {
    "linalg's error check": lambda factor, info: aten._linalg_check_errors(info, "linalg.cholesky", is_matrix=True),
    "an asynchronous assert": lambda factor, info: torch._assert_async(info == 0),
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_a_call_that_returns_nothing_is_dropped(check):
    """The same program with and without a check: the trace has the check's call (and its condition's), the
    imported graph not one node more."""
    params = {"W": torch.randn(3, 3, dtype=torch.float64, requires_grad=True)}
    x = torch.randn(3, dtype=torch.float64)
    plain = audit_function(_cholesky_program(lambda factor, info: None), x, params=params)
    checked = audit_function(_cholesky_program(CHECKS[check]), x, params=params)
    extra_calls = 1 if check == "linalg's error check" else 2  # the assert's own, and info == 0
    fx_nodes = [report.framework["fx_nodes"]["original"]["nodes"] for report in (plain, checked)]
    assert fx_nodes[1] == fx_nodes[0] + extra_calls
    graphs = [ga.topological_order(report.forms["original"].outputs) for report in (plain, checked)]
    assert [node.op for node in graphs[1]] == [node.op for node in graphs[0]]
    assert checked.forms["original"].cost.flops == plain.forms["original"].cost.flops > 0
    program = _cholesky_program(CHECKS[check])
    value = ga.evaluate(checked.forms["original"].outputs, named_leaves(program, x, params=params))[0]
    np.testing.assert_allclose(value, program(params, x)[0].detach().numpy(), rtol=1e-12)


def test_a_call_that_returns_nothing_but_writes_is_refused():
    """Dropped only when it computes nothing: ``_foreach_add_`` returns nothing and writes its tensors."""

    def program(a):
        torch._foreach_add_([a], 1.0)
        return a * 2

    with pytest.raises(ValueError, match=r"_foreach_add_.*writes to its argument self"):
        from_fx(make_fx(program)(torch.zeros(3)), [placeholder("a", (3,), np.dtype("float32"))], [])
