"""Quantization against upstream: bit-identical packing, dequantize of upstream-packed
weights, the quantized products and their gradients, fp8 conversion, errors; and (gpu)
the fused Triton kernels against the CPU path."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import errors_alike, np_of

RNG = np.random.default_rng(11)
DTYPES = ("float32", "float16", "bfloat16")


def _w(shape, scale_rows=True):
    w = RNG.standard_normal(shape)
    if scale_rows:
        w = w * RNG.uniform(0.01, 10.0, shape[:-1] + (1,))
    return w.astype(np.float32)


def _pair(x, dt):
    return mx.array(x).astype(getattr(mx, dt)), mlx.array(x).astype(getattr(mlx, dt))


def _bits_equal(e, m):
    assert tuple(e.shape) == tuple(m.shape)
    assert str(e.dtype).split(".")[-1] == str(m.dtype).split(".")[-1]
    np.testing.assert_array_equal(np_of(e), np_of(m))


def _np(a):
    return a if isinstance(a, np.ndarray) else np_of(a)


def _close(e, m, rtol=1e-4):
    a, b = _np(e).astype(np.float64), _np(m).astype(np.float64)
    assert a.shape == b.shape
    err = np.abs(a - b).max() / (np.abs(b).max() + 1e-12) if b.size else 0.0
    assert err <= rtol, err


# -- packing ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("gs", [32, 64, 128])
def test_affine_quantize_bit_identical(dt, bits, gs):
    w = _w((12, 384))
    w[0, :gs] = 0.0          # a zero group
    w[1, :gs] = 2.5          # a constant group
    w[2, :gs] += 7.0         # a group away from zero
    e, m = _pair(w, dt)
    eq = mx.quantize(e, gs, bits)
    mq = mlx.quantize(m, gs, bits)
    assert isinstance(eq, list) and len(eq) == 3
    for a, b in zip(eq, mq):
        _bits_equal(a, b)
    # dequantize upstream's packing in Ember
    _bits_equal(mx.dequantize(*[mx.array(np.array(x)) if x.dtype == mlx.uint32 else
                                _pair(np_of(x), dt)[0] for x in mq], gs, bits),
                mlx.dequantize(*mq, gs, bits))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8", "nvfp4"])
def test_fp_quantize_bit_identical(dt, mode):
    w = _w((16, 256))
    w[0, :32] = 0.0
    w[1, :32] = 1e-30
    w[2, :8] = [6, 0.75, 1.25, 2.5, 3.5, 5.0, -0.25, -1.75]  # E2M1 ties
    e, m = _pair(w, dt)
    eq, mq = mx.quantize(e, mode=mode), mlx.quantize(m, mode=mode)
    assert len(eq) == 2
    for a, b in zip(eq, mq):
        _bits_equal(a, b)
    for odt in (None, mx.float32, mx.float16):
        kw = {} if odt is None else {"dtype": odt}
        mkw = {} if odt is None else {"dtype": getattr(mlx, str(odt).split(".")[-1])}
        _bits_equal(mx.dequantize(mx.array(np.array(mq[0])), mx.array(np.array(mq[1])),
                                  mode=mode, **kw), mlx.dequantize(*mq, mode=mode, **mkw))


def test_nvfp4_global_scale_float32():
    w = _w((8, 128))
    g = 3.7
    eq = mx.quantize(mx.array(w), mode="nvfp4", global_scale=mx.array(g))
    mq = mlx.quantize(mlx.array(w), mode="nvfp4", global_scale=mlx.array(g))
    for a, b in zip(eq, mq):
        _bits_equal(a, b)
    _bits_equal(mx.dequantize(*eq, mode="nvfp4", global_scale=mx.array(g)),
                mlx.dequantize(*mq, mode="nvfp4", global_scale=mlx.array(g)))


def test_quantize_batched_and_empty():
    w = _w((2, 3, 64))
    for a, b in zip(mx.quantize(mx.array(w)), mlx.quantize(mlx.array(w))):
        _bits_equal(a, b)
    for a, b in zip(mx.quantize(mx.zeros((0, 64))), mlx.quantize(mlx.zeros((0, 64)))):
        assert tuple(a.shape) == tuple(b.shape)


def test_quantize_vmap_and_grad():
    w = _w((3, 8, 64))
    ev = mx.vmap(lambda a: mx.quantize(a)[0])(mx.array(w))
    mv = mlx.vmap(lambda a: mlx.quantize(a)[0])(mlx.array(w))
    _bits_equal(ev, mv)
    g = mx.grad(lambda a: mx.quantize(a)[1].sum())(mx.array(w[0]))
    _bits_equal(g, mlx.grad(lambda a: mlx.quantize(a)[1].sum())(mlx.array(w[0])))


# -- products --------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dt", DTYPES)
def test_quantized_matmul(bits, transpose, dt):
    gs = 64
    w = _w((2, 64, 128), scale_rows=False)
    wq = mlx.quantize(mlx.array(w).astype(getattr(mlx, dt)), gs, bits)
    ew = [mx.array(np.array(wq[0]))] + [_pair(np_of(a), dt)[0] for a in wq[1:]]
    k = 128 if transpose else 64
    for xs, wsl in [((3, 1, 5, k), slice(None)), ((5, k), 0), ((k,), 1)]:
        x = RNG.standard_normal(xs).astype(np.float32)
        ex, mxx = _pair(x, dt)
        e = mx.quantized_matmul(ex, *[a[wsl] for a in ew], transpose=transpose,
                                group_size=gs, bits=bits)
        m = mlx.quantized_matmul(mxx, *[a[wsl] for a in wq], transpose=transpose,
                                 group_size=gs, bits=bits)
        assert e.dtype == getattr(mx, str(m.dtype).split(".")[-1])
        # (upstream CPU accumulates half inputs coarsely: ~2% of the max off float64)
        _close(e, m, 1e-5 if dt == "float32" else 5e-2)


@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8", "nvfp4"])
@pytest.mark.parametrize("transpose", [True, False])
def test_quantized_matmul_fp_modes(mode, transpose):
    w = _w((64, 128), scale_rows=False)
    wq = mlx.quantize(mlx.array(w), mode=mode)
    ew = [mx.array(np.array(a)) for a in wq]
    x = RNG.standard_normal((4, 128 if transpose else 64)).astype(np.float32)
    for dt in ("float32", "bfloat16"):
        ex, mxx = _pair(x, dt)
        e = mx.quantized_matmul(ex, *ew, transpose=transpose, mode=mode)
        m = mlx.quantized_matmul(mxx, *wq, transpose=transpose, mode=mode)
        assert str(e.dtype).split(".")[-1] == str(m.dtype).split(".")[-1]
        # (upstream CPU accumulates half inputs coarsely: ~2% of the max off float64)
        _close(e, m, 1e-5 if dt == "float32" else 5e-2)


@pytest.mark.parametrize("transpose", [True, False])
def test_quantized_matmul_grads(transpose):
    w = _w((32, 64), scale_rows=False)
    wq = mlx.quantize(mlx.array(w), 32, 4)
    ew = [mx.array(np.array(a)) for a in wq]
    x = RNG.standard_normal((2, 3, 64 if transpose else 32)).astype(np.float32)
    c = RNG.standard_normal((2, 3, 32 if transpose else 64)).astype(np.float32)

    def loss(mod, w_q):
        def f(x, s, b):
            y = mod.quantized_matmul(x, w_q, s, b, transpose=transpose, group_size=32, bits=4)
            return (y * mod.array(c)).sum()
        return f

    ge = mx.grad(loss(mx, ew[0]), argnums=(0, 1, 2))(mx.array(x), ew[1], ew[2])
    gm = mlx.grad(loss(mlx, wq[0]), argnums=(0, 1, 2))(mlx.array(x), wq[1], wq[2])
    for a, b in zip(ge, gm):
        _close(a, b, 1e-5)
    # jvp w.r.t. x
    t = RNG.standard_normal(x.shape).astype(np.float32)
    _, te = mx.jvp(lambda a: mx.quantized_matmul(a, *ew, transpose=transpose, group_size=32,
                                                 bits=4), [mx.array(x)], [mx.array(t)])
    _, tm = mlx.jvp(lambda a: mlx.quantized_matmul(a, *wq, transpose=transpose, group_size=32,
                                                   bits=4), [mlx.array(x)], [mlx.array(t)])
    _close(te[0], tm[0], 1e-5)
    # the scales/biases gradient of dequantize
    f = (lambda mod, q: lambda s, b: (mod.dequantize(q, s, b, 32, 4) ** 2).sum())
    ge = mx.grad(f(mx, ew[0]), argnums=(0, 1))(ew[1], ew[2])
    gm = mlx.grad(f(mlx, wq[0]), argnums=(0, 1))(wq[1], wq[2])
    for a, b in zip(ge, gm):
        _close(a, b, 1e-5)


def test_quantized_matmul_vmap_over_x():
    w = _w((32, 64), scale_rows=False)
    ew = mx.quantize(mx.array(w), 32, 4)
    x = RNG.standard_normal((4, 3, 64)).astype(np.float32)
    out = mx.vmap(lambda a: mx.quantized_matmul(a, *ew, group_size=32, bits=4), in_axes=1)(
        mx.array(x))
    ref = np.stack([np_of(mx.quantized_matmul(mx.array(x[:, i]), *ew, group_size=32, bits=4))
                    for i in range(3)])
    np.testing.assert_allclose(np_of(out), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("transpose", [True, False])
def test_gather_qmm(transpose):
    w = _w((4, 64, 64), scale_rows=False)
    wq = mlx.quantize(mlx.array(w), 64, 4)
    ew = [mx.array(np.array(a)) for a in wq]
    x = RNG.standard_normal((3, 5, 64)).astype(np.float32)
    li, ri = np.array([2, 0, 1, 1]), np.array([3, 3, 0, 1])
    cases = [dict(lhs_indices=li, rhs_indices=ri), dict(rhs_indices=ri[:3]), dict()]
    for kw in cases:
        kw_e = {k: mx.array(v) for k, v in kw.items()}
        kw_m = {k: mlx.array(v) for k, v in kw.items()}
        xe, xm = mx.array(x), mlx.array(x)
        if not kw:
            xe, xm = mx.array(x[:, None].repeat(4, 1)), mlx.array(x[:, None].repeat(4, 1))
        e = mx.gather_qmm(xe, *ew, transpose=transpose, **kw_e)
        m = mlx.gather_qmm(xm, *wq, transpose=transpose, **kw_m)
        _close(e, m, 1e-5)
    c = RNG.standard_normal((4, 5, 64)).astype(np.float32)

    def loss(mod, q, ik):
        def f(x, s, b):
            y = mod.gather_qmm(x, q, s, b, transpose=transpose, **ik)
            return (y * mod.array(c)).sum()
        return f

    fm = loss(mlx, wq[0], {k: mlx.array(v) for k, v in cases[0].items()})
    ge = mx.grad(loss(mx, ew[0], {k: mx.array(v) for k, v in cases[0].items()}),
                 argnums=(0, 1, 2))(mx.array(x), ew[1], ew[2])
    gm = mlx.grad(fm, argnums=(0, 1, 2))(mlx.array(x), wq[1], wq[2])
    _close(ge[0], gm[0], 1e-5)
    if transpose:
        for a, b in zip(ge[1:], gm[1:]):
            _close(a, b, 1e-5)
    # upstream's scales/biases grads are off without the transpose: check those against
    # central differences of upstream's forward instead
    s, b = np.array(wq[1]), np.array(wq[2])
    for i, arr in ((1, s), (2, b)):
        for idx in [(3, 0, 0), (0, 5, 0), (1, 10, 0)]:
            d = np.zeros_like(arr)
            d[idx] = 1e-2
            args = [mlx.array(x), wq[1], wq[2]]
            args[i] = mlx.array(arr + d)
            hi = fm(*args).item()
            args[i] = mlx.array(arr - d)
            lo = fm(*args).item()
            assert abs((hi - lo) / 2e-2 - np_of(ge[i])[idx]) <= 1e-2 * (1 + abs(hi - lo) / 2e-2)


@pytest.mark.parametrize("mode", ["nvfp4", "mxfp8"])
def test_qqmm_matches_quantize_dequantize(mode):
    # upstream has no CPU kernel for qqmm: compare with its own quantize/dequantize
    x = RNG.standard_normal((6, 64)).astype(np.float32)
    w = RNG.standard_normal((16, 64)).astype(np.float32)

    def rt(a):
        return mlx.dequantize(*mlx.quantize(mlx.array(a), mode=mode), mode=mode,
                              dtype=mlx.float32)

    ref = rt(x) @ rt(w).T
    _close(mx.qqmm(mx.array(x), mx.array(w), mode=mode), ref, 1e-5)
    wq = mx.quantize(mx.array(w), mode=mode)
    _close(mx.qqmm(mx.array(x), wq[0], wq[1], mode=mode), ref, 1e-5)
    # gradients pass straight through the rounding of x
    g = mx.grad(lambda a: mx.qqmm(a, mx.array(w), mode=mode).sum())(mx.array(x))
    _close(g, np.broadcast_to(np.array(rt(w)).sum(0), x.shape), 1e-5)
    out = mx.gather_qqmm(mx.array(np.stack([x, x])), mx.array(np.stack([w, w * 2])),
                         rhs_indices=mx.array([1, 0]), mode=mode)
    _close(out[1], ref, 1e-5)


# -- fp8 -------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
def test_to_from_fp8(dt):
    special = [0.0, -0.0, 1.0, -1.3, 500.0, -1000.0, 1e-4, 1e-9, np.nan, np.inf, -np.inf,
               448.0, 464.0, 480.0, 0.0009765625, 0.00146484375]
    v = np.concatenate([special, RNG.standard_normal(2000) * 100,
                        RNG.standard_normal(500) * 0.01]).astype(np.float32)
    e, m = _pair(v, dt)
    _bits_equal(mx.to_fp8(e), mlx.to_fp8(m))
    b = np.arange(256, dtype=np.uint8)
    for odt in ("float32", "float16", "bfloat16"):
        _bits_equal(mx.from_fp8(mx.array(b), getattr(mx, odt)),
                    mlx.from_fp8(mlx.array(b), getattr(mlx, odt)))
    assert mx.from_fp8(mx.array(b)).dtype == mx.bfloat16


# -- errors ----------------------------------------------------------------------------

def _raises_like(f):
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


W = _w((32, 64))


@pytest.mark.parametrize("case", [
    lambda m: m.quantize(m.array(W), 16),
    lambda m: m.quantize(m.array(W), 64, 7),
    lambda m: m.quantize(m.array(W), mode="foo"),
    lambda m: m.quantize(m.array(W), mode="mxfp4", group_size=16),
    lambda m: m.quantize(m.array(W), mode="mxfp8", bits=4),
    lambda m: m.quantize(m.array(W[0])),
    lambda m: m.quantize(m.array(W).astype(m.int32)),
    lambda m: m.quantize(m.array(W[:, :48])),
    lambda m: m.quantize(m.array(W), global_scale=m.array(2.0)),
    lambda m: m.quantize(m.array(W), mode="nvfp4", global_scale=m.array(2.0, m.float16)),
    lambda m: m.dequantize(*m.quantize(m.array(W))[:2]),
    lambda m: m.dequantize(*m.quantize(m.array(W), mode="mxfp4"), m.zeros((32, 2)),
                           mode="mxfp4"),
    lambda m: m.dequantize(*m.quantize(m.array(W)), bits=8),
    lambda m: m.dequantize(*m.quantize(m.array(W)), dtype=m.int32),
    lambda m: m.dequantize(m.quantize(m.array(W))[0].astype(m.int32),
                           *m.quantize(m.array(W))[1:]),
    lambda m: m.quantized_matmul(m.array(W), *m.quantize(m.array(W))[:2]),
    lambda m: m.quantized_matmul(m.array(W[:, :32]), *m.quantize(m.array(W))),
    lambda m: m.quantized_matmul(m.array(W), m.array(W), *m.quantize(m.array(W))[1:]),
    lambda m: m.quantized_matmul(m.array(W).astype(m.int32),
                                 *m.quantize(m.array(W), mode="mxfp8"), mode="mxfp8"),
    lambda m: m.gather_qmm(m.array(W[None]), *m.quantize(m.array(W)),
                           lhs_indices=m.array([0.5])),
    lambda m: m.to_fp8(m.array([1, 2])),
    lambda m: m.from_fp8(m.array([1, 2])),
    lambda m: m.from_fp8(m.array([1, 2]).astype(m.uint8), m.int32),
])
def test_errors_match(case):
    _raises_like(case)


# -- the fused CUDA kernels ------------------------------------------------------------

def _gpu_vs_cpu(m, n, k, bits, gs, transpose, dt, batch=()):
    w = _w((n, k) if transpose else (k, n), scale_rows=False)
    x = RNG.standard_normal(batch + (m, k)).astype(np.float32)
    with mx.stream(mx.cpu):
        wc = mx.quantize(mx.array(w).astype(getattr(mx, dt)), gs, bits)
        xc = mx.array(x).astype(getattr(mx, dt))
        ref = mx.quantized_matmul(xc, *wc, transpose=transpose, group_size=gs, bits=bits)
        mx.eval(ref)
    with mx.stream(mx.gpu):
        wg = mx.quantize(mx.array(w).astype(getattr(mx, dt)), gs, bits)
        for a, b in zip(wg, wc):  # packing on the GPU is bit-identical too
            np.testing.assert_array_equal(np_of(a), np_of(b))
        out = mx.quantized_matmul(mx.array(x).astype(getattr(mx, dt)), *wg,
                                  transpose=transpose, group_size=gs, bits=bits)
        mx.eval(out)
    assert out._data.is_cuda and out.dtype == ref.dtype
    _close(out, ref, 1e-2 if dt == "float32" else 3e-2)  # (TF32 / half accumulation order)


@pytest.mark.gpu
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("gs", [32, 64, 128])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("m,n,k,transpose", [
    (1, 4096, 4096, True), (1, 1000, 512, True), (3, 384, 1024, True), (8, 256, 256, True),
    (1, 256, 512, False), (5, 512, 384, False),
    (16, 384, 512, True), (77, 1000, 256, True), (200, 512, 1024, True),
    (40, 256, 384, False), (129, 640, 128, False),
])
def test_gpu_fused_matches_cpu(bits, gs, dt, m, n, k, transpose):
    _gpu_vs_cpu(m, n, k, bits, gs, transpose, dt)


@pytest.mark.gpu
@pytest.mark.parametrize("gs", [32, 64, 128])
@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("m,n,k", [(2, 4096, 4096), (3, 200, 1024), (5, 1000, 2048),
                                   (8, 48, 1024)])
def test_gpu_tensor_core_rows(gs, dt, m, n, k):
    """2-8 rows of half-type x at 4 bits run on the tensor-core kernel (rows of w past a
    multiple of 16 included); one row takes the decode kernel."""
    from ember.core._backend import cuda_qmv
    calls = []
    orig = cuda_qmv.quantized_matmul

    def spy(*a, **kw):
        calls.append(a[0].shape[0])
        return orig(*a, **kw)

    cuda_qmv.quantized_matmul = spy
    try:
        _gpu_vs_cpu(m, n, k, 4, gs, True, dt)
    finally:
        cuda_qmv.quantized_matmul = orig
    assert calls == [m]


@pytest.mark.gpu
@pytest.mark.parametrize("gs", [32, 64, 128])
@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("n,k,amp", [(4096, 4096, 1.0), (1001, 1152, 1.0), (37, 14336, 1.0),
                                     (300, 2048, 300.0), (64, 512, 1e-6)])
def test_gpu_decode_kernel(gs, dt, n, k, amp):
    """One row of half-type x at 4 bits runs on the decode kernel: K past a multiple of
    1024, rows past a program's, and x far from 1 (float16 sums scaled, not overflowed)."""
    from ember.core._backend import cuda_qmv
    calls = []
    orig = cuda_qmv.gemv

    def spy(*a, **kw):
        calls.append(a[0].shape)
        return orig(*a, **kw)

    cuda_qmv.gemv = spy
    try:
        w = _w((n, k), scale_rows=False)
        x = (RNG.standard_normal((1, k)) * amp).astype(np.float32)
        with mx.stream(mx.cpu):
            xh = mx.array(x).astype(getattr(mx, dt))
            wq, sc, bi = mx.quantize(mx.array(w).astype(getattr(mx, dt)), gs, 4)
            ref = mx.quantized_matmul(xh.astype(mx.float32), wq, sc.astype(mx.float32),
                                      bi.astype(mx.float32), group_size=gs, bits=4)
            mx.eval(ref)
        with mx.stream(mx.gpu):
            out = mx.quantized_matmul(xh, wq, sc, bi, group_size=gs, bits=4)
            mx.eval(out)
    finally:
        cuda_qmv.gemv = orig
    assert calls == [(1, k)] and out.dtype == getattr(mx, dt)
    # float32 reference on the same half inputs: off by the output's rounding
    ref = np.array(ref)
    got = np_of(out).astype(np.float64)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-2, atol=2e-3 * np.abs(ref).max())


