"""Elementwise behaviour beyond the op database: weak Python ints that overflow, complex
ordering."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx


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
