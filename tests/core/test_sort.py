"""Sorting beyond the op database: the partition property, stability with many ties,
NaN and signed-zero order, uint64, grads with ties, higher-order grads, vmap, errors."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, dtype_name, np_of, on_cpu, raises_like

RNG = np.random.default_rng(11)


def _tied(shape, dtype="float32", nan=True):
    x = RNG.integers(-4, 4, size=shape)
    if dtype == "complex64":
        return (x + 1j * RNG.integers(-2, 2, size=shape)).astype(np.complex64)
    x = x.astype(np.float32 if dtype == "bfloat16" else dtype)
    if nan and x.dtype.kind == "f" and x.size:
        flat = x.reshape(-1)
        flat[RNG.integers(0, flat.size, size=max(1, flat.size // 6))] = np.nan
    return x


def _both(x, dtype=None):
    e, m = mx.array(x), mlx.array(x)
    if dtype == "bfloat16":
        e, m = e.astype(mx.bfloat16), m.astype(mlx.bfloat16)
    return e, m


def _check_partition(y, x, kth, axis):
    """y (numpy) is a partition of x around kth along axis."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    y, x = np.moveaxis(y, axis, -1), np.moveaxis(x, axis, -1)
    s = np.sort(x, axis=-1)
    k = kth % x.shape[-1]
    np.testing.assert_array_equal(y[..., k], s[..., k])
    np.testing.assert_array_equal(np.sort(y[..., :k], axis=-1), s[..., :k])
    np.testing.assert_array_equal(np.sort(y[..., k + 1:], axis=-1), s[..., k + 1:])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "uint8", "int64",
                                   "int16", "uint32", "bool", "complex64"])
@pytest.mark.parametrize("shape,kth,axis", [((6, 9), 3, -1), ((6, 9), -1, 1), ((6, 9), 0, 0),
                                            ((4, 3, 5), 2, 1), ((4, 5), 7, None),
                                            ((11,), -11, 0), ((7, 300, 2), 150, 1),
                                            ((40, 301), -151, -1), ((40, 65), 0, 1),
                                            ((40, 65), -1, -1), ((70, 40), 68, 0),
                                            ((50, 60), 1000, None)])
def test_partition_property(dtype, shape, kth, axis):
    x = _tied(shape, dtype) if dtype != "bool" else RNG.random(shape) > 0.5
    e, m = _both(x, dtype)
    xe = np_of(e)
    y = mx.partition(e, kth, axis=axis)
    ym = mlx.partition(m, kth, axis=axis)
    assert y.shape == tuple(ym.shape) and y.dtype == e.dtype
    _check_partition(np_of(y), xe, kth, axis)
    idx = mx.argpartition(e, kth, axis=axis)
    assert idx.dtype == mx.uint32 and idx.shape == tuple(ym.shape)
    src = xe.reshape(-1) if axis is None else xe
    ax = 0 if axis is None else axis
    i = np.asarray(idx).astype(np.int64)
    np.testing.assert_array_equal(np.sort(i, axis=ax),
                                  np.broadcast_to(np.expand_dims(
                                      np.arange(src.shape[ax]),
                                      [d for d in range(src.ndim) if d != ax % src.ndim]),
                                      src.shape))
    _check_partition(np.take_along_axis(src, i, axis=ax), xe, kth, axis)
    # the kth element itself is determined: it must be upstream's
    np.testing.assert_array_equal(np.take(np_of(y), kth, axis=ax),
                                  np.take(np_of(ym), kth, axis=ax))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "uint8", "int16",
                                   "uint32", "bool", "complex64"])
def test_stable_argsort_with_many_ties(dtype):
    x = _tied((3, 2000), dtype) if dtype != "bool" else RNG.random((3, 2000)) > 0.5
    e, m = _both(x, dtype)
    for axis in (-1, 0, None):
        assert_same(mx.argsort(e, axis=axis), mlx.argsort(m, axis=axis), msg=f"axis {axis}")
        assert_same(mx.sort(e, axis=axis), mlx.sort(m, axis=axis), msg=f"axis {axis}")