@pytest.mark.gpu
def test_gpu_fused_is_used_and_batched_x():
    from ember.core._backend import triton_quantized as T
    calls = []
    orig = T.quantized_matmul

    def spy(*a, **kw):
        calls.append(1)
        return orig(*a, **kw)

    T.quantized_matmul = spy
    try:
        _gpu_vs_cpu(3, 256, 512, 4, 64, True, "bfloat16", batch=(2, 2))
    finally:
        T.quantized_matmul = orig
    assert calls


@pytest.mark.gpu
@pytest.mark.parametrize("bits", [2, 3, 5, 6])
def test_gpu_other_bits_fall_back(bits):
    _gpu_vs_cpu(4, 128, 256, bits, 64, True, "float32")


@pytest.mark.gpu
def test_gpu_fp_modes_and_grad():
    w = _w((128, 256), scale_rows=False)
    x = RNG.standard_normal((4, 256)).astype(np.float32)
    for mode in ("mxfp4", "mxfp8", "nvfp4"):
        with mx.stream(mx.cpu):
            ref = mx.quantized_matmul(mx.array(x), *mx.quantize(mx.array(w), mode=mode),
                                      mode=mode)
            mx.eval(ref)
        with mx.stream(mx.gpu):
            out = mx.quantized_matmul(mx.array(x), *mx.quantize(mx.array(w), mode=mode),
                                      mode=mode)
            mx.eval(out)
        _close(out, ref, 1e-2)
    with mx.stream(mx.gpu):
        wq = mx.quantize(mx.array(w), 64, 4)
        g = mx.grad(lambda a: mx.quantized_matmul(a, *wq).sum())(mx.array(x[:1]))
        ref = mx.dequantize(*wq).sum(0)
        _close(g[0], ref, 1e-2)


