"""Convolutions beyond the op database: gradients (upstream has no conv jvp, so they are
checked here), higher-order derivatives, vmap over each operand, argument handling and
error messages, all against upstream MLX."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.core import test_opdb as H
from tests.helpers import assert_close, assert_same, np_of
from tests.opdb.conv import GRADS, UPSTREAM_VJP_WRONG


def _r(rng, *shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("op", GRADS, ids=repr)
def test_vjp_matches_upstream(op):
    rng = H._rng(op, "conv-vjp")
    for sample in op.samples(rng, "float32"):
        n = len(sample)
        out = op.fn(mlx, *[mlx.array(x) for x in sample])
        cot = rng.standard_normal(out.shape).astype(np.float32)
        _, vm = mlx.vjp(lambda *xs: [op.fn(mlx, *xs)], [mlx.array(x) for x in sample],
                        [mlx.array(cot)])
        _, ve = mx.vjp(lambda *xs: [op.fn(mx, *xs)], [mx.array(x) for x in sample],
                       [mx.array(cot)])
        assert len(ve) == n
        for i, (a, b) in enumerate(zip(ve, vm)):
            if i in UPSTREAM_VJP_WRONG.get(op.name, ()):
                assert a.shape == sample[i].shape  # (values: finite differences, below)
                continue
            assert_same(a, b, rtol=1e-4, msg=f"{op.name} vjp")


@pytest.mark.parametrize("op", GRADS, ids=repr)
def test_vjp_of_one_operand_matches_upstream(op):
    # one gradient alone takes the single-gradient kernels (both take the joint one)
    rng = H._rng(op, "conv-vjp1")
    for sample in op.samples(rng, "float32"):
        if len(sample) != 2:
            continue
        x, w = sample
        cot = rng.standard_normal(op.fn(mlx, mlx.array(x), mlx.array(w)).shape)
        cot = cot.astype(np.float32)
        for i in (0, 1):
            if i in UPSTREAM_VJP_WRONG.get(op.name, ()):
                continue

            def run(m):
                const = m.array(w if i == 0 else x)
                f = (lambda a: [op.fn(m, a, const)]) if i == 0 else \
                    (lambda b: [op.fn(m, const, b)])
                return m.vjp(f, [m.array(x if i == 0 else w)], [m.array(cot)])[1][0]
            assert_same(run(mx), run(mlx), rtol=1e-4, msg=f"{op.name} vjp of {i}")


@pytest.mark.parametrize("op", GRADS, ids=repr)
def test_grads_match_finite_differences(op):
    H.test_grads_match_finite_differences(op)


def _conv_cases():
    # (ember fn, mlx fn, x shape, w shape)
    return [
        (lambda m, x, w: m.conv2d(x, w, stride=2, padding=1), (2, 6, 5, 3), (4, 3, 3, 3)),
        (lambda m, x, w: m.conv1d(x, w, padding=1, groups=2), (2, 7, 4), (6, 3, 2)),
        (lambda m, x, w: m.conv_transpose2d(x, w, stride=2, output_padding=1),
         (1, 3, 4, 2), (3, 2, 3, 2)),
        (lambda m, x, w: m.conv_general(x, w, [2], ([0], [3]), [2], [3], flip=True),
         (2, 5, 3), (2, 3, 3)),
        (lambda m, x, w: m.conv_transpose1d(x, w, padding=1, groups=2), (2, 5, 4), (4, 3, 2)),
    ]


_CASES = range(5)


# upstream's input gradient has the wrong shape for strided transposed convolutions (case 2)
@pytest.mark.parametrize("case", [0, 1, 3, 4])
def test_second_order_matches_upstream(case):
    fn, xs, ws = _conv_cases()[case]
    rng = np.random.default_rng(case)
    x, w = _r(rng, *xs), _r(rng, *ws)

    def make(m):
        def inner(x, w):
            return m.sum(fn(m, x, w) ** 2)

        def outer(x, w):
            gx, gw = m.grad(inner, argnums=(0, 1))(x, w)
            return m.sum(gx * gx) + m.sum(m.sin(gw))
        return m.grad(outer, argnums=(0, 1))
    ge = make(mx)(mx.array(x), mx.array(w))
    gm = make(mlx)(mlx.array(x), mlx.array(w))
    for a, b in zip(ge, gm):
        assert_same(a, b, rtol=2e-4)


@pytest.mark.parametrize("case", _CASES)
def test_jvp_of_gradient_matches_finite_differences(case):
    # the jvps of the gradient primitives (ConvGradInput / ConvGradWeight)
    fn, xs, ws = _conv_cases()[case]
    rng = np.random.default_rng(10 + case)
    x, w = rng.uniform(-1, 1, xs), rng.uniform(-1, 1, ws)
    tx, tw = rng.standard_normal(xs), rng.standard_normal(ws)

    def g(x, w):
        gx, gw = mx.grad(lambda x, w: mx.sum(mx.cos(fn(mx, x, w))), argnums=(0, 1))(x, w)
        return [gx, gw]

    def f64(v):
        return mx.array(v, mx.float64)
    _, jv = mx.jvp(g, [f64(x), f64(w)], [f64(tx), f64(tw)])
    h = 1e-6
    plus = g(f64(x + h * tx), f64(w + h * tw))
    minus = g(f64(x - h * tx), f64(w - h * tw))
    for j, p, m in zip(jv, plus, minus):
        assert_close(np_of(j), (np_of(p) - np_of(m)) / (2 * h), "fd", rtol=1e-5)


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (2, 1), (1, 0)])
def test_vmap_each_operand(case, in_axes):
    fn, xs, ws = _conv_cases()[case]
    rng = np.random.default_rng(20 + case)
    b = 3
    x = _r(rng, *(xs[:in_axes[0]] + (b,) + xs[in_axes[0]:])) if in_axes[0] is not None \
        else _r(rng, *xs)
    w = _r(rng, *(ws[:in_axes[1]] + (b,) + ws[in_axes[1]:])) if in_axes[1] is not None \
        else _r(rng, *ws)
    got = mx.vmap(lambda x, w: fn(mx, x, w), in_axes=in_axes)(mx.array(x), mx.array(w))
    want = []
    for i in range(b):
        xi = np.take(x, i, in_axes[0]) if in_axes[0] is not None else x
        wi = np.take(w, i, in_axes[1]) if in_axes[1] is not None else w
        want.append(np_of(fn(mlx, mlx.array(xi), mlx.array(wi))))
    assert_close(np_of(got), np.stack(want), "float32", rtol=1e-4)


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("which", [0, 1])
def test_jvp_of_joint_gradient_one_tangent(case, which):
    # a tangent on one operand only: the other output's tangent has no term from it
    fn, xs, ws = _conv_cases()[case]
    rng = np.random.default_rng(40 + case)
    x, w = rng.uniform(-1, 1, xs), rng.uniform(-1, 1, ws)
    cot = rng.standard_normal(np_of(fn(mx, mx.array(x), mx.array(w))).shape)
    t = rng.standard_normal(xs if which == 0 else ws)

    def f64(v):
        return mx.array(v, mx.float64)

    def g(v):
        a, b = (v, f64(w)) if which == 0 else (f64(x), v)
        return mx.vjp(lambda a, b: [fn(mx, a, b)], [a, b], [f64(cot)])[1]
    p = x if which == 0 else w
    _, jv = mx.jvp(g, [f64(p)], [f64(t)])
    h = 1e-6
    plus, minus = g(f64(p + h * t)), g(f64(p - h * t))
    for j, a, b in zip(jv, plus, minus):
        assert_close(np_of(j), (np_of(a) - np_of(b)) / (2 * h), "fd", rtol=1e-5)


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0)])
def test_vmap_of_vjp_with_fixed_cotangent(case, in_axes):
    # one gradient is then unbatched inside the vmapped joint-gradient node
    fn, xs, ws = _conv_cases()[case]
    rng = np.random.default_rng(50 + case)
    b = 2
    x = _r(rng, *((b,) + xs if in_axes[0] == 0 else xs))
    w = _r(rng, *((b,) + ws if in_axes[1] == 0 else ws))
    out = np_of(fn(mx, mx.array(x[0] if in_axes[0] == 0 else x),
                   mx.array(w[0] if in_axes[1] == 0 else w)))
    cot = mx.array(_r(rng, *out.shape))

    def grads(x, w):
        return mx.vjp(lambda a, c: [fn(mx, a, c)], [x, w], [cot])[1]
    got = mx.vmap(grads, in_axes=in_axes)(mx.array(x), mx.array(w))
    for i in range(b):
        xi = x[i] if in_axes[0] == 0 else x
        wi = w[i] if in_axes[1] == 0 else w
        for g, want in zip(got, grads(mx.array(xi), mx.array(wi))):
            assert_close(np_of(g)[i], np_of(want), "float32", rtol=1e-4)


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0)])
def test_vmap_of_gradients(case, in_axes):
    # vmap over the gradient primitives, against a loop (those gradients are checked
    # against upstream and finite differences above)
    fn, xs, ws = _conv_cases()[case]
    rng = np.random.default_rng(30 + case)
    b = 2
    x = _r(rng, *((b,) + xs if in_axes[0] == 0 else xs))
    w = _r(rng, *((b,) + ws if in_axes[1] == 0 else ws))

    def loss(m):
        return lambda x, w: m.sum(m.tanh(fn(m, x, w)))
    got = mx.vmap(mx.grad(loss(mx), argnums=(0, 1)), in_axes=in_axes)(mx.array(x), mx.array(w))
    want_x, want_w = [], []
    for i in range(b):
        xi = x[i] if in_axes[0] == 0 else x
        wi = w[i] if in_axes[1] == 0 else w
        gx, gw = mx.grad(loss(mx), argnums=(0, 1))(mx.array(xi), mx.array(wi))
        want_x.append(np_of(gx))
        want_w.append(np_of(gw))
    assert_close(np_of(got[0]), np.stack(want_x), "float32", rtol=1e-4)
    assert_close(np_of(got[1]), np.stack(want_w), "float32", rtol=1e-4)


def test_overhanging_window_reads_zeros():
    # upstream sizes the output with C's truncating division, so a last window that
    # overhangs the input by less than a stride counts; its values read past the end of
    # the input upstream (garbage), here implicit zeros
    rng = np.random.default_rng(0)
    x, w = _r(rng, 2, 2, 3), _r(rng, 2, 4, 3)
    got = mx.conv1d(mx.array(x), mx.array(w), stride=3)
    assert got.shape == mlx.conv1d(mlx.array(x), mlx.array(w), stride=3).shape
    xp = np.pad(x, ((0, 0), (0, 2), (0, 0)))
    want = np.einsum("nkc,okc->no", xp, w)[:, None, :]
    assert_close(np_of(got), want, "float32")
    gx = mx.grad(lambda x: mx.sum(mx.conv1d(x, mx.array(w), stride=3)))(mx.array(x))
    assert_close(np_of(gx), np.broadcast_to(w.sum(0)[:2], x.shape), "float32")


_BAD_VALUES = [
    lambda m, x, w: m.conv1d(x, w, groups=-1),
    lambda m, x, w: m.conv1d(x, w, groups=-3),
    lambda m, x, w: m.conv1d(x, w[..., :2], groups=3),
    lambda m, x, w: m.conv1d(x, w[..., :1], groups=4),
    lambda m, x, w: m.conv1d(x, w, groups=2),
    lambda m, x, w: m.conv1d(x, w[..., :3]),
    lambda m, x, w: m.conv1d(x.astype(m.int32), w),
    lambda m, x, w: m.conv1d(x.astype(m.bool_), w[0]),
    lambda m, x, w: m.conv1d(x, w[0]),
    lambda m, x, w: m.conv1d(x[0], w),
    lambda m, x, w: m.conv1d(x, w, stride=0, dilation=0),
    lambda m, x, w: m.conv1d(x, w, stride=0),
    lambda m, x, w: m.conv1d(x, m.zeros((6, 9, 4))),
    lambda m, x, w: m.conv1d(x, w, padding=-3),
    lambda m, x, w: m.conv2d(x, w),
    lambda m, x, w: m.conv3d(m.zeros((1, 3, 3, 3, 4)), m.zeros((2, 1, 1, 1, 2)), groups=2),
    lambda m, x, w: m.conv_general(x, w, stride=[1, 1], kernel_dilation=0),
    lambda m, x, w: m.conv_general(x, w, kernel_dilation=[1, 1], padding=[1, 1]),
    lambda m, x, w: m.conv_general(x, w, kernel_dilation=[1, 1]),
    lambda m, x, w: m.conv_general(x, w, input_dilation=[1, 1]),
    lambda m, x, w: m.conv_general(x, w, input_dilation=0, stride=0),
    lambda m, x, w: m.conv_general(m.zeros((2, 4)), m.zeros((4, 2)), groups=2),
    lambda m, x, w: m.conv_transpose1d(x, w, padding=5),
    lambda m, x, w: m.conv_transpose1d(x, w, stride=0),
    lambda m, x, w: m.conv_transpose2d(x, w),
    lambda m, x, w: m.convolve(x, w),
    lambda m, x, w: m.convolve(x[0, :, 0], w[0, :0, 0]),
    lambda m, x, w: m.convolve(x[0, :, 0], w[0, :, 0], "nope"),
]


@pytest.mark.parametrize("k", range(len(_BAD_VALUES)))
def test_error_messages_match_upstream(k):
    f = _BAD_VALUES[k]
    rng = np.random.default_rng(k)
    x, w = _r(rng, 2, 8, 4), _r(rng, 6, 3, 4)
    with pytest.raises(ValueError) as want:
        mlx.eval(f(mlx, mlx.array(x), mlx.array(w)))
    with pytest.raises(ValueError) as got:
        mx.eval(f(mx, mx.array(x), mx.array(w)))
    assert str(got.value) == str(want.value)


_BAD_TYPES = [
    lambda m, x, w: m.conv1d(np.zeros((2, 8, 4), np.float32), w),
    lambda m, x, w: m.conv1d(x, [[[1.0]]]),
    lambda m, x, w: m.conv1d(x, w, stride=1.0),
    lambda m, x, w: m.conv1d(x, w, stride=(1,)),
    lambda m, x, w: m.conv1d(x, w, groups=1.0),
    lambda m, x, w: m.conv2d(x, w, stride=(1, 1, 1)),
    lambda m, x, w: m.conv2d(x, w, padding=1.5),
    lambda m, x, w: m.conv3d(x, w, dilation=(1, 1)),
    lambda m, x, w: m.conv_transpose2d(x, w, output_padding=(1,)),
    lambda m, x, w: m.conv_general(x, w, flip=1),
    lambda m, x, w: m.conv_general(x, w, padding=([1], [1], [1])),
    lambda m, x, w: m.conv_general(x, w, stride=[1.0]),
    lambda m, x, w: m.convolve(x, w, None),
    lambda m, x, w: m.convolve(1.0, w),
]


@pytest.mark.parametrize("k", range(len(_BAD_TYPES)))
def test_argument_types_match_upstream(k):
    f = _BAD_TYPES[k]
    x, w = np.zeros((2, 8, 4), np.float32), np.zeros((6, 3, 4), np.float32)
    with pytest.raises(TypeError) as want:
        f(mlx, mlx.array(x), mlx.array(w))
    with pytest.raises(TypeError) as got:
        f(mx, mx.array(x), mx.array(w))
    # (upstream's message ends with the types of the call, after a blank line)
    assert str(got.value) == str(want.value).split("\n\n")[0]


def test_accepted_argument_forms_match_upstream():
    rng = np.random.default_rng(1)
    x, w = _r(rng, 1, 6, 7, 2), _r(rng, 3, 2, 3, 2)
    for f in [lambda m, x, w: m.conv2d(x, w, stride=[2, 1], padding=[1, 0]),
              lambda m, x, w: m.conv2d(x, w, True, False),
              lambda m, x, w: m.conv2d(x, w, np.int64(2)),
              lambda m, x, w: m.conv_general(x, w, (2, 1), (1, 2)),
              lambda m, x, w: m.conv_general(x, w, [], ([], [])),
              lambda m, x, w: m.conv_general(x, w, padding=[[1, 2], [3]]),
              lambda m, x, w: m.conv_general(x, w, padding=((1,), (2,)), flip=True),
              lambda m, x, w: m.conv1d(x, w)]:  # conv1d over a 2-D input
        want = f(mlx, mlx.array(x), mlx.array(w))
        got = f(mx, mx.array(x), mx.array(w))
        assert_same(got, want)


def test_stream_argument():
    rng = np.random.default_rng(2)
    x, w = _r(rng, 1, 5, 2), _r(rng, 3, 2, 2)
    got = mx.conv1d(mx.array(x), mx.array(w), stream=mx.cpu)
    assert_same(got, mlx.conv1d(mlx.array(x), mlx.array(w)))
    got = mx.convolve(mx.array(x[0, :, 0]), mx.array(w[0, :, 0]), stream=mx.cpu)
    assert_same(got, mlx.convolve(mlx.array(x[0, :, 0]), mlx.array(w[0, :, 0])))


@pytest.mark.parametrize("f", [lambda m, x, w: m.conv1d(x, w, padding=1),
                               lambda m, x, w: m.conv_transpose1d(x, w, stride=2)])
def test_complex_weight_promotes(f):
    # a complex weight makes a complex convolution upstream, which drops the imaginary part
    # of the weight (conv1d) or has no kernel (conv_transpose1d); here both parts count
    rng = np.random.default_rng(3)
    x, wr, wi = _r(rng, 2, 6, 3), _r(rng, 4, 2, 3), _r(rng, 4, 2, 3)
    w = (wr + 1j * wi).astype(np.complex64)
    got = f(mx, mx.array(x), mx.array(w))
    want = f(mlx, mlx.array(x), mlx.array(wr))
    assert got.dtype == mx.complex64 and got.shape == want.shape
    assert_close(np_of(mx.real(got)), np_of(want), "float32")
    assert_close(np_of(mx.imag(got)), np_of(f(mlx, mlx.array(x), mlx.array(wi))), "float32")


# -- GPU ----------------------------------------------------------------------------------

def _cuda_case(dtype, fn, xs, ws):
    """(output, dx, dw jointly, dx alone, dw alone) on the GPU and on the CPU."""
    rng = np.random.default_rng(4)
    x, w = _r(rng, *xs), _r(rng, *ws)
    cot = rng.standard_normal(fn(mlx, mlx.array(x), mlx.array(w)).shape).astype(np.float32)

    def run(stream):
        with mx.stream(stream):
            xa, wa = mx.array(x).astype(dtype), mx.array(w).astype(dtype)
            c = [mx.array(cot).astype(dtype)]
            out, (gx, gw) = mx.vjp(lambda a, b: [fn(mx, a, b)], [xa, wa], c)
            _, (gx1,) = mx.vjp(lambda a: [fn(mx, a, wa)], [xa], c)
            _, (gw1,) = mx.vjp(lambda b: [fn(mx, xa, b)], [wa], c)
            mx.eval(out, gx, gw, gx1, gw1)
            return out[0], gx, gw, gx1, gw1
    return run(mx.gpu), run(mx.cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("case", _CASES)
def test_gpu_matches_cpu(dtype, case):
    fn, xs, ws = _conv_cases()[case]
    dt = getattr(mx, dtype)
    tol = {"float32": 2e-3, "bfloat16": 5e-2, "float16": 1e-2}[dtype]  # TF32 on GPU
    gpu, cpu = _cuda_case(dt, fn, xs, ws)
    for a, b in zip(gpu, cpu):
        assert a._data.is_cuda
        assert_close(np_of(a), np_of(b), dtype, rtol=tol)


@pytest.mark.gpu
def test_gpu_conv2d_output_is_contiguous_channels_last():
    # the NHWC input is consumed as a channels-last view: the output needs no copy back
    with mx.stream(mx.gpu):
        x = mx.random.normal((4, 16, 16, 8))
        w = mx.random.normal((16, 3, 3, 8))
        y = mx.conv2d(x, w, padding=1)
        mx.eval(y)
    assert y._data.is_cuda and y._data.is_contiguous()


@pytest.mark.gpu
@pytest.mark.parametrize("case", _CASES)
def test_gpu_gradients_ignore_stale_memory(case):
    # the single-gradient kernels hand convolution_backward uninitialised stand-ins for
    # the operand they do not need: fill the allocator's cache with NaNs first
    import torch
    junk = [torch.full((1 << 20,), float("nan"), device="cuda") for _ in range(8)]
    del junk
    fn, xs, ws = _conv_cases()[case]
    gpu, cpu = _cuda_case(mx.float32, fn, xs, ws)
    for a, b in zip(gpu, cpu):
        assert np.isfinite(np_of(a)).all()
        assert_close(np_of(a), np_of(b), "float32", rtol=2e-3)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("nd", [2, 3])
def test_pointwise_convolutions(nd, dtype):
    """A 1x1 kernel with unit strides and no padding or groups (in half types on CUDA one
    GEMM each way): upstream's values and gradients."""
    rng = np.random.default_rng(0)
    sp = (5, 6, 3)[:nd]
    x = rng.standard_normal((2,) + sp + (8,)).astype(np.float32)
    w = rng.standard_normal((16,) + (1,) * nd + (8,)).astype(np.float32)
    c = rng.standard_normal((2,) + sp + (16,)).astype(np.float32)

    def run(m):
        conv = m.conv2d if nd == 2 else m.conv3d
        dt = getattr(m, dtype)
        args = [m.array(a).astype(dt) for a in (x, w)]
        out, grads = m.vjp(lambda a, b: conv(a, b), args, [m.array(c).astype(dt)])
        return [out[0]] + list(grads)
    for got, want in zip(run(mx), run(mlx)):
        assert_same(got, want, rtol=1e-4 if dtype == "float32" else 2e-2)