@pytest.mark.parametrize("kth", [0, 3, 50, -2])
def test_partition_relies_only_on_topks_contract(monkeypatch, kth):
    # an unsorted top-k may come back in any order: shuffle it
    import torch
    topk = torch.topk

    def shuffled(x, k, dim=-1, largest=True, sorted=True):
        r = topk(x, k, dim=dim, largest=largest, sorted=sorted)
        if sorted:
            return r
        perm = torch.randperm(k)
        return type(r)((r.values.index_select(dim, perm), r.indices.index_select(dim, perm)))
    monkeypatch.setattr(torch, "topk", shuffled)
    x = _tied((30, 101))
    y = np_of(mx.partition(mx.array(x), kth))
    _check_partition(y, x, kth, -1)


def test_nan_inf_and_signed_zero_order():
    nan, inf = float("nan"), float("inf")
    x = np.array([0.0, -0.0, nan, -inf, 1.0, -nan, inf, -0.0, 0.0, nan], np.float32)
    e, m = _both(x)
    assert_same(mx.argsort(e), mlx.argsort(m))
    s = np.asarray(mx.sort(e))
    np.testing.assert_array_equal(np.signbit(s), np.signbit(np.asarray(mlx.sort(m))))
    np.testing.assert_array_equal(np.sort(np_of(mx.topk(e, 3))), np.sort(np_of(mlx.topk(m, 3))))
    _check_partition(np_of(mx.partition(e, 7)), x, 7, -1)


def test_uint64_orders_by_value():
    # upstream cannot sort uint64 (std::bad_cast): numpy says what the order is
    x = np.array([2 ** 63 + 5, 1, 2 ** 63, 7, 2 ** 64 - 1, 0], np.uint64)
    e = mx.array(x)
    np.testing.assert_array_equal(np.asarray(mx.sort(e)), np.sort(x))
    np.testing.assert_array_equal(np.asarray(mx.argsort(e)), np.argsort(x, kind="stable"))
    np.testing.assert_array_equal(np.asarray(mx.topk(e, 2)), np.sort(x)[-2:])
    for kth in (1, 3, -1):
        np.testing.assert_array_equal(np.asarray(mx.partition(e, kth))[kth], np.sort(x)[kth])
        np.testing.assert_array_equal(x[np.asarray(mx.argpartition(e, kth))][kth],
                                      np.sort(x)[kth])


@pytest.mark.parametrize("axis", [-1, 0, None])
def test_sort_grads_with_ties_match_upstream(axis):
    x = _tied((4, 6), nan=False)
    e, m = _both(x)
    out = mlx.sort(m, axis=axis)
    cot = RNG.standard_normal(out.shape).astype(np.float32)
    tan = RNG.standard_normal(x.shape).astype(np.float32)
    _, ve = mx.vjp(lambda a: mx.sort(a, axis=axis), [e], [mx.array(cot)])
    _, vm = mlx.vjp(lambda a: mlx.sort(a, axis=axis), [m], [mlx.array(cot)])
    assert_same(ve[0], vm[0])
    _, je = mx.jvp(lambda a: mx.sort(a, axis=axis), [e], [mx.array(tan)])
    _, jm = mlx.jvp(lambda a: mlx.sort(a, axis=axis), [m], [mlx.array(tan)])
    assert_same(je[0], jm[0])


