"""CUDA behaviour: device placement, cross-device copies, streams, async eval, memory."""

import gc

import numpy as np
import pytest

import ember.core as mx

pytestmark = pytest.mark.gpu


def _torch():
    import torch
    return torch


def test_gpu_is_default_and_data_lives_on_cuda():
    assert mx.is_available(mx.gpu)
    with mx.stream(mx.gpu):
        a = mx.arange(10) * 2
        mx.eval(a)
    assert a._data.is_cuda
    assert a.tolist() == list(range(0, 20, 2))


def test_cross_device_input_is_copied_once():
    x = mx.array(np.arange(6, dtype=np.float32), dtype=mx.float32)
    with mx.stream(mx.cpu):
        c = mx.ones((6,))
    g1 = mx.add(x, c, stream=mx.gpu)
    g2 = mx.multiply(x, c, stream=mx.gpu)
    assert g1._inputs[1] is g2._inputs[1]  # the cached copy of c, shared
    np.testing.assert_allclose(np.array(g1), np.arange(6) + 1)
    np.testing.assert_allclose(np.array(g2), np.arange(6))
    back = mx.add(g1, c, stream=mx.cpu)
    assert not np.array(back).dtype.kind == "O"
    np.testing.assert_allclose(np.array(back), np.arange(6) + 2)


def test_new_stream_orders_work():
    s = mx.new_stream(mx.gpu)
    a = mx.ones((1024, 1024), stream=mx.gpu)
    b = mx.matmul(a, a, stream=s)
    c = mx.add(b, 1, stream=mx.gpu)
    mx.eval(c)
    assert c[0, 0].item() == 1025.0


def test_async_eval_returns_and_results_are_right():
    a = mx.ones((2048, 2048), stream=mx.gpu)
    b = a @ a
    mx.async_eval(b)
    assert b.sum().item() == 2048.0 ** 3


def test_grad_on_gpu_matches_cpu():
    f = lambda x: (mx.sin(x) * mx.exp(x)).sum()  # noqa: E731
    xv = np.linspace(-1, 1, 50).astype(np.float32)
    with mx.stream(mx.gpu):
        g_gpu = np.array(mx.grad(f)(mx.array(xv)))
    with mx.stream(mx.cpu):
        g_cpu = np.array(mx.grad(f)(mx.array(xv)))
    np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-5, atol=1e-6)


def test_gpu_memory_returns_to_baseline_after_long_chain():
    torch = _torch()
    with mx.stream(mx.gpu):
        x = mx.ones((1 << 16,))
        mx.eval(x, x * 1.0001 + 1.0)  # (the scalar constants are cached once)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        y = x
        for _ in range(2000):
            y = y * 1.0001 + 1.0
        mx.eval(y)
        peak_buffers = torch.cuda.memory_allocated() - base
        del y
        gc.collect()
        torch.cuda.synchronize()
        assert torch.cuda.memory_allocated() <= base
    # intermediates are freed while the chain runs, not all held to the end
    assert peak_buffers <= 4 * (1 << 16) * 4


@pytest.mark.parametrize("vocab,shape,dim", [(97, (2, 32), 64), (5, (3, 40), 7), (300, (1, 2), 16)])
def test_embedding_gradient_on_gpu_is_deterministic_and_matches_cpu(vocab, shape, dim):
    """The gradient of a row gather (an embedding) sums its rows deterministically on the
    GPU (a one-hot product there): two runs give the same bits, and the CPU's sums."""
    rng = np.random.default_rng(0)
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    idx = rng.integers(0, vocab, shape).astype(np.int32)  # (with repeats)
    g = rng.standard_normal(shape + (dim,)).astype(np.float32)

    def grad(device):
        with mx.stream(device):
            w, i, c = mx.array(table), mx.array(idx), mx.array(g)
            out = mx.grad(lambda w: (w[i] * c).sum())(w)
            mx.eval(out)
            return np.array(out.astype(mx.float32))

    a, b, ref = grad(mx.gpu), grad(mx.gpu), grad(mx.cpu)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-5)
