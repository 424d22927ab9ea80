"""The one-node backward passes of layer_norm, rms_norm, softmax and logsumexp
(`ember.core.primitives.fast_grad`): the fused kernels against their formula and against
upstream's gradients, in every float dtype, twice differentiated, under vmap and jvp."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from ember.core.array import node
from ember.core.primitives import fast_grad as G
from tests.helpers import assert_same, np_of, on_cpu

FLOATS = ("float16", "bfloat16", "float32")
TOL = {"float16": 2e-2, "bfloat16": 6e-2, "float32": 1e-4, "float64": 1e-10}
# (layer_norm?, has_w, has_b)
NORMS = [(True, True, True), (True, True, False), (True, False, True), (True, False, False),
         (False, True, False), (False, False, False)]
SHAPES = [(2, 3, 8), (5,), (4, 1), (3, 64)]


def _dt(m, name):
    return getattr(m, name)


def _norm(m, ln, x, w, b, eps=1e-5):
    return m.fast.layer_norm(x, w, b, eps) if ln else m.fast.rms_norm(x, w, eps)


def _args(m, shape, dt, has_w, has_b, seed=0):
    rng = np.random.default_rng(seed)
    d = shape[-1]
    x = m.array(rng.uniform(-2, 2, shape).astype(np.float32)).astype(_dt(m, dt))
    w = m.array(rng.uniform(-2, 2, (d,)).astype(np.float32)).astype(_dt(m, dt))
    b = m.array(rng.uniform(-2, 2, (d,)).astype(np.float32)).astype(_dt(m, dt))
    c = m.array(rng.standard_normal(shape).astype(np.float32)).astype(_dt(m, dt))
    return x, (w if has_w else None), (b if has_b else None), c


def _close(got, want, dt, msg=""):
    assert got.dtype == want.dtype or str(got.dtype).split(".")[-1] == \
        str(want.dtype).split(".")[-1], msg
    tol = TOL[dt]
    a, b = np_of(got).astype(np.float64), np_of(want).astype(np.float64)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a / scale, b / scale, rtol=tol, atol=tol, err_msg=msg)


def _norm_grads(m, ln, shape, dt, has_w, has_b):
    x, w, b, c = _args(m, shape, dt, has_w, has_b)
    prims = [x] + [p for p in (w, b) if p is not None]

    def f(*ps):
        it = iter(ps[1:])
        ww = next(it) if has_w else None
        bb = next(it) if has_b else None
        return _norm(m, ln, ps[0], ww, bb)
    return m.vjp(f, prims, [c])[1]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("norm", NORMS, ids=str)
def test_norm_grads_match_upstream(norm, dt):
    ln, has_w, has_b = norm
    for shape in SHAPES:
        got = _norm_grads(mx, ln, shape, dt, has_w, has_b)
        want = _norm_grads(mlx, ln, shape, dt, has_w, has_b)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert tuple(g.shape) == tuple(w.shape)
            _close(g, w, dt, f"{norm} {shape}")


def _unequal(got, want):
    """The fraction of elements whose bits differ."""
    return float(np.mean(np_of(got.astype(mx.float32)) != np_of(want.astype(mlx.float32))))


@pytest.mark.parametrize("dt", FLOATS[:2])
@pytest.mark.parametrize("norm", NORMS, ids=str)
@on_cpu
def test_half_norm_grads_round_as_upstream(norm, dt):
    """Half inputs: upstream rounds g * w and g * (normalised x) to the input's dtype (one
    element in about 3000 differs, where float32 sums of another order round apart)."""
    ln, has_w, has_b = norm
    got = _norm_grads(mx, ln, (16, 256), dt, has_w, has_b)
    want = _norm_grads(mlx, ln, (16, 256), dt, has_w, has_b)
    for g, w in zip(got, want):
        assert _unequal(g, w) < 2e-3


@pytest.mark.parametrize("dt", FLOATS + ("float64",))
@pytest.mark.parametrize("norm", NORMS, ids=str)
def test_norm_kernel_matches_its_formula(norm, dt):
    """The fused kernel against `NormVJP.math` (the rule written with Ember's ops), for
    every subset of the inputs asked for."""
    ln, has_w, has_b = norm
    n_in = 1 + has_w + has_b
    for shape in SHAPES + [(0, 4)]:
        x, w, b, c = _args(mx, shape, dt, has_w, has_b)
        ins = (x, c) if w is None else (x, w, c)
        for k in range(1, 2 ** n_in):
            nums = tuple(i for i in range(n_in) if k >> i & 1)
            dts = [x.dtype] * len(nums)
            got = G.norm_vjp(x, w, has_b, c, 1e-5, ln, nums, dts)
            prim = got[0]._prim
            assert isinstance(prim, G.NormVJP) and all(g._prim is prim for g in got)
            want = prim.math(list(ins))
            for g, v in zip(got, want):
                assert g.shape == v.shape and g.dtype == v.dtype
                _close(g, v, "float32" if dt == "float64" else dt, f"{norm} {shape} {nums}")


def test_norm_vjp_is_one_node():
    x, w, b, c = _args(mx, (4, 8), "float32", True, True)
    _, gs = mx.vjp(lambda x, w, b: mx.fast.layer_norm(x, w, b, 1e-5), [x, w, b], [c])
    assert all(type(g._prim) is G.NormVJP for g in gs)
    assert gs[0]._siblings is not None and set(map(id, gs)) == set(map(id, gs[0]._siblings))
    _, gs = mx.vjp(lambda x, w: mx.fast.rms_norm(x, w, 1e-5), [x, w], [c])
    assert all(type(g._prim) is G.NormVJP for g in gs)


@pytest.mark.parametrize("norm", NORMS, ids=str)
def test_norm_second_derivatives_match_upstream(norm):
    ln, has_w, has_b = norm

    def run(m):
        x, w, b, c = _args(m, (3, 6), "float32", has_w, has_b)

        def loss(x, w):
            return (_norm(m, ln, x, w, b) * c).sum()
        if not has_w:
            gx = m.grad(lambda x: (m.grad(lambda x: loss(x, None))(x) ** 2).sum())(x)
            return [gx]
        inner = m.grad(loss, argnums=(0, 1))
        outer = m.grad(lambda x, w: sum(((g * g).sum() for g in inner(x, w))), argnums=(0, 1))
        return list(outer(x, w))
    assert_same(run(mx), run(mlx), rtol=2e-4)


@pytest.mark.parametrize("ln", [True, False])
def test_norm_vmapped_and_forward_over_reverse_grads_match_upstream(ln):
    def run(m):
        x, w, b, c = _args(m, (4, 3, 8), "float32", True, ln)

        def loss(x, w):
            return (_norm(m, ln, x, w, b) * c[0]).sum()
        per_example = m.vmap(m.grad(loss, argnums=(0, 1)), in_axes=(0, None))(x, w)
        # both batched: the weight too
        both = m.vmap(m.grad(loss, argnums=(0, 1)))(x, m.stack([w * k for k in range(4)]))
        hvp = m.jvp(lambda x: m.grad(loss)(x, w), [x], [c[:, :1, :] * x])[1]
        return list(per_example) + list(both) + list(hvp)
    assert_same(run(mx), run(mlx), rtol=2e-4)


def test_norm_grads_of_broadcast_cotangent_and_mixed_inputs():
    def run(m):
        x, w, b, _ = _args(m, (2, 5, 8), "float32", True, True)
        xh = x.astype(m.float16)
        return m.grad(lambda x, w, b: m.fast.layer_norm(x, w, b.astype(m.bfloat16), 1e-5).sum(),
                      argnums=(0, 1, 2))(xh, w, b)
    for g, w in zip(run(mx), run(mlx)):
        _close(g, w, "float16")


# -- softmax and logsumexp ---------------------------------------------------------------

_SM = [(-1, False), (0, False), ((0, 2), False), (-1, True), (None, False)]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("axis,precise", _SM, ids=str)
def test_softmax_grads_match_upstream(axis, precise, dt):
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, (3, 4, 5)).astype(np.float32)
    c = rng.standard_normal((3, 4, 5)).astype(np.float32)

    def run(m):
        xx = m.array(x).astype(_dt(m, dt))
        cc = m.array(c).astype(_dt(m, dt))

        def f(x):
            return m.softmax(x, axis=axis, precise=precise)
        g = m.vjp(f, [xx], [cc])[1][0]
        j = m.jvp(f, [xx], [cc])[1][0]
        return [g, j]
    for g, w in zip(run(mx), run(mlx)):
        _close(g, w, dt)


@pytest.mark.parametrize("axis", [-1, 1, (0, 2)], ids=str)
def test_softmax_and_logsumexp_second_derivatives_match_upstream(axis):
    rng = np.random.default_rng(2)
    x = rng.uniform(-3, 3, (3, 4, 5)).astype(np.float32)
    c = rng.standard_normal((3, 4, 5)).astype(np.float32)

    def run(m):
        xx, cc = m.array(x), m.array(c)

        def sm(x):
            return (m.softmax(x, axis=axis) * cc).sum()

        def lse(x):
            return (m.logsumexp(x, axis=axis, keepdims=True) * cc.sum(axis=axis,
                                                                       keepdims=True)).sum()
        out = []
        for f in (sm, lse):
            out.append(m.grad(lambda x: (m.grad(f)(x) ** 2).sum())(xx))
            out.append(m.vmap(m.grad(f))(m.stack([xx, xx * 0.5])))
        return out
    assert_same(run(mx), run(mlx), rtol=2e-4)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("axis,keepdims", [(-1, False), (1, True), ((0, 2), False),
                                           (None, False)], ids=str)
def test_logsumexp_grads_match_upstream(axis, keepdims, dt):
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, (3, 4, 5)).astype(np.float32)

    def run(m):
        xx = m.array(x).astype(_dt(m, dt))
        out = m.logsumexp(xx, axis=axis, keepdims=keepdims)
        c = m.array(rng.standard_normal(out.shape).astype(np.float32)).astype(_dt(m, dt))
        return m.vjp(lambda x: m.logsumexp(x, axis=axis, keepdims=keepdims), [xx], [c])[1][0]
    rng = np.random.default_rng(3)
    got = run(mx)
    rng = np.random.default_rng(3)
    _close(got, run(mlx), dt)


def test_softmax_vjp_kernel_matches_formula():
    rng = np.random.default_rng(4)
    for dt in (mx.float16, mx.bfloat16, mx.float32, mx.float64):
        for axes in ((2,), (0,), (0, 2), ()):
            y = mx.softmax(mx.array(rng.uniform(-3, 3, (3, 4, 5)), dt), axis=axes)
            g = mx.array(rng.standard_normal((3, 4, 5)), dt)
            prim = G.SoftmaxVJP(axes)
            got = node(y.shape, y.dtype, prim, (y, g), g._stream)
            _close(got, prim.math([y, g])[0], "float32" if dt in (mx.float32, mx.float64)
                   else "bfloat16")


@pytest.mark.gpu
@pytest.mark.parametrize("dt", FLOATS)
def test_gpu_norm_and_softmax_grads_match_cpu(dt):
    """The CUDA kernels (ATen's fused layer_norm backward on half inputs without
    widening) against the CPU ones."""
    rng = np.random.default_rng(5)
    arrs = [rng.standard_normal(s).astype(np.float32) for s in ((4, 16, 64), (64,), (64,))]

    def grads(x, w, b):
        x, w, b = (a.astype(_dt(mx, dt)) for a in (x, w, b))
        c = mx.cos(mx.arange(x.size, dtype=mx.float32).reshape(x.shape)).astype(x.dtype)

        def loss(x, w, b):
            y = mx.fast.layer_norm(x, w, b, 1e-5) + mx.fast.rms_norm(x, w, 1e-5)
            return (mx.softmax(y, axis=-1, precise=True) * c).sum() + mx.logsumexp(y).sum()
        return mx.grad(loss, argnums=(0, 1, 2))(x, w, b)
    with mx.stream(mx.gpu):
        got = grads(*[mx.array(a) for a in arrs])
        assert got[0]._tensor().is_cuda
    with mx.stream(mx.cpu):
        want = grads(*[mx.array(a) for a in arrs])
    for g, w in zip(got, want):
        _close(g, w, dt)


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_layer_norm_vjp_reuses_the_forward_statistics(eps):
    """value_and_grad through two layer norms (of different eps) computes their
    statistics once each, in the forwards; the gradients stay upstream's."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += "native_layer_norm.default" in str(func)
            return func(*args, **(kwargs or {}))

    def loss(m, x, w, b):
        y = m.fast.layer_norm(x, w, b, eps)
        z = m.fast.layer_norm(y * 2, w, b, eps * 10)
        return (z * m.arange(z.size).reshape(z.shape)).sum()

    x, w, b, _ = _args(mx, (3, 5, 16), "float32", True, True)
    mx.eval(x, w, b)
    with Count() as c:
        v, g = mx.value_and_grad(lambda *a: loss(mx, *a), argnums=(0, 1, 2))(x, w, b)
        mx.eval(v, g)
    assert c.n == 2
    xm, wm, bm, _ = _args(mlx, (3, 5, 16), "float32", True, True)
    vm, gm = mlx.value_and_grad(lambda *a: loss(mlx, *a), argnums=(0, 1, 2))(xm, wm, bm)
    assert_same(v, vm, rtol=1e-5)
    assert_same(list(g), list(gm), rtol=1e-4)