@pytest.mark.parametrize("op", ["argsort", "argpartition"])
def test_index_outputs_have_zero_derivatives(op):
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    e, m = _both(x)
    args = (2,) if op == "argpartition" else ()
    cot = np.ones((3, 5), np.float32)
    _, ve = mx.vjp(lambda a: getattr(mx, op)(a, *args).astype(mx.float32), [e], [mx.array(cot)])
    _, vm = mlx.vjp(lambda a: getattr(mlx, op)(a, *args).astype(mlx.float32), [m],
                    [mlx.array(cot)])
    assert_same(ve[0], vm[0])
    _, je = mx.jvp(lambda a: getattr(mx, op)(a, *args), [e], [mx.array(cot)])
    _, jm = mlx.jvp(lambda a: getattr(mlx, op)(a, *args), [m], [mlx.array(cot)])
    # (upstream's argpartition tangent comes out float32; Ember's keeps the output dtype)
    assert je[0].dtype == mx.uint32 and je[0].shape == tuple(jm[0].shape)
    np.testing.assert_array_equal(np.asarray(je[0]), np.asarray(jm[0]))


@pytest.mark.parametrize("fn", [
    lambda m, x: (m.topk(x, 3) ** 2).sum(),
    lambda m, x: (m.topk(x, 2, axis=0) ** 3).sum(),
    lambda m, x: (m.topk(x, 4, axis=None) * m.topk(x, 4, axis=None)).sum(),
    lambda m, x: (m.partition(x, 2) ** 2).sum() + m.partition(x, 1, axis=0).max(),
    lambda m, x: (m.sort(x) * m.arange(5)).sum() ** 2,
    lambda m, x: (m.sort(x, axis=None).reshape(3, 5) * m.arange(5)).sum() ** 2,
])
def test_first_and_second_order_grads(fn):
    x = RNG.permutation(15).reshape(3, 5).astype(np.float32) / 3
    e, m = _both(x)
    assert_same(mx.grad(lambda a: fn(mx, a))(e), mlx.grad(lambda a: fn(mlx, a))(m), rtol=1e-5)

    def g2(mod):
        return lambda a: (mod.grad(lambda b: fn(mod, b))(a) ** 2).sum()
    assert_same(mx.grad(g2(mx))(e), mlx.grad(g2(mlx))(m), rtol=1e-4)


@pytest.mark.parametrize("kth,axis", [(37, -1), (-2, -1), (30, 0), (500, None)])
def test_partition_grads_and_vmap_on_long_axes(kth, axis):
    # long enough for the selection kernel (short axes and small arrays sort in full)
    x = RNG.permutation(90 * 80).reshape(90, 80).astype(np.float32) / 7200
    e, m = _both(x)

    n = x.size if axis is None else x.shape[axis]
    i = np.arange(n)
    # a weight per side of the partition (the order inside each side is unspecified)
    w = np.where(i < kth % n, 1.0, np.where(i == kth % n, 5.0, 2.0)).astype(np.float32)
    w = w.reshape((-1,) if axis is None else (1, -1) if axis == -1 else (-1, 1))

    def f(mod):
        return lambda a: (mod.partition(a, kth, axis=axis) ** 2 * mod.array(w)).sum()
    assert_same(mx.grad(f(mx))(e), mlx.grad(f(mlx))(m), rtol=1e-5)
    tan = RNG.standard_normal(x.shape).astype(np.float32)
    _, je = mx.jvp(f(mx), [e], [mx.array(tan)])
    _, jm = mlx.jvp(f(mlx), [m], [mlx.array(tan)])
    assert_same(je[0], jm[0], rtol=1e-4)  # (a sum of 7200 terms, in another order)
    got = mx.vmap(lambda a: mx.sort(mx.partition(a, kth % 80)), in_axes=1)(e)
    want = mlx.vmap(lambda a: mlx.sort(mlx.partition(a, kth % 80)), in_axes=1)(m)
    assert_same(got, want)


def test_topk_grad_through_jvp_and_vjp_agree():
    x = RNG.standard_normal((4, 7)).astype(np.float64)
    e = mx.array(x, mx.float64)
    cot = mx.array(RNG.standard_normal((4, 3)), mx.float64)
    tan = mx.array(RNG.standard_normal((4, 7)), mx.float64)
    _, (v,) = mx.vjp(lambda a: mx.topk(a, 3), [e], [cot])
    _, (j,) = mx.jvp(lambda a: mx.topk(a, 3), [e], [tan])
    lhs = float(np.sum(np.asarray(cot) * np.asarray(j)))
    rhs = float(np.sum(np.asarray(v) * np.asarray(tan)))
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))


