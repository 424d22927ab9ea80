"""Reductions and scans beyond the op database: errors, argument checking, edge values,
grads where upstream has special rules (ties, zeros), and the scans whose jvp upstream
lacks (checked against finite differences and our own vjp)."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of, on_cpu

INF = float("inf")
NAN = float("nan")

REDUCTIONS = ["sum", "prod", "max", "min", "all", "any", "mean", "var", "std", "logsumexp"]
SCANS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]


def _both(fn, *arrays, dtype=None):
    """fn on upstream and on Ember: (mlx result or exception, ember thunk)."""
    try:
        m = fn(mlx, *[mlx.array(a) if dtype is None else mlx.array(a).astype(getattr(mlx, dtype))
                      for a in arrays])
        mlx.eval(m)
    except Exception as err:  # noqa: BLE001 - any upstream error is the expectation
        m = err

    def ember():
        r = fn(mx, *[mx.array(a) if dtype is None else mx.array(a).astype(getattr(mx, dtype))
                     for a in arrays])
        mx.eval(r)
        return r
    return m, ember


def check(fn, *arrays, dtype=None, rtol=None):
    """Ember agrees with upstream: same value, or same exception type."""
    m, ember = _both(fn, *arrays, dtype=dtype)
    if isinstance(m, Exception):
        with pytest.raises(type(m)):
            ember()
        return
    assert_same(ember(), m, rtol=rtol)


# -- errors and argument checking -----------------------------------------------------

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("axis", [3, -4, [0, 3], [1, 1], [0, -3], (2, -1), 1.0, [1.5], "a",
                                  True, np.int64(-1), [np.int32(0)], range(2)])
def test_reduction_axes(op, axis):
    check(lambda m, x: getattr(m, op)(x, axis=axis), X)


@pytest.mark.parametrize("op", REDUCTIONS + ["argmax", "argmin"])
@pytest.mark.parametrize("keepdims", [1, None, "yes", np.bool_(True)])
def test_keepdims_must_be_bool(op, keepdims):
    check(lambda m, x: getattr(m, op)(x, axis=1, keepdims=keepdims), X)


@pytest.mark.parametrize("expr", [
    "m.sum(m.array(X), axis=3)", "m.max(m.array(X), axis=[1, -2])",
    "m.min(m.zeros((3, 0, 0)), axis=[2, 1])", "m.argmax(m.zeros((0, 3)), axis=1)",
    "m.argmin(m.array(X), axis=-4)", "m.logsumexp(m.zeros((3, 0)), axis=0)",
    "m.logsumexp(m.array(X), axis=(0, 0))", "m.softmax(m.array(X), axis=5)",
    "m.cumsum(m.array(X[0]), axis=2)", "m.mean(m.array(X), axis=-4)",
    "m.var(m.array(X), axis=3)", "m.std(m.array(X), axis=(1, 1))",
])
def test_reduction_error_messages(expr):
    """The exception type and upstream's words (some name the op, most do not; var and std
    report through mean)."""
    def run(m):
        try:
            m.eval(eval(expr, {"m": m, "X": X}))  # noqa: S307
        except Exception as e:  # noqa: BLE001 - compared below
            return type(e), str(e)
        return None
    want = run(mlx)
    assert want is not None and run(mx) == want


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("shape,axis", [((0, 3), None), ((0, 3), 0), ((0, 3), 1),
                                        ((3, 0, 2), [0, 2]), ((3, 0, 0), [2, 1]), ((0,), [])])
def test_max_min_of_empty(op, shape, axis):
    check(lambda m, x: getattr(m, op)(x, axis=axis), np.zeros(shape, np.float32))


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, -1, 2, -3, [0], (1,), 1.0, np.int64(1), True])
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 3)])
def test_arg_axes(op, axis, shape):
    check(lambda m, x: getattr(m, op)(x, axis=axis), np.ones(shape, np.float32))
    if shape or axis is not None:  # (upstream fails inside on 0-d with keepdims)
        check(lambda m, x: getattr(m, op)(x, axis=axis, keepdims=True),
              np.ones(shape, np.float32))


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("ddof", [0, 1, 2, 3, 5, -1, np.int64(1), True, 1.5, "1"])
def test_ddof(op, ddof):
    check(lambda m, x: getattr(m, op)(x, axis=0, ddof=ddof), X[:, 0])
    check(lambda m, x: getattr(m, op)(x, ddof=ddof), X[:, 0])


@pytest.mark.parametrize("op", SCANS)
@pytest.mark.parametrize("kw", [{"axis": 2}, {"axis": -3}, {"axis": [0]}, {"axis": 1.0},
                                {"axis": np.int64(1)}, {"axis": True}, {"reverse": 1},
                                {"inclusive": None}, {"reverse": np.bool_(True)}])
def test_scan_arguments(op, kw):
    check(lambda m, x: getattr(m, op)(x, **kw), X[0])


@pytest.mark.parametrize("op", SCANS)
def test_scan_of_0d(op):
    check(lambda m, x: getattr(m, op)(x), np.array(2.0, np.float32))
    check(lambda m, x: getattr(m, op)(x, axis=0), np.array(2.0, np.float32))


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dt", ["bool_", "int8", "uint16", "float16", "complex64"])
def test_scan_dtype_argument(op, dt):
    check(lambda m, x: getattr(m, op)(x, axis=1, dtype=getattr(m, dt)), X[0] - 5)
    check(lambda m, x: getattr(m, op)(x, dtype="float32"), X[0])


@pytest.mark.parametrize("op", ["softmax"])
@pytest.mark.parametrize("kw", [{"precise": 1}, {"axis": [1, 1]}, {"axis": 3},
                                {"axis": (0, -1)}, {"axis": -4}])
def test_softmax_arguments(op, kw):
    check(lambda m, x: m.softmax(x, **kw), X)


def test_stream_argument():
    for op in REDUCTIONS + SCANS + ["argmax", "softmax"]:
        r = getattr(mx, op)(mx.array(X), stream=mx.cpu)
        assert_same(r, getattr(mlx, op)(mlx.array(X), stream=mlx.cpu), msg=op)


# -- dtypes and values at the edges ----------------------------------------------------

WIDE = {"uint8": [200, 100, 255], "uint16": [65535, 2, 7], "uint32": [2**32 - 1, 5, 2**31],
        "uint64": [2**64 - 1, 2**63, 3], "int8": [127, 100, -128], "int16": [32767, 1, -2],
        "int32": [2**31 - 1, 1, -5], "int64": [2**63 - 1, 1, -(2**63)]}


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "argmax", "argmin", "cumsum",
                                "cumprod", "cummax", "cummin", "mean"])
@pytest.mark.parametrize("dt", sorted(WIDE))
def test_integer_widths_and_wrapping(op, dt):
    if op == "mean" and dt == "uint64":
        pytest.skip("astype(uint64 -> float32) of values >= 2**63 is wrong (shared AsType)")
    a = np.array(WIDE[dt], dtype=dt)
    check(lambda m, x: getattr(m, op)(x), a)
    check(lambda m, x: getattr(m, op)(x, axis=0, keepdims=True), a)
    if op.startswith("cum"):
        check(lambda m, x: getattr(m, op)(x, reverse=True, inclusive=False), a)


@pytest.mark.parametrize("op", ["cummax", "cummin", "cumsum", "cumprod", "logcumsumexp"])
@pytest.mark.parametrize("dt", ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int64",
                                "float16", "bfloat16", "complex64"])
def test_exclusive_scan_identities(op, dt):
    a = np.array([1, 0, 1, 1], dtype=np.float32)
    check(lambda m, x: getattr(m, op)(x, inclusive=False), a, dtype=dt)
    check(lambda m, x: getattr(m, op)(x, inclusive=False, reverse=True), a, dtype=dt)


@pytest.mark.parametrize("fn", [
    lambda m, x: m.max(x), lambda m, x: m.min(x), lambda m, x: m.argmax(x),
    lambda m, x: m.argmin(x), lambda m, x: m.cummax(x), lambda m, x: m.cummin(x),
    lambda m, x: m.logsumexp(x), lambda m, x: m.softmax(x), lambda m, x: m.logcumsumexp(x),
    lambda m, x: m.var(x), lambda m, x: m.mean(x), lambda m, x: m.any(x),
    lambda m, x: m.logsumexp(x, axis=[]), lambda m, x: m.softmax(x, axis=[]),
    lambda m, x: m.var(x, axis=[]), lambda m, x: m.var(x, axis=[], ddof=1),
])
@pytest.mark.parametrize("vals", [[1.0, NAN, 5.0, NAN], [-INF, -INF], [INF, 1.0], [-INF, 0.0],
                                  [INF, 0.0, INF], [3.0, 3.0, 1.0]])
def test_non_finite_and_ties(fn, vals):
    check(fn, np.array(vals, np.float32))


@pytest.mark.parametrize("fn", [
    lambda m, x: m.max(x), lambda m, x: m.min(x, axis=0), lambda m, x: m.argmax(x),
    lambda m, x: m.argmin(x), lambda m, x: m.cummax(x), lambda m, x: m.cummin(x, reverse=True),
    lambda m, x: m.var(x), lambda m, x: m.std(x, ddof=1), lambda m, x: m.logsumexp(x),
    lambda m, x: m.softmax(x), lambda m, x: m.logcumsumexp(x), lambda m, x: m.prod(x),
    lambda m, x: m.cumprod(x, inclusive=False), lambda m, x: m.mean(x),
    lambda m, x: m.cummax(x, inclusive=False),
])
def test_complex_ordering_and_values(fn):
    x = np.array([1 + 2j, 3 - 1j, 3 + 0j, -4 + 0j, 3 + 0j, 1 + 2j], np.complex64)
    check(fn, x)


@pytest.mark.parametrize("op", ["sum", "mean", "var", "logsumexp", "softmax", "cumsum",
                                "logcumsumexp", "prod", "max"])
def test_float64(op):
    a = np.linspace(-2, 2, 12).reshape(3, 4)
    m = getattr(mlx, op)(mlx.array(a, mlx.float64), axis=1, stream=mlx.cpu)
    e = getattr(mx, op)(mx.array(a, mx.float64), axis=1)
    assert_same(e, m, rtol=1e-6)  # upstream's exp is not correctly rounded


def test_var_is_two_pass():
    a = np.array([1e4 + 1, 1e4 + 2, 1e4 + 3], np.float32)
    check(lambda m, x: m.var(x), a)
    check(lambda m, x: m.std(x, ddof=1), a)


def test_softmax_precise_half():
    a = np.random.default_rng(0).uniform(-8, 8, (4, 300)).astype(np.float32)
    for dt in ("float16", "bfloat16"):
        check(lambda m, x: m.softmax(x, axis=-1, precise=True), a, dtype=dt)
        check(lambda m, x: m.softmax(x, axis=[0, 1], precise=True), a, dtype=dt)


def test_softmax_masked_rows():
    a = np.array([[-INF, 0.0, 1.0], [-INF, -INF, -INF]], np.float32)
    check(lambda m, x: m.softmax(x, axis=-1), a)
    check(lambda m, x: m.softmax(x, axis=-1, precise=True), a, dtype="float16")


@pytest.mark.parametrize("op", ["all", "any", "mean", "var", "std", "sum", "prod"])
@pytest.mark.parametrize("dt", ["float32", "int32", "bool_"])
@pytest.mark.parametrize("shape,axis", [((0,), None), ((0, 3), None), ((0, 3), 0),
                                        ((0, 3), 1), ((2, 0), [0, 1])])
def test_empty_reductions(op, dt, shape, axis):
    # made with zeros(): upstream reads garbage for empty arrays made from numpy
    m = getattr(mlx, op)(mlx.zeros(shape, getattr(mlx, dt)), axis=axis)
    e = getattr(mx, op)(mx.zeros(shape, getattr(mx, dt)), axis=axis)
    assert_same(e, m)


def test_sum_of_empty_axes_keeps_dtype():
    for dt in ("bool_", "int8", "uint16"):
        check(lambda m, x: m.sum(x, axis=[]), np.array([1, 0, 1]), dtype=dt)
        check(lambda m, x: m.prod(x, axis=()), np.array([1, 0, 1]), dtype=dt)
        check(lambda m, x: m.mean(x, axis=[]), np.array([1, 0, 1]), dtype=dt)


def test_reductions_are_lazy_and_build_one_node():
    x = mx.array(X)
    for op in ("sum", "max", "mean", "logsumexp", "var", "std", "argmax"):
        y = getattr(mx, op)(x, axis=1)
        assert y._data is None and y._inputs == (x,), op
    y = mx.softmax(x, axis=-1)
    assert y._data is None and y._inputs == (x,)
    y = mx.cumsum(x, axis=1)
    assert y._data is None and y._inputs == (x,)


# -- scans step by step, as upstream ---------------------------------------------------

SCAN_KW = [{}, {"reverse": True}, {"inclusive": False}, {"reverse": True, "inclusive": False}]


def check_bits(fn, x, dtype):
    """Ember's result has upstream's dtype and every bit (NaN payloads aside)."""
    m, ember = _both(fn, x, dtype=dtype)
    e = ember()
    assert e.dtype == getattr(mx, str(m.dtype).split(".")[-1]) and e.shape == tuple(m.shape)
    e, m = np_of(e), np_of(m)
    if e.dtype.kind == "c":
        e, m = np.stack([e.real, e.imag]), np.stack([m.real, m.imag])
    np.testing.assert_array_equal(np.where(np.isnan(e), np.nan, e).view(f"u{e.itemsize}"),
                                  np.where(np.isnan(m), np.nan, m).view(f"u{m.itemsize}"))


def _with_nans(dtype):
    x = np.random.default_rng(3).integers(-3, 4, (4, 9)).astype(np.float32) * 0.5
    x[:, 0], x[1, 4], x[2, -1], x[3, 2:4] = NAN, NAN, NAN, NAN
    x[0, 0] = 1.0
    if dtype == "complex64":
        y = x + 1j * np.random.default_rng(4).integers(-1, 2, x.shape)
        y[0, 5], y[1, 2] = complex(2, NAN), complex(0.5, NAN)
        return y.astype(np.complex64)
    return x


@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "complex64"])
@pytest.mark.parametrize("kw", SCAN_KW)
@pytest.mark.parametrize("axis", [1, 0, None])
@on_cpu
def test_cummax_cummin_nans_as_upstream(op, dtype, kw, axis):
    # float32 NaNs propagate; the half types' step to 0 from a NaN; complex NaNs never
    # compare, so which value a step keeps depends on the order of the steps
    check_bits(lambda m, a: getattr(m, op)(a, axis=axis, **kw), _with_nans(dtype),
               dtype=dtype if dtype != "complex64" else None)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("dtype", ["complex64", "float16", "bfloat16"])
@pytest.mark.parametrize("kw", SCAN_KW)
@on_cpu
def test_cummax_cummin_signed_zero_ties(op, dtype, kw):
    # (float32 inputs: Ember's cummin may keep the later of -0.0 and 0.0; see _scan_values)
    x = np.array([[0.0, -0.0, 0.0, 1.0, -0.0], [-0.0, 0.0, -0.0, 2.0, 0.0],
                  [3.0, -0.0, 0.0, -1.0, -0.0]], np.float32)
    if dtype == "complex64":
        x = (x + 1j * x[::-1]).astype(np.complex64)
    for axis in (0, 1):
        check_bits(lambda m, a: getattr(m, op)(a, axis=axis, **kw), x,
                   dtype=None if dtype == "complex64" else dtype)


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("shape,axis", [((3, 700), -1), ((900,), 0), ((40, 30), 0),
                                        ((5, 20, 3), 1), ((0, 4), 0), ((4, 0), 1)])
@pytest.mark.parametrize("kw", SCAN_KW)
@on_cpu
def test_float16_scans_round_each_step(op, shape, axis, kw):
    rng = np.random.default_rng(6)
    x = rng.uniform(0.8, 1.25, shape) if op == "cumprod" else rng.standard_normal(shape)
    x = x.astype(np.float32)
    if x.size:
        x.reshape(-1)[:3] = [-0.0, -0.0, np.inf]
    check_bits(lambda m, a: getattr(m, op)(a, axis=axis, **kw), x, dtype="float16")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("shape", [(1100, 40), (2, 600, 30), (300, 20)])
@pytest.mark.parametrize("kw", SCAN_KW)
@on_cpu
def test_half_scans_along_the_last_axis_of_many_round_each_step(dtype, op, shape, kw):
    # one step over all the scans at a time
    rng = np.random.default_rng(7)
    x = rng.uniform(0.8, 1.25, shape) if op == "cumprod" else rng.standard_normal(shape)
    check_bits(lambda m, a: getattr(m, op)(a, axis=-1, **kw), x.astype(np.float32),
               dtype=dtype)


DIRECTIONS = SCAN_KW  # (a later SCAN_KW holds axes)


def _half_scan_input(kind, shape, op):
    """Inputs whose stepwise rounding differs from a wider accumulation rounded once."""
    rng = np.random.default_rng(sum(map(ord, kind)) + len(shape))
    if kind == "probs":  # top-p's cumsum of sorted probabilities
        p = rng.dirichlet(np.full(shape[-1], 0.1), shape[:-1] or None)
        return -np.sort(-p, axis=-1).astype(np.float32)
    if kind == "wide":  # many binades, signed zeros
        x = rng.standard_normal(shape) * 10.0 ** rng.integers(-5, 5, shape)
        x.reshape(-1)[:4] = [-0.0, -0.0, 0.0, -0.0]
    elif kind == "special":  # infinities and NaNs among large values
        x = rng.standard_normal(shape) * 30
        f = x.reshape(-1)
        i = rng.integers(0, f.size, max(2, f.size // 40))
        f[i] = rng.choice([np.inf, -np.inf, np.nan, -0.0, 3e38, -3e38], i.size)
    else:  # "big": sums overflowing to infinity
        x = rng.random(shape) * 1e36
    if op == "cumprod" and kind != "special":
        x = 1 + x / (np.abs(x).max() * 20)
    return x.astype(np.float32)


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("n", [10, 1000, 100000])
@pytest.mark.parametrize("kind", ["probs", "wide", "special", "big"])
@on_cpu
def test_bfloat16_scans_round_each_step(op, n, kind):
    # upstream accumulates in bfloat16, rounding each step (a float32 sum rounded once
    # differs from the second step on)
    if n > 1000 and (op == "cumprod" or kind in ("special", "big")):
        n = 3000  # (scalar steps: the long sums are the runs of one binade)
    x = _half_scan_input(kind, (n,), op)
    for kw in DIRECTIONS:
        check_bits(lambda m, a: getattr(m, op)(a, **kw), x, dtype="bfloat16")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("op", ["cumsum", "cumprod", "logcumsumexp"])
@pytest.mark.parametrize("shape", [(3, 1000), (1000, 3), (40, 40), (2, 5, 300)])
@on_cpu
def test_half_scans_along_each_axis_round_each_step(dtype, op, shape):
    x = _half_scan_input("wide" if op != "cumsum" else "probs", shape, op)
    if op == "logcumsumexp":
        x.reshape(-1)[5:9] = [np.inf, -np.inf, -np.inf, np.nan]
    for axis in [*range(len(shape)), None]:
        for kw in DIRECTIONS:
            check_bits(lambda m, a: getattr(m, op)(a, axis=axis, **kw), x, dtype=dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("n", [10, 1000, 10000])
@pytest.mark.parametrize("kind", ["wide", "special"])
@on_cpu
def test_half_logcumsumexp_rounds_each_operation(dtype, n, kind):
    # each step is max + log1p(exp(min - max)), every operation rounded to the type, exp
    # flushing to 0 below about -87.7; infinities keep the max, NaNs propagate
    x = _half_scan_input(kind, (n,), "logcumsumexp")
    x[:3], x[-3:] = [0.0, -88.0, -87.5], [-87.5, -88.0, 0.0]  # from 0: exp(-88) is 0
    for kw in DIRECTIONS:
        check_bits(lambda m, a: m.logcumsumexp(a, **kw), x, dtype=dtype)


@pytest.mark.parametrize("dtype", ["bool_", "int8", "uint8", "int16", "uint16", "int32",
                                   "uint32", "int64", "uint64"])
@pytest.mark.parametrize("op", ["cumsum", "cumprod", "cummax", "cummin"])
@on_cpu
def test_integer_scans_wrap_as_upstream(dtype, op):
    # full-range values: sums and products wrap in the output type (bool and the narrow
    # signed types sum in int32, as upstream promotes)
    rng = np.random.default_rng(8)
    if dtype == "bool_":
        x = rng.integers(0, 2, (30, 70)).astype(bool)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (30, 70), dtype=dtype, endpoint=True)
        if op == "cumprod":
            x[::2] %= 7
    for axis in (0, 1, None):
        for kw in DIRECTIONS:
            check(lambda m, a: getattr(m, op)(a, axis=axis, **kw), x)


# -- grads with special rules --------------------------------------------------------------

def _weights(shape):
    return np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape)


def vjp_check(fn, x, rtol=1e-5):
    """Ember's vjp equals upstream's, cotangent 1, 2, 3, ... (distinct per output)."""
    ym = fn(mlx, mlx.array(x))
    c = _weights(ym.shape)
    _, gm = mlx.vjp(lambda a: fn(mlx, a), [mlx.array(x)], [mlx.array(c)])
    _, ge = mx.vjp(lambda a: fn(mx, a), [mx.array(x)], [mx.array(c)])
    assert_same(ge[0], gm[0], rtol=rtol)


def jvp_check(fn, x, t, rtol=1e-5):
    _, jm = mlx.jvp(lambda a: fn(mlx, a), [mlx.array(x)], [mlx.array(t)])
    _, je = mx.jvp(lambda a: fn(mx, a), [mx.array(x)], [mx.array(t)])
    assert_same(je[0], jm[0], rtol=rtol)


TIES = [np.array([1.0, 3.0, 3.0, 2.0], np.float32),
        np.array([[3.0, 3.0], [3.0, 2.0]], np.float32),
        np.array([[1.0, 3.0], [3.0, 2.0]], np.float32)]


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("i", range(len(TIES)))
@pytest.mark.parametrize("axis", [None, 0, -1, [0, 1]])
def test_max_min_ties(op, i, axis):
    x = TIES[i] if op == "max" else -TIES[i]
    if axis == [0, 1] and x.ndim == 1:
        axis = [0]
    fn = (lambda m, a: getattr(m, op)(a, axis=axis))
    vjp_check(fn, x)  # the cotangent is shared between ties
    jvp_check(fn, x, 10.0 ** np.arange(x.size, dtype=np.float32).reshape(x.shape))  # first


PROD_ZEROS = [[2.0, 0.0, 3.0, 4.0], [2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 0.0], [1.0, 2.0, 0.0],
              [0.0, 1.0, 2.0]]


@pytest.mark.parametrize("vals", PROD_ZEROS)
@pytest.mark.parametrize("kw", [{}, {"reverse": True}, {"inclusive": False},
                                {"reverse": True, "inclusive": False}])
def test_cumprod_grad_with_zeros(vals, kw):
    x = np.array(vals, np.float32)
    vjp_check(lambda m, a: m.cumprod(a, **kw), x)
    _fd_check(lambda a: mx.cumprod(a, **kw), x)


@pytest.mark.parametrize("vals", PROD_ZEROS)
def test_prod_grad_with_zeros(vals):
    x = np.array(vals, np.float32)
    vjp_check(lambda m, a: m.prod(a), x)
    jvp_check(lambda m, a: m.prod(a), x, np.arange(1, x.size + 1, dtype=np.float32))
    x2 = np.array([[1.0, 0.0], [4.0, 5.0]], np.float32)
    jvp_check(lambda m, a: m.prod(a, axis=[0, 1]), x2, _weights(x2.shape))
    vjp_check(lambda m, a: m.prod(a, axis=0), x2)


CUMEXT = [[1.0, 3.0, 3.0, 2.0, 5.0], [5.0, 3.0, 3.0, 2.0, 1.0], [1.0, 3.0, 3.0, 2.0, 1.0],
          [3.0, 1.0, 1.0, 2.0, 0.0], [2.0, 2.0, 2.0]]


@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("vals", CUMEXT)
@pytest.mark.parametrize("kw", [{}, {"reverse": True}, {"inclusive": False},
                                {"reverse": True, "inclusive": False}])
def test_cummax_cummin_grad_ties(op, vals, kw):
    x = np.array(vals, np.float32)
    vjp_check(lambda m, a: getattr(m, op)(a, **kw), x)


def _fd_check(f, x, h=1e-6):
    """Ember's jvp against float64 central differences, and vjp as its transpose."""
    rng = np.random.default_rng(1)
    x = np.asarray(x, np.float64)
    t = rng.standard_normal(x.shape)
    xe = mx.array(x, mx.float64)
    out, jv = mx.jvp(f, [xe], [mx.array(t, mx.float64)])
    with np.errstate(invalid="ignore"):  # inf - inf at the identity of exclusive scans
        fd = np_of(f(mx.array(x + h * t, mx.float64))) - np_of(f(mx.array(x - h * t,
                                                                         mx.float64)))
    const = ~np.isfinite(np_of(out[0]))  # (the identity of an exclusive scan)
    j = np_of(jv[0])
    assert np.all(j[const] == 0)
    np.testing.assert_allclose(j[~const], fd[~const] / (2 * h), rtol=1e-5, atol=1e-6)
    c = rng.standard_normal(out[0].shape)
    _, vj = mx.vjp(f, [xe], [mx.array(c, mx.float64)])
    lhs, rhs = float(np.sum(c * np_of(jv[0]))), float(np.sum(np_of(vj[0]) * t))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


