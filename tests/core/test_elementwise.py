"""Elementwise behaviour beyond the op database: weak Python ints that overflow, complex
ordering."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same


@pytest.mark.parametrize("dtype,value", [("uint8", -1), ("uint8", 300), ("int8", 200),
                                         ("int8", -129), ("int16", 40000),
                                         ("uint32", 2 ** 32), ("int32", 2 ** 31)])
def test_python_int_that_does_not_fit_raises(dtype, value):
    for m in (mx, mlx):
        a = m.array([1], dtype=getattr(m, dtype))
        with pytest.raises(ValueError, match=f"Converting {value} to {dtype} would result"):
            m.add(a, value)
        with pytest.raises(ValueError):
            _ = value * a


@pytest.mark.parametrize("dtype,value", [("uint8", 255), ("int8", -128), ("uint64", -1),
                                         ("bool_", 5), ("float16", 10 ** 6)])
def test_python_int_that_fits_or_wraps_matches_upstream(dtype, value):
    got = mx.add(mx.array([1], dtype=getattr(mx, dtype)), value)
    want = mlx.add(mlx.array([1], dtype=getattr(mlx, dtype)), value)
    assert str(got.dtype) == str(want.dtype)
    np.testing.assert_array_equal(np.array(got), np.array(want))


@pytest.mark.parametrize("op", ["less", "less_equal", "greater", "greater_equal",
                                "maximum", "minimum"])
def test_complex_order_is_lexicographic(op):
    a, b = [1 + 1j, 1 + 2j, 2 + 0j, 1 + 1j, -3 + 9j], [1 + 2j, 1 + 1j, 1 + 5j, 1 + 1j, -3 - 9j]
    got = getattr(mx, op)(mx.array(a), mx.array(b))
    want = getattr(mlx, op)(mlx.array(a), mlx.array(b))
    np.testing.assert_array_equal(np.array(got), np.array(want))


def test_negative_of_bool_message_matches_upstream():
    with pytest.raises(ValueError) as up:
        mlx.negative(mlx.array([True, False]))
    with pytest.raises(ValueError) as got:
        mx.negative(mx.array([True, False]))
    assert str(got.value) == str(up.value)


def _parts(a):
    # real and imaginary parts apart: a nan in either must match on its own
    a = np.array(a)
    return np.stack([a.real, a.imag]) if a.dtype.kind == "c" else a


def _same(got, want):
    assert str(got.dtype) == str(want.dtype)
    np.testing.assert_array_equal(_parts(got), _parts(want))


@pytest.mark.parametrize("value", [2 ** 31, 2 ** 32, -2 ** 31 - 1, 2 ** 63 - 1, -2 ** 63])
@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "divide", "floor_divide",
                                "maximum", "less", "bitwise_xor"])
def test_python_int_beyond_int32_wraps_with_a_bool_array(op, value):
    for rev in (False, True):
        def args(m):
            a = m.array([True, False])
            return (value, a) if rev else (a, value)
        _same(getattr(mx, op)(*args(mx)), getattr(mlx, op)(*args(mlx)))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
def test_integer_power_with_negative_exponents(dtype):
    base, exps = [0, 1, -1, 2, -2, 3, 1, -1], [-1, -2, -3, -1, -1, 2, 0, 3]
    def powers(m):
        dt = getattr(m, dtype)
        a = m.array(base, dtype=dt)
        return [a ** -1, m.power(a, m.array(exps, dtype=dt)), m.power(-1, m.array(exps, dt))]
    for got, want in zip(powers(mx), powers(mlx)):
        _same(got, want)


def test_complex_to_bool_is_true_for_any_nonzero_part():
    v = [0j, 1j, 1 + 0j, -0.0j, complex(0, float("nan")), 1e-40j, 2 + 3j]
    _same(mx.array(v).astype(mx.bool_), mlx.array(v).astype(mlx.bool_))


@pytest.mark.parametrize("dtype", ["bool_", "int32", "uint8", "float32", "complex64"])
def test_floor_divide_by_complex_divides(dtype):
    for s in (1j, 2 + 1j, 2.0):
        got = mx.array([1, 0, 3], dtype=getattr(mx, dtype)) // s
        want = mlx.array([1, 0, 3], dtype=getattr(mlx, dtype)) // s
        _same(got, want)


@pytest.mark.parametrize("op", ["add", "subtract", "maximum", "minimum"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), complex(0, float("nan")),
                                   complex(float("nan"), 0)])
def test_complex_with_nan_and_inf_works_on_the_parts(op, value):
    v = [1 + 2j, 0j, -1 - 1j, complex(float("inf"), 1)]
    for rev in (False, True):
        def args(m):
            return (value, m.array(v)) if rev else (m.array(v), value)
        _same(getattr(mx, op)(*args(mx)), getattr(mlx, op)(*args(mlx)))


@pytest.mark.parametrize("op", ["bitwise_and", "bitwise_or", "left_shift", "right_shift"])
@pytest.mark.parametrize("lhs,rhs", [("uint64", "int8"), ("int8", "float32"), ("complex64", 1.0),
                                     ("float16", 1), ("bool_", 1.5), (True, "float32")])
def test_bitwise_on_inexact_types_message_matches_upstream(op, lhs, rhs):
    def arg(m, v):
        return m.array([1], dtype=getattr(m, v)) if isinstance(v, str) else v
    with pytest.raises(RuntimeError) as up:
        getattr(mlx, op)(arg(mlx, lhs), arg(mlx, rhs))
    with pytest.raises(RuntimeError) as got:
        getattr(mx, op)(arg(mx, lhs), arg(mx, rhs))
    assert str(got.value) == str(up.value)


@pytest.mark.parametrize("dtype,values,decimals", [
    ("int32", [15, 25, -15, -25, 104], -1), ("int32", [15, 25], 1), ("uint8", [250, 255], -1),
    ("bool_", [True, False], -1), ("bool_", [True, False], 0), ("int64", [1234567], -2),
    ("int16", [15], -1),
])
def test_round_of_integers_scales_as_upstream(dtype, values, decimals):
    # (in float32 and back: round(15, -1) is 20, and 255 to tens wraps in uint8)
    got = mx.round(mx.array(values, getattr(mx, dtype)), decimals)
    want = mlx.round(mlx.array(values, getattr(mlx, dtype)), decimals)
    assert_same(got, want)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_min_max_ties_and_nans_as_upstream(op, dtype):
    """A tie (0.0 against -0.0) gives the second argument, and its gradient goes there;
    a nan gets no gradient on either side."""
    nan = float("nan")
    a = [1.0, 2.0, 1.0, nan, 1.0, nan, 0.0, -0.0, -0.0]
    b = [2.0, 1.0, 1.0, 1.0, nan, nan, -0.0, 0.0, -0.0]
    res = []
    for m in (mx, mlx):
        x, y = m.array(a).astype(getattr(m, dtype)), m.array(b).astype(getattr(m, dtype))
        f = getattr(m, op)
        out = f(x, y).astype(m.float32)
        grads = m.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(x, y)
        res.append((np.array(out), [np.array(g.astype(m.float32)) for g in grads]))
    (out, grads), (want, wgrads) = res
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(want))
    for g, w in zip(grads, wgrads):
        np.testing.assert_array_equal(g, w)


def test_activations_of_signed_zero_and_nan_as_upstream():
    import mlx.nn as mlx_nn

    import ember.nn as nn
    vals = [-1.0, 0.0, -0.0, 1.0, float("nan")]
    for name in ("relu", "relu6", "leaky_relu", "hard_tanh", "hardswish"):
        got_f, want_f = getattr(nn, name), getattr(mlx_nn, name)
        x, xm = mx.array(vals), mlx.array(vals)
        np.testing.assert_array_equal(np.signbit(np.array(got_f(x))),
                                      np.signbit(np.array(want_f(xm))), err_msg=name)
        np.testing.assert_array_equal(np.array(mx.grad(lambda v: got_f(v).sum())(x)),
                                      np.array(mlx.grad(lambda v: want_f(v).sum())(xm)),
                                      err_msg=name)
