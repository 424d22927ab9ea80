"""Matrix-product rewrites of the CUDA backend: a compiled tape's Linear + ReLU as one
GEMM with a ReLU epilogue (`kernels_linalg.fuse_linear_relu`), and the weight gradients'
K-major copies (`triton_transpose`). The rewrite is checked on traced tapes on the CPU
(its steps run through the kernel table) and, in the `gpu` tests, on CUDA."""

import numpy as np
import pytest
import torch

import ember.core as mx
import ember.nn as nn
from ember.core._backend import kernels_linalg as KL
from ember.core._backend.kernels import KERNELS
from ember.core.transforms import compile as C
from tests.core.compile_runs import run_steps, traced

HAS_CUDA = torch.cuda.is_available()


def R(*shape, seed=0):
    return mx.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _mlp(act=nn.ReLU(), bias=True, seed=0):
    mx.random.seed(seed)
    return nn.Sequential(nn.Linear(8, 16, bias=bias), act, nn.Linear(16, 4))


def _grad_step(model):
    loss_and_grad = nn.value_and_grad(model, lambda x: (model(x) ** 2).sum())

    def step(x):
        loss, g = loss_and_grad(x)
        return loss, g
    return step


def _rewrite(tape):
    return KL.fuse_linear_relu(list(tape.steps), tape.dtype, set(tape.outs),
                               {s: c[0] for s, c in tape.consts.items()})


def test_linear_relu_fuses_forward_and_mask_and_keeps_values():
    x = R(2, 5, 8)
    mx.eval(x)
    tape, want = traced(_grad_step(_mlp()), x)
    steps = _rewrite(tape)
    names = [st.prim.name for st in steps]
    assert names.count("LinearReLU") == 1 and "Maximum" not in names
    fused = next(st for st in steps if st.prim.name == "LinearReLU")
    # the gradient's mask reads the ReLU's output; nothing reads the product any more
    (mask,) = [st for st in steps if st.prim.name == "Greater"]
    assert mask.ins[0] == fused.outs[0]
    assert len(steps) == len(tape.steps) - 1
    got = run_steps(tape, steps, [x])
    plain = run_steps(tape, tape.steps, [x])
    for g, p in zip(got, plain):
        torch.testing.assert_close(g, p, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[0].item(), want[0].item(), rtol=1e-6)


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(tree, mx.array):
        yield prefix, tree


@pytest.mark.parametrize("case", ["no bias", "leaky", "product returned", "product reused",
                                  "nonzero floor"])
def test_linear_relu_left_alone(case):
    x = R(3, 8)
    lin = nn.Linear(8, 16, bias=case != "no bias")
    mx.eval(lin.parameters())
    floor = 0.5 if case == "nonzero floor" else 0.0

    def f(x):
        h = lin(x)
        y = nn.leaky_relu(h) if case == "leaky" else mx.maximum(h, floor)
        if case == "product returned":
            return y, h
        if case == "product reused":
            return y * h
        return y
    tape, _ = traced(f, x)
    assert "LinearReLU" not in [st.prim.name for st in _rewrite(tape)]


def test_linear_relu_kernel_matches_product_then_relu():
    b, x, w = torch.randn(16), torch.randn(2, 3, 8), torch.randn(16, 8)
    x[0, 0, 0] = float("nan")
    got = KERNELS[KL.LinearReLU](KL._LINEAR_RELU, b, x, w)
    want = torch.relu(torch.nn.functional.linear(x, w, b))
    torch.testing.assert_close(got, want, equal_nan=True)


gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")


@gpu
@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gpu_compiled_relu_mlp_uses_the_epilogue_and_equals_eager(dtype):
    with mx.stream(mx.gpu):
        model = _mlp()
        model.set_dtype(getattr(mx, dtype))
        x = R(64, 8).astype(getattr(mx, dtype))
        step = _grad_step(model)
        cf = mx.compile(step)
        want, got = step(x), cf(x)
        mx.eval(want, got)
        assert "LinearReLU" in [st.prim.name for st in C.tapes(cf)[-1].run.steps]
        tol = 1e-5 if dtype == "float32" else 2e-2
        np.testing.assert_allclose(np.array(got[0].astype(mx.float32)),
                                   np.array(want[0].astype(mx.float32)), rtol=tol)
        for (_, a), (_, b) in zip(_leaves(got[1]), _leaves(want[1])):
            np.testing.assert_allclose(np.array(a.astype(mx.float32)),
                                       np.array(b.astype(mx.float32)), rtol=tol, atol=tol)


@gpu
@needs_cuda
@pytest.mark.parametrize("shape,strided", [((8192, 768), False), ((1000, 37), False),
                                           ((333, 2048), True), ((64, 1), False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int32])
def test_gpu_transposed_copy(shape, strided, dtype):
    from ember.core._backend.triton_transpose import transposed
    x = torch.randn(shape, device="cuda").mul(100).to(dtype)
    if strided:
        x = x[:, ::2]
    assert torch.equal(transposed(x), x.mT.contiguous())


@gpu
@needs_cuda
@pytest.mark.parametrize("gcols,xcols", [(768, 768), (768, 3072), (3072, 768), (96, 768)])
def test_gpu_weight_grads_of_many_rows(gcols, xcols):
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        g = torch.randn(4, 1024, gcols, device="cuda")
        x = torch.randn(4, 1024, xcols, device="cuda")
        want = (g.reshape(-1, gcols).double().mT @ x.reshape(-1, xcols).double()).float()
        # twice with the same input: the second reuses the kept transposed copy
        for _ in range(2):
            got = KERNELS[KL.L.WeightGrad](None, g, x)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
        g2 = torch.randn(4, 1024, gcols, device="cuda")
        want2 = (g2.reshape(-1, gcols).double().mT @ x.reshape(-1, xcols).double()).float()
        torch.testing.assert_close(KERNELS[KL.L.WeightGrad](None, g2, x), want2,
                                   rtol=1e-4, atol=1e-3)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