SCAN_KW = [{"axis": 1}, {"axis": 0, "reverse": True}, {"axis": 1, "inclusive": False},
           {"axis": -1, "reverse": True, "inclusive": False}, {}]


@pytest.mark.parametrize("op", ["cumprod", "cummax", "cummin"])
@pytest.mark.parametrize("kw", SCAN_KW)
def test_scans_without_upstream_jvp(op, kw):
    rng = np.random.default_rng(len(op) + len(kw))
    x = rng.uniform(0.5, 1.5, (3, 5)).astype(np.float32)
    vjp_check(lambda m, a: getattr(m, op)(a, **kw), x, rtol=1e-4)
    _fd_check(lambda a: getattr(mx, op)(a, **kw), x)
    # vmap over the grad-carrying selection
    xs = mx.array(rng.uniform(0.5, 1.5, (2, 3, 5)).astype(np.float32))
    w = mx.array(_weights(getattr(mx, op)(mx.array(x), **kw).shape))

    def loss(a):
        return mx.sum(getattr(mx, op)(a, **kw) * w)
    want = np.stack([np_of(mx.grad(loss)(xs[i])) for i in range(2)])
    g = mx.vmap(mx.grad(loss))
    np.testing.assert_allclose(np_of(g(xs)), want, rtol=1e-5)


