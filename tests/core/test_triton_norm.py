"""layer_norm's one-pass CUDA backward (`_backend/triton_norm`) against ATen's kernels,
and through `mx.grad` against the composite formula."""

import numpy as np
import pytest
import torch

import ember.core as mx
from ember.core._backend import triton_norm as TN
from ember.core._backend.triton_norm import layer_norm_backward

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
