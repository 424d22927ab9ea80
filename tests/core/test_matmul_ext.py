"""gather_mm, segmented_mm, block_masked_mm, hadamard_transform and einsum_path beyond the
op database: grads where upstream has none (checked by finite differences), dtypes where
upstream's CPU kernels fail, argument errors, einsum_path's paths."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.core.test_opdb import test_grads_match_finite_differences as _fd_check
from tests.helpers import assert_same, np_of, on_cpu
from tests.opdb import Op, rand

RNG = np.random.default_rng(3)
I = np.array


def _raises_like(f):
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


def _fixed(*arrays):
    return lambda rng, dt: [tuple(arrays)]


_GRAD_OPS = [
    Op("gather_mm", lambda m, a, b, li, ri: m.gather_mm(a, b, li, ri),
       _fixed(rand(RNG, (4, 3, 5), "float32"), rand(RNG, (2, 5, 6), "float32"),
              I([0, 3, 1, 3], np.uint32), I([1, 0, 1, 1], np.uint32))),
    Op("gather_mm_vec", lambda m, a, b, li: m.gather_mm(a, b, li),
       _fixed(rand(RNG, (5,), "float32"), rand(RNG, (3, 5, 2), "float32"),
              I([[0, 0, 0]], np.int32))),
    Op("segmented_mm", lambda m, a, b, seg: m.segmented_mm(a, b, seg),
       _fixed(rand(RNG, (3, 10), "float32"), rand(RNG, (10, 4), "float32"),
              I([[[0, 3], [3, 10]], [[2, 2], [1, 9]]], np.int32))),
    Op("block_masked_mm", lambda m, a, b, mo, ml, mr: m.block_masked_mm(a, b, 32, mo, ml, mr),
       _fixed(rand(RNG, (40, 36), "float32"), rand(RNG, (36, 70), "float32"),
              RNG.uniform(0, 2, (2, 3)), RNG.uniform(0, 2, (2, 2)), RNG.random((2, 3)) > 0.4)),
    Op("hadamard_transform_20", lambda m, a: m.hadamard_transform(a),
       _fixed(rand(RNG, (2, 20), "float32"))),
    Op("hadamard_transform_56", lambda m, a: m.hadamard_transform(a, 0.5),
       _fixed(rand(RNG, (56,), "float32"))),
]


@pytest.mark.parametrize("op", _GRAD_OPS, ids=repr)
def test_grads_finite_differences(op):
    _fd_check(op)


@pytest.mark.parametrize("op", _GRAD_OPS[:1], ids=repr)
def test_vjp_matches_upstream(op):
    (sample,) = op.samples(RNG, "float32")
    nums = [i for i, x in enumerate(sample) if np.asarray(x).dtype.kind == "f"]
    res = []
    for mod in (mlx, mx):
        args = [mod.array(x) for x in sample]

        def f(*xs, mod=mod, args=args):
            full = list(args)
            for i, x in zip(nums, xs):
                full[i] = x
            return op.fn(mod, *full)
        out = f(*[args[i] for i in nums])
        cot = mod.array(np.linspace(-1, 1, out.size, dtype=np.float32).reshape(out.shape))
        res.append(mod.vjp(f, [args[i] for i in nums], [cot])[1])
    for e, m in zip(res[1], res[0]):
        assert_same(e, m, rtol=1e-4)


def test_jvp_vmap_where_upstream_has_none():
    a, b = rand(RNG, (4, 3, 5), "float32"), rand(RNG, (2, 5, 6), "float32")
    li, ri = mx.array(I([0, 3, 1], np.uint32)), mx.array(I([1, 0, 1], np.uint32))
    ea, eb = mx.array(a), mx.array(b)
    _, (t,) = mx.jvp(lambda x: mx.gather_mm(x, eb, li, ri), [ea], [mx.ones_like(ea)])
    want = mx.gather_mm(mx.ones_like(ea), eb, li, ri)
    np.testing.assert_allclose(np_of(t), np_of(want), rtol=1e-5)
    batched = mx.vmap(lambda x: mx.gather_mm(x, eb, li, ri))(mx.stack([ea, 2 * ea]))
    np.testing.assert_allclose(np_of(batched[1]), 2 * np_of(batched[0]), rtol=1e-5)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
def test_low_precision_against_float32(dt):
    # upstream's CPU gather_mm and segmented_mm are wrong or missing for these dtypes
    a, b = rand(RNG, (3, 10), "float32"), rand(RNG, (10, 4), "float32")
    seg = mx.array(I([[0, 3], [3, 10], [2, 2]], np.int32))
    d = getattr(mx, dt)
    got = mx.segmented_mm(mx.array(a).astype(d), mx.array(b).astype(d), seg)
    assert got.dtype == d
    want = mx.segmented_mm(mx.array(a), mx.array(b), seg)
    tol = 1e-5 if dt == "float64" else 5e-2
    np.testing.assert_allclose(np_of(got.astype(mx.float32)), np_of(want), rtol=tol, atol=tol)
    g = mx.gather_mm(mx.array(a).astype(d), mx.array(b).astype(d))
    np.testing.assert_allclose(np_of(g.astype(mx.float32)), a @ b, rtol=tol, atol=tol)


def test_gather_mm_grouped_path_matches_gather():
    # many indices over few b matrices take the grouped kernel (one matmul per matrix)
    a, b = rand(RNG, (64, 2, 32), "float32"), rand(RNG, (3, 32, 2048), "float32")
    ri = RNG.integers(0, 3, 64)
    for ids, flag in ((ri, False), (np.sort(ri), True)):
        got = mx.gather_mm(mx.array(a), mx.array(b), None, mx.array(ids), sorted_indices=flag)
        want = mlx.gather_mm(mlx.array(a), mlx.array(b), None, mlx.array(ids))
        assert_same(got, want, rtol=1e-4)


@pytest.mark.parametrize("call", [
    lambda m: m.gather_mm(m.ones((2, 3, 4)), m.ones((2, 4, 5)), m.array([0.0])),
    lambda m: m.gather_mm(m.ones((2, 3, 4)), 2.0),
    lambda m: m.gather_mm(m.ones((2, 3, 4), m.int32), m.ones((2, 4, 5), m.int32)),
    lambda m: m.segmented_mm(m.ones((3, 4)), m.ones((4, 5)), np.array([[0, 4]])),
    lambda m: m.block_masked_mm(m.ones((64, 64)), m.ones((64, 64)), 16, m.ones((4, 4))),
    lambda m: m.block_masked_mm(m.ones((64, 64)), m.ones((64, 64)), 32, m.ones((3, 2))),
    lambda m: m.block_masked_mm(m.ones((64, 64)), m.ones((64, 64)), 32, None,
                                m.ones((3, 2, 2))),
    lambda m: m.block_masked_mm(m.ones((64, 64)), m.ones((64, 64)), 32, np.ones((2, 2))),
    lambda m: m.block_masked_mm(m.ones((64, 64), m.int32), m.ones((64, 64)).astype(m.int32),
                                32, m.ones((2, 2))),
    lambda m: m.block_masked_mm(m.ones((64,), m.complex64), m.ones((64, 64)), 32,
                                m.ones((2, 2))),
    lambda m: m.block_masked_mm(m.ones((64, 32)), m.ones((64, 64)), 32, m.ones((2, 2))),
    lambda m: m.addmm(1.0, m.ones((2, 3)), m.ones((3, 4))),
    lambda m: m.addmm(m.ones(4), m.ones((2, 3)), m.ones((3, 4)), alpha="x"),
    lambda m: m.inner(m.ones(3), 2.0),
    lambda m: m.outer(2, m.ones(3)),
    lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), [1, 0]),
    lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), [[1], 0]),
    lambda m: m.hadamard_transform(2.0),
    lambda m: m.hadamard_transform(m.ones(6)),
    lambda m: m.hadamard_transform(m.ones((2, 0))),
    lambda m: m.vecdot(m.ones(3), 2),
    lambda m: m.vecdot(m.ones((2, 3)), m.ones((2, 3)), axis=1.0),
    lambda m: m.kron(m.ones(2), 2),
])
def test_errors(call):
    _raises_like(call)


def _message_like(f):
    with pytest.raises(Exception) as up:
        mlx.eval(f(mlx))
    with pytest.raises(up.type) as got:
        mx.eval(f(mx))
    assert str(got.value).split("\n")[0] == str(up.value).split("\n")[0]


@pytest.mark.parametrize("call", [
    lambda m: m.block_masked_mm(m.ones((64, 64), m.int32), m.ones((64, 64), m.int32), 64,
                                m.ones((1, 1), m.bool_)),
    lambda m: m.block_masked_mm(m.ones((2, 64, 64)), m.ones((64, 64)), 64,
                                m.ones((3, 1, 1), m.bool_)),
    lambda m: m.einsum("ij"),
    lambda m: m.einsum_path("ij"),
    lambda m: m.einsum(1, m.ones(2)),
    lambda m: m.matmul(m.ones((2, 3)), 2.0),
    lambda m: m.addmm(m.ones(4), m.ones((2, 3)), m.ones((3, 4)), beta=None),
    lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), (1, 0)),
    lambda m: m.einsum("ab...c", m.ones((2, 2))),
    lambda m: m.einsum_path("...ab", m.ones(2)),
    lambda m: m.einsum("abc", m.ones(2)),
    lambda m: m.tensordot(m.ones(2), m.ones(2), 2**31),
    lambda m: m.tensordot(m.ones(2), m.ones(2), [[2**31], [0]]),
    lambda m: m.vecdot(m.ones(2), m.ones(2), axis=2**31),
    lambda m: m.block_masked_mm(m.ones((2, 2)), m.ones((2, 2)), 2**31, m.ones((1, 1))),
])
def test_error_messages(call):
    _message_like(call)


@pytest.mark.parametrize("shapes", [((64,), (64, 64)), ((64, 64), (64,)), ((64,), (64,)),
                                    ((64,), (3, 64, 64))])
@pytest.mark.parametrize("which", range(3))
@pytest.mark.parametrize("mask", [(), (1,), (2,), (1, 1), (2, 1), (3, 1, 1)])
def test_block_masked_mm_vector_operand_masks(shapes, which, mask):
    # a vector operand lacks a matrix dimension, and so do its masks (upstream's rule)
    bits = RNG.random(mask) > 0.3

    def f(m):
        masks = [None] * 3
        masks[which] = m.array(bits)
        return m.block_masked_mm(m.ones(shapes[0]), m.ones(shapes[1]), 64, *masks)
    try:
        want = f(mlx)
        mlx.eval(want)
    except Exception:  # noqa: BLE001
        return _message_like(f)
    assert_same(f(mx), want)


def test_block_masked_mm_bool_mask_skips_nan_blocks():
    a = np.ones((64, 64), np.float32)
    a[:32, :32] = np.nan
    mask = np.array([[False, True], [True, True]])
    for masks in ((None, mask), (mask, None)):
        e = mx.block_masked_mm(mx.array(a), mx.ones((64, 64)), 32, *[
            None if x is None else mx.array(x) for x in masks])
        m = mlx.block_masked_mm(mlx.array(a), mlx.ones((64, 64)), 32, *[
            None if x is None else mlx.array(x) for x in masks])
        assert_same(e, m)


def _random_einsum(rng, nops):
    letters = "abcdef"
    sizes = {c: int(rng.integers(1, 7)) for c in letters}
    subs = ["".join(rng.choice(list(letters), rng.integers(1, 4), replace=False))
            for _ in range(nops)]
    spec = ",".join(subs)
    if rng.random() < 0.6:
        spec += "->" + "".join(c for c in sorted(set("".join(subs))) if rng.random() < 0.4)
    return spec, [np.ones([sizes[c] for c in s], np.float32) for s in subs]


@pytest.mark.parametrize("seed", range(4))
def test_einsum_path_matches_upstream(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        spec, ops = _random_einsum(rng, int(rng.integers(1, 5)))
        want = mlx.einsum_path(spec, *[mlx.array(x) for x in ops])
        got = mx.einsum_path(spec, *[mx.array(x) for x in ops])
        assert got == want, spec


@pytest.mark.parametrize("spec,shapes", [
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("ii", [(3, 3)]),
    ("ab,bc,cd,de->ae", [(10, 20), (20, 30), (30, 5), (5, 40)]),
    ("ab,bc", [(1000, 1000), (1000, 100000)]),
])
def test_einsum_path_cases(spec, shapes):
    got = mx.einsum_path(spec, *[mx.ones(s) for s in shapes])
    assert got == mlx.einsum_path(spec, *[mlx.ones(s) for s in shapes])


@pytest.mark.parametrize("spec, shapes", [
    ("ij->ik", [(2, 3)]), ("ij,jk->ikz", [(2, 3), (3, 4)]),
    ("ab,bc,cd,de->aqe", [(2, 3), (3, 4), (4, 5), (5, 6)]), ("i...->k...", [(2, 3)]),
])
def test_einsum_path_plans_without_unknown_output_labels(spec, shapes):
    # upstream's einsum refuses these, its einsum_path plans the rest
    got, want = (m.einsum_path(spec, *[m.ones(sh) for sh in shapes]) for m in (mx, mlx))
    assert got == want
    with pytest.raises(ValueError):
        mx.einsum(spec, *[mx.ones(sh) for sh in shapes])


def test_einsum_path_errors():
    _raises_like(lambda m: m.einsum_path("ij,jk", m.ones((2, 3))))
    _raises_like(lambda m: m.einsum_path("ij,jk", m.ones((2, 3)), m.ones((4, 4))))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(8, 16), (3, 2048), (2, 3, 768), (5, 640), (4, 448),
                                   (7, 1), (5, 2), (1000, 4), (24,), (300, 1024),
                                   (2, 14336)])
@on_cpu
def test_hadamard_matches_upstream_bits(dtype, shape):
    """On the CPU, the butterfly adds and the rounding of upstream's kernel: in the input's
    dtype for the 2^k factor, then the m = 12/20/28 factor (in float32 for the half types),
    over blocks of rows where the input is big (300 x 1024)."""
    x = RNG.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::37] = 0.0
    # big values: float16 sums overflow to inf on the way, as upstream's
    for scale, x in (({}, x), ({"scale": 1.0}, x), ({"scale": 0.37}, x), ({}, 3000 * x)):
        got, want = (np.array(lib.hadamard_transform(
            lib.array(x).astype(getattr(lib, dtype)), **scale).astype(lib.float32))
            for lib in (mx, mlx))
        np.testing.assert_array_equal(got, want)
    xt = RNG.standard_normal(shape[::-1]).astype(dtype if dtype != "bfloat16" else np.float32)
    got, want = (np.array(lib.hadamard_transform(lib.array(xt).T).astype(lib.float32))
                 for lib in (mx, mlx))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("c_shape", [(3, 5), (5,)])
def test_addmm_float64_takes_alpha_beta_as_c_floats(c_shape):
    a, b, c = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 5)), RNG.standard_normal(c_shape)
    got, want = (m.addmm(*(m.array(x, m.float64) for x in (c, a, b)), alpha=0.1, beta=0.3)
                 for m in (mx, mlx))
    assert_same(got, want, rtol=1e-15)


def test_bools_are_ints():
    for m in (mx, mlx):
        assert m.vecdot(m.ones((2, 3)), m.ones((2, 3)), axis=True).shape == (2,)
    _message_like(lambda m: m.block_masked_mm(m.ones((2, 2)), m.ones((2, 2)), True,
                                              m.ones((1, 1))))