@pytest.mark.parametrize("kw", SCAN_KW)
def test_logcumsumexp_grad_is_stable(kw):
    x = np.array([[80.0, -80.0, 0.0, 90.0, -INF], [-50.0, 60.0, 60.0, -60.0, 1.0],
                  [1.0, 2.0, 3.0, 4.0, 5.0]], np.float32)
    vjp_check(lambda m, a: m.logcumsumexp(a, **kw), x, rtol=1e-4)
    jvp_check(lambda m, a: m.logcumsumexp(a, **kw), x[:, :4].copy(),
              _weights((3, 4)) - 6, rtol=1e-4) if "axis" in kw and kw["axis"] != 0 else None


@pytest.mark.parametrize("fn", [
    lambda m, a: m.std(a, axis=1), lambda m, a: m.var(a, axis=[0, 1], ddof=1),
    lambda m, a: m.logsumexp(a, axis=0, keepdims=True), lambda m, a: m.softmax(a, axis=[0, 1]),
    lambda m, a: m.softmax(a, axis=1, precise=True),
])
def test_second_order(fn):
    x = np.random.default_rng(3).uniform(-1, 1, (3, 4)).astype(np.float32)

    def gg(m):
        g = m.grad(lambda a: m.sum(m.sin(fn(m, a))))
        return m.grad(lambda a: m.sum(g(a) * m.sin(a)))(m.array(x))
    assert_same(gg(mx), gg(mlx), rtol=1e-4)


