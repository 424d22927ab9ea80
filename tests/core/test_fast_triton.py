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
    # a single query over grouped heads: the group's queries are one kv head's rows
    "decode_no_mask": (1, 6, 2, 1, 40, 16, 16, None),
    "additive": (1, 4, 2, 40, 70, 24, 40, "add"),
    # an additive causal mask over several blocks: whole blocks of keys are skipped
    "additive_causal": (1, 2, 2, 130, 150, 64, 64, "add_causal"),
    "bool": (2, 2, 2, 30, 45, 80, 80, "bool"),
    "bool_dead_rows": (1, 2, 1, 20, 20, 16, 8, "bool_dead"),
    "head_128": (1, 1, 1, 20, 33, 128, 128, None),
    # per head, 16 x 16 blocks that hide everything, add 0.0 (or are all True) or vary
    "blocky_add": (1, 2, 1, 40, 56, 16, 16, "blocky_add"),
    "blocky_bool": (2, 2, 2, 40, 56, 16, 16, "blocky_bool"),
    # upstream's additive causal mask (the lowest float, not -inf, above the diagonal)
    "lowest_causal": (1, 2, 2, 50, 50, 16, 16, "lowest_causal"),
    # rows that see only the lowest float: their softmax is uniform over every key
    "lowest_rows": (1, 2, 1, 40, 56, 16, 16, "lowest_rows"),
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
    elif kind in ("blocky_add", "blocky_bool"):
        mask = _blocky((1, h, tq, tk), kind == "blocky_bool", rng)
    elif kind == "lowest_causal":
        mask = np.triu(np.full((tq, tk), np.finfo(np.float32).min, np.float32), 1)
    elif kind == "lowest_rows":
        mask = _blocky((1, h, tq, tk), False, rng)
        mask[mask == -np.inf] = np.finfo(np.float32).min
        mask[:, :, 17:21] = np.finfo(np.float32).min
        mask[:, :, 32:] = np.finfo(np.float32).min  # (whole blocks of such rows)
    elif kind == "bool_dead":
        mask = rng.random((b, 1, tq, tk)) > 0.3
        mask[0, :, ::4] = False  # queries that see no key get the mean of v, as upstream
    return q, k, v, mask, d ** -0.5


