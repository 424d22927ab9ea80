"""Elementwise behaviour beyond the op database: weak Python ints that overflow, complex
ordering."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of, on_cpu


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


# -- special values: signed zeros, infinities, nans, subnormals, overflow ----------------

_INF, _NAN = float("inf"), float("nan")


def _same_special(got, want):
    """Equal values with the signs of zeros, any nan against any nan (parts apart)."""
    assert str(got.dtype) == str(want.dtype) and got.shape == want.shape
    g, w = _parts(np_of(got)), _parts(np_of(want))
    np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(np.signbit(g) | np.isnan(g), np.signbit(w) | np.isnan(w))


def _close_special(got, want, tol_dtype=None):
    """Close values (the same nans, infinities and zeros), the signs of zeros as upstream's."""
    assert_same(got, want, tol_dtype)
    g, w = _parts(np_of(got)), _parts(np_of(want))
    np.testing.assert_array_equal(np.isinf(g), np.isinf(w))
    np.testing.assert_array_equal(g == 0, w == 0)  # (a tolerance would pass 0 for 1e-8)
    np.testing.assert_array_equal(np.signbit(g[w == 0]), np.signbit(w[w == 0]))


def _lengths(values):
    # torch's vectorized loop and its scalar one (short arrays, tails) can differ
    return [values, values * (100 // len(values) + 1)]


def _arrays(m, values, dtype):
    return m.array(np.array(values, np.float32 if dtype != "float64" else np.float64)) \
        .astype(getattr(m, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@on_cpu
def test_sin_of_negative_zero_and_sinh_cosh_near_overflow_as_upstream(dtype):
    big = {"float32": 89.0, "bfloat16": 89.0, "float16": 11.0, "float64": 710.0}[dtype]
    for v in _lengths([-0.0, 0.0, big, -big, 1.0, _INF, _NAN]):
        for op in ("sin", "sinh", "cosh"):
            got = getattr(mx, op)(_arrays(mx, v, dtype))
            want = getattr(mlx, op)(_arrays(mlx, v, dtype))
            # (upstream's float64 sin has float32's precision)
            _close_special(got, want, "float32" if dtype == "float64" else None)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "complex64"])
@pytest.mark.parametrize("decimals", [1, 2, -1])
@on_cpu
def test_round_with_decimals_scales_in_the_dtype_as_upstream(dtype, decimals):
    # upstream multiplies by 10^d in the array's dtype, rounds, and multiplies by 10^-d:
    # round(88.7, 1) is 88.70000458 in float32, and float16 overflows near 65504
    v = [88.7, -88.7, 11.1, 65504.0, -745.0, 2.5, 0.125, 1.0, -0.0, _INF, _NAN, 3.3e38]
    if dtype == "complex64":
        c = np.zeros(len(v), np.complex64)
        c.real, c.imag = v, v[::-1]

        def arr(m):
            return m.array(c)
    else:
        def arr(m):
            return _arrays(m, v, dtype)
    _same_special(mx.round(arr(mx), decimals), mlx.round(arr(mlx), decimals))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16",
                                   "uint32", "uint64"])
@pytest.mark.parametrize("op", ["left_shift", "right_shift"])
def test_shift_counts_of_the_width_or_more_and_negative_as_upstream(dtype, op):
    # upstream shifts by the count modulo 32 (64 for 64-bit types), as x86 does; (its
    # array-by-scalar loop differs in its vectorized part, so both operands are arrays)
    info = np.iinfo(dtype)
    counts = [c for c in (0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, -1, -7, -32, -128)
              if info.min <= c <= info.max]
    base = [1, 3, info.max, info.min, info.min + 1]
    pairs = [(b, c) for b in base for c in counts]
    for p in _lengths(pairs):
        def args(m):
            return (m.array(np.array([a for a, _ in p], dtype)),
                    m.array(np.array([c for _, c in p], dtype)))
        _same(getattr(mx, op)(*args(mx)), getattr(mlx, op)(*args(mlx)))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_remainder_by_a_subnormal_or_of_a_huge_value_as_upstream(dtype):
    # ATen's vectorized remainder gives nan where x / y overflows
    tiny = 1e-310 if dtype == "float64" else 1e-40
    big = 1.7e308 if dtype == "float64" else 3.3e38
    xs = [1.0, -1.0, 0.5, -2.5, 3.0, big, -big, 0.0, -0.0, _INF]
    ys = [tiny, -tiny, 0.5, -0.5, 3.0, _NAN]
    pairs = [(a, b) for a in xs for b in ys]
    for p in _lengths(pairs):
        got = mx.remainder(_arrays(mx, [a for a, _ in p], dtype),
                           _arrays(mx, [b for _, b in p], dtype))
        want = mlx.remainder(_arrays(mlx, [a for a, _ in p], dtype),
                             _arrays(mlx, [b for _, b in p], dtype))
        np.testing.assert_array_equal(np_of(got), np_of(want))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@on_cpu
