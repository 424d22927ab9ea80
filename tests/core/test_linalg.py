"""Matrix products and view beyond the op database: argument types, scaled addmm grads,
complex grads, vmap over mixed batch axes, edge values, view's bits."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of

RNG = np.random.default_rng(7)


def _r(*shape, dtype=np.float32):
    x = RNG.standard_normal(shape)
    if dtype == np.complex64:
        x = x + 1j * RNG.standard_normal(shape)
    return x.astype(dtype)


def _both(*xs):
    return [mx.array(x) for x in xs], [mlx.array(x) for x in xs]


def _raises_like(f):
    """f(mlx) raises; f(mx) must raise the same exception type."""
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


@pytest.mark.parametrize("call", [
    lambda m: m.matmul(m.ones((2, 3)), 2.0),
    lambda m: m.matmul(np.ones((2, 3), np.float32), m.ones((3, 2))),
    lambda m: m.addmm(1.0, m.ones((2, 3)), m.ones((3, 2))),
    lambda m: m.addmm(m.ones((2, 2)), m.ones((2, 3)), m.ones((3, 2)), alpha=1j),
    lambda m: m.inner(2.0, 3.0),
    lambda m: m.outer(2, m.ones(3)),
    lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), [1, 0]),
    lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), 1.5),
    lambda m: m.einsum(3, m.ones(3)),
    lambda m: m.view(m.ones(3), "int32"),
])
def test_argument_types(call):
    _raises_like(call)


@pytest.mark.parametrize("call", [
    lambda m: m.tensordot(m.ones((2, 3, 4)), m.ones((4, 3, 5)), -1),
    lambda m: m.tensordot(m.ones((2, 3, 4)), m.ones((4, 3, 5)), 4),
    lambda m: m.tensordot(m.ones((2, 3, 4)), m.ones((4, 3, 5)), [[2], [0], [1]]),
    lambda m: m.tensordot(m.ones((2, 3, 4)), m.ones((4, 3, 5)), [[1, 2], [1]]),
    lambda m: m.tensordot(m.ones((2, 3, 4)), m.ones((4, 3, 5)), [[5], [0]]),
    lambda m: m.tensordot(m.ones((2, 3, 4)), m.ones((4, 3, 5)), [[2, 2], [0, 0]]),
    lambda m: m.addmm(m.ones((2, 1, 4)), m.ones((3, 2, 3)), m.ones((3, 4))),
    lambda m: m.addmm(m.ones((2, 4)), m.ones((5, 2, 3)), m.ones((5, 2, 3, 4))),
    lambda m: m.addmm(m.ones((2,), m.int32), m.ones((2, 3), m.int32), m.ones((3, 2), m.int8)),
    lambda m: m.inner(m.ones((2, 3)), m.ones((4, 2))),
    lambda m: m.view(m.ones((3,)), m.float64),
    lambda m: m.view(m.array(1.0), m.int16),
])
def test_errors(call):
    _raises_like(call)


@pytest.mark.parametrize("alpha,beta", [(0.5, -2.0), (3, 0.0), (0.0, 2.0), (1.0, 1.0)])
@pytest.mark.parametrize("shapes", [((4, 5), (4, 3), (3, 5)), ((5,), (2, 4, 3), (3, 5)),
                                    ((1,), (3,), (3, 5)), ((4, 1), (2, 4, 3), (2, 3, 5))])
def test_addmm_scaled_grads(alpha, beta, shapes):
    xs = [_r(*s) for s in shapes]
    e, m = _both(*xs)
    out_m = mlx.addmm(*m, alpha, beta)
    cot = _r(*out_m.shape)
    tans = [_r(*s) for s in shapes]
    _, ve = mx.vjp(lambda *a: mx.addmm(*a, alpha, beta), e, [mx.array(cot)])
    _, vm = mlx.vjp(lambda *a: mlx.addmm(*a, alpha, beta), m, [mlx.array(cot)])
    for a, b in zip(ve, vm):
        assert_same(a, b, rtol=1e-4)
    # upstream's addmm jvp drops alpha and beta: compare with its jvp of the expanded form
    _, je = mx.jvp(lambda *a: mx.addmm(*a, alpha, beta), e, [mx.array(t) for t in tans])
    _, jm = mlx.jvp(lambda c, a, b: alpha * (a @ b) + beta * c, m, [mlx.array(t) for t in tans])
    assert_same(je[0], jm[0], rtol=1e-4)


def test_addmm_drops_terms_like_upstream():
    nan = float("nan")
    cases = [
        lambda m: m.addmm(m.array([[nan, 1.0]]), m.ones((1, 2)), m.ones((2, 2)), beta=0.0),
        lambda m: m.addmm(m.array([[1.0, 1.0]]), m.array([[nan, 1.0]]), m.ones((2, 2)),
                          alpha=0.0),
        lambda m: m.addmm(m.array([[nan, 1.0]]), m.ones((1, 0)), m.ones((0, 2)), beta=0.0),
        lambda m: m.addmm(m.array([2.0, 1.0]), m.ones((3, 0)), m.ones((0, 2)), beta=0.5),
        lambda m: m.addmm(m.ones((2,)), m.ones((3, 2, 4)), m.ones((3, 4, 2)), beta=0.0),
    ]
    for f in cases:
        assert_same(f(mx), f(mlx))


@pytest.mark.parametrize("fn", [
    lambda m, a, b: m.matmul(a, b),
    lambda m, a, b: m.addmm(m.ones((4,), m.complex64), a, b, 2.0, 0.5),
    lambda m, a, b: m.einsum("ij,jk->ik", a, b),
    lambda m, a, b: m.tensordot(a, b, 1),
    lambda m, a, b: m.inner(a, m.swapaxes(b, 0, 1)),
])
def test_complex_grads(fn):
    a, b = _r(3, 5, dtype=np.complex64), _r(5, 4, dtype=np.complex64)
    e, m = _both(a, b)
    out = fn(mlx, *m)
    cot = _r(*out.shape, dtype=np.complex64)
    _, ve = mx.vjp(lambda *x: fn(mx, *x), e, [mx.array(cot)])
    _, vm = mlx.vjp(lambda *x: fn(mlx, *x), m, [mlx.array(cot)])
    for x, y in zip(ve, vm):
        assert_same(x, y, rtol=1e-4)


@pytest.mark.parametrize("fn,in_axes,shapes", [
    (lambda m, a, b: m.matmul(a, b), (0, None), [(3, 2, 4), (4, 5)]),
    (lambda m, a, b: m.matmul(a, b), (None, 1), [(2, 4), (4, 3, 5)]),
    (lambda m, a, b: m.matmul(a, b), (1, 0), [(2, 3, 4), (3, 4, 5)]),
    (lambda m, a, b: m.matmul(a, b), (0, 0), [(3, 4), (3, 4)]),
    (lambda m, a, b: m.matmul(a, b), (2, None), [(2, 4, 3), (4,)]),
    (lambda m, c, a, b: m.addmm(c, a, b, 2.0, 0.5), (0, None, None), [(3, 5), (2, 4), (4, 5)]),
    (lambda m, c, a, b: m.addmm(c, a, b, 2.0, 0.5), (None, 0, None),
     [(5,), (3, 2, 4), (4, 5)]),
    (lambda m, c, a, b: m.addmm(c, a, b), (1, None, 0), [(2, 3, 5), (2, 4), (3, 4, 5)]),
    (lambda m, c, a, b: m.addmm(c, a, b), (0, 0, 0), [(3, 2, 5), (3, 2, 4), (3, 4, 5)]),
    (lambda m, c, a, b: m.addmm(c, a, b), (0, None, None), [(3,), (4,), (4,)]),
    (lambda m, a, b: m.einsum("ij,jk->ki", a, b), (0, 1), [(3, 2, 4), (4, 3, 5)]),
    (lambda m, a, b: m.einsum("i...,...i", a, b), (0, None), [(3, 2, 4), (4, 2)]),
    (lambda m, a: m.einsum("ii->i", a), (1,), [(3, 2, 3)]),
    (lambda m, a, b: m.tensordot(a, b, 1), (0, 0), [(3, 2, 4), (3, 4, 5)]),
    (lambda m, a, b: m.outer(a, b), (0, None), [(3, 2, 2), (4,)]),
])
def test_vmap_mixed_axes(fn, in_axes, shapes):
    xs = [_r(*s) for s in shapes]
    e, m = _both(*xs)
    got = mx.vmap(lambda *a: fn(mx, *a), in_axes=in_axes)(*e)
    # against upstream slice by slice (its vmap of addmm rejects a batched c alone)
    n = next(x.shape[ax] for x, ax in zip(xs, in_axes) if ax is not None)
    want = mlx.stack([fn(mlx, *[mlx.array(x if ax is None else np.take(x, i, axis=ax))
                                for x, ax in zip(xs, in_axes)]) for i in range(n)])
    assert_same(got, want, rtol=1e-4)


def test_matmul_second_order():
    a, b = _r(3, 4), _r(4, 2)
    e, m = _both(a, b)

    def f(mod):
        def inner(x, y):
            return (mod.matmul(x, y) ** 2).sum()
        return lambda x, y: mod.grad(inner)(x, y).sum() * mod.matmul(x, y).sum()
    assert_same(mx.grad(f(mx), argnums=(0, 1))(*e), mlx.grad(f(mlx), argnums=(0, 1))(*m),
                rtol=1e-4)


def test_einsum_many_operands_and_grads():
    shapes = [(2, 3), (3, 4), (4, 5), (5, 2), (2,)]
    xs = [_r(*s) for s in shapes]
    e, m = _both(*xs)
    sub = "ab,bc,cd,da,a->"
    assert_same(mx.einsum(sub, *e), mlx.einsum(sub, *m), rtol=1e-4)
    ge = mx.grad(lambda *a: mx.einsum(sub, *a), argnums=(0, 1, 2, 3, 4))(*e)
    gm = mlx.grad(lambda *a: mlx.einsum(sub, *a), argnums=(0, 1, 2, 3, 4))(*m)
    assert_same(ge, gm, rtol=1e-4)


def test_einsum_matches_numpy_on_random_specs():
    # random contractions: the oracle agrees with numpy here, so numpy checks more shapes
    letters = "abcdef"
    for _ in range(40):
        n_ops = int(RNG.integers(1, 4))
        size = {c: int(RNG.integers(1, 4)) for c in letters}
        subs = ["".join(RNG.choice(list(letters), size=int(RNG.integers(0, 4)), replace=False))
                for _ in range(n_ops)]
        used = sorted(set("".join(subs)))
        out = "".join(c for c in used if RNG.random() < 0.5)
        spec = ",".join(subs) + "->" + out
        xs = [_r(*[size[c] for c in s]) for s in subs]
        got = mx.einsum(spec, *[mx.array(x) for x in xs])
        np.testing.assert_allclose(np_of(got), np.einsum(spec, *xs), rtol=1e-4, atol=1e-4,
                                   err_msg=spec)


def test_view_bits_and_transforms():
    x = _r(3, 4)
    e, m = _both(x)
    # round trips keep every bit
    y = mx.view(mx.view(e[0], mx.uint8), mx.float32)
    np.testing.assert_array_equal(np.asarray(y).view(np.uint32), x.view(np.uint32))
    u = mx.view(mx.view(e[0], mx.uint16), mx.int16)
    np.testing.assert_array_equal(np.asarray(u), x.view(np.int16))
    # Python scalars are accepted
    assert_same(mx.view(3.0, mx.int32), mlx.view(3.0, mlx.int32))
    assert_same(mx.view(3, mx.float32), mlx.view(3, mlx.float32))
    # a view to the same dtype differentiates as the identity, others raise like upstream
    assert_same(mx.grad(lambda a: (mx.view(a, mx.float32) * 2).sum())(e[0]),
                mlx.grad(lambda a: (mlx.view(a, mlx.float32) * 2).sum())(m[0]))
    for mod, a in ((mlx, m[0]), (mx, e[0])):
        with pytest.raises(ValueError):
            mod.eval(mod.grad(lambda v, mod=mod: mod.view(v, mod.int32).astype(
                mod.float32).sum())(a))
        with pytest.raises(ValueError):
            mod.eval(mod.jvp(lambda v, mod=mod: mod.view(v, mod.float16), [a], [a])[1])
    # vmap moves the batch axis in front, since the last axis may change size
    for ax in (0, 1):
        got = mx.vmap(lambda v: mx.view(v, mx.float16), in_axes=ax)(e[0])
        want = mlx.vmap(lambda v: mlx.view(v, mlx.float16), in_axes=ax)(m[0])
        assert_same(got, want)
    # transposed (non-contiguous) input
    assert_same(mx.view(mx.transpose(e[0]), mx.int16), mlx.view(mlx.transpose(m[0]), mlx.int16))


def test_view_unsigned_and_negative():
    for src, dst in [("int32", "uint32"), ("int64", "uint64"), ("int16", "uint16"),
                     ("uint32", "int32"), ("uint16", "int16"), ("uint64", "int64"),
                     ("uint32", "float32"), ("uint16", "bfloat16"), ("uint16", "float16"),
                     ("bool_", "uint8"), ("int8", "uint8")]:
        vals = np.array([[0, 1, 2, 3], [100, 7, 9, 1]], dtype=np.int64)
        if src.startswith("int"):
            vals = -vals
        e = mx.array(vals).astype(getattr(mx, src))
        m = mlx.array(vals).astype(getattr(mlx, src))
        assert_same(mx.view(e, getattr(mx, dst)), mlx.view(m, getattr(mlx, dst)),
                    msg=f"{src}->{dst}")


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("spec,shapes", [("ij->i", [(2, 0)]), ("ij,jk->ik", [(2, 0), (0, 3)]),
                                         ("ij->", [(0, 3)])])
def test_einsum_over_an_empty_axis_gives_zeros(spec, shapes, dtype):
    # against numpy: upstream's CPU evaluation of empty reductions can hang when repeated
    xs = [np.zeros(s, dtype=dtype) for s in shapes]
    got = mx.einsum(spec, *[mx.array(x) for x in xs])
    want = np.einsum(spec, *xs)
    assert got.shape == want.shape and got.dtype == getattr(mx, dtype)
    np.testing.assert_array_equal(np_of(got), want)
