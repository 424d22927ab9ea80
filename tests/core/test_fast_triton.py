"""Float32 attention on the Triton flash-attention kernels (`_backend/triton_attention`):
forward and gradients against upstream MLX, here through Triton's interpreter on the CPU
(the kernels then compute in full float32), and on CUDA with TF32 products."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of

pytest.importorskip("triton")

# name: (batch, heads, kv heads, queries, keys, head size, value size, mask)
CASES = {
    "none": (2, 2, 2, 37, 50, 16, 16, None),
    "causal": (1, 2, 2, 70, 70, 32, 32, "causal"),
    "causal_short_q": (1, 4, 2, 33, 90, 32, 32, "causal"),
    "decode": (2, 4, 1, 1, 75, 64, 64, "causal"),
    "additive": (1, 4, 2, 40, 70, 24, 40, "add"),
    # an additive causal mask over several blocks: whole blocks of keys are skipped
    "additive_causal": (1, 2, 2, 130, 150, 64, 64, "add_causal"),
    "bool": (2, 2, 2, 30, 45, 80, 80, "bool"),
    "bool_dead_rows": (1, 2, 1, 20, 20, 16, 8, "bool_dead"),
    "head_128": (1, 1, 1, 20, 33, 128, 128, None),
}


def _inputs(case):
    b, h, hk, tq, tk, d, dv, kind = CASES[case]
    rng = np.random.default_rng(0)
    q = rng.standard_normal((b, h, tq, d)).astype(np.float32)
    k = rng.standard_normal((b, hk, tk, d)).astype(np.float32)
    v = rng.standard_normal((b, hk, tk, dv)).astype(np.float32)
    mask = None
    if kind == "causal":
        mask = "causal"
    elif kind == "add":
        mask = rng.standard_normal((1, h, tq, tk)).astype(np.float32)
    elif kind == "add_causal":
        mask = np.triu(np.full((tq, tk), -np.inf, np.float32), 1 + tk - tq)
    elif kind == "bool":
        mask = rng.random((tq, tk)) > 0.3
    elif kind == "bool_dead":
        mask = rng.random((b, 1, tq, tk)) > 0.3
        mask[0, :, ::4] = False  # queries that see no key get the mean of v, as upstream
    return q, k, v, mask, d ** -0.5


def _loss(m, mask, scale):
    def f(q, k, v):
        o = m.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
        return (o * m.arange(o.shape[-1], dtype=m.float32)).sum(), o
    return f


def _value_and_grad(m, case):
    q, k, v, mask, scale = _inputs(case)
    if mask is not None and not isinstance(mask, str):
        mask = m.array(mask)
    f = _loss(m, mask, scale)
    out = f(*map(m.array, (q, k, v)))[1]
    grads = m.grad(lambda *xs: f(*xs)[0], argnums=(0, 1, 2))(*map(m.array, (q, k, v)))
    return out, grads


def _count_launches(monkeypatch):
    """The kernels launched, recorded; eager attention of any size on these kernels."""
    from ember.core._backend import triton_attention as TA
    monkeypatch.setattr(TA, "MIN_WORK", 0)
    calls = []
    real = TA._launch

    def counted(kernel, *args):
        calls.append(kernel)
        return real(kernel, *args)
    monkeypatch.setattr(TA, "_launch", counted)
    return calls


def _interpret(monkeypatch):
    """Run the kernels through Triton's interpreter (for machines without CUDA, where the
    compiled kernels are not tested; older interpreters cannot run them)."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA runs the compiled kernels (test_gpu_kernels_match_cpu)")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.mark.parametrize("case", list(CASES))
def test_interpreted_kernels_match_upstream(case, monkeypatch):
    _interpret(monkeypatch)
    calls = _count_launches(monkeypatch)
    with mx.stream(mx.cpu):
        out, grads = _value_and_grad(mx, case)
        mx.eval(out, grads)
    assert {"_fwd", "_bwd_kv", "_bwd_q"} <= set(calls)
    want_out, want_grads = _value_and_grad(mlx, case)
    assert_same(out, want_out, rtol=1e-4)
    for g, w in zip(grads, want_grads):
        assert_same(g, w, rtol=1e-4)


def test_small_attention_stays_on_torch(monkeypatch):
    """Below MIN_WORK attention runs on torch's kernel (cheaper to launch), compiled or
    not, so compiled and eager results stay the same."""
    from ember.core._backend import triton_attention as TA
    _interpret(monkeypatch)
    calls = _count_launches(monkeypatch)
    monkeypatch.setattr(TA, "MIN_WORK", 1 << 26)
    q, k, v, _, scale = _inputs("causal")
    with mx.stream(mx.cpu):
        a = [mx.array(x) for x in (q, k, v)]

        def f(q, k, v):
            return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal")
        eager = f(*a)
        compiled = mx.compile(f)(*a)
        mx.eval(eager, compiled)
        assert calls == []
        monkeypatch.setattr(TA, "MIN_WORK", 0)
        mx.eval(f(*a))
    assert "_fwd" in calls
    np.testing.assert_array_equal(np_of(compiled), np_of(eager))


@pytest.mark.parametrize("case", ["causal_short_q", "decode", "bool_dead_rows"])
def test_interpreted_grouped_heads_in_one_program(case, monkeypatch):
    """Grouped heads summed inside the dK/dV program (as with many programs), rather
    than split over programs and summed afterwards (as with few, and in the test above)."""
    from ember.core._backend import triton_attention as TA
    _interpret(monkeypatch)
    monkeypatch.setattr(TA, "MIN_PROGRAMS", 0)
    monkeypatch.setattr(TA, "MIN_WORK", 0)
    with mx.stream(mx.cpu):
        out, grads = _value_and_grad(mx, case)
        mx.eval(out, grads)
    want_out, want_grads = _value_and_grad(mlx, case)
    assert_same(out, want_out, rtol=1e-4)
    for g, w in zip(grads, want_grads):
        assert_same(g, w, rtol=1e-4)


def test_kernels_skip_when_not_usable(monkeypatch):
    """Half types, masks that take a gradient and large heads stay on torch's kernels."""
    _interpret(monkeypatch)
    calls = _count_launches(monkeypatch)
    q, k, v, _, scale = _inputs("none")
    with mx.stream(mx.cpu):
        a = [mx.array(x).astype(mx.float16) for x in (q, k, v)]
        mx.eval(mx.fast.scaled_dot_product_attention(*a, scale=scale))
        big = mx.zeros((1, 1, 4, 160))
        mx.eval(mx.fast.scaled_dot_product_attention(big, big, big, scale=scale))
        m = mx.zeros((37, 50))
        g = mx.grad(lambda m: mx.fast.scaled_dot_product_attention(
            *map(mx.array, (q, k, v)), scale=scale, mask=m).sum())(m)
        mx.eval(g)
    assert calls == []


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_gpu_kernels_match_cpu(case, monkeypatch):
    import torch
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    calls = _count_launches(monkeypatch)
    with mx.stream(mx.gpu):
        out, grads = _value_and_grad(mx, case)
        mx.eval(out, grads)
    assert {"_fwd", "_bwd_kv", "_bwd_q"} <= set(calls)
    with mx.stream(mx.cpu):
        want_out, want_grads = _value_and_grad(mx, case)
    tol = 5e-3  # TF32 products
    np.testing.assert_allclose(np_of(out), np_of(want_out), rtol=tol, atol=tol)
    for g, w in zip(grads, want_grads):
        scale = max(1.0, float(np.abs(np_of(w)).max()))
        np.testing.assert_allclose(np_of(g) / scale, np_of(w) / scale, rtol=tol, atol=tol)
