"""layer_norm's one-pass CUDA backward (`_backend/triton_norm`) against ATen's kernels,
and through `mx.grad` against the composite formula."""

import numpy as np
import pytest
import torch

import ember.core as mx
from ember.core._backend import triton_norm as TN
from ember.core._backend.triton_norm import layer_norm_backward
from tests.core.compile_runs import run_steps, traced

HAS_CUDA = torch.cuda.is_available()
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")


def test_cpu_tensors_take_atens_kernels():
    x = torch.randn(4, 8)
    assert layer_norm_backward(x, x, None, x[:, 0], x[:, 0]) is None


@gpu
@needs_cuda
def test_gpu_small_inputs_take_atens_kernels():
    x = torch.randn(1024, 256, device="cuda")
    assert layer_norm_backward(x, x, None, x[:, 0], x[:, 0]) is None


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", [(8192, 768), (3, 5, 100), (2, 8192), (1, 1), (7, 3000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("has_w", [True, False])
def test_gpu_matches_aten(shape, dtype, has_w, monkeypatch):
    monkeypatch.setattr(TN, "MIN_SIZE", 1)  # small inputs go to ATen otherwise
    torch.manual_seed(0)
    n = shape[-1]
    x = (torch.randn(shape, device="cuda") * 3 + 1).to(dtype)
    g = torch.randn(shape, device="cuda").to(dtype)
    w = torch.randn(n, device="cuda").to(dtype) if has_w else None
    b = torch.randn(n, device="cuda").to(dtype)
    _, mean, rstd = torch.ops.aten.native_layer_norm(x, [n], w, b, 1e-5)
    want = torch.ops.aten.native_layer_norm_backward(g, x, [n], mean, rstd, w, b,
                                                     [True, has_w, True])
    dx, dw, db = layer_norm_backward(x, g, w, mean, rstd)
    tol = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 2e-3}[dtype]
    scale = max(1.0, float(np.sqrt(x.numel() / n)))  # sums over the rows grow with them
    torch.testing.assert_close(dx, want[0], rtol=tol, atol=tol)
    assert dx.dtype is x.dtype and dx.shape == x.shape
    if has_w:
        torch.testing.assert_close(dw, want[1].float(), rtol=tol, atol=tol * scale)
    else:
        assert dw is None
    torch.testing.assert_close(db, want[2].float(), rtol=tol, atol=tol * scale)


@gpu
@needs_cuda
def test_gpu_grads_of_layer_norm_match_the_formula(monkeypatch):
    monkeypatch.setattr(TN, "MIN_SIZE", 1)
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal((64, 96)).astype(np.float32))
    w = mx.array(rng.standard_normal(96).astype(np.float32))
    b = mx.array(rng.standard_normal(96).astype(np.float32))
    c = mx.array(rng.standard_normal((64, 96)).astype(np.float32))

    def fast(x, w, b):
        return (mx.fast.layer_norm(x, w, b, 1e-5) * c).sum()

    def plain(x, w, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (((x - mu) * mx.rsqrt(var + 1e-5) * w + b) * c).sum()
    with mx.stream(mx.gpu):
        got = mx.grad(fast, argnums=(0, 1, 2))(x, w, b)
        want = mx.grad(plain, argnums=(0, 1, 2))(x, w, b)
        for a, e in zip(got, want):
            np.testing.assert_allclose(np.array(a), np.array(e), rtol=1e-4, atol=1e-4)


# -- a residual's cotangent added in the backward's pass (compiled tapes) -----------------

def _block(ln, lin):
    """A pre-norm residual block: x + lin(ln(x)); the cotangent of x is the residual's
    plus the norm's."""
    def f(x):
        return ((x + lin(ln(x))) ** 2).sum()
    return mx.value_and_grad(f)


def test_norm_add_rewrite_fuses_the_residual_cotangent_and_keeps_values():
    import ember.nn as nn
    from ember.core._backend.kernels_fast_grad import fuse_norm_add
    x = mx.array(np.random.default_rng(0).standard_normal((4, 6, 16)).astype(np.float32))
    ln, lin = nn.LayerNorm(16), nn.Linear(16, 16)
    mx.eval(x, ln.parameters(), lin.parameters())
    tape, want = traced(_block(ln, lin), x)
    steps = fuse_norm_add(list(tape.steps), tape.shape, tape.dtype, set(tape.outs))
    names = [st.prim.name for st in steps]
    assert names.count("NormVJPAdd") == 1 and len(steps) == len(tape.steps) - 1
    got = run_steps(tape, steps, [x])
    plain = run_steps(tape, tape.steps, [x])
    for g, p in zip(got, plain):
        torch.testing.assert_close(g, p, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[1].cpu().numpy(), np.array(want[1]), rtol=1e-5, atol=1e-5)


def test_norm_add_rewrite_leaves_rms_norm_and_other_readers_alone():
    import ember.nn as nn
    from ember.core._backend.kernels_fast_grad import fuse_norm_add
    x = mx.array(np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32))
    lin = nn.Linear(16, 16)
    for ln, extra in ((nn.RMSNorm(16), False), (nn.LayerNorm(16), True)):
        mx.eval(x, ln.parameters(), lin.parameters())

        def f(x, ln=ln, extra=extra):
            y = ((x + lin(ln(x))) ** 2).sum()
            return y + (ln(x) * x).sum() if extra else y
        tape, _ = traced(mx.grad(f), x)
        steps = fuse_norm_add(list(tape.steps), tape.shape, tape.dtype, set(tape.outs))
        # rms_norm: not this kernel's; a second norm of x: its cotangent is summed with
        # more than one other, and fusing is still only allowed for one Add
        names = [st.prim.name for st in steps]
        assert names.count("NormVJPAdd") <= (1 if extra else 0)


@gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_residual_is_added_by_the_kernel(dtype, monkeypatch):
    monkeypatch.setattr(TN, "MIN_SIZE", 1)
    torch.manual_seed(0)
    x = (torch.randn(300, 96, device="cuda") * 2 + 1).to(dtype)
    g = torch.randn(300, 96, device="cuda").to(dtype)
    r = torch.randn(300, 96, device="cuda").to(dtype)
    w = torch.randn(96, device="cuda").to(dtype)
    _, mean, rstd = torch.ops.aten.native_layer_norm(x, [96], w, None, 1e-5)
    dx, dw, db = layer_norm_backward(x, g, w, mean, rstd)
    dxr, dwr, dbr = layer_norm_backward(x, g, w, mean, rstd, r)
    tol = 1e-5 if dtype is torch.float32 else 2e-2
    torch.testing.assert_close(dxr.float(), dx.float() + r.float(), rtol=tol, atol=tol)
    assert torch.equal(dw, dwr) and torch.equal(db, dbr)


# -- a residual's sum and its layer norm in one pass (compiled tapes) ----------------------

def _sum_block(ln, lin):
    """x + lin(x) is the sum a layer norm reads, and a residual read again after it."""
    def f(x):
        h = x + lin(x)
        return ((h + lin(ln(h))) ** 2).sum()
    return mx.value_and_grad(f)


@gpu
@needs_cuda
@pytest.mark.parametrize("block, fused", [(_block, "NormVJPAdd"), (_sum_block, "AddLayerNorm")])
def test_gpu_compiled_pre_norm_block_fuses_and_equals_eager(block, fused, monkeypatch):
    import ember.nn as nn
    from ember.core.transforms import compile as C
    monkeypatch.setattr(TN, "MIN_SIZE", 1)
    with mx.stream(mx.gpu):
        ln, lin = nn.LayerNorm(64), nn.Linear(64, 64)
        x = mx.array(np.random.default_rng(2).standard_normal((8, 32, 64)).astype(np.float32))
        mx.eval(x, ln.parameters(), lin.parameters())
        step = block(ln, lin)
        cf = mx.compile(step)
        want, got = step(x), cf(x)
        mx.eval(want, got)
        assert fused in [st.prim.name for st in C.tapes(cf)[-1].run.steps]
        np.testing.assert_allclose(np.array(got[0]), np.array(want[0]), rtol=1e-5)
        np.testing.assert_allclose(np.array(got[1]), np.array(want[1]), rtol=1e-4, atol=1e-4)

def test_add_norm_rewrite_fuses_the_sum_and_keeps_values(monkeypatch):
    import ember.nn as nn
    from ember.core._backend.kernels_fast import fuse_add_norm
    monkeypatch.setattr(TN, "MIN_SIZE", 1)
    x = mx.array(np.random.default_rng(3).standard_normal((4, 6, 16)).astype(np.float32))
    ln, lin = nn.LayerNorm(16), nn.Linear(16, 16)
    mx.eval(x, ln.parameters(), lin.parameters())
    tape, want = traced(_sum_block(ln, lin), x)
    steps = fuse_add_norm(list(tape.steps), tape.shape, tape.dtype)
    names = [st.prim.name for st in steps]
    assert names.count("AddLayerNorm") == 1 and len(steps) == len(tape.steps) - 1
    got = run_steps(tape, steps, [x])
    plain = run_steps(tape, tape.steps, [x])
    tol = 1e-5 if got[0].is_cuda else 0.0  # (the CPU runs the add, then ATen's norm)
    for g, p in zip(got, plain):
        torch.testing.assert_close(g, p, rtol=tol, atol=tol)
    np.testing.assert_allclose(got[1].cpu().numpy(), np.array(want[1]), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(TN, "MIN_SIZE", 2**21)  # (too small for the kernel: left alone)
    assert fuse_add_norm(list(tape.steps), tape.shape, tape.dtype) == list(tape.steps)


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", [(8192, 768), (3, 5, 100), (7, 3000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("affine", [True, False])
def test_gpu_add_layer_norm_matches_aten(shape, dtype, affine, monkeypatch):
    monkeypatch.setattr(TN, "MIN_SIZE", 1)
    torch.manual_seed(0)
    n = shape[-1]
    a = (torch.randn(shape, device="cuda") * 3 + 1).to(dtype)
    b = torch.randn(shape, device="cuda").to(dtype)
    w = torch.randn(n, device="cuda").to(dtype) if affine else None
    bias = torch.randn(n, device="cuda").to(dtype) if affine else None
    s, y, mean, rstd = TN.add_layer_norm(a, b, w, bias, 1e-5)
    want_s = a + b
    want = torch.ops.aten.native_layer_norm(want_s, [n], w, bias, 1e-5)
    assert torch.equal(s, want_s) and y.dtype is dtype and y.shape == a.shape
    tol = {torch.float32: 1e-5, torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(y, want[0], rtol=tol, atol=tol)
    assert mean.shape == want[1].shape and rstd.shape == want[2].shape
    torch.testing.assert_close(mean, want[1].float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rstd, want[2].float(), rtol=1e-4, atol=1e-5)
