"""Elementwise fusion in compiled tapes (`ember.core._backend.fusion`).

Which steps group together is checked on the tape's executor (`tape.run.steps`); the
generated kernels run through Triton's interpreter on the CPU (`TRITON_INTERPRET=1`) and,
in the `gpu` tests, compiled on CUDA, against the same function run eagerly."""

import numpy as np
import pytest
import torch

import ember.core as mx
import ember.nn as nn
from ember.core._backend import fusion as F
from ember.core.transforms import compile as C

triton = pytest.importorskip("triton")
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def interp(monkeypatch):
    """Fusion on, the kernels run by Triton's interpreter on the CPU."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(F, "FUSE", [True])
    with mx.stream(mx.cpu):
        yield


@pytest.fixture
def on_gpu(monkeypatch):
    monkeypatch.setattr(F, "FUSE", [True])
    with mx.stream(mx.gpu):
        yield


def R(*shape, seed=0, dtype=np.float32, lo=-1.0, hi=1.0):
    rng = np.random.default_rng(seed)
    return mx.array(rng.uniform(lo, hi, shape).astype(dtype))


def fused_steps(cf):
    (tape,) = C.tapes(cf)
    return [st.prim for st in tape.run.steps if isinstance(st.prim, F.FusedElementwise)]


def kinds(cf):
    (tape,) = C.tapes(cf)
    return [st.prim.name for st in tape.run.steps]


def close(got, want, dtype):
    # Triton's interpreter truncates where CUDA rounds to nearest when it narrows to bfloat16
    bf16 = 3e-2 if F.interpreting() else 1e-2
    tol = {mx.float32: 1e-5, mx.float16: 1e-3, mx.bfloat16: bf16}.get(dtype, 0)
    assert got.dtype == want.dtype and got.shape == want.shape
    g, w = np.array(got.astype(mx.float32)), np.array(want.astype(mx.float32))
    if tol:
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(g, w)


def gelu_tanh(x):
    return 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


# name -> (function, argument shapes, dtype[, regions when not one])
CASES = {
    "exp_mul_sin": (lambda x, y: mx.exp(-x * x) * y + mx.sin(x), [(6, 5), (5,)], "float32"),
    "where_max": (lambda x, y: mx.where(x > y, mx.maximum(x, 0.5) * 2, y - x),
                  [(8, 16), (8, 16)], "float32"),
    "scalar_arg": (lambda x, s: (x - s) / (s + 2) * mx.sqrt(mx.abs(x)), [(4, 7), ()], "float32"),
    "broadcast_both": (lambda x, y: mx.minimum(x * y, 0.25) + x, [(3, 1, 4), (5, 1)],
                       "float32"),
    "half": (lambda x, y: mx.exp(x * y + 1) * 0.5 - y, [(33,), (33,)], "float16"),
    "bfloat": (lambda x, y: mx.rsqrt(x * x + 1e-5) * y, [(2, 64), (64,)], "bfloat16"),
    # (y > 0) as int32 has y's shape: a region of its own
    "casts": (lambda x, y: (x * 3).astype(mx.int32) * 2 + (y > 0), [(5, 5), (5,)],
              "float32", 2),
    "to_half_and_back": (lambda x, y: ((x * y).astype(mx.float16) + 1).astype(mx.float32),
                         [(9,), (9,)], "float32"),
    "bool_logic": (lambda x, y: mx.logical_and(x > 0, mx.logical_not(y < 0)) | (x == y),
                   [(4, 4), (4, 4)], "float32"),
    "int_arith": (lambda x, y: mx.maximum(x * y - 3, x) + mx.abs(y), [(6,), (6,)], "int32"),
    "sigmoid_recip": (lambda x, y: mx.sigmoid(x) * mx.reciprocal(y + 2) + mx.square(x),
                      [(10,), (10,)], "float32"),
    "isnan_where": (lambda x, y: mx.where(mx.isnan(x / y), 0.0, x / y), [(8,), (8,)],
                    "float32"),
}


def _args(shapes, dtype, seed=0):
    if dtype == "int32":
        return [R(*s, seed=seed + j, lo=-5, hi=5).astype(mx.int32)
                for j, s in enumerate(shapes)]
    return [R(*s, seed=seed + j).astype(getattr(mx, dtype)) for j, s in enumerate(shapes)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_interpreted_fused_kernels_equal_eager(name, interp):
    fn, shapes, dtype, *regions = CASES[name]
    cf = mx.compile(fn)
    for seed in (0, 10):
        args = _args(shapes, dtype, seed)
        close(cf(*args), fn(*args), getattr(mx, dtype))
    assert len(fused_steps(cf)) == (regions or [1])[0], kinds(cf)


def test_transposed_and_sliced_inputs_read_through_their_strides(interp):
    def f(x, y):
        return mx.exp(x.T) * y[::2] + 1
    cf = mx.compile(f)
    x, y = R(5, 4), R(8, 5, seed=1)
    close(cf(x, y), f(x, y), mx.float32)
    assert len(fused_steps(cf)) == 1


def test_values_read_outside_the_region_are_stored(interp):
    def f(x, y):
        a = x * y
        b = mx.exp(a)
        c = b + 1
        return c * 2, a, b.sum()  # a: an output; b: read by a reduction; c: internal
    cf = mx.compile(f)
    x, y = R(4, 6), R(4, 6, seed=1)
    for g, w in zip(cf(x, y), f(x, y)):
        close(g, w, mx.float32)
    (p,) = fused_steps(cf)
    (tape,) = C.tapes(cf)
    (st,) = [s for s in tape.run.steps if s.prim is p]
    assert len(p.steps) == 4 and len(st.outs) == 3  # a, b and the output c * 2


def test_a_region_read_by_another_kernel_closes(interp):
    # x * 2 + 1 is read by the matmul: what comes after it is a region of its own, even
    # where it also reads the first region's values
    def f(x, w):
        h = x * 2 + 1
        m = h @ w
        return mx.exp(m) * 3 + h
    cf = mx.compile(f)
    x, w = R(4, 4), R(4, 4, seed=1)
    close(cf(x, w), f(x, w), mx.float32)
    assert [len(p.steps) for p in fused_steps(cf)] == [2, 3]
    assert kinds(cf) == ["FusedElementwise", "Matmul", "FusedElementwise"]


def test_regions_of_other_shapes_stay_apart(interp):
    def f(x, b):
        c = b * 2 + 1          # shape (4,)
        return mx.exp(x) * c - x  # shape (3, 4): reads c through a broadcast
    cf = mx.compile(f)
    x, b = R(3, 4), R(4, seed=1)
    close(cf(x, b), f(x, b), mx.float32)
    assert sorted(p.shape for p in fused_steps(cf)) == [(3, 4), (4,)]


def test_open_regions_merge_when_a_step_reads_both(interp):
    def f(x, y):
        a = mx.exp(x) + 1
        b = mx.sin(y) * 2
        return a * b
    cf = mx.compile(f)
    x, y = R(7), R(7, seed=1)
    close(cf(x, y), f(x, y), mx.float32)
    assert [len(p.steps) for p in fused_steps(cf)] == [5]


def test_single_steps_and_unsupported_ops_stay_unfused(interp):
    def f(x, y):
        return mx.logaddexp(x, y), mx.exp(y)
    cf = mx.compile(f)
    x, y = R(5), R(5, seed=1)
    for g, w in zip(cf(x, y), f(x, y)):
        close(g, w, mx.float32)
    assert fused_steps(cf) == []


def test_fusion_can_be_turned_off(interp, monkeypatch):
    monkeypatch.setattr(F, "FUSE", [False])
    cf = mx.compile(CASES["exp_mul_sin"][0])
    x, y = R(6, 5), R(5, seed=1)
    close(cf(x, y), CASES["exp_mul_sin"][0](x, y), mx.float32)
    assert fused_steps(cf) == []


def test_no_fusion_on_the_cpu_without_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(F, "FUSE", [True])
    with mx.stream(mx.cpu):
        cf = mx.compile(CASES["exp_mul_sin"][0])
        cf(R(6, 5), R(5, seed=1))
    assert fused_steps(cf) == []


def test_grad_of_a_fused_function_and_fused_grads(interp):
    def f(x, y):
        return (gelu_tanh(x * y) * mx.sigmoid(y)).sum()
    x, y = R(3, 8), R(8, seed=1)
    g = mx.compile(mx.grad(f, argnums=(0, 1)))
    for a, b in zip(g(x, y), mx.grad(f, argnums=(0, 1))(x, y)):
        close(a, b, mx.float32)
    assert fused_steps(g)
    # grad through a compiled function expands its (unfused) steps
    cf = mx.compile(f)
    close(mx.grad(cf)(x, y), mx.grad(f)(x, y), mx.float32)


def test_a_layer_norm_mlp_block(interp):
    mx.random.seed(0)
    block = nn.Sequential(nn.Linear(8, 16), nn.GELU(approx="precise"), nn.Linear(16, 8))
    norm = nn.RMSNorm(8)

    def f(x):
        return block(norm(x)) * 0.5 + x
    cf = mx.compile(f)
    x = R(2, 3, 8)
    close(cf(x), f(x), mx.float32)


# -- on CUDA ------------------------------------------------------------------------------------

gpu = pytest.mark.gpu


@gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_fused_kernels_equal_eager(name, on_gpu):
    fn, shapes, dtype, *regions = CASES[name]
    cf = mx.compile(fn)
    for seed in (0, 10, 20):  # the third call replays a CUDA graph
        args = _args(shapes, dtype, seed)
        close(cf(*args), fn(*args), getattr(mx, dtype))
    assert len(fused_steps(cf)) == (regions or [1])[0], kinds(cf)


UNARY = ["exp", "log", "log1p", "expm1", "tanh", "erfinv", "sin", "cos", "tan",
         "sinh", "cosh", "sqrt", "rsqrt", "sigmoid", "log2", "log10",
         "floor", "ceil", "square", "reciprocal", "abs", "negative", "arctanh",
         "trunc"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum"]
DOMAIN = {"log": (0.01, 9), "log2": (0.01, 9), "log10": (0.01, 9), "sqrt": (0.0, 9),
          "rsqrt": (0.01, 9), "log1p": (-0.9, 9),
          "arctanh": (-0.99, 0.99), "erfinv": (-0.99, 0.99)}


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_gpu_fused_ops_equal_eager_bit_for_bit(dtype, on_gpu):
    dt = getattr(mx, dtype)
    y = R(4096, seed=1, lo=-2, hi=2).astype(dt)
    differ = []
    for n in UNARY + BINARY:
        fn = getattr(mx, n)
        x = R(4096, lo=DOMAIN.get(n, (-4, 4))[0], hi=DOMAIN.get(n, (-4, 4))[1]).astype(dt)

        def f(x, y, fn=fn, unary=n in UNARY):
            a, b = x * 1.0, y * 1.0  # a region of two steps or more
            return fn(a) if unary else fn(a, b)
        cf = mx.compile(f)
        got, want = cf(x, y), f(x, y)
        assert fused_steps(cf), n
        g, w = np.array(got.astype(mx.float32)), np.array(want.astype(mx.float32))
        if not np.array_equal(g, w, equal_nan=True):
            differ.append(f"{n} ({np.sum(g != w)} of {g.size})")
    assert not differ, ", ".join(differ)
