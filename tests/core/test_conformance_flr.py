"""Parity with upstream MLX for mx.fft, mx.linalg and mx.random on what a conformance sweep
of the three families found: the order of upstream's input checks (and so which message a
bad input gets), sequence arguments its bindings take or refuse, empty inputs, complex
norms of zeros, and a sample of the sweep itself (values, dtypes, shapes, bit-exact random
draws). Every expectation is upstream's own, computed in the test."""

import math

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, check_like_upstream, on_cpu


def _check(call, rtol=None, full_message=True):
    # (bracketed messages whole by default; the bindings' others are not compared)
    check_like_upstream(call, rtol, whole=full_message, others=False)


def _zeros(m, shape, dt):
    return m.zeros(shape, getattr(m, dt))


# -- linalg: which check comes first ---------------------------------------------------

_DECOMP = [
    lambda m, a: m.linalg.inv(a, stream=m.cpu),
    lambda m, a: m.linalg.tri_inv(a, upper=True, stream=m.cpu),
    lambda m, a: m.linalg.cholesky(a, stream=m.cpu),
    lambda m, a: m.linalg.cholesky_inv(a, stream=m.cpu),
    lambda m, a: m.linalg.eigh(a, stream=m.cpu),
    lambda m, a: m.linalg.eigvalsh(a, UPLO="U", stream=m.cpu),
    lambda m, a: m.linalg.eig(a, stream=m.cpu),
    lambda m, a: m.linalg.eigvals(a, stream=m.cpu),
    lambda m, a: m.linalg.svd(a, stream=m.cpu),
    lambda m, a: m.linalg.svd(a, compute_uv=False, stream=m.cpu),
    lambda m, a: m.linalg.qr(a, stream=m.cpu),
    lambda m, a: m.linalg.lu(a, stream=m.cpu),
    lambda m, a: m.linalg.lu_factor(a, stream=m.cpu),
    lambda m, a: m.linalg.pinv(a, stream=m.cpu),
    lambda m, a: m.linalg.det(a, stream=m.cpu),
    lambda m, a: m.linalg.slogdet(a, stream=m.cpu),
]


@pytest.mark.parametrize("op", _DECOMP)
@pytest.mark.parametrize("shape,dt", [((3,), "int32"), ((), "bfloat16"), ((3, 4), "float16"),
                                      ((2,), "complex64"), ((), "complex64"),
                                      ((3, 4), "complex64"), ((4,), "float32"),
                                      ((2, 3), "float32"), ((3, 3), "bool_")])
def test_decomposition_check_order(op, shape, dt):
    # upstream refuses the dtype before the rank, and the rank before squareness
    _check(lambda m: op(m, _zeros(m, shape, dt)))


@pytest.mark.parametrize("sa,sb", [((2, 3, 3), (3, 3, 1)), ((2, 3, 3), (5, 3, 4)),
                                   ((5, 2, 3, 3), (4, 2, 3, 2))])
@pytest.mark.parametrize("op", ["solve", "solve_triangular"])
def test_solve_batch_mismatch_message(sa, sb, op):
    def call(m):
        a = m.eye(3) + m.zeros(sa)
        return getattr(m.linalg, op)(a, m.ones(sb), stream=m.cpu)
    _check(call)


# -- linalg: values on edges ------------------------------------------------------------

@pytest.mark.parametrize("sa,sb,axis", [((0, 3), (0, 3), -1), ((0, 2), (0, 3), -1),
                                        ((3, 0), (3, 0), 0), ((2, 0, 3), (1, 3), -1),
                                        ((4, 3), (3,), -1), ((3, 4), (2, 4), 0)])
@pytest.mark.parametrize("dt", ["float32", "int32", "complex64"])
def test_cross_shapes_and_empty(sa, sb, axis, dt):
    rng = np.random.default_rng(0)
    a = rng.integers(-5, 5, sa).astype(dt)
    b = rng.integers(-5, 5, sb).astype(dt)

    def call(m):
        x = m.array(a) if a.size else m.zeros(sa, getattr(m, dt))
        y = m.array(b) if b.size else m.zeros(sb, getattr(m, dt))
        return m.linalg.cross(x, y, axis=axis)
    _check(call)


def _complex_parts(a):
    v = np.array(a)
    return np.stack([v.real, v.imag])


@pytest.mark.parametrize("ord", [-1, -2, -3, 0.5, 3, 2.5])
@pytest.mark.parametrize("values", [[], [0j, 0j], [1 + 1j, 0j, 2 - 1j]])
@on_cpu  # (CUDA's complex power gives other special values at 0)
def test_complex_vector_norm_powers(ord, values):
    # the p-norm of a complex vector takes its powers in complex: 0 ** -p is inf+nanj
    def f(m):
        x = m.array(np.array(values, np.complex64)) if values else m.zeros((0,), m.complex64)
        return m.linalg.norm(x, ord=ord)
    want, got = f(mlx), f(mx)
    assert got.dtype == mx.complex64 and got.shape == want.shape
    np.testing.assert_allclose(_complex_parts(got), _complex_parts(want), rtol=1e-5,
                               equal_nan=True)


@pytest.mark.parametrize("ord", [None, "fro", "nuc", math.inf, -math.inf, 0, 1, -1, 2, -2,
                                 3, 0.5])
