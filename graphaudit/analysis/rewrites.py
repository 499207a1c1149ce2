"""The rewrite rules of semantic merging: one rule a line, each with why it holds.

A rule is egglog text over the terms that :mod:`graphaudit.analysis.semantic` loads:
``(Op1 op attrs x)``, ``(Op2 op attrs x y)``, ``(Op3 op attrs x y z)``, where ``op`` is the
op's name (or the graphaudit op it stands for: ``Op.same_as``) and ``attrs`` numbers its
attrs. Facts the loader states about the graph:

- ``(Ty t)``: a number for the shape and dtype of term ``t``, known for every loaded node
  (a term a rule makes has none until it joins a loaded node's class). Rules that drop an
  operand ask that the result's ``Ty`` equal the operand's: broadcasting and type promotion
  would otherwise change the value's shape or dtype (``x * 1`` with a bigger ``1``).
- ``(Zero t)``, ``(One t)``: ``t`` is a constant all of whose elements are 0 (or 1).
- ``(Matrix ty)``: the type number ``ty`` is of rank 2.
- ``(SwapAxes a)``: attrs ``a`` are ``axes=(1, 0)``; ``(IdentityPerm a)``: ``axes=(0, 1, ...)``;
  ``(InversePerms p q)``: transposing by ``p`` then by ``q`` puts every axis back.
- ``(NoAttrs a)``: attrs ``a`` are empty; ``(Square a)``: attrs ``a`` are ``y=2`` (an integer power).
- ``(DotSwap i op d q)``: node ``i`` is a framework's general dot product whose operands,
  swapped, in op ``op`` with attrs ``d``, give its value transposed by ``q`` (``Op.swapped``).

Imported ops that are graphaudit ops under another name are loaded as those ops, so the
same rules see them: each front-end's table says which (``ImportedOp.same_as``), as it says
which of its ops are general dot products whose operands can swap (``ImportedOp.swapped``).

``exact`` rules give equal values, bit for bit up to the sign of a zero (``-0.0 + 0.0`` is
``+0.0``). The others hold up to float rounding: a merge that rests on one merges values that
may differ in their last bits, and reports say so (:attr:`Rule.exact`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    exact: bool
    text: str  # one egglog rule or rewrite, without its :ruleset


EXACT, ROUNDING = True, False

RULES = (
    # IEEE addition is commutative and broadcasting is symmetric: same shape, dtype and bits.
    Rule("add-commutes", EXACT, '(rewrite (Op2 "add" a x y) (Op2 "add" a y x))'),
    # IEEE multiplication is commutative (one correctly rounded product).
    Rule("mul-commutes", EXACT, '(rewrite (Op2 "mul" a x y) (Op2 "mul" a y x))'),
    # maximum picks one of its operands (NaN from either side wins either way).
    Rule("maximum-commutes", EXACT, '(rewrite (Op2 "maximum" a x y) (Op2 "maximum" a y x))'),
    # == is symmetric.
    Rule("equal-commutes", EXACT, '(rewrite (Op2 "equal" a x y) (Op2 "equal" a y x))'),
    # Negation flips the sign bit: twice gives x back.
    Rule("neg-neg", EXACT, '(rewrite (Op1 "neg" a (Op1 "neg" b x)) x)'),
    # IEEE subtraction is defined as adding the negation.
    Rule("sub-is-add-neg", EXACT, '(rewrite (Op2 "sub" a x y) (Op2 "add" a x (Op1 "neg" a y)))'),
    # Round-to-nearest is symmetric in sign: (-x)*y rounds to -(x*y).
    Rule("neg-out-of-mul", EXACT, '(rewrite (Op2 "mul" a (Op1 "neg" b x) y) (Op1 "neg" b (Op2 "mul" a x y)))'),
    # Transposing back by the inverse permutation moves no element.
    Rule("transpose-transpose", EXACT,
         '(rule ((= e (Op1 "transpose" q (Op1 "transpose" p x))) (InversePerms p q)) ((union e x)))'),
    # Transposing by the identity permutation moves no element.
    Rule("transpose-identity", EXACT, '(rule ((= e (Op1 "transpose" p x)) (IdentityPerm p)) ((union e x)))'),
    # Reshaping twice reads the elements in the same (C) order as reshaping once.
    Rule("reshape-reshape", EXACT, '(rewrite (Op1 "reshape" s (Op1 "reshape" r x)) (Op1 "reshape" s x))'),
    # A reshape to the shape x already has changes nothing.
    Rule("reshape-identity", EXACT, '(rule ((= e (Op1 "reshape" s x)) (= (Ty e) (Ty x))) ((union e x)))'),
    # Broadcasting a broadcast repeats the same elements as broadcasting once.
    Rule("broadcast-broadcast", EXACT,
         '(rewrite (Op1 "broadcast_to" s (Op1 "broadcast_to" r x)) (Op1 "broadcast_to" s x))'),
    # A broadcast to the shape x already has changes nothing.
    Rule("broadcast-identity", EXACT, '(rule ((= e (Op1 "broadcast_to" s x)) (= (Ty e) (Ty x))) ((union e x)))'),
    # x + 0 is x (as a value: -0.0 + 0.0 is +0.0) when 0 neither widens nor promotes x.
    Rule("add-zero", EXACT, '(rule ((= e (Op2 "add" a x z)) (Zero z) (= (Ty e) (Ty x))) ((union e x)))'),
    # x - 0 is x, bit for bit, when 0 neither widens nor promotes x.
    Rule("sub-zero", EXACT, '(rule ((= e (Op2 "sub" a x z)) (Zero z) (= (Ty e) (Ty x))) ((union e x)))'),
    # x * 1 is x, bit for bit, when 1 neither widens nor promotes x.
    Rule("mul-one", EXACT, '(rule ((= e (Op2 "mul" a x o)) (One o) (= (Ty e) (Ty x))) ((union e x)))'),
    # x / 1 is x, bit for bit, when 1 neither widens nor promotes x.
    Rule("div-one", EXACT, '(rule ((= e (Op2 "div" a x o)) (One o) (= (Ty e) (Ty x))) ((union e x)))'),
    # (A @ B)^T = B^T @ A^T for matrices: the same sums, which a BLAS may accumulate in another order.
    Rule("transpose-of-matmul", ROUNDING,
         '(rule ((= e (Op1 "transpose" s (Op2 "matmul" a x y))) (SwapAxes s) (= (Ty x) tx) (Matrix tx) '
         '(= (Ty y) ty) (Matrix ty)) ((union e (Op2 "matmul" a (Op1 "transpose" s y) (Op1 "transpose" s x)))))'),
    # A framework's integer power 2 is computed as x * x (how tanh's derivative 1 - t**2 is often written).
    Rule("square-is-mul", EXACT, '(rule ((= e (Op1 "integer_pow" a x)) (Square a)) ((union e (Op2 "mul" 0 x x))))'),
    # A general dot product of (x, y) is the one of (y, x) with its free axes swapped back: the same sums,
    # maybe in another order (a front-end's table says which ops are such products: ``swapped``).
    Rule("dot-general-swapped", ROUNDING,
         '(rule ((DotSwap i op d q) (= e (N i)) (= e (Op2 g a x y))) '
         '((union e (Op1 "transpose" q (Op2 op d y x)))))'),
    # sigmoid(x) = 1 / (1 + exp(-x)): the definition, which numpy and sigmoid's own code round differently.
    Rule("sigmoid-through-exp", ROUNDING,
         '(rule ((= e (Op2 "div" a o (Op2 "add" b p (Op1 "exp" c (Op1 "neg" d x))))) (One o) (One p) '
         '(= (Ty e) (Ty x)) (NoAttrs c)) ((union e (Op1 "sigmoid" c x))))'),
)

# Reassociation changes rounding, and grows the e-graph without bound (each sum of n terms has
# exponentially many bracketings): off unless asked for, and then bounded by the limits.
ASSOCIATIVITY = (
    # (x + y) + z = x + (y + z) in real arithmetic; floats round the two differently.
    Rule("add-associates", ROUNDING, '(rewrite (Op2 "add" a (Op2 "add" b x y) z) (Op2 "add" a x (Op2 "add" b y z)))'),
    # (x * y) * z = x * (y * z) in real arithmetic; floats round the two differently.
    Rule("mul-associates", ROUNDING, '(rewrite (Op2 "mul" a (Op2 "mul" b x y) z) (Op2 "mul" a x (Op2 "mul" b y z)))'),
)