@pytest.mark.parametrize("fn,in_axes", [
    (lambda m, x: m.sort(x, axis=None), 1),
    (lambda m, x: m.argsort(x, axis=0), 1),
    (lambda m, x: m.sort(m.topk(x, 2)), 1),
    (lambda m, x: m.sort(m.partition(x, 1, axis=None)), 2),
    (lambda m, x: m.sort(m.argpartition(x, 1)), 0),
    (lambda m, x: m.sort(x, axis=0), 2),
])
def test_vmap_other_axes(fn, in_axes):
    x = _tied((3, 4, 5), nan=False)
    e, m = _both(x)
    got = mx.vmap(lambda a: fn(mx, a), in_axes=in_axes)(e)
    want = mlx.vmap(lambda a: fn(mlx, a), in_axes=in_axes)(m)
    assert_same(got, want)


def test_vmap_of_grad():
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    e, m = _both(x)

    def f(mod):
        return mod.vmap(mod.grad(lambda a: (mod.topk(a, 2) ** 2).sum()
                                 + (mod.sort(a) * (mod.arange(6) == 0)).sum()))
    assert_same(f(mx)(e), f(mlx)(m), rtol=1e-5)


@pytest.mark.parametrize("call", [
    lambda m: m.sort([3, 1, 2]),
    lambda m: m.sort(m.array([3, 1]), axis=1.0),
    lambda m: m.sort(m.array([3, 1]), axis=(0,)),
    lambda m: m.sort(m.array(3.0)),
    lambda m: m.argsort(m.array([[3, 1]]), axis=-3),
    lambda m: m.topk(m.array([3, 1]), 1.0),
    lambda m: m.topk(m.array([3, 1]), 3),
    lambda m: m.topk(m.array([3, 1]), -1),
    lambda m: m.topk(m.array(3.0), 1),
    lambda m: m.partition(m.array([3, 1]), 0.5),
    lambda m: m.partition(m.array([3, 1]), 2),
    lambda m: m.partition(m.zeros((3, 0)), 0),
    lambda m: m.argpartition(m.array([3, 1]), -3),
    lambda m: m.argpartition(m.array(3), 0),
])
def test_errors(call):
    with pytest.raises(Exception) as info:
        mlx.eval(call(mlx))
    with pytest.raises(info.type):
        mx.eval(call(mx))


def test_numpy_integer_arguments():
    e, m = _both(np.array([[3.0, 1.0, 2.0]], np.float32))
    assert_same(mx.topk(e, np.int64(2), axis=np.int32(1)).shape,
                tuple(mlx.topk(m, np.int64(2), axis=np.int32(1)).shape))
    assert_same(mx.sort(e, axis=np.int64(0)), mlx.sort(m, axis=np.int64(0)))
    assert_same(mx.partition(e, np.int64(1)).shape, tuple(mlx.partition(m, np.int64(1)).shape))


def test_empty_and_large_k():
    for shape, k in [((0, 4), 2), ((3, 0), 0), ((5,), 5), ((2, 1000), 999), ((2, 1000), 3)]:
        x = RNG.standard_normal(shape).astype(np.float32)
        e, m = _both(x)
        got, want = mx.topk(e, k), mlx.topk(m, k)
        assert got.shape == tuple(want.shape)
        np.testing.assert_array_equal(np.sort(np_of(got), -1), np.sort(np_of(want), -1))