@pytest.mark.parametrize("shape,axis", [((5,), None), ((3, 4), None), ((2, 3, 4), (2, 0)),
                                        ((2, 3, 4), -1), ((0, 3), (0, 1)), ((3, 0), 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm_sweep_sample(ord, shape, axis, keepdims):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    _check(lambda m: m.linalg.norm(m.array(x) if x.size else m.zeros(shape), ord=ord,
                                   axis=axis, keepdims=keepdims, stream=m.cpu),
           rtol=1e-4, full_message=False)


@pytest.mark.parametrize("axis", [range(2), [True], "1-D array", "numpy", {0, 1}, "iterator",
                                  (0.0,), "float array", {0: 1}])
def test_norm_axis_sequences(axis):
    def call(m):
        ax = {"1-D array": m.array([0, 1]), "numpy": np.array([0]),
              "iterator": iter([0]), "float array": m.array([1.0])}.get(
                  axis if isinstance(axis, str) else None, axis)
        return m.linalg.norm(m.ones((2, 3)), ord=1 if isinstance(axis, str) else None, axis=ax)
    _check(call)


@on_cpu
@pytest.mark.parametrize("op", ["inv", "det", "slogdet", "pinv", "lu", "lu_factor", "solve"])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_linalg_sweep_sample(op, batch):
    rng = np.random.default_rng(2)
    a = (rng.standard_normal(batch + (4, 4)) + 4 * np.eye(4)).astype(np.float32)
    b = rng.standard_normal(batch + (4, 2)).astype(np.float32)

    def call(m):
        f = getattr(m.linalg, op)
        return f(m.array(a), m.array(b)) if op == "solve" else f(m.array(a))
    _check(call, rtol=1e-4)


# -- fft: sequence arguments ------------------------------------------------------------

_SEQ = {"int array": lambda m, v: m.array([v]), "uint8 array": lambda m, v: m.array([v], m.uint8),
        "float array": lambda m, v: m.array([float(v)]),
        "bool array": lambda m, v: m.array([True]), "iterator": lambda m, v: iter([v]),
        "set": lambda m, v: {v}, "range": lambda m, v: range(v, v + 1),
        "numpy": lambda m, v: np.array([v]), "2-D array": lambda m, v: m.array([[v]]),
        "list": lambda m, v: [v]}


@pytest.mark.parametrize("s,axes", [("int array", "list"), ("list", "int array"),
                                    ("uint8 array", "list"), ("float array", "list"),
                                    ("bool array", "list"), ("list", "iterator"),
                                    ("list", "set"), ("range", "range"), ("numpy", "numpy"),
                                    ("list", "2-D array")])
@pytest.mark.parametrize("op", ["fftn", "rfft2", "irfftn"])
def test_fft_sequence_arguments(s, axes, op):
    # upstream's binding takes any sequence of ints, 1-D integer arrays included
    def call(m):
        x = m.reshape(m.arange(8.0), (2, 4))
        return getattr(m.fft, op)(x, s=_SEQ[s](m, 4), axes=_SEQ[axes](m, 1))
    _check(call)


@pytest.mark.parametrize("axes", [range(2), {0, 1}, "iterator", [True], "int array", 1.0,
                                  "0-d array", "float array", "0"])
def test_fftshift_axes_arguments(axes):
    def call(m):
        ax = {"iterator": iter([0]), "int array": m.array([0, 1]), "0-d array": m.array(1),
              "float array": m.array([1.0])}.get(axes, axes) if isinstance(axes, str) else axes
        return m.fft.fftshift(m.reshape(m.arange(6.0), (2, 3)), axes=ax)
    _check(call)


@pytest.mark.parametrize("op", ["fft", "ifft", "rfft", "irfft"])
@pytest.mark.parametrize("n", [None, 0, 1, 5, 12])
@pytest.mark.parametrize("axis", [-1, 0, 2])
@pytest.mark.parametrize("dt", ["int32", "float16", "complex64"])
def test_fft_sweep_sample(op, n, axis, dt):
    x = np.random.default_rng(3).standard_normal((3, 8)).astype(dt)
    _check(lambda m: getattr(m.fft, op)(m.array(x), n=n, axis=axis, norm="ortho"), rtol=1e-3,
           full_message=False)


# -- random -----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [range(2, 4), {2}, "iterator", {2: 1}, [True], "1-D array",
                                   "0-d array", (2.0,)])
@pytest.mark.parametrize("op", ["uniform", "normal", "categorical", "randint"])
def test_random_shape_sequences(shape, op):
    def call(m):
        sh = {"iterator": iter([2]), "1-D array": m.array([2, 3]),
              "0-d array": m.array(2)}.get(shape, shape) if isinstance(shape, str) else shape
        k = m.random.key(0)
        if op == "categorical":
            return m.random.categorical(m.zeros((2,)), shape=sh, key=k)
        if op == "randint":
            return m.random.randint(0, 9, sh, key=k)
        return getattr(m.random, op)(shape=sh, key=k)
    _check(call)


@pytest.mark.parametrize("seed", [0, 12345, 2**32 - 1])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5)])
def test_random_bit_exact_sample(seed, shape):
    def draws(m):
        k = m.random.key(seed)
        return [m.random.uniform(shape=shape, key=k),
                m.random.uniform(shape=shape, dtype=m.float16, key=k),
                m.random.randint(-100, 1000, shape, key=k),
                m.random.randint(0, 2**40, shape, dtype=m.int64, key=k),
                m.random.normal(shape, key=k),
                m.random.normal(shape, dtype=m.complex64, key=k),
                m.random.split(k, 3),
                m.random.categorical(m.zeros((5,)), shape=shape, key=k),
                m.random.bernoulli(0.3, shape, key=k)]
    want, got = draws(mlx), draws(mx)
    for g, w in zip(got, want):
        assert_same(g, w, rtol=0 if w.dtype != mlx.complex64 and w.dtype != mlx.float32
                    else 1e-6)