def test_fused_configs_fit_shared_memory():
    # the prefill tiles must fit the H100's 227 KB of shared memory for every dtype, bits
    # and group size (Triton raises OutOfResources at launch otherwise)
    from ember.core._backend import triton_quantized as T
    for m in (5, 16, 17, 33, 65, 4096):
        for elt in (2, 4):
            for bits in (4, 8):
                for gs in (32, 64, 128):
                    for tr in (True, False):
                        bm, bn, bk, _, stages = T.qmm_config(m, elt, bits, gs, tr)
                        assert stages >= 2 and bm >= min(m, 16)
                        assert (bk if tr else bn) % gs == 0
                        assert T.qmm_smem(bm, bn, bk, stages, elt, bits, gs) <= 200 * 1024
    for m in (1, 2, 3, 4):
        bn, bk, ks, warps, _, _ = T.gemv_config(m, 4096, 4096, 4, 64)
        assert bk % 64 == 0 and bk * ks <= 4096
        assert bn * bk * ks * T.triton_next_pow2(m) // (32 * warps) <= 256  # weights/thread/step


def test_scale_division_is_exact():
    # CUDA turns `tensor / python_float` into a multiplication by the reciprocal; the
    # quantizer's constant divisions must stay true divisions (bit-exact packing on GPU)
    import torch

    from ember.core._backend import kernels_quantized as KQ
    a = torch.from_numpy(RNG.standard_normal(4096).astype(np.float32))
    for c in (3.0, 7.0, 15.0, 31.0, 63.0, 255.0, 6.0, 448.0, 2688.0):
        np.testing.assert_array_equal(KQ._over(a, c).numpy(),
                                      a.numpy() / np.float32(c))


_same_message = errors_alike


@pytest.mark.parametrize("case", [
    # the matrix is checked (dtype, rank, divisibility) before the group size and bits
    lambda m: m.quantize(m.array(W), 24),
    lambda m: m.quantize(m.array(W), 48, mode="mxfp4"),
    lambda m: m.quantize(m.array(W[:, :48]), 16, 7),
    lambda m: m.quantize(m.array(W).astype(m.int32), 16),
    lambda m: m.quantize(m.array(W[0]), 256),
    lambda m: m.quantize(m.array(W), 16),
    lambda m: m.quantize(m.array(W), 64, 7),
    lambda m: m.quantize(m.array(W), 24, mode="nvfp4", global_scale=m.array(2.0)),
    lambda m: m.quantize(m.array(W), mode="nvfp4", global_scale=2.0),
])
def test_quantize_error_messages_match(case):
    _same_message(case)