def test_logaddexp_of_infinities_values_and_gradients_as_upstream(dtype):
    xs = [-0.0, 0.0, -_INF, _INF, 1.0, -_INF, _INF, _NAN]
    ys = [-_INF, -_INF, -0.0, -_INF, 2.0, -_INF, _INF, 1.0]
    for x, y in zip(_lengths(xs), _lengths(ys)):
        res = []
        for m in (mx, mlx):
            a, b = _arrays(m, x, dtype), _arrays(m, y, dtype)
            out = m.logaddexp(a, b)
            grads = m.grad(lambda a, b: m.logaddexp(a, b).sum(), argnums=(0, 1))(a, b)
            res.append([out, *grads])
        _same_special(res[0][0], res[1][0])
        for got, want in zip(res[0][1:], res[1][1:]):
            _close_special(got, want)


@on_cpu
def test_float16_abs_and_negative_keep_upstreams_nan_bits():
    # NaNs made by casts (upstream's 0x7D00, sign kept) pass through abs and negative
    v = [_NAN, -_NAN, 1.0, -0.0] * 30
    for n in (4, len(v)):
        for op in ("abs", "negative"):
            got = getattr(mx, op)(mx.array(v[:n]).astype(mx.float16)).view(mx.uint16)
            want = getattr(mlx, op)(mlx.array(v[:n]).astype(mlx.float16)).view(mlx.uint16)
            _same(got, want)


_CSPECIAL = [complex(a, b) for a in (0.0, -0.0, _INF, -_INF, _NAN, 1.0, -2.0, 1e30, 1e-40)
             for b in (0.0, -0.0, _INF, _NAN, 1.0, -1e30)]


@pytest.mark.parametrize("op", ["multiply", "divide", "logaddexp"])
@on_cpu
def test_complex_binary_ops_with_infinities_and_zeros_as_upstream(op):
    # upstream follows C99's recovery of infinities (and divides in double precision)
    pairs = [(a, b) for a in _CSPECIAL for b in _CSPECIAL]
    for p in (pairs[:5], pairs):
        def args(m):
            return (m.array(np.array([a for a, _ in p], np.complex64)),
                    m.array(np.array([b for _, b in p], np.complex64)))
        got, want = getattr(mx, op)(*args(mx)), getattr(mlx, op)(*args(mlx))
        if op == "logaddexp":  # (its complex exp and log1p round apart)
            _close_special(got, want)
        else:
            _same_special(got, want)


@pytest.mark.parametrize("op", ["square", "reciprocal", "rsqrt", "sign", "negative",
                                "degrees"])
@on_cpu
def test_complex_unary_ops_with_infinities_and_zeros_as_upstream(op):
    for v in (_CSPECIAL[:5], _CSPECIAL * 2):
        got = getattr(mx, op)(mx.array(np.array(v, np.complex64)))
        want = getattr(mlx, op)(mlx.array(np.array(v, np.complex64)))
        _same_special(got, want)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_gradients_at_special_points_as_upstream(dtype):
    """divide's by y as -(g * x) / y^2 (a nan for inf / huge), power's by the exponent 0
    where the power is 0, tan / tanh through 1 / cos^2 and 1 / cosh^2 (not 0 for a large
    tanh argument), log10's as g / x / log(10) (x * log(10) overflows float16)."""
    big = {"float32": 3.3e38, "float16": 65504.0, "float64": 1.7e308}[dtype]
    xs = [_INF, -_INF, big, 0.0, 0.0, -0.0, 0.5, 2.0, 10.0, -20.0]
    ys = [big, big, big, 0.5, 2.0, 3.0, 200.0, 0.0, 1.0, -1.0]
    res = []
    for m in (mx, mlx):
        a, b = _arrays(m, xs, dtype), _arrays(m, ys, dtype)
        out = []
        for op in ("divide", "power"):
            f = getattr(m, op)
            out += m.grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(a, b)
            out += m.jvp(f, [a, b], [m.ones_like(a), m.ones_like(b)])[1]
        for op in ("tanh", "tan", "log2", "log10", "log1p"):
            f = getattr(m, op)
            out.append(m.grad(lambda a: f(a).sum())(a))
        res.append(out)
    for got, want in zip(*res):
        # (upstream's float64 cos and cosh have float32's precision)
        _close_special(got, want, "float32" if dtype == "float64" else None)


@on_cpu
def test_float16_sigmoid_is_zero_where_exp_overflows_as_upstream():
    v = np.arange(0xC880, 0xCC80, dtype=np.uint16).view(np.float16)  # -9.0 .. -18.0
    for n in (5, len(v)):
        got = mx.sigmoid(mx.array(v[-n:]))
        want = mlx.sigmoid(mlx.array(v[-n:]))
        np.testing.assert_array_equal(np.array(got) == 0, np.array(want) == 0)
        assert_same(got, want)


