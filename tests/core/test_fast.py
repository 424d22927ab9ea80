"""mx.fast beyond the op database: dtype rules, errors, attention's fused backward, custom
kernels (GPU tests run on CUDA only)."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of, on_cpu

DTS = ("float16", "bfloat16", "float32", "int32", "bool")


def _both(fn):
    """fn(module) on upstream and Ember: the same result, or the same exception type."""
    try:
        want = fn(mlx)
        mlx.eval(want)
    except Exception as err:
        with pytest.raises(type(err)):
            mx.eval(fn(mx))
        return None
    got = fn(mx)
    assert_same(got, want)
    return got


def _dt(m, name):
    return getattr(m, name if name != "bool" else "bool_")


def _rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("xd", DTS)
def test_norm_dtype_rules(xd):
    rng = _rng()
    x = rng.standard_normal((2, 8)).astype(np.float32)
    w = rng.standard_normal(8).astype(np.float32)
    for wd in (None,) + DTS[:4]:
        def rms(m):
            ww = None if wd is None else m.array(w).astype(_dt(m, wd))
            return m.fast.rms_norm(m.array(x).astype(_dt(m, xd)), ww, 1e-5)
        _both(rms)
        for bd in (None,) + DTS[:4]:
            def ln(m):
                ww = None if wd is None else m.array(w).astype(_dt(m, wd))
                bb = None if bd is None else m.array(w).astype(_dt(m, bd))
                return m.fast.layer_norm(m.array(x).astype(_dt(m, xd)), ww, bb, 1e-5)
            _both(ln)


def test_norm_errors_match_messages():
    x = mx.ones((2, 8))
    with pytest.raises(ValueError, match=r"\[rms_norm\] \(\*weight\) must have 1 dimension"):
        mx.fast.rms_norm(x, mx.ones((1, 8)), 1e-5)
    with pytest.raises(ValueError, match=r"\[layer_norm\] bias must have the same size"):
        mx.fast.layer_norm(x, None, mx.ones((4,)), 1e-5)
    with pytest.raises(TypeError):
        mx.fast.rms_norm([1.0, 2.0], None, 1e-5)


def _rope(m, x, **kw):
    args = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
    args.update(kw)
    return m.fast.rope(x, 8, **args)


@pytest.mark.parametrize("kw", [
    dict(offset=1.5), dict(offset="a"), dict(offset=None), dict(base=None),
    dict(freqs=[1.0] * 4),
    dict(dims=0), dict(dims=10), dict(dims=5),
])
def test_rope_errors(kw):
    x = _rng().standard_normal((2, 3, 4, 8)).astype(np.float32)
    dims = kw.pop("dims", 8)
    freqs = kw.pop("freqs", None)

    def f(m):
        extra = dict(kw)
        if freqs is not None:
            extra["freqs"] = m.array(np.array(freqs, np.float32))
        args = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
        args.update(extra)
        return m.fast.rope(m.array(x), dims, **args)
    _both(f)


@pytest.mark.parametrize("offset", [np.array([[1, 2]]), np.array([1, 2, 3]), np.array(2.0),
                                    np.array([4], np.int64), np.array([1, 2], np.uint32)])
def test_rope_array_offsets(offset):
    x = _rng().standard_normal((2, 3, 4, 8)).astype(np.float32)
    _both(lambda m: _rope(m, m.array(x), offset=m.array(offset)))


def test_rope_freqs_with_base_and_bad_shape():
    x = _rng().standard_normal((2, 3, 4, 8)).astype(np.float32)
    f = np.ones(4, np.float32)
    _both(lambda m: _rope(m, m.array(x), freqs=m.array(f)))
    _both(lambda m: _rope(m, m.array(x), base=None, freqs=m.array(f[:3])))
    _both(lambda m: _rope(m, m.array(x), base=None, freqs=m.array(f).astype(m.float16)))


def _attn(shape_q=(1, 4, 3, 8), shape_k=(1, 2, 5, 8), dv=6):
    rng = _rng()
    q = rng.standard_normal(shape_q).astype(np.float32)
    k = rng.standard_normal(shape_k).astype(np.float32)
    v = rng.standard_normal(shape_k[:3] + (dv,)).astype(np.float32)
    return q, k, v


@pytest.mark.parametrize("case", [
    "bad_str", "rank5_mask", "mask_int", "mask_f64", "mask_f32_half", "mask_bad_shape",
    "mask_no_broadcast", "sinks_shape", "sinks_half", "sinks_int", "mixed", "int_inputs",
    "force_fused", "mask_scalar",
])
def test_sdpa_arguments(case):
    q, k, v = _attn()

    def f(m):
        a, b, c = m.array(q), m.array(k), m.array(v)
        kw = {}
        if case == "bad_str":
            kw["mask"] = "foo"
        elif case == "rank5_mask":
            kw["mask"] = m.zeros((1, 1, 1, 3, 5))
        elif case == "mask_int":
            kw["mask"] = m.zeros((3, 5), m.int32)
        elif case == "mask_f64":
            kw["mask"] = m.zeros((3, 5), m.float64)
        elif case == "mask_f32_half":
            a, b, c = a.astype(m.float16), b.astype(m.float16), c.astype(m.float16)
            kw["mask"] = m.zeros((3, 5))
        elif case == "mask_bad_shape":
            kw["mask"] = m.zeros((4, 5))
        elif case == "mask_no_broadcast":
            kw["mask"] = m.zeros((2, 4, 3, 5))
        elif case == "sinks_shape":
            kw["sinks"] = m.zeros((2,))
        elif case == "sinks_half":
            a, b, c = a.astype(m.float16), b.astype(m.float16), c.astype(m.float16)
            kw["sinks"] = m.zeros((4,))
        elif case == "sinks_int":
            kw["sinks"] = m.zeros((4,), m.int32)
        elif case == "mixed":
            a = a.astype(m.float16)
        elif case == "int_inputs":
            a, b, c = a.astype(m.int32), b.astype(m.int32), c.astype(m.int32)
        elif case == "force_fused":
            kw["force_fused"] = True
        elif case == "mask_scalar":
            kw["mask"] = m.array(-1.0)
        with m.stream(m.cpu):
            return m.fast.scaled_dot_product_attention(a, b, c, scale=0.5, **kw)
    _both(f)


def _same_error(fn):
    """fn(module) raises on upstream and Ember: the same type, and messages that agree up
    to upstream's first blank line (its binding errors end with the call's types)."""
    with pytest.raises(Exception) as want:
        mlx.eval(fn(mlx))
    with pytest.raises(type(want.value)) as got:
        mx.eval(fn(mx))
    assert str(got.value) == str(want.value).split("\n\n")[0]


_X = np.ones((1, 2, 8), np.float32)
_Q = np.ones((1, 2, 3, 8), np.float32)


def _rope_kw(m, **kw):
    args = dict(traditional=False, base=1e4, scale=1.0, offset=0)
    args.update(kw)
    return m.fast.rope(m.array(_X), 8, **args)


def _sdpa_kw(m, **kw):
    q = m.array(_Q)
    return m.fast.scaled_dot_product_attention(q, q, q, **{"scale": 1.0, **kw})


@pytest.mark.parametrize("fn", [
    lambda m: m.fast.rms_norm(m.array(_X), None, None),
    lambda m: m.fast.rms_norm(m.array(_X), None, "1e-5"),
    lambda m: m.fast.rms_norm(np.ones((2, 8), np.float32), None, 1e-5),
    lambda m: m.fast.layer_norm(m.array(_X), [1.0] * 8, None, 1e-5),
    lambda m: m.fast.layer_norm(m.array(_X), None, None, None),
    lambda m: m.fast.rope(m.array(_X), 8.0, traditional=False, base=1e4, scale=1.0, offset=0),
    lambda m: _rope_kw(m, traditional=1),
    lambda m: _rope_kw(m, traditional=np.bool_(True)),
    lambda m: _rope_kw(m, base="10"),
    lambda m: _rope_kw(m, scale=None),
    lambda m: _rope_kw(m, base=None, freqs=[1.0] * 4),
    lambda m: _sdpa_kw(m, scale=None),
    lambda m: _sdpa_kw(m, mask=np.ones((3, 3), bool)),
    lambda m: _sdpa_kw(m, mask=1),
    lambda m: _sdpa_kw(m, force_fused=0),
    lambda m: _sdpa_kw(m, sinks=[0.0, 0.0]),
    # (upstream's check of the values' length is that of its scores @ v)
    lambda m: m.fast.scaled_dot_product_attention(
        m.ones((2, 4, 3, 8)), m.ones((2, 2, 5, 8)), m.ones((2, 2, 4, 6)), scale=1.0),
    lambda m: m.fast.scaled_dot_product_attention(
        m.ones((2, 2, 3, 8)), m.ones((2, 2, 5, 8)), m.ones((2, 2, 4, 8)), scale=1.0),
])
def test_argument_errors_match_upstream(fn):
    _same_error(fn)


def test_rope_takes_numpy_offsets_and_array_dims():
    x = _rng().standard_normal((2, 3, 8)).astype(np.float32)
    _both(lambda m: _rope(m, m.array(x), offset=np.array([1, 4])))
    _both(lambda m: m.fast.rope(m.array(x), m.array(6), traditional=True, base=m.array(100.0),
                                scale=2, offset=np.int64(3)))


@pytest.mark.parametrize("dt", ["float32", "float16"])
@on_cpu
def test_sdpa_rows_masked_by_minus_inf_are_nan(dt):
    """Upstream adds the mask to the scores: a row of -inf has a NaN softmax, and NaN
    gradients."""
    q, k, v = _attn()
    mask = np.where(_rng().random((3, 5)) > 0.5, 0.0, -np.inf).astype(np.float32)
    mask[1] = -np.inf

    def f(m):
        def loss(a, b, c):
            out = m.fast.scaled_dot_product_attention(
                a, b, c, scale=0.5, mask=m.array(mask).astype(_dt(m, dt)))
            return out.sum(), out
        ins = [m.array(x).astype(_dt(m, dt)) for x in (q, k, v)]
        (_, out), grads = m.value_and_grad(loss, argnums=(0, 1, 2))(*ins)
        return [out] + list(grads)
    got, want = f(mx), f(mlx)
    assert np.isnan(np_of(want[0])[:, :, 1]).all()
    assert_same(got, want, rtol=2e-2 if dt == "float16" else 1e-4)


@on_cpu
def test_sdpa_rows_masked_by_the_lowest_float_match_upstream():
    """A row masked by the lowest float everywhere (upstream's causal masks use it): its
    scores round to that float, a uniform softmax; the gradients of q and k flow through
    the scores as upstream's (torch's kernel loses the log of the row's sum)."""
    q, k, v = _attn((1, 2, 40, 16), (1, 2, 56, 16), 16)  # (torch's flash kernel on the CPU)
    low = np.finfo(np.float32).min
    mask = np.where(_rng().random((40, 56)) > 0.5, 0.0, low).astype(np.float32)
    mask[1] = low
    mask[2, :20] = -np.inf
    mask[2, 20:] = low

    def f(m):
        def loss(a, b, c):
            out = m.fast.scaled_dot_product_attention(a, b, c, scale=0.5, mask=m.array(mask))
            return (out * m.arange(out.shape[-1], dtype=m.float32)).sum(), out
        (_, out), grads = m.value_and_grad(loss, argnums=(0, 1, 2))(*map(m.array, (q, k, v)))
        return [out] + list(grads)
    assert_same(f(mx), f(mlx), rtol=1e-4)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@on_cpu
def test_half_layer_norm_and_rope_round_as_upstream(dt):
    """Upstream rounds the normalised x (layer_norm), the cosines and sines and each
    product and sum (rope) to the input's half dtype: the bits agree but for rare ties."""
    rng = _rng()
    x = rng.standard_normal((4, 16, 256)).astype(np.float32)
    w, b = rng.standard_normal(256).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    offset = np.array([0, 3, 100, 7], np.int32)

    def f(m):
        xx, ww, bb = (m.array(a).astype(_dt(m, dt)) for a in (x, w, b))
        return [m.fast.layer_norm(xx, ww, bb, 1e-5), m.fast.layer_norm(xx, ww, None, 1e-5),
                m.fast.layer_norm(xx, None, bb, 1e-5),
                m.fast.rope(xx, 256, traditional=False, base=1e4, scale=1.0,
                            offset=m.array(offset)),
                m.fast.rope(xx, 64, traditional=True, base=500.0, scale=0.5, offset=3)]
    for got, want in zip(f(mx), f(mlx)):
        assert np.mean(np_of(got.astype(mx.float32)) != np_of(want.astype(mlx.float32))) < 2e-3


def _count_traced(monkeypatch):
    import ember.core._backend.kernels_fast as K
    calls = []
    orig = K._traced

    def traced(*a):
        calls.append(1)
        return orig(*a)
    monkeypatch.setattr(K, "_traced", traced)
    return calls


def _sdpa_loss(m, mask=None):
    def f(q, k, v):
        return (m.fast.scaled_dot_product_attention(q, k, v, scale=0.4, mask=mask) ** 2).sum()
    return f


@pytest.mark.parametrize("mask", [None, "causal"])
def test_sdpa_grad_reuses_forward_state(monkeypatch, mask):
    q, k, v = _attn()
    calls = _count_traced(monkeypatch)
    val, grads = mx.value_and_grad(_sdpa_loss(mx, mask), argnums=(0, 1, 2))(
        mx.array(q), mx.array(k), mx.array(v))
    mx.eval(val, grads)
    assert len(calls) == 1  # the forward ran once, under autograd; the backward reused it
    want = mlx.grad(_sdpa_loss(mlx, mask), argnums=(0, 1, 2))(
        mlx.array(q), mlx.array(k), mlx.array(v))
    for g, w in zip(grads, want):
        assert_same(g, w, rtol=1e-4)


def test_sdpa_grad_after_forward_was_evaluated():
    q, k, v = _attn()
    qe, ke, ve = mx.array(q), mx.array(k), mx.array(v)

    def f(q):
        o = mx.fast.scaled_dot_product_attention(q, ke, ve, scale=0.4)
        mx.eval(o)  # the forward runs before its vjp is asked for: the backward recomputes
        return (o * o).sum()
    g = mx.grad(f)(qe)
    want = mlx.grad(lambda q: (mlx.fast.scaled_dot_product_attention(
        q, mlx.array(k), mlx.array(v), scale=0.4) ** 2).sum())(mlx.array(q))
    assert_same(g, want, rtol=1e-4)


def test_sdpa_two_vjps_of_one_forward():
    q, k, v = _attn()
    qe, ke, ve = mx.array(q), mx.array(k), mx.array(v)
    cot = [mx.array(np.ones((1, 4, 3, 6), np.float32))]
    _, g1 = mx.vjp(lambda q: mx.fast.scaled_dot_product_attention(q, ke, ve, scale=0.4), [qe],
                   cot)
    _, g2 = mx.vjp(lambda q: mx.fast.scaled_dot_product_attention(q, ke, ve, scale=0.4), [qe],
                   cot)
    np.testing.assert_allclose(np_of(g1[0]), np_of(g2[0]), rtol=1e-6)


@pytest.mark.parametrize("mask", [None, "causal", "add"])
@pytest.mark.parametrize("tq", [1, 2])
def test_sdpa_decode_over_grouped_heads_packs_the_group(monkeypatch, mask, tq):
    """One query over grouped heads without a mask array runs as one attention per kv
    head over its group's queries (q (1, 6, 1, 8) -> (1, 2, 3, 8)); its output and
    gradients equal upstream's. More queries, or a mask array, keep the heads grouped."""
    import ember.core._backend.kernels_fast as K
    seen = []
    orig = K._sdpa

    def spy(p, q, *rest):
        seen.append((tuple(q.shape), p.causal))
        return orig(p, q, *rest)
    monkeypatch.setattr(K, "_sdpa", spy)
    q, k, v = _attn((1, 6, tq, 8), (1, 2, 5, 8))
    am = _rng().standard_normal((tq, 5)).astype(np.float32)

    def loss(m):
        kw = {"mask": m.array(am) if mask == "add" else mask}

        def f(q, k, v):
            o = m.fast.scaled_dot_product_attention(q, k, v, scale=0.4, **kw)
            return (o * m.arange(6, dtype=m.float32)).sum(), o
        return f
    grad = mx.value_and_grad(lambda *xs: loss(mx)(*xs)[0], argnums=(0, 1, 2))
    (val, grads), out = grad(*map(mx.array, (q, k, v))), loss(mx)(*map(mx.array, (q, k, v)))[1]
    want = mlx.value_and_grad(lambda *xs: loss(mlx)(*xs)[0], argnums=(0, 1, 2))(
        *map(mlx.array, (q, k, v)))
    assert_same(out, loss(mlx)(*map(mlx.array, (q, k, v)))[1], rtol=1e-5)
    assert_same(val, want[0], rtol=1e-5)
    for g, w in zip(grads, want[1]):
        assert_same(g, w, rtol=1e-4)
    packed = tq == 1 and mask != "add"
    assert seen and all(s == (((1, 2, 3, 8), False) if packed else ((1, 6, tq, 8),
                                                                   mask == "causal"))
                        for s in seen)


def test_sdpa_second_derivative_matches_upstream():
    q, k, v = _attn()

    def hvp(m):
        f = _sdpa_loss(m, "causal")
        return m.grad(lambda q: m.grad(lambda q: f(q, m.array(k), m.array(v)))(q).sum())(
            m.array(q))
    got = hvp(mx)
    assert_same(got, hvp(mlx), rtol=1e-4)


def test_cross_entropy_grads_match_upstream():
    rng = _rng()
    logits = rng.standard_normal((4, 7)).astype(np.float32)
    t = rng.integers(0, 7, size=(4,)).astype(np.int32)
    for dt in ("float32", "float16"):
        def g(m):
            return m.grad(lambda x: (m.fast.cross_entropy(x, m.array(t)) * m.arange(4)).sum())(
                m.array(logits).astype(_dt(m, dt)))
        assert_same(g(mx), g(mlx), rtol=1e-2 if dt == "float16" else 1e-5)
    jm = mlx.jvp(lambda x: mlx.fast.cross_entropy(x, mlx.array(t)), [mlx.array(logits)],
                 [mlx.array(logits)])[1][0]
    je = mx.jvp(lambda x: mx.fast.cross_entropy(x, mx.array(t)), [mx.array(logits)],
                [mx.array(logits)])[1][0]
    assert_same(je, jm, rtol=1e-5)


def test_gated_delta_update_dtypes_and_float_mask():
    rng = _rng()
    q = rng.standard_normal((1, 3, 1, 4)).astype(np.float32)
    k = rng.standard_normal((1, 3, 1, 4)).astype(np.float32)
    v = rng.standard_normal((1, 3, 2, 5)).astype(np.float32)
    g = rng.uniform(0.5, 1, (1, 3, 2)).astype(np.float32)
    b = rng.uniform(0, 1, (1, 3, 2)).astype(np.float32)
    mask = np.array([[1.0, 0.0, 0.5]], np.float32)
    for dts in [("float16",) * 3, ("float32", "float16", "float32"), ("bfloat16",) * 3]:
        def f(m):
            qq, kk, vv = (m.array(x).astype(_dt(m, d)) for x, d in zip((q, k, v), dts))
            return m.fast.gated_delta_update(qq, kk, vv, m.array(g), m.array(b),
                                             m.zeros((1, 2, 5, 4), m.float16), m.array(mask))
        out = f(mx)
        want = f(mlx)
        for o, w in zip(out, want):
            assert str(o.dtype).split(".")[-1] == str(w.dtype).split(".")[-1]
            np.testing.assert_allclose(np_of(o), np_of(w), rtol=3e-2, atol=3e-2)


def test_metal_kernel_raises_on_call():
    k = mx.fast.metal_kernel(name="x", input_names=["inp"], output_names=["out"],
                             source="out[0] = inp[0];")
    with pytest.raises(RuntimeError, match="Metal is not available"):
        k(inputs=[mx.ones(3)], output_shapes=[(3,)], output_dtypes=[mx.float32],
          grid=(3, 1, 1), threadgroup=(3, 1, 1))


def test_cuda_kernel_without_cuda_raises_like_upstream():
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(RuntimeError, match=r"\[cuda_kernel\]"):
        mx.fast.cuda_kernel(name="x", input_names=["inp"], output_names=["out"],
                            source="out[0] = inp[0];")
    with pytest.raises(RuntimeError, match=r"\[cuda_kernel\]"):
        mx.fast.precompiled_cuda_kernel(name="x", compiled_source=b"", inputs=[mx.ones(3)],
                                        output_shapes=[(3,)], output_dtypes=[mx.float32],
                                        scalars=[], grid=(3, 1, 1), threadgroup=(3, 1, 1))


def _nvrtc_or_skip():
    from ember.core._backend import cuda_kernel as CK
    try:
        CK.nvrtc()
    except RuntimeError:
        pytest.skip("no libnvrtc")
    return CK


def test_generated_source_compiles_with_nvrtc():
    CK = _nvrtc_or_skip()
    a = mx.ones((3,), mx.float16)
    src = CK.generate("twice", ["inp", "n"], [a, 3], [a], ["out"], [mx.float32],
                      "auto i = cooperative_groups::this_grid().thread_rank();\n"
                      "if (i < n) out[i] = 2 * static_cast<float>(inp[i]) + inp_shape[0] * N;",
                      "", [("T", mx.float16), ("N", 0), ("B", True)], True)
    assert "const __half* __restrict__ inp" in src and "int32_t n" in src
    binary, cubin = CK.compile_source(src, CK.kernel_symbol("twice"), (9, 0))
    assert binary and (not cubin or binary[:4] == b"\x7fELF")


# -- GPU -------------------------------------------------------------------------------

def _on_gpu(fn, *arrays):
    with mx.stream(mx.gpu):
        return fn(*[mx.array(a) for a in arrays])


def _on_cpu(fn, *arrays):
    with mx.stream(mx.cpu):
        return fn(*[mx.array(a) for a in arrays])


_GPU_SDPA_CASES = {  # name: (hk, tq, tk, mask)
    "none": (4, 64, 64, None), "causal": (4, 64, 64, "causal"), "bool": (4, 64, 64, "bool"),
    "bool_dead_rows": (4, 64, 64, "bool_dead"), "add": (4, 64, 64, "add"),
    "sinks": (4, 64, 64, "sinks"), "gqa": (2, 64, 64, None),
    "gqa_causal": (2, 64, 64, "causal"), "gqa_add": (2, 64, 64, "add"),
    "gqa_bool_dead_rows": (2, 64, 64, "bool_dead"), "decode": (4, 1, 64, "causal"),
    "gqa_decode": (2, 1, 64, "causal"), "gqa_decode_no_mask": (2, 1, 64, None),
    "causal_short_q": (4, 16, 64, "causal"),
    "gqa_causal_short_q": (2, 16, 64, "causal"), "causal_long_q": (4, 64, 16, "causal"),
}


@pytest.mark.gpu
@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("case", list(_GPU_SDPA_CASES))
def test_gpu_sdpa_forward_and_grads_match_cpu(dt, case):
    rng = _rng()
    b, hq, d = 2, 4, 64
    hk, tq, tk, mask = _GPU_SDPA_CASES[case]
    q = rng.standard_normal((b, hq, tq, d)).astype(np.float32)
    k = rng.standard_normal((b, hk, tk, d)).astype(np.float32)
    v = rng.standard_normal((b, hk, tk, d)).astype(np.float32)
    bm = rng.random((tq, tk)) > 0.3
    if mask == "bool_dead":
        bm = rng.random((b, 1, tq, tk)) > 0.3
        bm[0, :, ::5] = False  # queries that see no key: upstream gives them the mean of v
    am = rng.standard_normal((1, hq, tq, tk)).astype(np.float32)
    sinks = rng.standard_normal((hq,)).astype(np.float32)

    def f(q, k, v):
        cast = getattr(mx, dt)
        kw = {}
        if mask == "causal":
            kw["mask"] = "causal"
        elif mask in ("bool", "bool_dead"):
            kw["mask"] = mx.array(bm)
        elif mask == "add":
            kw["mask"] = mx.array(am).astype(cast)
        elif mask == "sinks":
            kw["sinks"] = mx.array(sinks).astype(cast)
        q, k, v = q.astype(cast), k.astype(cast), v.astype(cast)
        o = mx.fast.scaled_dot_product_attention(q, k, v, scale=d ** -0.5, **kw)
        return o.astype(mx.float32)

    def loss(q, k, v):
        return (f(q, k, v) * mx.arange(d, dtype=mx.float32)).sum()
    # (float32 may run through TF32 matmuls on the GPU)
    tol = {"float16": 2e-2, "bfloat16": 6e-2, "float32": 5e-3}[dt]
    got = _on_gpu(f, q, k, v)
    want = _on_cpu(f, q, k, v)
    assert got._tensor().is_cuda and not want._tensor().is_cuda
    np.testing.assert_allclose(np_of(got), np_of(want), rtol=tol, atol=tol)
    gg = _on_gpu(lambda *xs: mx.grad(loss, argnums=(0, 1, 2))(*xs), q, k, v)
    gc = _on_cpu(lambda *xs: mx.grad(loss, argnums=(0, 1, 2))(*xs), q, k, v)
    for a, c, x in zip(gg, gc, (q, k, v)):
        assert a.shape == x.shape and a._tensor().is_cuda
        scale = max(1.0, float(np.abs(np_of(c)).max()))
        np.testing.assert_allclose(np_of(a) / scale, np_of(c) / scale, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dt", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("mask", [None, "causal", "add"])
@pytest.mark.parametrize("evaluated", [False, True])
def test_gpu_sdpa_backward_skips_torchs_autograd(monkeypatch, dt, mask, evaluated):
    import ember.core._backend.kernels_fast as K
    traced = _count_traced(monkeypatch)
    direct = []
    for name in ("_EFF_BWD", "_CUDNN_BWD"):
        def bwd(*a, _orig=getattr(K, name), **kw):
            direct.append(1)
            return _orig(*a, **kw)
        monkeypatch.setattr(K, name, bwd)
    q, k, v = _attn((2, 4, 32, 16), (2, 4, 32, 16), 16)
    am = _rng().standard_normal((q.shape[2], k.shape[2])).astype(np.float32)

    def loss(m, evaluate):
        cast = getattr(m, dt)
        kw = {"mask": m.array(am).astype(cast) if mask == "add" else mask}

        def f(q, k, v):
            o = m.fast.scaled_dot_product_attention(q.astype(cast), k.astype(cast),
                                                    v.astype(cast), scale=0.4, **kw)
            if evaluate:  # the forward runs before the vjp is asked for
                m.eval(o)
            return (o.astype(m.float32) ** 2).sum()
        return f
    with mx.stream(mx.gpu):
        grads = mx.grad(loss(mx, evaluated), argnums=(0, 1, 2))(
            mx.array(q), mx.array(k), mx.array(v))
        mx.eval(grads)
    assert len(direct) == 1 and not traced
    want = mlx.grad(loss(mlx, False), argnums=(0, 1, 2))(mlx.array(q), mlx.array(k),
                                                         mlx.array(v))
    tol = {"float32": 5e-3, "bfloat16": 6e-2, "float16": 1e-2}[dt]  # (TF32 on the GPU)
    for g, w in zip(grads, want):
        w = np.array(w)
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(np_of(g) / scale, w / scale, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dt", ["bfloat16", "float16"])
@pytest.mark.parametrize("tq, mask", [(64, None), (64, "causal"), (64, "add"), (1, "causal")])
def test_gpu_sdpa_grouped_heads_skip_torchs_autograd(monkeypatch, dt, tq, mask):
    """Grouped heads in half types take cuDNN's kernels directly (the only fused ones of
    torch that take them); a single query with no mask array, packed, too."""
    import ember.core._backend.kernels_fast as K
    traced = _count_traced(monkeypatch)
    direct = []

    def bwd(*a, _orig=K._CUDNN_BWD, **kw):
        direct.append(a[2].shape)
        return _orig(*a, **kw)
    monkeypatch.setattr(K, "_CUDNN_BWD", bwd)
    q, k, v = _attn((2, 8, tq, 64), (2, 2, 64, 64), 64)
    am = _rng().standard_normal((tq, 64)).astype(np.float32)

    def loss(m):
        cast = getattr(m, dt)
        kw = {"mask": m.array(am).astype(cast) if mask == "add" else mask}

        def f(q, k, v):
            o = m.fast.scaled_dot_product_attention(q.astype(cast), k.astype(cast),
                                                    v.astype(cast), scale=0.125, **kw)
            return (o.astype(m.float32) ** 2).sum()
        return f
    with mx.stream(mx.gpu):
        grads = mx.grad(loss(mx), argnums=(0, 1, 2))(*map(mx.array, (q, k, v)))
        mx.eval(grads)
    assert direct == [(2, 2, 64, 64)] and not traced
    want = mlx.grad(loss(mlx), argnums=(0, 1, 2))(*map(mlx.array, (q, k, v)))
    tol = {"bfloat16": 6e-2, "float16": 1e-2}[dt]
    for g, w in zip(grads, want):
        w = np.array(w)
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(np_of(g) / scale, w / scale, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("mask", [None, "causal", "add"])
@pytest.mark.parametrize("evaluated", [False, True])
@pytest.mark.parametrize("hk", [4, 2])
def test_gpu_float32_sdpa_runs_embers_kernels_without_autograd(monkeypatch, mask, evaluated,
                                                               hk):
    """Float32 attention large enough for Ember's Triton kernels calls their forward and
    backward directly (no torch autograd Function, no engine call), with upstream's
    values and gradients."""
    import torch

    import ember.core._backend.triton_attention as TA
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)  # (their products)
    traced = _count_traced(monkeypatch)
    calls = []
    for name in ("forward", "backward"):
        def spy(*a, _orig=getattr(TA, name), _name=name):
            calls.append(_name)
            return _orig(*a)
        monkeypatch.setattr(TA, name, spy)
    q, k, v = _attn((2, 4, 512, 64), (2, hk, 512, 64), 64)
    assert TA.MIN_WORK <= 2 * 4 * 512 * 512 * 64
    am = _rng().standard_normal((512, 512)).astype(np.float32)
    am[:, 300:] = -np.inf  # (hidden blocks)

    def loss(m, evaluate):
        kw = {"mask": m.array(am) if mask == "add" else mask}

        def f(q, k, v):
            o = m.fast.scaled_dot_product_attention(q, k, v, scale=0.125, **kw)
            if evaluate:  # the forward runs before the vjp is asked for
                m.eval(o)
            return (o * o).sum()
        return f
    with mx.stream(mx.gpu):
        grads = mx.grad(loss(mx, evaluated), argnums=(0, 1, 2))(*map(mx.array, (q, k, v)))
        mx.eval(grads)
    # (an evaluated forward runs again, saving, when the backward asks for it)
    assert calls == ["forward"] * (1 + evaluated) + ["backward"] and not traced
    want = mlx.grad(loss(mlx, False), argnums=(0, 1, 2))(*map(mlx.array, (q, k, v)))
    for g, w in zip(grads, want):
        w = np.array(w)
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(np_of(g) / scale, w / scale, rtol=5e-3, atol=5e-3)


@pytest.mark.gpu
def test_gpu_sdpa_kernel_choice_follows_torchs_switches():
    """The cached pick of torch's attention kernel is keyed by torch's switches: inside
    `sdpa_kernel(EFFICIENT_ATTENTION)` it is the memory-efficient kernel, outside it what
    torch picks there, each as torch's own uncached choice."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import ember.core._backend.kernels_fast as K
    q, k, v = (torch.randn(2, 4, 64, 64, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))

    def both():
        return K._choice(q, k, v, None, False, 0.125, False), \
            K._CHOICE(q, k, v, None, 0.0, False, scale=0.125)
    outside = both()
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
        inside = both()
    assert inside == (K._EFFICIENT, K._EFFICIENT)
    assert outside[0] == outside[1] and both() == outside


@pytest.mark.gpu
@pytest.mark.parametrize("traditional", [False, True])
def test_gpu_rope_and_norms_match_cpu(traditional):
    rng = _rng()
    x = rng.standard_normal((2, 4, 16, 64)).astype(np.float32)
    w = rng.standard_normal((64,)).astype(np.float32)

    def f(x, w):
        r = mx.fast.rope(x, 32, traditional=traditional, base=10000.0, scale=1.0,
                         offset=mx.array([3, 9]))
        return [r, mx.fast.rms_norm(x, w, 1e-5), mx.fast.layer_norm(x, w, w, 1e-5)]
    for a, c in zip(_on_gpu(f, x, w), _on_cpu(f, x, w)):
        np.testing.assert_allclose(np_of(a), np_of(c), rtol=1e-4, atol=1e-4)


_TWICE = """
    auto i = cooperative_groups::this_grid().thread_rank();
    if (i < inp_shape[0] * inp_shape[1]) {
        out[i] = static_cast<T>(2) * inp[i];
    }
"""


@pytest.mark.gpu
def test_gpu_cuda_kernel_doubles_input():
    a = mx.random.normal((16, 33))
    kernel = mx.fast.cuda_kernel(name="twice", input_names=["inp"], output_names=["out"],
                                 source=_TWICE)
    for dt in (mx.float32, mx.float16):
        x = a.astype(dt)
        out = kernel(inputs=[x], template=[("T", dt)], grid=(x.size, 1, 1),
                     threadgroup=(256, 1, 1), output_shapes=[x.shape], output_dtypes=[dt])
        assert len(out) == 1 and out[0].dtype == dt and out[0].shape == x.shape
        np.testing.assert_allclose(np_of(out[0]), np_of(x * 2), rtol=1e-3)


@pytest.mark.gpu
def test_gpu_cuda_kernel_strides_init_value_and_cpu_error():
    src = """
        uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n) return;
        int64_t r = i / inp_shape[1], c = i % inp_shape[1];
        out[i] = inp[r * inp_strides[0] + c * inp_strides[1]] + (float)inp_ndim;
        if (i == 0) atomicAdd(acc, 1.0f);
    """
    kernel = mx.fast.cuda_kernel(name="strided", input_names=["inp", "n"],
                                 output_names=["out", "acc"], source=src,
                                 ensure_row_contiguous=False)
    x = mx.arange(12, dtype=mx.float32).reshape(3, 4).T  # a transposed view
    out, acc = kernel(inputs=[x, 12], grid=(12, 1, 1), threadgroup=(32, 1, 1),
                      output_shapes=[(12,), (1,)], output_dtypes=[mx.float32, mx.float32],
                      init_value=5.0)
    np.testing.assert_allclose(np_of(out), np_of(x).reshape(-1) + 2)
    assert acc.item() == 6.0
    with pytest.raises(RuntimeError, match=r"\[cuda_kernel\]"):
        kernel(inputs=[x, 12], grid=(12, 1, 1), threadgroup=(32, 1, 1),
               output_shapes=[(12,)], output_dtypes=[mx.float32], stream=mx.cpu)


@pytest.mark.gpu
def test_gpu_precompiled_cuda_kernel_runs_ptx():
    import torch

    from ember.core._backend import cuda_kernel as CK
    src = """extern "C" __global__ void scale_add(const float* x, float* y, int n, float a) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = a * x[i] + 1.0f;
    }"""
    cap = torch.cuda.get_device_capability()
    binary, _ = CK.compile_source(src, "scale_add", cap)
    x = mx.arange(10, dtype=mx.float32)
    (y,) = mx.fast.precompiled_cuda_kernel(
        name="scale_add", compiled_source=binary, inputs=[x], output_shapes=[(10,)],
        output_dtypes=[mx.float32], scalars=[10, 3.0], grid=(10, 1, 1), threadgroup=(32, 1, 1))
    np.testing.assert_allclose(np_of(y), np.arange(10) * 3.0 + 1)