def _blocky(shape, boolean, rng, block=16):
    """A mask whose 16 x 16 blocks each hide everything, change nothing or vary (the
    first block of keys never hides, so every query sees some key)."""
    *lead, tq, tk = shape
    kinds = rng.integers(0, 3, size=(*lead, -(-tq // block), -(-tk // block)))
    kinds[..., 0] = rng.integers(1, 3, size=kinds[..., 0].shape)
    full = np.repeat(np.repeat(kinds, block, -2), block, -1)[..., :tq, :tk]
    if boolean:
        return np.where(full == 0, False, np.where(full == 1, True, rng.random(shape) > 0.4))
    vary = rng.standard_normal(shape).astype(np.float32)
    return np.where(full == 0, -np.inf, np.where(full == 1, 0.0, vary)).astype(np.float32)


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


def _matches_upstream(case):
    """Ember's output and gradients on the CPU stream equal upstream's."""
    with mx.stream(mx.cpu):
        out, grads = _value_and_grad(mx, case)
        mx.eval(out, grads)
    want_out, want_grads = _value_and_grad(mlx, case)
    assert_same(out, want_out, rtol=1e-4)
    for g, w in zip(grads, want_grads):
        assert_same(g, w, rtol=1e-4)


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
    _matches_upstream(case)
    assert {"_fwd", "_bwd_kv", "_bwd_q"} <= set(calls)


@pytest.mark.parametrize("case", ["blocky_add", "blocky_bool", "additive_causal",
                                  "lowest_causal", "lowest_rows"])
def test_interpreted_small_mask_blocks(case, monkeypatch):
    """With small blocks every kind of mask block occurs: skipped, taken without reading
    the mask, read (and each backward kernel has its own block sizes, so its own table)."""
    from ember.core._backend import triton_attention as TA
    _interpret(monkeypatch)
    monkeypatch.setattr(TA, "MIN_WORK", 0)
    sizes = {"fwd": (16, 16, 4, 1), "kv": (32, 16, 4, 1), "q": (16, 32, 4, 1)}
    monkeypatch.setattr(TA, "BLOCKS", {key: sizes[key[1]] for key in TA.BLOCKS})
    _matches_upstream(case)


@pytest.mark.parametrize("boolean", [False, True])
def test_interpreted_mask_block_classes(boolean, monkeypatch):
    """`_mask_blocks` against the classes worked out in numpy: 0 hides every score, 1
    changes none, 2 is a causal mask (lower right aligned), 4 adds only values at or below
    -1e30, 3 anything else (a NaN among zeros included); one table per head the mask
    varies over, one for all batches it is broadcast over; the flag after the table
    cleared."""
    import torch

    from ember.core._backend import triton_attention as TA
    _interpret(monkeypatch)
    rng = np.random.default_rng(1)
    m = _blocky((1, 3, 45, 70), boolean, rng)
    if not boolean:
        m[0, 1, 16:32, 16:32] = 0.0
        m[0, 1, 17, 20] = np.nan  # (a block of zeros but one NaN: read)
        m[0, 2, 0:16, 32:48] = -0.0
        m[0, 0, 32:45, 0:16] = np.finfo(np.float32).min
        m[0, 0, 32:45, 16:32] = -1e30
        m[0, 0, 40, 16:32] = -np.inf
        m[0, 2, 16:32, 48:64] = -1e29  # (not low enough)
    tri = np.arange(70)[None, :] <= np.arange(45)[:, None] + 70 - 45
    lowest = np.finfo(np.float32).min
    for h, i, j, hide in [(0, 1, 2, -np.inf), (1, 2, 4, lowest), (2, 1, 3, None)]:
        r, c = slice(16 * i, 16 * i + 16), slice(16 * j, 16 * j + 16)
        if boolean:
            m[0, h, r, c] = tri[r, c]
        else:  # (a causal block of mixed hidden values; h 2's hides -inf and the lowest)
            m[0, h, r, c] = np.where(tri[r, c], 0.0, -np.inf if hide is None else hide)
            if hide is None:
                m[0, h, 16 * i, 16 * j + 15] = lowest
    mk = torch.from_numpy(m).expand(2, 3, 45, 70)
    flat = torch.zeros((3 * 3 * 5 + 2,), dtype=torch.int8)
    monkeypatch.setattr(TA.torch, "zeros", lambda *a, **k: flat)
    table, flag, stb, sth, nbn = TA._blocks(mk, 2 if boolean else 1,
                                            dict(BLOCK_M=16, BLOCK_N=16))
    # (the second flag: this mask is not a causal one)
    assert flag.tolist() == [0, 1] and (stb, sth, nbn) == (0, 15, 5)
    want = np.zeros((1, 3, 3, 5), np.int8)
    for h in range(3):
        for i in range(3):
            for j in range(5):
                r, c = slice(16 * i, 16 * i + 16), slice(16 * j, 16 * j + 16)
                blk, t = m[0, h, r, c], tri[r, c]
                hidden = ~blk if boolean else blk == -np.inf
                same = blk if boolean else blk == 0.0
                low = np.zeros_like(blk) if boolean else blk <= -1e30
                causal = np.where(t, same, hidden | low)
                want[0, h, i, j] = (0 if hidden.all() else 1 if same.all()
                                    else 4 if low.all() else 2 if causal.all() else 3)
    assert {0, 1, 2, 3} | ({4} if not boolean else set()) <= set(want.ravel())
    np.testing.assert_array_equal(table[:-2].reshape(want.shape).numpy(), want)


@pytest.mark.parametrize("case", ["additive_causal", "lowest_causal", "blocky_add"])
def test_interpreted_causal_masks_are_flagged(case, monkeypatch):
    """`_mask_blocks` leaves its second flag clear where the mask is a causal one (the
    forward then reads no mask), whatever it hides with."""
    import torch

    from ember.core._backend import triton_attention as TA
    _interpret(monkeypatch)
    _, _, _, mask, _ = _inputs(case)
    mk = torch.from_numpy(np.asarray(mask, np.float32))
    mk = mk.reshape((1,) * (4 - mk.ndim) + tuple(mk.shape))
    _, flag, *_ = TA._blocks(mk, 1, dict(BLOCK_M=16, BLOCK_N=32))
    assert flag.tolist() == [0, 0 if case != "blocky_add" else 1]


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
    _matches_upstream(case)


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


@pytest.mark.gpu
def test_gpu_layers_share_one_mask_table_in_a_captured_graph(monkeypatch):
    # two attention layers over one additive causal mask, compiled: while the graph is
    # captured, each block size's table is made once; the replays equal eager
    import torch

    from ember.core._backend import eager_graphs as EG
    from ember.core._backend import triton_attention as TA
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    monkeypatch.setattr(EG, "ENABLED", [False])  # (the compiled call's capture alone)
    monkeypatch.setattr(TA, "MIN_WORK", 0)
    captured = []
    real = TA._launch

    def counted(kernel, *args):
        if torch.cuda.is_current_stream_capturing():
            captured.append(kernel)
        return real(kernel, *args)
    monkeypatch.setattr(TA, "_launch", counted)
    rng = np.random.default_rng(0)
    with mx.stream(mx.gpu):
        mask = mx.array(np.triu(np.full((64, 64), np.finfo(np.float32).min, np.float32), 1))
        w = mx.array(rng.standard_normal((16, 16)).astype(np.float32) / 4)

        def f(x):
            for _ in range(2):
                x = x + mx.fast.scaled_dot_product_attention(x @ w, x, x, scale=0.25,
                                                             mask=mask)
            return x.sum()
        step = mx.value_and_grad(f)
        cf = mx.compile(step)
        for i in range(4):
            x = mx.array(rng.standard_normal((2, 2, 64, 16)).astype(np.float32))
            got, want = cf(x), step(x)
            mx.eval(got, want)
            np.testing.assert_allclose(np_of(got[0]), np_of(want[0]), rtol=1e-4)
            np.testing.assert_allclose(np_of(got[1]), np_of(want[1]), rtol=1e-3, atol=1e-3)
    # one capture: both layers' kernels, the forward's table and the backward's
    assert captured.count("_fwd") == 4 and captured.count("_bwd_kv") == 2
    assert captured.count("_mask_blocks") in (2, 3)
