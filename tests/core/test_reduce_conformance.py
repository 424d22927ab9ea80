"""Reductions and statistics bit for bit against upstream MLX on the CPU, where upstream's
order of operations is known: means as sums times 1/n, two-pass variances, logsumexp
composed of ops off the last axis, complex products and orderings with NaNs and
infinities, and the errors upstream raises first."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import np_of, on_cpu

NAN = float("nan")
INF = float("inf")


def _parts(a):
    a = np.asarray(a)
    if a.dtype.kind == "c":
        return [a.real, a.imag]
    return [a.astype(np.float64) if a.dtype.kind == "f" else a]


def assert_bits(e, m, msg=""):
    """Same shape, dtype and values: NaN where upstream has NaN (in each complex part), zeros
    of the same sign, no tolerance."""
    assert tuple(e.shape) == tuple(m.shape), msg
    assert str(e.dtype).split(".")[-1] == str(m.dtype).split(".")[-1], msg
    for x, y in zip(_parts(np_of(e)), _parts(np_of(m))):
        np.testing.assert_array_equal(x, y, err_msg=msg)  # (NaNs match NaNs)
        if x.dtype.kind == "f":
            assert np.array_equal(np.signbit(x[x == 0]), np.signbit(y[y == 0])), msg


def both(fn, x, dt):
    """fn on upstream and on Ember, with x (numpy) cast to dtype name dt."""
    up = fn(mlx, mlx.array(x).astype(getattr(mlx, dt)))
    with mx.stream(mx.cpu):
        got = fn(mx, mx.array(x).astype(getattr(mx, dt)))
    return got, up


def errors_alike(fn):
    with pytest.raises(Exception) as up:
        fn(mlx)
    with pytest.raises(type(up.value)) as got:
        fn(mx)
    head = str(up.value).split("]")[0] if str(up.value).startswith("[") else \
        str(up.value).split("(")[0]
    assert str(got.value).startswith(head), (str(got.value), str(up.value))


RNG = np.random.default_rng(7)
# integers as floats: every sum of them is exact, whatever the order of the additions
INTS = RNG.integers(-1000, 1000, (6, 5, 7)).astype(np.float32)


# -- means: the sum times 1/n ----------------------------------------------------------

@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "int32", "uint8"])
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": -1}, {"axis": (0, 2)},
                                {"axis": 1, "keepdims": True}])
@on_cpu
def test_mean_is_sum_times_reciprocal(dt, kw):
    x = np.abs(INTS) if dt == "uint8" else INTS / 8
    assert_bits(*both(lambda m, a: m.mean(a, **kw), x, dt))


@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": -1}, {"axis": ()}])
@on_cpu
def test_complex_mean_multiplies_as_c99(kw):
    # an infinite part makes the other part NaN, as the complex product 1/n * sum does
    v = [complex(INF, 0), complex(1, INF), complex(NAN, 0), complex(NAN, -INF), 2 + 3j,
         complex(-INF, NAN), complex(0, -INF), 1 - 1j]
    x = np.array([v, v[::-1], v[2:] + v[:2]], np.complex64)
    assert_bits(*both(lambda m, a: m.mean(a, **kw), x, "complex64"))


# -- var, std: two passes -------------------------------------------------------------

@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("ddof", [0, 1, 2])
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "int16", "complex64"])
@pytest.mark.parametrize("shape,axis", [((3, 3, 3), 0), ((4, 4, 3), (0, 1)),
                                        ((3, 4, 4), (-1, -2))])
@on_cpu
def test_var_as_upstream(op, ddof, dt, shape, axis):
    # over 3 rows the sums add in upstream's order; over 16 elements of a few bits the
    # mean and the sums are exact, so the divisor alone shows
    x = INTS[tuple(slice(d) for d in shape)] % 64
    x = x if dt == "int16" else x / 16
    if dt == "complex64":
        x = x + 1j * x[::-1]
    assert_bits(*both(lambda m, a: getattr(m, op)(a, axis=axis, ddof=ddof), x, dt))


@pytest.mark.parametrize("dt", ["uint32", "int32", "int64"])
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": -1, "ddof": 1}])
@on_cpu
def test_var_of_integers_around_their_wrapped_mean(dt, kw):
    info = np.iinfo(dt)
    x = np.array([info.max, info.max - 1, info.min] * 4, dt).reshape(3, 4)
    up = mlx.var(mlx.array(x), **kw)
    got = mx.var(mx.array(x), **kw)
    assert got.dtype == mx.float32
    np.testing.assert_allclose(np_of(got), np_of(up), rtol=1e-6)


@pytest.mark.parametrize("shape,axis", [((0,), None), ((0, 3), 0), ((2, 0), 1)])
@pytest.mark.parametrize("ddof", [-1, 0, 1])
@on_cpu
def test_var_of_nothing(shape, axis, ddof):
    # a sum of nothing over max(n - ddof, 0): 0 for a negative ddof
    up = mlx.var(mlx.zeros(shape), axis=axis, ddof=ddof)
    assert_bits(mx.var(mx.zeros(shape), axis=axis, ddof=ddof), up)


# -- max, min, argmax, argmin of complex numbers with NaNs -------------------------------

CNAN = [1 + 0j, complex(NAN, 0), complex(0, NAN), complex(3, NAN), complex(NAN, 5), 2 + 0j,
        complex(-1, 2), complex(3, 1)]


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("seed", range(4))
@on_cpu
def test_complex_extremes_with_nans(op, axis, seed):
    rng = np.random.default_rng(seed)
    x = np.array(CNAN, np.complex64)[rng.integers(0, len(CNAN), (4, 3))]
    assert_bits(*both(lambda m, a: getattr(m, op)(a, axis=axis), x, "complex64"))


# -- median -----------------------------------------------------------------------------

@pytest.mark.parametrize("vals,dt", [
    ([[60000.0, 60000.0, 1.0], [65504.0, 65504.0, -65504.0]], "float16"),
    ([[3e38, 3e38, -3e38], [3e38, 1.0, 3e38]], "float32"),
    ([[1 + 1j, NAN, 5 - 1j], [1 + 1j, complex(0, NAN), 2j]], "complex64"),
    ([[1 + 1j, 3, 5 - 1j, 0], [1 + 1j, 0, 2j, 2j]], "complex64"),
])
@on_cpu
def test_median_values(vals, dt):
    x = np.array(vals, np.complex64 if dt == "complex64" else np.float32)
    for kw in ({}, {"axis": -1}, {"axis": 0, "keepdims": True}):
        assert_bits(*both(lambda m, a: m.median(a, **kw), x, dt), msg=str(kw))


@pytest.mark.parametrize("shape", [(3,), (0,), (2, 3)])
@pytest.mark.parametrize("axis", [(), []])
def test_median_over_no_axes(shape, axis):
    errors_alike(lambda m: m.median(m.ones(shape), axis=axis))


# -- logsumexp ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt", ["bool_", "uint8", "uint32", "int8", "int32", "float16",
                                "bfloat16", "float32"])
@pytest.mark.parametrize("axis", [None, 0, (0, 1), (-1, -2), -1])
@on_cpu
def test_logsumexp_off_the_last_axis(dt, axis):
    # composed of ops in the input's dtype, as upstream does but for the last axis alone
    x = np.abs(INTS[:, :2, :3]) % 60 if dt not in ("float16", "bfloat16", "float32") else \
        INTS[:, :2, :3] / 200
    if dt == "bool_":
        x = x % 2
    got, up = both(lambda m, a: m.logsumexp(a, axis=axis), x, dt)
    if dt in ("float32", "bool_"):
        # (upstream's exp and order of additions in float32 are not torch's: the last bits)
        np.testing.assert_allclose(np_of(got), np_of(up), rtol=1e-6)
        assert str(got.dtype) == str(up.dtype)
    else:
        assert_bits(got, up)


@on_cpu
def test_logsumexp_over_no_axes():
    x = np.array([-0.0, 0.0, INF, -INF, NAN, 2.5], np.float32)
    assert_bits(*both(lambda m, a: m.logsumexp(a, axis=()), x, "float32"))


@pytest.mark.parametrize("kw", [{"axis": 3}, {"axis": (0, 0)}, {"axis": [0.5]},
                                {"keepdims": 1}, {"axis": (0, 1)}])
def test_logsumexp_of_empty_checks_size_first(kw):
    errors_alike(lambda m: m.logsumexp(m.zeros((0, 3)), **kw))


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [(0,), [1], (0, 1)])
def test_arg_reduce_refuses_axis_sequences_as_the_binding(op, axis):
    def call(m):
        return getattr(m, op)(m.ones((2, 3)), axis=axis)
    with pytest.raises(TypeError) as up:
        call(mlx)
    with pytest.raises(TypeError) as got:
        call(mx)
    assert str(got.value) == str(up.value).split("\n\nInvoked with")[0]


# -- prod over adjacent axes: one row-major sequence of products ---------------------------

@pytest.mark.parametrize("axis", [(1, 2), (0, 1), (-2, -1)])
@pytest.mark.parametrize("seed", range(3))
@on_cpu
def test_prod_over_adjacent_axes(axis, seed):
    x = np.random.default_rng(seed).uniform(0.5, 1.5, (4, 3, 5)).astype(np.float32)
    assert_bits(*both(lambda m, a: m.prod(a, axis=axis), x, "float32"))