@pytest.mark.parametrize("op", ["cumprod", "logcumsumexp", "cummax", "prod", "max"])
def test_second_order_scans(op):
    x = np.random.default_rng(4).uniform(0.5, 1.5, (6,)).astype(np.float32)

    def gg(m):
        g = m.grad(lambda a: m.sum(getattr(m, op)(a) * m.cos(a)))
        return m.grad(lambda a: m.sum(g(a) * m.sin(a)))(m.array(x))
    assert_same(gg(mx), gg(mlx), rtol=1e-4)


def test_arg_grads_are_zero():
    x = np.array([1.0, 3.0, 2.0], np.float32)
    for op in ("argmax", "argmin"):
        vjp_check(lambda m, a: getattr(m, op)(a).astype(m.float32) + m.sum(a), x)
        jvp_check(lambda m, a: getattr(m, op)(a), x, np.ones(3, np.float32))


@pytest.mark.parametrize("fn", [
    lambda m, a: m.argmax(a, axis=1), lambda m, a: m.argmin(a, keepdims=True, axis=0),
    lambda m, a: m.std(a, axis=0, ddof=1), lambda m, a: m.softmax(a, axis=[0]),
    lambda m, a: m.cummax(a, axis=1, inclusive=False), lambda m, a: m.logsumexp(a, axis=[0, 1]),
])
def test_vmap_other_axes(fn):
    x = np.random.default_rng(5).uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    for ax in (0, 1, 2):
        got = mx.vmap(lambda a: fn(mx, a), in_axes=ax)(mx.array(x))
        want = mlx.vmap(lambda a: fn(mlx, a), in_axes=ax)(mlx.array(x))
        assert_same(got, want)


