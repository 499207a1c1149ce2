"""PyTorch's aten ops as graphaudit ops: the table of how each one counts.

An FX node calling ``aten.<name>.<overload>`` is imported as op ``aten.<name>`` (the overload
is an attr), registered with its row of :data:`TABLE` the first time it is seen; an op with
no row is kept and reported as having no cost rule, never dropped. Every node runs through
PyTorch itself (:func:`graphaudit.frontends.torch.aten.run_aten`): rows carry no numpy code.

A node's tensor arguments are its inputs in schema order, and its ``tensors`` attr names
each one (``"weight"``, ``"tensors[2]"``): :func:`tensor_input` finds one by name, so rules
read the arguments they mean whichever optional tensors are absent.

Conventions (:mod:`graphaudit.analysis.cost`), and where aten needs more:

- Products: ``2*m*k*n`` per matrix product, as ``torch.utils.flop_counter.flop_registry``
  counts them. A product kernel counts its products only (the registry's convention, so that
  matmul FLOPs agree with it and with graphaudit's own ``matmul``): ``addmm``'s and a
  convolution's bias add, attention's softmax, ``convolution_backward``'s grad_bias are left
  out. Convolutions and attention kernels as the registry counts them.
- A kernel with several results is imported as one node per result used: a forward kernel's
  by-products (layer norm's mean and rstd, max pooling's indices, attention's logsumexp,
  nll_loss's total weight) cost nothing, result 0 carries the kernel; a backward kernel's
  results (``convolution_backward``, ``native_layer_norm_backward``, ...) each cost what
  computing that one result takes, since separate grad calls ask for one result each.
- Linear algebra (kind ``"linalg"``: factorizations and solves, not products): LAPACK's dense counts, a
  multiply-add 2 FLOPs as for matmul (LU ``2n^3/3``, Cholesky ``n^3/3``, inverse ``2n^3``, a triangular
  solve ``n^2`` per right-hand side), per matrix times the batch; flop_registry has none. A kernel's
  by-products (LU, pivots, ``info``) cost nothing; the checks that read ``info`` return nothing and are
  not imported (:mod:`.importer`).
- Elementwise ops one FLOP per output element; the ``*_backward`` of an activation the FLOPs
  of its formula per element, stated in its row; in-place variants (``add_``) as their value.
- Views (``view``, ``t``, ``expand``, ``select``, ``split`` outputs, ...) write no bytes;
  copies (``clone``, ``cat``, ``_to_copy``, ``index_select``, ...) write their output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from graphaudit.frontends.common import ATTR_OUTPUT, ImportedOp, OpTable
from graphaudit.core.describe import shape_text
from graphaudit.frontends.torch.aten import ATTR_TENSORS, run_aten
from graphaudit.frontends.torch.equivalents import SAME_AS
from graphaudit.core.graph import Node
from graphaudit.core.ops import elementwise_cost, no_flops, per_element, reduction_cost


def tensor_input(node: Node, name: str) -> Node | None:
    """The input of ``node`` that is its tensor argument ``name``; None when that optional tensor was None."""
    names = node.attr(ATTR_TENSORS, ())
    return node.inputs[names.index(name)] if name in names else None


def _output(node: Node) -> int:
    return node.attr(ATTR_OUTPUT, 0)


# --- cost rules --------------------------------------------------------------------------


def product(first: str) -> Callable[[Node], int]:
    """``2 * out.size * k``: one multiply-add per output element and contracted index (``first``'s last axis)."""

    def cost(node: Node) -> int:
        return 2 * node.size * tensor_input(node, first).shape[-1]

    cost.__doc__ = f"2 * out.size * {first}.shape[-1]: one multiply-add per output element and contracted index."
    return cost


def conv_products(x_shape: tuple, w_shape: tuple, out_shape: tuple, transposed: bool) -> int:
    """The registry's convolution count: ``2 *`` each element of the output (of the input, when
    transposed) times the kernel elements behind it (``w[1:]``: input channels per group x window)."""
    return 2 * math.prod(x_shape if transposed else out_shape) * math.prod(w_shape[1:])


def _swap(shape: tuple) -> tuple:
    """Batch and channel axes exchanged: grad_weight as a convolution of the input with grad_output."""
    return (shape[1], shape[0], *shape[2:])


def convolution_flops(node: Node) -> int:
    """A convolution's multiply-adds (see :func:`conv_products`)."""
    return conv_products(tensor_input(node, "input").shape, tensor_input(node, "weight").shape, node.shape,
                         node.attr("transposed"))


def convolution_backward_flops(node: Node) -> int:
    """One result of ``convolution_backward``: grad_input a (transposed) convolution of grad_output with the
    weight, grad_weight a convolution of the input with grad_output; grad_bias, a sum, no products.

    As flop_registry counts them, except a grouped grad_weight: the registry multiplies by every input
    channel, not a group's, so counts it ``groups`` times; here it costs what the forward costs.
    """
    grad_out, x, w = (tensor_input(node, n).shape for n in ("grad_output", "input", "weight"))
    transposed = node.attr("transposed")
    output = _output(node)
    if output == 0:
        return conv_products(grad_out, w, node.shape, not transposed)
    if output == 1:
        x, grad_out = (grad_out, x) if transposed else (x, grad_out)
        return conv_products(_swap(x), _swap(grad_out), _swap(node.shape), False)
    return 0


def _attention_shapes(node: Node) -> tuple[int, int, int, int, int]:
    """``(batch * heads, query length, key length, query/key features, value features)``."""
    q, k, v = (tensor_input(node, n).shape for n in ("query", "key", "value"))
    return math.prod(q[:-2]), q[-2], k[-2], q[-1], v[-1]


def attention_flops(node: Node) -> int:
    """Result 0 of an attention kernel: ``q @ k^T`` and ``scores @ v`` (the registry's count; the softmax
    and the mask are left out, as there); the logsumexp by-product nothing."""
    if _output(node) != 0:
        return 0
    bh, sq, sk, d, dv = _attention_shapes(node)
    return 2 * bh * sq * sk * (d + dv)


def attention_backward_flops(node: Node) -> int:
    """One result of an attention backward kernel: the registry's five products, split by result.

    grad_query carries what all three results share (recomputing ``q @ k^T``, and
    ``grad_out @ v^T``) and its own ``grad_scores @ k``; grad_key ``grad_scores^T @ q``; grad_value
    ``probs^T @ grad_out``. The three results together are the registry's count.
    """
    bh, sq, sk, d, dv = _attention_shapes(node)
    own = {0: sq * sk * d, 1: sq * sk * d, 2: sq * sk * dv}[_output(node)]
    shared = sq * sk * (d + dv) if _output(node) == 0 else 0
    return 2 * bh * (own + shared)


def per_element_of(count: int, name: str) -> Callable[[Node], int]:
    """``count`` FLOPs per element of tensor argument ``name`` (a backward kernel that walks its grad_output)."""

    def cost(node: Node) -> int:
        return count * tensor_input(node, name).size

    cost.__doc__ = f"{count} FLOPs per element of {name}."
    return cost


def by_output(*rules: Callable[[Node], int]) -> Callable[[Node], int]:
    """A multi-result kernel: ``rules[i]`` costs result ``i``."""

    def cost(node: Node) -> int:
        return rules[_output(node)](node)

    return cost


def _window(node: Node) -> int:
    """Elements of a 2-d pooling window (``kernel_size`` of one int means a square)."""
    kernel = node.attr("kernel_size")
    return math.prod(kernel) if len(kernel) > 1 else kernel[0] ** 2


def pool_flops(node: Node) -> int:
    """One FLOP (compare or add) per window element of each output element; max pooling's indices nothing."""
    return node.size * _window(node) if _output(node) == 0 else 0


def pool_backward_flops(node: Node) -> int:
    """Average pooling's backward: each grad_output element spread over its window, one FLOP each."""
    return tensor_input(node, "grad_output").size * _window(node)


# --- linear algebra ------------------------------------------------------------------------
# LAPACK's dense counts (Golub & Van Loan, "Matrix Computations"; LAPACK Working Note 41), leading terms, with
# a multiply-add 2 FLOPs as for matmul: per matrix (rounded down), times the batch (the leading dims).


def lu_factor_flops(m: int, n: int) -> int:
    """LU with partial pivoting of an m x n matrix: ``2mnk - (m+n)k^2 + 2k^3/3``, k = min(m, n) (2n^3/3 square)."""
    k = min(m, n)
    return (6 * m * n * k - 3 * (m + n) * k * k + 2 * k ** 3) // 3


def cholesky_flops(m: int, n: int) -> int:
    """Cholesky of an n x n matrix: ``n^3/3``."""
    return n ** 3 // 3


def inverse_flops(m: int, n: int) -> int:
    """Inverse of an n x n matrix by LU: ``2n^3`` (LU 2n^3/3, then inverting from it 4n^3/3)."""
    return 2 * n ** 3


def cholesky_inverse_flops(m: int, n: int) -> int:
    """Inverse from an n x n Cholesky factor: ``2n^3/3`` (the factor's inverse n^3/3, its product with its
    transpose n^3/3)."""
    return 2 * n ** 3 // 3


def svd_flops(m: int, n: int, full_matrices: bool, compute_uv: bool) -> int:
    """Golub-Reinsch SVD of an m x n matrix, m >= n (else its transpose): singular values ``4mn^2 - 4n^3/3``;
    with U and V ``4m^2n + 8mn^2 + 9n^3``, thin U ``14mn^2 + 8n^3`` (G&VL's estimates: the QR sweeps iterate)."""
    m, n = max(m, n), min(m, n)
    if not compute_uv:
        return (12 * m * n * n - 4 * n ** 3) // 3
    return 4 * m * m * n + 8 * m * n * n + 9 * n ** 3 if full_matrices else 14 * m * n * n + 8 * n ** 3


def per_matrix(name: str, formula: Callable[..., int], *attrs: str) -> Callable[[Node], int]:
    """``formula(rows, columns, *attrs)`` of each matrix of tensor argument ``name``, times its batch."""

    def cost(node: Node) -> int:
        *batch, m, n = tensor_input(node, name).shape
        return math.prod(batch) * formula(m, n, *(node.attr(a) for a in attrs))

    cost.__doc__ = f"{formula.__name__} of each matrix of {name}, times its batch."
    return cost


def triangular_solves(count: int, name: str) -> Callable[[Node], int]:
    """``count`` triangular solves with the n x n matrix ``name``, each ``n^2`` per right-hand side (n^2/2
    multiply-adds): ``count * n`` per output element, the output holding the k solutions (batch broadcast)."""

    def cost(node: Node) -> int:
        return count * node.size * tensor_input(node, name).shape[-1]

    cost.__doc__ = f"{count} triangular solves: {count} * out.size * {name}.shape[-1]."
    return cost


def solve_flops(node: Node) -> int:
    """``linalg.solve``: LU of each matrix of A, then two triangular solves (L, then U) per column of B."""
    *batch, n, _ = tensor_input(node, "A").shape
    return math.prod(batch) * lu_factor_flops(n, n) + 2 * node.size * n


def scatter_flops(node: Node) -> int:
    """A scatter writes ``self`` with ``src``'s (or a value's) elements at ``index``: a copy; its ``reduce``
    overloads combine each with what is there, one FLOP per index element."""
    return tensor_input(node, "index").size if node.attr("reduce") is not None else 0


# --- what reports print beside a product ------------------------------------------------------

RESULTS = {  # the results of a multi-result backward kernel, by output index
    "aten.convolution_backward": ("grad_input", "grad_weight", "grad_bias"),
    "aten._scaled_dot_product_flash_attention_for_cpu_backward": ("grad_query", "grad_key", "grad_value"),
}


def operands(template: str, *names: str) -> Callable[[Node], str]:
    """``template`` filled with the shapes of tensor arguments ``names``, after the result's name for a
    backward kernel: ``128x16384 @ 16384x5000 + 5000``, ``grad_weight of conv 4x3x8x8 * 8x3x3x3``."""

    def text(node: Node) -> str:
        tensors = (tensor_input(node, name) for name in names)
        shapes = ("-" if tensor is None else shape_text(tensor.shape) for tensor in tensors)
        result = RESULTS.get(node.op)
        return (f"{result[_output(node)]} of " if result else "") + template.format(*shapes)

    return text


def _first_output(rule: Callable[[Node], int]) -> Callable[[Node], int]:
    """``rule`` for result 0 of a forward kernel; its by-products (statistics, total weight) cost nothing."""
    return by_output(rule, no_flops, no_flops)


# --- the table ---------------------------------------------------------------------------

# One FLOP per output element whatever the formula (gelu, silu, hardswish alike: graphaudit's convention for
# elementwise ops); bitwise_and combines masks (BERT's, Mistral's sliding window) as logical_and does.
ELEMENTWISE = """abs add bitwise_and bitwise_not ceil clamp clamp_max clamp_min cos div elu eq erf exp expm1 floor ge
gelu gt hardsigmoid hardswish hardtanh le leaky_relu lerp log log1p logical_and logical_not logical_or lt masked_fill
maximum minimum mul ne neg pow reciprocal relu rsqrt rsub sigmoid sign silu sin softplus sqrt square sub tanh
where""".split()
# in-place forms that autograd and nn modules dispatch (dropout's div_, LSTM cells' sigmoid_ and tanh_,
# torchvision's activations built with inplace=True)
INPLACE = "add_ div_ hardswish_ masked_fill_ mul_ relu_ sigmoid_ silu_ sub_ tanh_".split()
# max and min by a dim give values and indices, each costing the pass that amax's or argmax's would
REDUCTIONS = "amax amin any argmax argmin cumprod cumsum linalg_vector_norm logsumexp max mean min prod sum".split()
SOURCES = """empty empty_like empty_strided full full_like new_empty new_full new_ones new_zeros ones ones_like
scalar_tensor zeros zeros_like arange eye fill fill_ new_empty_strided""".split()
RANDOM = "bernoulli bernoulli_ native_dropout normal rand rand_like randn randn_like uniform_".split()
# Outputs that alias their input (no bytes written); detach is dropped by the importer, kept here for completeness.
# The in-place ones (as_strided_, transpose_: nn.GRU's and channels_last layouts) change a tensor's strides only.
VIEWS = """_reshape_alias _unsafe_view alias as_strided as_strided_ chunk detach diagonal expand permute select slice
split split_with_sizes squeeze t transpose transpose_ unbind unfold unsafe_split unsafe_split_with_sizes unsqueeze
view""".split()
# Data movement into a new buffer: bytes, no FLOPs. tril and triu keep or zero each element (a causal mask):
# a masked copy, no arithmetic. A *_scatter (a write into a view, as functionalization imports it) writes its
# whole output: its input with the view's elements replaced.
COPIES = """_to_copy cat clone constant_pad_nd copy copy_ diag_embed embedding flip gather index index_select
lift_fresh_copy repeat roll diagonal_backward select_backward slice_backward stack tril triu
as_strided_scatter diagonal_scatter select_scatter slice_scatter""".split()

TABLE_ROWS: dict[str, ImportedOp] = {
    # products: 2*m*k*n each; addmm and baddbmm the product only (flop_registry's convention)
    "aten.mm": ImportedOp("matmul", product("self")),
    "aten.addmm": ImportedOp("matmul", product("mat1"), operand_text=operands("{} @ {} + {}", "mat1", "mat2", "self")),
    "aten.bmm": ImportedOp("matmul", product("self")),
    "aten.baddbmm": ImportedOp("matmul", product("batch1"),
                               operand_text=operands("{} @ {} + {}", "batch1", "batch2", "self")),
    # convolutions as flop_registry counts them; each backward result on its own (grad_bias, a sum: none)
    "aten.convolution": ImportedOp("matmul", convolution_flops,
                                   operand_text=operands("conv {} * {}", "input", "weight")),
    "aten.convolution_backward": ImportedOp("matmul", convolution_backward_flops,
                                            operand_text=operands("conv {} * {}", "input", "weight")),
    # attention kernels: their products (flop_registry's sdpa counts); grad_query carries the shared ones
    "aten._scaled_dot_product_flash_attention_for_cpu": ImportedOp(
        "matmul", attention_flops, operand_text=operands("attention q {}, k {}, v {}", "query", "key", "value")),
    "aten._scaled_dot_product_flash_attention_for_cpu_backward": ImportedOp(
        "matmul", attention_backward_flops,
        operand_text=operands("attention q {}, k {}, v {}", "query", "key", "value")),
    # elementwise: one FLOP per output element (in-place forms alike)
    **{f"aten.{p}": ImportedOp("elementwise", elementwise_cost) for p in ELEMENTWISE + INPLACE},
    # activation backwards: the FLOPs of each formula per element
    "aten.sigmoid_backward": ImportedOp("elementwise", per_element(3)),  # g * y * (1 - y)
    "aten.tanh_backward": ImportedOp("elementwise", per_element(3)),  # g * (1 - y * y)
    "aten.threshold_backward": ImportedOp("elementwise", per_element(1)),  # where(x > t, g, 0): one select
    "aten.leaky_relu_backward": ImportedOp("elementwise", per_element(2)),  # g * where(x > 0, 1, slope)
    "aten.silu_backward": ImportedOp("elementwise", per_element(6)),  # s = sigmoid(x); g * s * (1 + x * (1 - s))
    "aten.gelu_backward": ImportedOp("elementwise", per_element(11)),  # g * (cdf + x * pdf): 4 + 4 + 3
    # piecewise: a select counts one FLOP with its range test, as threshold's and leaky_relu's do
    "aten.hardsigmoid_backward": ImportedOp("elementwise", per_element(2)),  # where(-3 < x < 3, g / 6, 0)
    "aten.hardswish_backward": ImportedOp("elementwise", per_element(4)),  # g * (x / 3 + .5) in [-3, 3]: 3, a select
    # reductions: one FLOP per input element
    **{f"aten.{p}": ImportedOp("reduction", reduction_cost) for p in REDUCTIONS},
    # softmax family: five passes (max, sub, exp, sum, div or log), as graphaudit's own softmax
    "aten._softmax": ImportedOp("elementwise", per_element(5)),
    "aten._log_softmax": ImportedOp("elementwise", per_element(5)),
    "aten._safe_softmax": ImportedOp("elementwise", per_element(5)),
    "aten._softmax_backward_data": ImportedOp("elementwise", per_element(4)),  # y * (g - sum(g * y))
    "aten._log_softmax_backward_data": ImportedOp("elementwise", per_element(4)),  # g - exp(y) * sum(g)
    # nll_loss: one FLOP per target element (the picked log-probabilities summed; their scatter back)
    "aten.nll_loss_forward": ImportedOp("reduction", _first_output(per_element_of(1, "target"))),
    "aten.nll_loss_backward": ImportedOp("data", per_element_of(1, "target")),
    "aten.nll_loss2d_forward": ImportedOp("reduction", _first_output(per_element_of(1, "target"))),  # per pixel
    "aten.nll_loss2d_backward": ImportedOp("data", per_element_of(1, "target")),
    # normalisation forward: 7 per element (mean 1, centre 1, square 1, variance sum 1, scale 1, affine 2)
    "aten.native_layer_norm": ImportedOp("reduction", _first_output(per_element(7))),
    "aten.native_batch_norm": ImportedOp("reduction", _first_output(per_element(7))),
    # normalisation backward, per element of grad_out: grad_input 10 (xhat 2, w*g 1, two sums with their
    # product 3, combine 4), grad_weight 4 (xhat 2, g * xhat, sum), grad_bias 1 (sum)
    "aten.native_layer_norm_backward": ImportedOp("reduction", by_output(
        per_element_of(10, "grad_out"), per_element_of(4, "grad_out"), per_element_of(1, "grad_out"))),
    "aten.native_batch_norm_backward": ImportedOp("reduction", by_output(
        per_element_of(10, "grad_out"), per_element_of(4, "grad_out"), per_element_of(1, "grad_out"))),
    # pooling: one compare or add per window element; backwards one per grad_output element (times the window
    # for average pooling, which spreads each); adaptive average pooling one per input element
    "aten.max_pool2d_with_indices": ImportedOp("reduction", pool_flops),
    "aten.max_pool2d_with_indices_backward": ImportedOp("data", per_element_of(1, "grad_output")),
    "aten.avg_pool2d": ImportedOp("reduction", pool_flops),
    "aten.avg_pool2d_backward": ImportedOp("data", pool_backward_flops),
    "aten._adaptive_avg_pool2d": ImportedOp("reduction", reduction_cost),
    "aten._adaptive_avg_pool2d_backward": ImportedOp("data", per_element_of(1, "self")),
    # embedding: a gather (a copy, in COPIES); its backward adds each grad_output row into the weight's
    "aten.embedding_dense_backward": ImportedOp("data", per_element_of(1, "grad_output")),
    # linear algebra (the counts above). A kernel with several results costs on the one its callers read: the
    # value (det's, a solve's, the inverse, the factor), slogdet's logabsdet (logdet and both backwards read it,
    # not always the sign), linalg.lu's L, the SVD's S; LU, pivots, info and the other factors cost nothing. A
    # program that reads only those (slogdet's sign, an SVD's U and Vh without S) would count the kernel as 0.
    "aten.linalg_cholesky_ex": ImportedOp("linalg", by_output(per_matrix("self", cholesky_flops), no_flops)),
    "aten.linalg_lu_factor_ex": ImportedOp("linalg", _first_output(per_matrix("A", lu_factor_flops))),
    "aten.linalg_lu": ImportedOp("linalg", by_output(no_flops, per_matrix("A", lu_factor_flops), no_flops)),
    "aten._linalg_det": ImportedOp("linalg", _first_output(per_matrix("A", lu_factor_flops))),  # prod(diag(U))
    "aten._linalg_slogdet": ImportedOp("linalg", by_output(
        no_flops, per_matrix("A", lu_factor_flops), no_flops, no_flops)),  # sum(log|diag(U)|)
    "aten.linalg_inv_ex": ImportedOp("linalg", by_output(per_matrix("A", inverse_flops), no_flops)),
    "aten.cholesky_inverse": ImportedOp("linalg", per_matrix("self", cholesky_inverse_flops)),
    "aten._linalg_solve_ex": ImportedOp("linalg", by_output(solve_flops, no_flops, no_flops, no_flops)),
    "aten.linalg_lu_solve": ImportedOp("linalg", triangular_solves(2, "LU")),  # with L, then U (pivots: free)
    "aten.cholesky_solve": ImportedOp("linalg", triangular_solves(2, "input2")),  # with L, then L^T
    "aten.linalg_solve_triangular": ImportedOp("linalg", triangular_solves(1, "self")),
    "aten.triangular_solve": ImportedOp("linalg", by_output(triangular_solves(1, "A"), no_flops)),  # A's copy: 0
    "aten._linalg_svd": ImportedOp("linalg", by_output(
        no_flops, per_matrix("A", svd_flops, "full_matrices", "compute_uv"), no_flops)),
    "aten.lu_unpack": ImportedOp("data", no_flops),  # P from the pivots, L and U masked copies of LU
    "aten.scatter": ImportedOp("data", scatter_flops),
    # random draws: one per output element (the importer keeps them apart: they are impure)
    **{f"aten.{p}": ImportedOp("random", elementwise_cost) for p in RANDOM},
    # sources: write their output, no arithmetic
    **{f"aten.{p}": ImportedOp("source", no_flops) for p in SOURCES},
    # views write no bytes; copies write their output
    **{f"aten.{p}": ImportedOp("data", no_flops, view=True) for p in VIEWS},
    **{f"aten.{p}": ImportedOp("data", no_flops) for p in COPIES},
}

# ... with the forms semantic merging reads (which aten ops are graphaudit's ops in disguise).
TABLE = OpTable("", {key: row._replace(same_as=SAME_AS.get(key)) for key, row in TABLE_ROWS.items()},
                fallback_impl=run_aten)