def test_nan_to_num_of_complex_and_float64_as_upstream():
    inf, nan = float("inf"), float("nan")
    vals = [complex(inf, 0), complex(-inf, 0), complex(inf, 1), complex(0, inf),
            complex(nan, 0), complex(0, nan), complex(inf, nan), 1 + 2j]
    got = mx.nan_to_num(mx.array(vals), nan=2.0, posinf=3.0, neginf=-3.0)
    want = mlx.nan_to_num(mlx.array(vals), nan=2.0, posinf=3.0, neginf=-3.0)
    np.testing.assert_array_equal(np.array(got), np.array(want))
    for dt in ("float64", "complex64"):
        for kw in ({}, {"posinf": 1.0}, {"neginf": -1.0}):
            msgs = []
            for m in (mx, mlx):
                with pytest.raises(ValueError) as e:
                    m.nan_to_num(m.array([1.0]).astype(getattr(m, dt)), **kw)
                msgs.append(str(e.value))
            assert msgs[0] == msgs[1]
        a = mx.nan_to_num(mx.array([nan, inf]).astype(getattr(mx, dt)), posinf=1.0, neginf=2.0)
        b = mlx.nan_to_num(mlx.array([nan, inf]).astype(getattr(mlx, dt)), posinf=1.0,
                           neginf=2.0)
        np.testing.assert_array_equal(np.array(a), np.array(b))


def test_large_outputs_through_the_buffer_cache_match_upstream():
    """Elementwise outputs of 16 MB and more are written into reused buffers on the CPU;
    twice in a row (the second reuses the first's buffer) they equal upstream's."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 1024)).astype(np.float32)
    b = rng.integers(-3, 3, (4096, 4096)).astype(np.int8)
    cases = [lambda m: m.broadcast_to(m.array(a), (2, 2048, 1024)) + 1.5,
             lambda m: m.exp(m.concatenate([m.array(a), m.array(a)])),
             lambda m: m.greater(m.array(b), m.array(b[:1])),
             lambda m: m.maximum(m.array(b).astype(m.int16), m.array(b).T.astype(m.int16))]
    for f in cases:
        want = np.array(f(mlx))
        with mx.stream(mx.cpu):
            for _ in range(2):
                got = np.array(f(mx))
                assert got.dtype == want.dtype
                # (exp: upstream's approximation is off by an ulp here and there)
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8", "int64", "uint16",
                                   "bool_", "complex64"])
@on_cpu
def test_large_where_selects_bits_as_upstream(dtype):
    """where over 16K elements and more takes the bits of its branches on the CPU (zero
    signs, nan payloads), with broadcast and scalar branches."""
    rng = np.random.default_rng(1)
    n = 1 << 15
    c = rng.random((4, n // 4)) > 0.5
    x = rng.standard_normal((4, n // 4)) * 5
    x[0, :8] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 0.0]
    y = rng.standard_normal((1, n // 4)) * 5
    cases = [lambda m, a, b: m.where(m.array(c), a, b),
             lambda m, a, b: m.where(m.array(c), a, 0),
             lambda m, a, b: m.where(m.array(c), 1, 0),
             lambda m, a, b: m.where(m.array(c), 0, b)]
    for f in cases:
        res = []
        for m in (mx, mlx):
            a, b = (m.array(v).astype(getattr(m, dtype)) for v in (x, y))
            r = f(m, a, b)
            res.append(r.view(m.uint16) if r.dtype == m.bfloat16 else r)  # (for numpy)
        got, want = res
        assert str(got.dtype) == str(want.dtype)
        g, w = np.array(got), np.array(want)
        np.testing.assert_array_equal(g.view(np.uint8), w.view(np.uint8))


@on_cpu
def test_nans_of_inputs_outside_the_domain_print_as_upstream():
    """Short float32 arrays: the nan of sqrt/log/log2 of a negative input is negative
    and that of arcsin/arccos beyond 1 positive, as upstream's CPU kernels make them."""
    inf, nan = float("inf"), float("nan")
    vals = [-1.0, 2.0, -inf, nan, -0.0, 0.5, 3.0]
    for op in ("sqrt", "log", "log2", "arcsin", "arccos"):
        got, want = getattr(mx, op)(mx.array(vals)), getattr(mlx, op)(mlx.array(vals))
        assert str(got) == str(want), op


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@on_cpu
def test_sqrt_is_correctly_rounded_as_upstream(dtype):
    x = np.abs(np.random.default_rng(11).standard_normal(4096)) * 100
    x[:6] = [-1.0, -0.0, 0.0, np.inf, -np.inf, np.nan]
    got = np.array(mx.sqrt(mx.array(x.astype(dtype), getattr(mx, dtype))))
    want = np.array(mlx.sqrt(mlx.array(x.astype(dtype), getattr(mlx, dtype))))
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


@pytest.mark.parametrize("decimals", [1.5, None, "1", 2 ** 31, True, -1, 2])
def test_round_decimals_taken_as_upstream(decimals):
    x = [1.234, -5.678]
    try:
        want = mlx.round(mlx.array(x), decimals)
    except TypeError:
        with pytest.raises(TypeError):
            mx.round(mx.array(x), decimals)
        return
    assert_same(mx.round(mx.array(x), decimals), want)
