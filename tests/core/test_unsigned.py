"""uint64 values of 2^63 and above (stored as int64) order, divide, shift and convert as
unsigned numbers, as upstream's do."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same


def _u64(seed, n=64):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    # edge values: both halves, the boundary, and small numbers
    x[:8] = np.array([0, 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1, 7, 2**32], np.uint64)
    return x


BINARY = ["less", "less_equal", "greater", "greater_equal", "maximum", "minimum",
          "floor_divide", "remainder", "divide", "equal", "not_equal", "add", "subtract",
          "multiply"]


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("small_rhs", [False, True])
def test_binary(op, small_rhs):
    x = _u64(0)
    y = _u64(1)
    if small_rhs:  # divisors below 2^63 take the halving path of the division
        y = y % np.uint64(1000)
    assert_same(getattr(mx, op)(mx.array(x), mx.array(y)),
                getattr(mlx, op)(mlx.array(x), mlx.array(y)), msg=op)


@pytest.mark.parametrize("shift", [0, 1, 5, 63])
def test_right_shift(shift):
    x = _u64(2)
    s = np.full_like(x, shift)
    assert_same(mx.right_shift(mx.array(x), mx.array(s)),
                mlx.right_shift(mlx.array(x), mlx.array(s)))


@pytest.mark.parametrize("fn", [
    lambda m, a: m.abs(a), lambda m, a: m.sign(a), lambda m, a: a.astype(m.float32),
    lambda m, a: a.astype(m.float64), lambda m, a: m.sqrt(a), lambda m, a: a > 5,
    lambda m, a: m.clip(a, 4, 2**40), lambda m, a: m.sort(a), lambda m, a: m.argmax(a),
    lambda m, a: a.max(), lambda m, a: a.mean(), lambda m, a: m.cummax(a),
    lambda m, a: m.searchsorted(m.sort(a), a[::-1]), lambda m, a: m.topk(a, 3)])
def test_unary_and_mixed(fn):
    x = _u64(3)
    assert_same(fn(mx, mx.array(x)), fn(mlx, mlx.array(x)))


def test_power_with_exponents_of_2_63_and_above():
    base = np.array([0, 1, 2, 3, 2**64 - 1, 2**63 + 5], np.uint64)
    exps = np.array([2**63, 2**64 - 1, 2**63 + 1, 2**64 - 2, 3, 5], np.uint64)
    assert_same(mx.power(mx.array(base), mx.array(exps)),
                mlx.power(mlx.array(base), mlx.array(exps)))
    assert_same(mx.array(base) ** -1, mlx.array(base) ** -1)