@pytest.mark.parametrize("op", ["softmax", "logsumexp", "logcumsumexp", "sum", "prod", "max",
                                "min", "all", "any", "mean", "var", "std", "argmax", "argmin",
                                "cumsum", "cumprod", "cummax", "cummin", "median"])
@pytest.mark.parametrize("arg", [1.0, 2, True, [1.0, 2.0], np.array([1.0, 2.0])])
def test_non_array_input_refused_like_upstream(op, arg):
    with pytest.raises(TypeError) as up:
        getattr(mlx, op)(arg)
    with pytest.raises(TypeError) as got:
        getattr(mx, op)(arg)
    # the binding's message also lists the argument types it was called with
    assert str(got.value) == str(up.value).split("\n\nInvoked with")[0]


@pytest.mark.parametrize("call", [
    "m.argmax(a, axis=1.0)", "m.argmin(a, keepdims=1)", "m.var(a, ddof=1.0)",
    "m.std(a, axis=(0, 1.0))", "m.sum(a, axis=1.0)", "m.mean(a, keepdims=0)",
    "m.logsumexp(a, axis=[0.5])",
])
def test_refused_arguments_raise_upstreams_binding_error(call):
    """Arguments of the wrong type: upstream's binding TypeError, with its signature."""
    msgs = []
    for m in (mlx, mx):
        a = m.ones((2, 3))
        with pytest.raises(TypeError) as err:
            eval(call, {"m": m, "a": a})  # noqa: S307 - the calls written above
        msgs.append(str(err.value).split("\n    1. ")[:2])
    assert msgs[1][0] == msgs[0][0] and msgs[1][1].startswith(msgs[0][1].split("\n")[0])


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("op,kw", [("mean", {"axis": -1}), ("mean", {"axis": (0, 2)}),
                                   ("mean", {}), ("mean", {"axis": 0, "keepdims": True}),
                                   ("logsumexp", {"axis": -1})])
def test_half_mean_and_logsumexp_round_as_upstream(dt, op, kw):
    # mean: the sum rounded to the type, times 1/n in the type; logsumexp over the last
    # axis: in float32, rounded once (the same bits as upstream's)
    x = np.random.default_rng(5).standard_normal((60, 7, 9)).astype(np.float32) * 3
    e = getattr(mx, op)(mx.array(x).astype(getattr(mx, dt)), **kw)
    m = getattr(mlx, op)(mlx.array(x).astype(getattr(mlx, dt)), **kw)
    assert e.dtype == getattr(mx, dt) and e.shape == m.shape
    np.testing.assert_array_equal(np_of(e), np_of(m))
