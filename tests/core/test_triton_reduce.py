"""Sums over a middle run of axes on CUDA (`_backend/triton_reduce`) against ATen's sums,
and through `mx.sum` against upstream's semantics (keepdims, axes, dtypes)."""

import numpy as np
import pytest
import torch

import ember.core as mx
from ember.core._backend import fusion as F
from ember.core._backend import triton_reduce as TR
from ember.core._backend.triton_reduce import middle_sum
from ember.core.transforms import compile as C

HAS_CUDA = torch.cuda.is_available()
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")


def test_cpu_tensors_take_atens_sum():
    x = torch.randn(64, 64)
    assert middle_sum(x, 1, 64, 64, force=True) is None


@gpu
@needs_cuda
def test_gpu_small_or_odd_inputs_take_atens_sum():
    x = torch.randn(64, 64, device="cuda")
    assert middle_sum(x, 1, 64, 64) is None  # below MIN_SIZE
    assert middle_sum(x.T, 1, 64, 64, force=True) is None  # not contiguous
    assert middle_sum(x.double(), 1, 64, 64, force=True) is None


@gpu
@needs_cuda
@pytest.mark.parametrize("b,r,c", [(1, 8192, 768), (1, 8192, 3072), (2, 528, 768),
                                   (3, 1000, 100), (1, 33, 65), (5, 2, 31), (1, 70000, 40)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gpu_matches_aten(b, r, c, dtype):
    torch.manual_seed(0)
    x = torch.randn(b, r, c, device="cuda").to(dtype)
    got = middle_sum(x, b, r, c, force=True)
    want = x.double().sum(1)
    assert got.dtype is dtype and got.shape == (b, c)
    tol = {torch.float32: 1e-4, torch.bfloat16: 1e-2, torch.float16: 1e-3}[dtype]
    scale = max(1.0, float(np.sqrt(r)))
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol * scale)
    again = middle_sum(x, b, r, c, force=True)
    assert torch.equal(got, again)  # a fixed order: the same bits every call


@gpu
@needs_cuda
def test_gpu_float32_partial_sums_for_half_inputs():
    x = torch.full((1, 4096, 64), 1.0, device="cuda", dtype=torch.float16)
    got = middle_sum(x, 1, 4096, 64, out_dtype=torch.float32, force=True)
    assert got.dtype is torch.float32 and torch.all(got == 4096)  # no float16 rounding


@gpu
@needs_cuda
@pytest.mark.parametrize("shape,axes", [((16, 512, 768), (0, 1)), ((8, 40, 30, 64), (1, 2)),
                                        ((4096, 300), 0), ((6, 2048, 128), 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_gpu_mx_sum_takes_the_kernel(shape, axes, keepdims, monkeypatch):
    monkeypatch.setattr(TR, "MIN_SIZE", 1)
    calls = []
    real = TR.middle_sum

    def spy(*a, **k):
        r = real(*a, **k)
        calls.append(r is not None)
        return r

    monkeypatch.setattr("ember.core._backend.kernels_reduce.middle_sum", spy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    with mx.stream(mx.gpu):
        got = mx.sum(mx.array(x), axis=axes, keepdims=keepdims)
        mx.eval(got)
    assert calls == [True]
    want = x.astype(np.float64).sum(axis=axes, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == mx.float32
    np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-3)


# -- the first pass inside a fused elementwise kernel (compiled tapes) --------------------

def _relu_grad_and_bias(h, g):
    """A ReLU's gradient mask and its bias gradient, as a train step's backward has them."""
    d = mx.where(h > 0, g, 0.0) * 1.0
    return d, mx.sum(d, axis=tuple(range(d.ndim - 1)))


def _kinds(cf):
    return [st.prim.name for tape in C.tapes(cf) for st in tape.run.steps]


def _interpret(monkeypatch):
    """Fusion on, through Triton's interpreter on the CPU (where CUDA is, the GPU test
    runs the compiled kernel instead)."""
    pytest.importorskip("triton")
    if HAS_CUDA:
        pytest.skip("CUDA runs the compiled kernels (test_gpu_fused_sum_has_the_eager_bits)")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(F, "FUSE", [True])
    monkeypatch.setattr(TR, "MIN_SIZE", 64)


def _inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    return [mx.array(rng.standard_normal(shape).astype(np.float32)) for _ in range(2)]


def test_interpreted_fused_sum_equals_eager(monkeypatch):
    _interpret(monkeypatch)
    with mx.stream(mx.cpu):
        h, g = _inputs((3, 70, 40))  # (ragged tiles of rows and columns)
        cf = mx.compile(_relu_grad_and_bias)
        d, s = cf(h, g)
        want_d, want_s = _relu_grad_and_bias(h, g)
        assert _kinds(cf) == ["FusedSum"]
        np.testing.assert_array_equal(np.array(d), np.array(want_d))
        np.testing.assert_allclose(np.array(s), np.array(want_s), rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(TR, "MIN_SIZE", 2**20)  # (below it: the sum's own kernel)
        cf = mx.compile(_relu_grad_and_bias)
        cf(h, g)
        assert _kinds(cf) == ["FusedElementwise", "Reduce"]


def test_interpreted_sums_left_apart(monkeypatch):
    """Only a float32 sum over leading axes of a stored region value is taken in."""
    _interpret(monkeypatch)
    with mx.stream(mx.cpu):
        h, g = _inputs((70, 40))
        for f in (lambda h, g: mx.sum(mx.maximum(h, 0) * g, axis=1),  # (trailing axis)
                  lambda h, g: mx.sum((mx.maximum(h, 0) * g).astype(mx.float16), axis=0)):
            cf = mx.compile(f)
            np.testing.assert_allclose(np.array(cf(h, g).astype(mx.float32)),
                                       np.array(f(h, g).astype(mx.float32)), rtol=2e-3)
            assert "FusedSum" not in _kinds(cf)


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", [(8192, 3072), (4, 300, 1000)])
def test_gpu_fused_sum_has_the_eager_bits(shape):
    with mx.stream(mx.gpu):
        h, g = _inputs(shape, seed=1)
        cf = mx.compile(_relu_grad_and_bias)
        d, s = cf(h, g)
        want_d, want_s = _relu_grad_and_bias(h, g)
        assert "FusedSum" in _kinds(cf)
        np.testing.assert_array_equal(np.array(d), np.array(want_d))
        np.testing.assert_array_equal(np.array(s), np.array(want_s))