@pytest.mark.gpu
def test_gpu_pointwise_half_convolutions_are_matrix_products(monkeypatch):
    import torch

    from ember.core._backend import kernels_conv as KC
    monkeypatch.setattr(torch, "convolution", None)  # any convolution call would fail
    monkeypatch.setattr(KC, "_conv_bwd", None)
    x, w = mx.ones((2, 5, 6, 8), mx.bfloat16), mx.ones((16, 1, 1, 8), mx.bfloat16)
    with mx.stream(mx.gpu):
        out, (gx, gw) = mx.vjp(lambda a, b: mx.conv2d(a, b), [x, w],
                               [mx.ones((2, 5, 6, 16), mx.bfloat16)])
        mx.eval(out, gx, gw)
    assert out[0].tolist() == np.full((2, 5, 6, 16), 8.0).tolist()
    assert gx.tolist() == np.full((2, 5, 6, 8), 16.0).tolist()
    assert gw.tolist() == np.full((16, 1, 1, 8), 60.0).tolist()


# -- a convolution layer's bias in the convolution node ----------------------------------

_BIAS_CASES = [  # (x shape, w shape, conv kwargs)
    ((2, 7, 3), (4, 3, 3), {"padding": 1}),
    ((2, 6, 5, 4), (6, 3, 3, 4), {"stride": 2, "padding": 1}),
    ((1, 5, 5, 4), (4, 1, 1, 4), {}),  # pointwise
    ((2, 6, 6, 4), (4, 3, 3, 2), {"groups": 2, "dilation": 2}),
    ((1, 4, 4, 4, 2), (3, 2, 2, 2, 2), {}),
]


