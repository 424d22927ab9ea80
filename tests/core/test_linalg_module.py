"""mx.linalg beyond the op database: the derivatives Ember adds where upstream has none
(checked against float64 finite differences), argument errors, variants and the GPU path."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same

RNG = np.random.default_rng(11)


def _mat(*shape, boost=3.0):
    x = RNG.standard_normal(shape)
    return x + boost * np.eye(shape[-1]) if shape[-1] == shape[-2] else x


def _spd(*shape):
    x = RNG.standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


def _sum_outputs(f, weights):
    def g(x):
        outs = f(x)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return sum(mx.sum(o * w) for o, w in zip(outs, weights))
    return g


def _check_fd(f, x, h=1e-6):
    """vjp and jvp of f at x (float64) against central differences along a direction."""
    x = mx.array(x, mx.float64)
    outs = f(x)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    weights = [mx.array(RNG.standard_normal(o.shape), mx.float64) for o in outs]
    loss = _sum_outputs(f, weights)
    t = RNG.standard_normal(x.shape)
    g = np.array(mx.grad(loss)(x))
    fd = (loss(x + h * mx.array(t, mx.float64)).item()
          - loss(x - h * mx.array(t, mx.float64)).item()) / (2 * h)
    assert abs(float(np.sum(g * t)) - fd) <= 1e-5 * max(1.0, abs(fd))
    _, jv = mx.jvp(loss, [x], [mx.array(t, mx.float64)])
    assert abs(jv[0].item() - fd) <= 1e-5 * max(1.0, abs(fd))


@pytest.mark.parametrize("f, make", [
    (lambda a: mx.linalg.inv(a), lambda: _mat(3, 3)),
    (lambda a: mx.linalg.inv(a), lambda: _mat(2, 4, 4)),
    (lambda a: mx.linalg.tri_inv(a), lambda: _mat(4, 4)),
    (lambda a: mx.linalg.tri_inv(a, upper=True), lambda: _mat(2, 3, 3)),
    (lambda a: mx.linalg.cholesky(a), lambda: _spd(3, 3)),
    (lambda a: mx.linalg.cholesky(a, upper=True), lambda: _spd(2, 4, 4)),
    (lambda a: mx.linalg.cholesky_inv(mx.linalg.cholesky(a)), lambda: _spd(3, 3)),
    (lambda a: mx.linalg.eigvalsh(a), lambda: _spd(4, 4)),
    (lambda a: mx.linalg.eigh(a, UPLO="U"), lambda: _spd(3, 3)),
    (lambda a: mx.linalg.eigh(a), lambda: _spd(2, 3, 3)),
    (lambda a: mx.linalg.svd(a, compute_uv=False), lambda: _mat(3, 5)),
    (lambda a: mx.linalg.svd(a, compute_uv=False), lambda: _mat(2, 4, 3)),
    (lambda a: mx.linalg.norm(a, 2), lambda: _mat(3, 4)),
    (lambda a: mx.linalg.norm(a, "nuc", axis=(0, 2)), lambda: _mat(3, 2, 4)),
    (lambda a: mx.linalg.norm(a, -2), lambda: _mat(4, 4)),
    (lambda a: mx.linalg.det(a), lambda: _mat(5, 5)),
    (lambda a: mx.linalg.slogdet(a)[1], lambda: _mat(2, 4, 4)),
    (lambda a: mx.linalg.solve(a, mx.arange(3.0, dtype=mx.float64)), lambda: _mat(3, 3)),
    (lambda a: mx.linalg.solve(a, mx.ones((2, 4, 2), mx.float64)), lambda: _mat(4, 4)),
    (lambda a: mx.linalg.solve_triangular(a, mx.arange(3.0, dtype=mx.float64)),
     lambda: _mat(3, 3)),
    (lambda a: mx.linalg.solve_triangular(a, mx.ones((3, 2), mx.float64), upper=True),
     lambda: _mat(2, 3, 3)),
])
def test_added_derivatives_match_differences(f, make):
    _check_fd(f, make())


def test_vmap_of_factorizations():
    x = mx.array(np.stack([_spd(3, 3) for _ in range(4)]).astype(np.float32))
    b = mx.array(RNG.standard_normal((4, 3)).astype(np.float32))
    for f in (lambda a: mx.linalg.cholesky(a), lambda a: mx.linalg.inv(a),
              lambda a: mx.linalg.eigvalsh(a), lambda a: mx.linalg.qr(a)[1],
              lambda a: mx.linalg.lu_factor(a)[0], lambda a: mx.linalg.solve(a, b[0]),
              lambda a: mx.linalg.svd(a, compute_uv=False), lambda a: mx.linalg.det(a)):
        got = mx.vmap(f, in_axes=1, out_axes=0)(mx.swapaxes(x, 0, 1))
        want = mx.stack([f(x[i]) for i in range(4)])
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-5)
    got = mx.vmap(lambda a, v: mx.linalg.solve_triangular(a, v))(x, b)
    want = mx.stack([mx.linalg.solve_triangular(x[i], b[i]) for i in range(4)])
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-5)


def test_batched_solve_broadcasts():
    # (upstream's LU-based solve fails on batches: Ember broadcasts them as numpy does)
    a, b = _mat(2, 1, 3, 3), RNG.standard_normal((4, 3, 2))
    got = mx.linalg.solve(mx.array(a, mx.float64), mx.array(b, mx.float64))
    np.testing.assert_allclose(np.array(got), np.linalg.solve(a, b), rtol=1e-10)


def test_svd_vectors_reconstruct():
    a = RNG.standard_normal((2, 3, 5)).astype(np.float32)
    u, s, vt = mx.linalg.svd(mx.array(a))
    assert u.shape == (2, 3, 3) and vt.shape == (2, 5, 5)
    np.testing.assert_allclose(np.array((u * s[:, None, :]) @ vt[:, :3]), a, atol=1e-5)
    np.testing.assert_allclose(np.array(vt @ mx.swapaxes(vt, -1, -2)), np.eye(5)[None].repeat(2, 0),
                               atol=1e-5)


def test_eig_vectors():
    a = RNG.standard_normal((2, 4, 4)).astype(np.float32)
    w, v = mx.linalg.eig(mx.array(a))
    av = np.array(a).astype(np.complex64) @ np.array(v)
    np.testing.assert_allclose(av, np.array(v) * np.array(w)[:, None, :], atol=1e-4)


def _raises_like(f):
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.inv(np.eye(2, dtype=np.float32)),
    lambda m: m.linalg.norm([1.0, 2.0]),
    lambda m: m.linalg.norm(3.0),
    lambda m: m.linalg.cross(1.0, m.ones(3)),
    lambda m: m.linalg.cross(m.ones((3, 2)), m.ones((3, 2)), axis=2),
    lambda m: m.linalg.cross(m.array(1.0), m.ones(3)),
    lambda m: m.linalg.solve(m.eye(3), 1.0),
    lambda m: m.linalg.solve(m.eye(3).astype(m.float16), m.ones(3)),
    lambda m: m.linalg.solve_triangular(m.eye(3).astype(m.float16), m.ones(3)),
    lambda m: m.linalg.svd(m.ones((3, 3)).astype(m.int32)),
    lambda m: m.linalg.norm(m.ones((3, 3), m.int32), 2),
    lambda m: m.linalg.norm(m.ones((3, 3), m.float16), "nuc"),
    lambda m: m.linalg.det(m.ones((4, 4), m.float16)),
    lambda m: m.linalg.det(m.ones((3, 3), m.complex64)),
])
def test_errors(call):
    _raises_like(call)


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.norm(m.arange(9) - 4),
    lambda m: m.linalg.norm((m.arange(9) - 4).reshape(3, 3), float("inf")),
    lambda m: m.linalg.norm(m.arange(8).reshape(2, 2, 2), axis=(1, 2)),
    lambda m: m.linalg.norm(m.arange(6.0).reshape(2, 3), ord=True),
    lambda m: m.linalg.norm(m.arange(6.0).reshape(2, 3), 1, [1]),
    lambda m: m.linalg.det(m.zeros((0, 0))),
    lambda m: m.linalg.slogdet(m.zeros((0, 0))),
    lambda m: m.linalg.eigh(m.eye(3) * 2, UPLO="u"),
    lambda m: m.linalg.svd(m.zeros((0, 0))),
    lambda m: m.linalg.qr(m.zeros((0, 0))),
    lambda m: m.linalg.pinv(m.zeros((0, 0))),
    lambda m: m.linalg.pinv(m.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]])),
    lambda m: m.linalg.cholesky(m.eye(3) * 4, stream=m.cpu),
    lambda m: m.linalg.inv(m.eye(3) * 4, stream=m.cpu),
    lambda m: m.linalg.solve_triangular(m.eye(3) * 2, m.ones((2, 3)).T, upper=True),
])
def test_variants(call):
    assert_same(call(mx), call(mlx), rtol=1e-5)


@pytest.mark.gpu
def test_gpu_stream_runs_factorizations():
    if not mx.is_available(mx.gpu):
        pytest.skip("no CUDA device")
    a = mx.array(_spd(2, 4, 4).astype(np.float32))
    for f in (mx.linalg.cholesky, mx.linalg.inv, mx.linalg.eigvalsh, mx.linalg.det,
              lambda x, stream: mx.linalg.svd(x, compute_uv=False, stream=stream),
              lambda x, stream: mx.linalg.qr(x, stream=stream)[1]):
        np.testing.assert_allclose(np.abs(np.array(f(a, stream=mx.gpu))),
                                   np.abs(np.array(f(a, stream=mx.cpu))), rtol=1e-3, atol=1e-4)


def _raises_same(f):
    """f(mlx) raises; f(mx) must raise the same exception type with the same message."""
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type) as got:
        mx.eval(f(mx))
    assert str(got.value) == str(info.value)


_X3 = RNG.standard_normal((2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.norm(m.array(_X3), "f", (1, 2)),
    lambda m: m.linalg.norm(m.array(_X3), "f", [0, 1], True),
    lambda m: m.linalg.norm(m.array(_X3), None, ()),
    lambda m: m.linalg.norm(m.array(_X3), 1, (-1, -2)),
    lambda m: m.linalg.norm(m.array(_X3), -1, (1, -2)),
    lambda m: m.linalg.norm(m.array(_X3), float("inf"), (1, 1), True),
    lambda m: m.linalg.norm(m.array(_X3), 2, (1, -2)),
    lambda m: m.linalg.norm(m.array(_X3), "nuc", (2, 0), True),
    lambda m: m.linalg.norm(m.array(_X3).astype(m.int32), 1, (0, -4)),
])
def test_norm_axes_like_upstream(call):
    assert_same(call(mx), call(mlx), rtol=1e-5)


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.norm(m.array(_X3), "fro"),
    lambda m: m.linalg.norm(m.array(_X3), "nuc", 3),
    lambda m: m.linalg.norm(m.array(_X3), "x", ()),
    lambda m: m.linalg.norm(m.array(_X3), "x", (1, 1)),
    lambda m: m.linalg.norm(m.array(_X3), 3, (0, 5)),
    lambda m: m.linalg.norm(m.array(_X3), 1, (0, 5)),
    lambda m: m.linalg.norm(m.array(_X3), 0, 3),
    lambda m: m.linalg.norm(m.array(_X3), None, (1, -2)),
    lambda m: m.linalg.norm(m.array(_X3), 2, (1, 1), True),
])
def test_norm_errors_like_upstream(call):
    _raises_same(call)


def test_eigh_uplo_reads_lower_only_for_leading_L():
    a = _spd(4, 4).astype(np.float32)
    a = np.triu(a) + np.tril(RNG.standard_normal((4, 4)).astype(np.float32), -1)
    for uplo in ("L", "Lower", "l", "lower", "X", "", "U"):
        assert_same(mx.linalg.eigvalsh(mx.array(a), UPLO=uplo),
                    mlx.linalg.eigvalsh(mlx.array(a), UPLO=uplo), rtol=1e-4)


# exactly singular (a zero column): its zero pivot does not depend on the LAPACK build's
# rounding, as a rank-deficient matrix such as [[1, 2, 3], [2, 4, 6], [1, 0, 1]] does
_SING = np.array([[1.0, 0, 3], [4, 0, 6], [7, 0, 9]], np.float32)


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.inv(m.array(_SING)),
    lambda m: m.linalg.inv(m.array(np.array([[0, 0, 0], [1, 2, 3], [4, 5, 6.0]]))),
    lambda m: m.linalg.inv(m.array(np.stack([np.eye(3, dtype=np.float32), _SING]))),
    lambda m: m.linalg.tri_inv(m.array(np.diag([1.0, 0, 2])), upper=True),
    lambda m: m.linalg.cholesky_inv(m.zeros((3, 3))),
    lambda m: m.linalg.solve(m.array(_SING), m.ones(3)),
    lambda m: m.linalg.solve_triangular(m.array(np.diag([1.0, 2, 0])), m.ones((3, 2))),
    lambda m: m.linalg.svd(m.array([[np.nan, 1.0], [1.0, 1.0]]), compute_uv=False),
    lambda m: m.linalg.pinv(m.array([[np.nan, 1.0], [1.0, 1.0]])),
])
def test_singular_inputs_raise_like_upstream(call):
    # on the CPU: on the GPU, reading the factorization's error code back would wait for
    # the device, so a singular input gives inf/nan there instead
    prev = mx.default_device()
    mx.set_default_device(mx.cpu)
    try:
        _raises_same(call)
    finally:
        mx.set_default_device(prev)


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.eig(m.zeros((2, 0, 0))),
    lambda m: m.linalg.eigvals(m.zeros((0, 0))),
    lambda m: m.linalg.cross(m.ones((5, 1, 3)), m.ones((2, 2))),
])
def test_empty_and_broadcast_variants(call):
    assert_same(call(mx), call(mlx))


def test_lu_of_empty_matrices():
    # (upstream crashes here; the factors are empty like the input)
    p, lo, up = mx.linalg.lu(mx.zeros((2, 0, 0)))
    assert p.shape == (2, 0) and lo.shape == (2, 0, 0) and up.shape == (2, 0, 0)


@pytest.mark.parametrize("call", [
    lambda m: m.linalg.cross(m.ones((4, 2)), m.ones((2, 3))),
    lambda m: m.linalg.cross(m.ones((3, 4)), m.ones((2, 2)), axis=0),
    lambda m: m.linalg.eigvalsh(m.eye(2), UPLO=1),
    lambda m: m.linalg.cross(m.ones(3), m.ones(3), axis=1.0),
])
def test_cross_and_uplo_errors(call):
    with pytest.raises(Exception) as info:
        mlx.eval(call(mlx))
    with pytest.raises(info.type) as got:
        mx.eval(call(mx))
    if info.type is ValueError:
        assert str(got.value) == str(info.value)
    else:  # (argument errors name the function as upstream's bindings do)
        assert str(got.value).startswith(str(info.value).split("(")[0] + "()")


@pytest.mark.parametrize("a", [np.zeros((3, 3)), -np.eye(3), np.diag([1.0, 2, 1]),
                               np.zeros((2, 4, 4))])
def test_eig_of_repeated_eigenvalues_keeps_distinct_vectors(a):
    a = a.astype(np.float32)
    assert_same(mx.linalg.eig(mx.array(a), stream=mx.cpu),
                mlx.linalg.eig(mlx.array(a), stream=mlx.cpu), rtol=1e-5)


def test_eig_of_non_finite_input_raises():
    # (upstream's LAPACK rejects it as an illegal argument and ends the process)
    for f in (mx.linalg.eig, mx.linalg.eigvals):
        with pytest.raises(RuntimeError, match=r"^\[Eig::eval_cpu\]"):
            mx.eval(f(mx.array([[np.nan, 1.0], [1.0, 1.0]]), stream=mx.cpu))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4, 4), (2, 5), (3, 3, 6)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
def test_svd_vectors_have_upstream_signs(shape, dtype):
    # square and wide matrices: the LAPACK call sees the same (transposed) matrix
    x = RNG.standard_normal(shape)
    if dtype == "complex64":
        x = x + 1j * RNG.standard_normal(shape)
    got = mx.linalg.svd(mx.array(x, getattr(mx, dtype)), stream=mx.cpu)
    want = mlx.linalg.svd(mlx.array(x, getattr(mlx, dtype)), stream=mlx.cpu)
    assert_same(got, want, rtol=1e-4 if dtype != "float64" else 1e-8)


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_eigh_vectors_have_upstream_signs(dtype):
    x = RNG.standard_normal((3, 2, 2))
    if dtype == "complex64":
        x = x + 1j * RNG.standard_normal((3, 2, 2))
    a = x @ np.conj(np.swapaxes(x, -1, -2)) + 2 * np.eye(2)
    for uplo in ("L", "U"):
        assert_same(mx.linalg.eigh(mx.array(a, getattr(mx, dtype)), UPLO=uplo, stream=mx.cpu),
                    mlx.linalg.eigh(mlx.array(a, getattr(mlx, dtype)), UPLO=uplo,
                                    stream=mlx.cpu), rtol=1e-4)


def test_svd_vectors_are_not_differentiated_like_upstream():
    _raises_same(lambda m: m.grad(lambda x: m.linalg.svd(x, stream=m.cpu)[0].sum())(
        m.eye(3) + 1))
    _raises_same(lambda m: m.jvp(lambda x: m.linalg.svd(x, stream=m.cpu)[2], [m.eye(3) + 1],
                                 [m.eye(3)])[1][0])


def test_tri_inv_keeps_the_other_triangle_zero():
    a = np.array([[np.nan, 1.0], [1.0, 1.0]], np.float32)
    assert_same(mx.linalg.tri_inv(mx.array(a), upper=True, stream=mx.cpu),
                mlx.linalg.tri_inv(mlx.array(a), upper=True, stream=mlx.cpu))
    assert np.array(mx.linalg.tri_inv(mx.array(a), stream=mx.cpu))[0, 1] == 0