@pytest.mark.parametrize("call", [
    lambda m: m.partition(m.arange(5), 5),
    lambda m: m.argpartition(m.arange(5), -6),
    lambda m: m.partition(m.zeros((2, 3)), 6, axis=None),
    lambda m: m.partition(m.zeros((2, 3)), 2, axis=0),
    lambda m: m.argpartition(m.zeros((2, 3)), 6, axis=None),
    lambda m: m.argpartition(m.zeros((2, 3)), 2, axis=-2),
    lambda m: m.topk(m.zeros((2, 3)), 7, axis=None),
    lambda m: m.topk(m.zeros((2, 3)), 3, axis=-2),
])
def test_invalid_k_reads_as_upstream(call):
    raises_like(lambda: mx.eval(call(mx)), lambda: mlx.eval(call(mlx)), ValueError,
                same_message=True)


def _specials(shape, dtype):
    """Ties, and for floats NaNs (both signs), infinities and signed zeros; complex values
    with a NaN in either part."""
    x = _tied(shape, "float32" if dtype in ("float16", "bfloat16") else dtype, nan=False)
    flat = x.reshape(-1)
    if not flat.size:
        return x
    if dtype in ("float16", "bfloat16", "float32"):
        for i, v in enumerate([np.nan, np.inf, -np.inf, -0.0, 0.0, -np.nan, -0.0]):
            flat[(5 * i + 1) % flat.size] = v
    elif dtype == "complex64":
        for i, v in enumerate([complex(np.nan, 1), complex(1, np.nan), complex(np.nan, np.nan),
                               complex(-0.0, 0), complex(np.nan, -2)]):
            flat[(5 * i + 1) % flat.size] = v
    return x


def _bits(a):
    """A numpy array whose equality means equal values, NaNs equal, signed zeros unequal."""
    a = np_of(a)
    if a.dtype.kind == "c":
        a = np.stack([a.real, a.imag])
    if a.dtype.kind == "f":
        return np.where(np.isnan(a), np.nan, a).view(f"u{a.itemsize}")
    return a


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int64", "float16", "bfloat16",
                                   "float32", "complex64"])
@pytest.mark.parametrize("shape,axis", [((7, 9), -1), ((7, 9), 0), ((3, 4, 5), 1),
                                        ((3, 4, 5), None), ((3, 0), 1), ((2, 300), -1)])
@on_cpu
def test_sort_and_argsort_match_upstream_exactly(dtype, shape, axis):
    x = RNG.random(shape) > 0.5 if dtype == "bool" else _specials(shape, dtype)
    e, m = _both(x, dtype)
    if dtype == "float16":
        e, m = e.astype(mx.float16), m.astype(mlx.float16)
    for op in ("sort", "argsort"):
        got, want = getattr(mx, op)(e, axis=axis), getattr(mlx, op)(m, axis=axis)
        assert dtype_name(got) == dtype_name(want)
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=op)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "complex64"])
@pytest.mark.parametrize("k", [1, 4, 9])
@on_cpu
def test_topk_and_partition_rank_nans_last(dtype, k):
    """NaNs (in either part of a complex number) rank above everything and tie: compared
    are what upstream guarantees, the multisets (NaNs as one value) of topk's output and of
    each side of the partition, and the element at kth."""
    x = _specials((5, 9), dtype)
    e, m = _both(x, dtype)
    if dtype == "float16":
        e, m = e.astype(mx.float16), m.astype(mlx.float16)

    def canon(y):
        y = np_of(y)
        return np.where(np.isnan(y), complex(np.nan, np.nan) if y.dtype.kind == "c" else np.nan,
                        y)

    got, want = canon(mx.topk(e, k)), canon(mlx.topk(m, k))
    np.testing.assert_array_equal(np.sort(got, -1), np.sort(want, -1))
    kth = 9 - k
    got, want = canon(mx.partition(e, kth)), canon(mlx.partition(m, kth))
    np.testing.assert_array_equal(got[:, kth], want[:, kth])
    for side in (slice(None, kth), slice(kth + 1, None)):
        np.testing.assert_array_equal(np.sort(got[:, side], -1), np.sort(want[:, side], -1))