def _conv_of(m, xs):
    return {3: m.conv1d, 4: m.conv2d, 5: m.conv3d}[len(xs)]


@pytest.mark.parametrize("xs,ws,kw", _BIAS_CASES)
def test_convolution_with_bias_node(xs, ws, kw):
    """with_bias folds the bias into the convolution node: values, gradients of x, w and
    the bias, jvp and vmap against upstream's conv + add."""
    from ember.core.primitives.conv import ConvolutionBias, with_bias
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[:1]))

    def fe(x, w, b):
        return with_bias(_conv_of(mx, xs)(x, w, **kw), b)

    def plain(m, x, w, b):
        return _conv_of(m, xs)(x, w, **kw) + b

    def fm(x, w, b):
        return plain(mlx, x, w, b)
    fm.__wrapped__ = plain
    ie, im = [mx.array(a) for a in (x, w, b)], [mlx.array(a) for a in (x, w, b)]
    y = fe(*ie)
    assert type(y._prim) is ConvolutionBias
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np_of(y), np.array(fm(*im)), **tol)

    def loss(f, m):
        return lambda *a: m.sum(m.sin(f(*a)))
    for ge, gm in zip(mx.grad(loss(fe, mx), (0, 1, 2))(*ie),
                      mlx.grad(loss(fm, mlx), (0, 1, 2))(*im)):
        np.testing.assert_allclose(np_of(ge), np.array(gm), **tol)
    # (upstream has no jvp of convolutions: Ember's conv + add is the reference)
    ts = [mx.array(rng.standard_normal(a.shape).astype(np.float32)) for a in (x, w, b)]
    np.testing.assert_allclose(np_of(mx.jvp(fe, ie, ts)[1][0]),
                               np_of(mx.jvp(lambda *a: fm.__wrapped__(mx, *a), ie, ts)[1][0]),
                               **tol)
    # vmap against a loop of upstream's per-example results (upstream's own vmap of a
    # grouped convolution over batched weights is wrong)
    for axes in ((0, None, None), (None, 0, 0), (0, 0, 0)):
        args = [rng.standard_normal((3,) + a.shape).astype(np.float32) if ax == 0 else a
                for a, ax in zip((x, w, b), axes)]
        loop = [np.array(fm(*[mlx.array(a[i] if ax == 0 else a) for a, ax in zip(args, axes)]))
                for i in range(3)]
        np.testing.assert_allclose(np_of(mx.vmap(fe, axes)(*[mx.array(a) for a in args])),
                                   np.stack(loop), **tol)


def test_with_bias_falls_back_to_an_add():
    """A bias the node does not take (another dtype, or a full-shape array) is added."""
    from ember.core.primitives.conv import with_bias
    x, w = mx.ones((1, 4, 4, 2)), mx.ones((3, 1, 1, 2))
    for b in (mx.ones((3,), mx.float16), mx.ones((1, 4, 4, 3))):
        y = with_bias(mx.conv2d(x, w), b)
        assert type(y._prim).__name__ == "Add"
        np.testing.assert_allclose(np_of(y), np.array(mlx.conv2d(
            mlx.ones((1, 4, 4, 2)), mlx.ones((3, 1, 1, 2))) + mlx.array(np_of(b))))
