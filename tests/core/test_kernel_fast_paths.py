"""Edge cases of the CPU kernels' fast paths, against upstream MLX (and, where the kernel
keeps its general path, against that path run on the same input).

Fast paths: Threefry on numpy words (`kernels_random.host_words`), one-axis gathers through
index_select (`kernels_index._gather`), take_along_axis on int32 maps
(`kernels_index._gather_axis`), scans along an inner axis on a transposed copy
(`kernels_reduce._scan`), sums and products scanned one step at a time
(`kernels_reduce._steps`), and numpy's predicates, comparisons and boolean reductions
(`kernels.numpy_fits`).
"""

import numpy as np
import pytest

import ember.core as mx
from ember.core._backend import kernels_index as KI
from ember.core._backend import kernels_random as KR
from ember.core._backend import kernels_reduce as KRed
from tests.helpers import np_of

mlx = pytest.importorskip("mlx.core")

RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _on_the_cpu():
    # these are the CPU kernels' paths, whatever the default device of the run
    before = mx.default_device()
    mx.set_default_device(mx.cpu)
    yield
    mx.set_default_device(before)


def _both(fn, *args):
    """fn run on Ember and on upstream MLX, both as numpy (or the exception type)."""
    out = []
    for lib in (mx, mlx):
        try:
            r = fn(lib, *[lib.array(a) for a in args])
            lib.eval(r)
            out.append(np.array(r))
        except Exception as e:  # noqa: BLE001 - the type is what is compared
            out.append(type(e))
    return out


def _same(e, m, exact=True):
    assert not isinstance(e, type) and not isinstance(m, type), (e, m)
    assert e.shape == m.shape and e.dtype == m.dtype, (e.shape, m.shape, e.dtype, m.dtype)
    if exact:
        np.testing.assert_array_equal(e, m)
    else:
        np.testing.assert_allclose(e, m, rtol=2e-5, atol=2e-5)


# -- random bits ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 15, 16, 17, 130_000, 131_072, 131_073, 262_147])
def test_uniform_bits_match_upstream(n):
    # word counts around the Python-int cutoff and around the chunk size (2 * 65536 words)
    e = np.array(mx.random.uniform(shape=(n,), key=mx.random.key(7)))
    m = np.array(mlx.random.uniform(shape=(n,), key=mlx.random.key(7)))
    _same(e, m)


@pytest.mark.parametrize("num", [2, 3, 5, 9, 40_000, 70_001])
def test_split_many_keys_match_upstream(num):
    # a (num, 2) block per key: few blocks on Python ints, many in chunks of rows
    for seed in (0, 2 ** 40 + 5):
        e = np.array(mx.random.split(mx.random.key(seed), num))
        m = np.array(mlx.random.split(mlx.random.key(seed), num))
        _same(e, m)


def test_batched_keys_match_upstream():
    # one independent block per key: keys of shape (K, 2), K rows per pass
    for k, shape in ((3, (5,)), (300, (7, 3)), (4, (70_000,))):
        ke = mx.random.split(mx.random.key(11), k)
        km = mlx.random.split(mlx.random.key(11), k)
        e = np.array(mx.vmap(lambda kk, s=shape: mx.random.uniform(shape=s, key=kk))(ke))
        m = np.array(mlx.vmap(lambda kk, s=shape: mlx.random.uniform(shape=s, key=kk))(km))
        _same(e, m)


@pytest.mark.parametrize("shape", [(3,), (257,), (1001, 3)])
def test_narrow_widths_and_normal_match_upstream(shape):
    for name, kw in (("randint", {"low": 0, "high": 200, "dtype": "uint8"}),
                     ("bernoulli", {"p": 0.3}), ("normal", {}),
                     ("uniform", {"dtype": "float16"})):
        out = []
        for lib in (mx, mlx):
            args = dict(kw)
            if "dtype" in args:
                args["dtype"] = getattr(lib, args["dtype"])
            if name == "randint":
                out.append(np.array(lib.random.randint(shape=shape, key=lib.random.key(5),
                                                       **args)))
            else:
                out.append(np.array(getattr(lib.random, name)(shape=shape,
                                                              key=lib.random.key(5), **args)))
        _same(*out, exact=name != "normal")


def test_cpu_words_match_the_vectorised_hash():
    import torch
    g = torch.Generator().manual_seed(0)
    for nk, n in ((1, 9), (2, 4), (3, 1), (5, 0), (0, 4), (2, 131_075), (40_000, 3)):
        keys = torch.randint(0, 2 ** 32, (nk, 2), dtype=torch.int64, generator=g)
        h, odd = divmod(n, 2)
        x0 = torch.arange(h + odd, dtype=torch.int64)
        x1 = torch.arange(h + odd, 2 * (h + odd), dtype=torch.int64)
        if odd:
            x1[h] = 0
        y0, y1 = KR.threefry2x32(keys[:, :1], keys[:, 1:], x0[None], x1[None])
        ref = torch.cat((y0, y1[:, :h]), 1)
        got = KR.random_words(keys, n)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        assert torch.equal(got, ref)


# -- gathers --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int32", "int64", "uint32", "int16", "uint8"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_take_one_axis_matches_upstream(dtype, axis):
    x = RNG.standard_normal((40, 30, 20)).astype(np.float32)
    n = x.shape[axis]
    for idx in (RNG.integers(0, n, (300,)), RNG.integers(0, n, (12, 25)),
                np.array([n - 1] * 200), RNG.integers(-n, n, (300,))):
        if dtype.startswith("u") and idx.min() < 0:
            continue
        idx = idx.astype(dtype)
        e, m = _both(lambda lib, a, i, ax=axis: lib.take(a, i, axis=ax), x, idx)
        _same(e, m)
        e, m = _both(lambda lib, a, i: a[i], x, idx)
        _same(e, m)


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.complex64, np.float16])
def test_take_rows_of_other_dtypes(dtype):
    x = RNG.standard_normal((64, 128))
    x = (x > 0) if dtype is np.bool_ else (x * 10).astype(dtype)
    idx = RNG.integers(0, 64, (100,)).astype(np.int32)
    _same(*_both(lambda lib, a, i: lib.take(a, i, axis=0), x, idx))


def test_take_general_path_for_out_of_range_indices():
    # negative indices wrap; the general path gives them the same meaning as upstream
    x = RNG.standard_normal((200, 64)).astype(np.float32)
    idx = np.array([-1, -200, 0, 199] * 50, dtype=np.int32)
    _same(*_both(lambda lib, a, i: lib.take(a, i, axis=0), x, idx))
    # indices past the end are taken modulo the axis (upstream does not check them)
    bad = np.array([0, 200] * 50, dtype=np.int32)
    got = np.array(mx.take(mx.array(x), mx.array(bad), axis=0))
    np.testing.assert_array_equal(got, x[bad % 200])


def test_take_fast_path_equals_general_path():
    x = mx.array(RNG.standard_normal((100, 80)).astype(np.float32))
    idx = mx.array(RNG.integers(0, 100, (7, 9)).astype(np.int32))
    fast = np.array(mx.take(x, idx, axis=0))
    old, KI._SELECT_MIN = KI._SELECT_MIN, 1 << 60
    try:
        general = np.array(mx.take(x, idx, axis=0))
    finally:
        KI._SELECT_MIN = old
    np.testing.assert_array_equal(fast, general)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint32", "uint8", "int16"])
def test_take_along_axis_matches_upstream(dtype):
    x = RNG.standard_normal((50, 60)).astype(np.float32)
    for axis in (0, 1, -1):
        n = x.shape[axis]
        lo = 0 if dtype.startswith("u") else -n
        idx = RNG.integers(lo, n, x.shape).astype(dtype)
        _same(*_both(lambda lib, a, i, ax=axis: lib.take_along_axis(a, i, axis=ax), x, idx))


def test_take_along_axis_broadcasts():
    x = RNG.standard_normal((1, 40, 30)).astype(np.float32)
    for ishape, axis in (((5, 40, 7), 2), ((5, 1, 7), 2), ((1, 9, 30), 1), ((6, 40, 1), 0)):
        n = x.shape[axis]
        idx = RNG.integers(-n, n, ishape).astype(np.int32)
        _same(*_both(lambda lib, a, i, ax=axis: lib.take_along_axis(a, i, axis=ax), x, idx))
    idx = RNG.integers(0, 30, (0, 40, 3)).astype(np.int32)
    _same(*_both(lambda lib, a, i: lib.take_along_axis(a, i, axis=2), x, idx))


@pytest.mark.parametrize("gather", [
    lambda x, i: mx.take_along_axis(x, mx.broadcast_to(i, (8, 3)), axis=1),
    lambda x, i: mx.take(x, i, axis=1),
    lambda x, i: x[:, i],
    lambda x, i: x[i, i],
])
def test_out_of_range_indices_read_inside_the_array(gather):
    # upstream reads whatever lies there without raising; Ember takes the index modulo the
    # axis: no error at eval, in-range indices as upstream
    x = RNG.standard_normal((8, 8)).astype(np.float32)
    i = np.array([9, -100, 2], dtype=np.int32)
    got = np.array(gather(mx.array(x), mx.array(i)))
    want = np.array(gather(mx.array(x), mx.array(i % 8)))
    np.testing.assert_array_equal(got, want)


# -- scans along inner axes -----------------------------------------------------------------

_SCANS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]


@pytest.mark.parametrize("op", _SCANS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "bool_", "uint64"])
def test_inner_axis_scans_match_upstream(op, dtype):
    if op == "logcumsumexp" and dtype != "float32":
        pytest.skip("logcumsumexp takes floats")
    x = RNG.standard_normal((30, 20, 12))
    x = x > 0 if dtype == "bool_" else (x * (1.1 if op == "cumprod" else 3)).astype(
        np.float16 if dtype == "float16" else np.float32 if dtype == "float32" else np.int32
        if dtype == "int32" else np.uint64)
    if dtype == "uint64":
        x = np.abs(x.astype(np.int64) % 7).astype(np.uint64)
    for axis in (0, 1, -2):
        for reverse in (False, True):
            for inclusive in (True, False):
                e, m = _both(lambda lib, a, ax=axis, r=reverse, i=inclusive:
                             getattr(lib, op)(a, axis=ax, reverse=r, inclusive=i), x)
                exact = dtype not in ("float32", "float16") or op in ("cummax", "cummin")
                if dtype == "float16" and not exact:
                    # upstream accumulates in float16, ATen in float32: a few half ulps
                    np.testing.assert_allclose(e.astype(np.float32), m.astype(np.float32),
                                               rtol=5e-2, atol=0.25)
                    assert e.dtype == m.dtype and e.shape == m.shape
                else:
                    _same(e, m, exact=exact)


@pytest.mark.parametrize("op", _SCANS)
def test_inner_axis_scans_equal_the_strided_scan(op):
    # the transposed copy runs the same additions: bit-identical to scanning in place
    x = mx.array(RNG.standard_normal((64, 48, 5)).astype(np.float32))
    x = mx.where(x > 2.5, mx.array(float("nan")), x)
    for axis in (0, 1):
        for reverse in (False, True):
            for inclusive in (True, False):
                def f(ax=axis, r=reverse, i=inclusive):
                    return np.array(getattr(mx, op)(x, axis=ax, reverse=r, inclusive=i))
                fast = f()
                old, KRed._MOVE_MIN = KRed._MOVE_MIN, 1 << 60
                try:
                    strided = f()
                finally:
                    KRed._MOVE_MIN = old
                assert fast.dtype == strided.dtype
                np.testing.assert_array_equal(fast, strided)


def _special(shape, op, dtype):
    """Random values with NaN, inf and -0.0 sprinkled in (complex: in the real part)."""
    x = RNG.standard_normal(shape)
    x = 1 + 0.05 * x if op == "cumprod" else 3 * x
    flat = x.reshape(-1)
    for v in (np.nan, np.inf, -0.0):
        flat[RNG.integers(0, flat.size, 2)] = v
    if dtype == "complex64":
        return (x + 1j * RNG.standard_normal(shape)).astype(np.complex64)
    return x.astype(np.float32)


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "complex64"])
@pytest.mark.parametrize("shape", [(300, 1030), (5, 3000), (3, 700, 4), (2, 300, 70),
                                   (40, 2, 600), (90, 260)])
def test_stepwise_scans_match_upstream_bits(op, dtype, shape):
    """Upstream rounds each step to the dtype; ATen accumulates wider. Along an outer axis
    with many scans, a step runs over all of them, in the dtype (elsewhere ATen's scan:
    see test_reduce for its values)."""
    if dtype == "complex64" and op == "cumprod":
        pytest.skip("upstream's complex product rounds unlike numpy's and torch's")
    x = _special(shape, op, dtype)
    axes = [a for a in range(len(shape) - 1) if x.size >= KRed._STEP_MIN * shape[a]]
    if not axes:
        pytest.skip("too few scans for steps in this dtype: ATen's scan")
    for axis in axes:
        for reverse in (False, True):
            for inclusive in (True, False):
                def f(lib, a, ax=axis, r=reverse, i=inclusive):
                    y = getattr(lib, op)(a.astype(getattr(lib, dtype)), axis=ax, reverse=r,
                                         inclusive=i)
                    return y.astype(lib.float32) if dtype == "bfloat16" else y
                e, m = _both(f, x)
                assert e.dtype == m.dtype and e.shape == m.shape
                # NaN payloads aside, every bit (the sign of zero too)
                if e.dtype.kind == "c":
                    e, m = np.stack([e.real, e.imag]), np.stack([m.real, m.imag])
                nan = np.isnan(e) & np.isnan(m)
                np.testing.assert_array_equal(np.where(nan, 0, e).view(f"u{e.itemsize}"),
                                              np.where(nan, 0, m).view(f"u{m.itemsize}"))


def test_inner_axis_scan_feeds_later_ops():
    # the result is a transposed view: ops after it must read it in the right order
    a = RNG.standard_normal((70, 90)).astype(np.float32)
    e, m = _both(lambda lib, x: lib.reshape(lib.cumsum(x, axis=0), (90, 70)) * 2, a)
    _same(e, m, exact=False)
    e, m = _both(lambda lib, x: lib.cumsum(x, axis=0)[3:9:2, ::-1], a)
    _same(e, m, exact=False)


def test_take_along_axis_expanded_int32_indices():
    # an index map broadcast along a dim (zero stride), by the op or by broadcast_to
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    idx = np.array([[0], [1], [2], [-1], [-3]], dtype=np.int32)
    _same(*_both(lambda lib, a, i: lib.take_along_axis(a, i, axis=0), x, idx))
    _same(*_both(lambda lib, a, i: lib.take_along_axis(
        a, lib.broadcast_to(i, (5, 4)), axis=0), x, idx))
    big = RNG.standard_normal((64, 256)).astype(np.float32)
    bidx = RNG.integers(0, 64, (70, 1)).astype(np.int32)
    _same(*_both(lambda lib, a, i: lib.take_along_axis(
        a, lib.broadcast_to(i, (70, 256)), axis=0), big, bidx))


# -- var/std on the CPU: two passes ------------------------------------------------------

@pytest.mark.parametrize("axis", [0, -1, (0, 2), None])
@pytest.mark.parametrize("ddof", [0, 1, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_var_two_pass_matches_numpy_and_upstream(axis, ddof, dtype):
    """Against numpy in float64 (accuracy, on data with a large mean) and against
    upstream (values, dtype, shape) on plain data; inf and nan as upstream."""
    rng = np.random.default_rng(11)
    x = (1e4 + rng.standard_normal((6, 5, 4))).astype(dtype)
    got = mx.var(mx.array(x, dtype=getattr(mx, dtype)), axis=axis, ddof=ddof)
    want = np.var(x.astype(np.float64), axis=axis, ddof=ddof)
    np.testing.assert_allclose(np_of(got), want, rtol=2e-4 if dtype == "float32" else 1e-12)
    y = rng.standard_normal((6, 5, 4)).astype(np.float32)
    y[1, 2, 3], y[2, 0, 1] = np.inf, np.nan
    for f in ("var", "std"):
        e = getattr(mx, f)(mx.array(y), axis=axis, ddof=ddof, keepdims=True)
        m = getattr(mlx, f)(mlx.array(y), axis=axis, ddof=ddof, keepdims=True)
        assert e.shape == m.shape and e.dtype == mx.float32
        np.testing.assert_allclose(np_of(e), np.array(m), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,axis", [((700, 300), 0), ((30, 40, 200), (0, 1)),
                                        ((3, 70000), 0), ((2000, 3, 50), (1, 0))])
@pytest.mark.parametrize("ddof", [0, 1])
def test_var_over_leading_axes_by_blocks(shape, axis, ddof):
    """Big inputs reduced over their leading axes go a block of rows at a time: as accurate
    as the whole-array two passes, and as upstream within its own rounding."""
    rng = np.random.default_rng(5)
    x = (100 + 3 * rng.standard_normal(shape)).astype(np.float32)
    assert x.nbytes > KRed._BLOCK
    want = np.var(x.astype(np.float64), axis=axis, ddof=ddof)
    for keepdims in (False, True):
        for f in ("var", "std"):
            e, m = _both(lambda lib, a, f=f, k=keepdims:
                         getattr(lib, f)(a, axis=axis, ddof=ddof, keepdims=k), x)
            assert e.dtype == m.dtype and e.shape == m.shape
            np.testing.assert_allclose(e, m, rtol=1e-4)
    got = np_of(mx.var(mx.array(x), axis=axis, ddof=ddof))
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("shape,axis", [((300, 70), 0), ((64, 32, 16), (0, 1)),
                                        ((5, 4000), 0), ((2, 3, 900), 0), ((3, 0, 4000), 0)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_over_leading_axes_matches_upstream_bits(shape, axis, keepdims):
    # float32 rows added one after another (numpy), as upstream: the same bits
    x = RNG.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[:: 97] = np.nan if x.size > 2000 else x.reshape(-1)[:: 97]
    assert x.size >= KRed._NP_SUM_MIN or 0 in shape
    e, m = _both(lambda lib, a: lib.sum(a, axis=axis, keepdims=keepdims), x)
    assert e.dtype == m.dtype and e.shape == m.shape
    np.testing.assert_array_equal(e, m)


@pytest.mark.parametrize("op", ["any", "all", "max", "min"])
@pytest.mark.parametrize("shape,axis", [((300, 50), 0), ((300, 50), -1), ((6, 7, 8), (0, 2))])
def test_bool_reductions_match_upstream(op, shape, axis):
    x = RNG.standard_normal(shape) > 0.8
    e, m = _both(lambda lib, a: getattr(lib, op)(a, axis=axis), x)
    assert e.dtype == m.dtype and e.shape == m.shape
    np.testing.assert_array_equal(e, m)


def test_bool_any_all_over_an_empty_axis():
    # (upstream's CPU any/all over an empty axis can spin for minutes: not asked here)
    x = mx.array(np.zeros((0, 5), bool))
    assert mx.any(x, axis=0).tolist() == [False] * 5
    assert mx.all(x, axis=0).tolist() == [True] * 5
    assert mx.any(mx.array(np.zeros((4, 0), bool)), axis=1).tolist() == [False] * 4


def _specials(shape, dtype):
    x = RNG.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[::97] = np.nan
    flat[5::101] = np.inf
    flat[7::103] = -np.inf
    flat[11::107] = -0.0
    flat[13::109] = 0.0
    return x


@pytest.mark.parametrize("threads", [1, 8])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_predicates_comparisons_and_bool_reductions(threads, dtype, monkeypatch):
    """Large float inputs on numpy's one-thread kernels (1 thread) or ATen's (a large
    pool), against upstream: isnan and friends, the six comparisons against an array, a
    row and a scalar (NaN, infinities and signed zeros among the values), any/all over
    axes."""
    import torch

    from ember.core._backend import kernels as K
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    x = _specials((160, 130), dtype)
    y = _specials((160, 130), dtype)
    assert x.size >= K.NP_MIN
    for name in ("isnan", "isinf", "isfinite", "isposinf", "isneginf"):
        got, want = getattr(mx, name)(mx.array(x)), getattr(mlx, name)(mlx.array(x))
        np.testing.assert_array_equal(np_of(got), np.array(want), err_msg=name)
    for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
        for other in (y, y[3], 0.0):
            a = other if isinstance(other, float) else mx.array(other)
            b = other if isinstance(other, float) else mlx.array(other)
            got = getattr(mx, name)(mx.array(x), a)
            want = getattr(mlx, name)(mlx.array(x), b)
            assert got.dtype == mx.bool_
            np.testing.assert_array_equal(np_of(got), np.array(want), err_msg=name)
    m = x > 0
    for name in ("any", "all"):
        for axis in (None, 0, 1, (0, 1)):
            for keep in (False, True):
                got = getattr(mx, name)(mx.array(m), axis=axis, keepdims=keep)
                want = getattr(mlx, name)(mlx.array(m), axis=axis, keepdims=keep)
                assert got.shape == want.shape
                np.testing.assert_array_equal(np_of(got), np.array(want))


@pytest.mark.parametrize("threads", [1, 8])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_numpy_arg_reductions(threads, op, monkeypatch):
    """argmax/argmin of large float inputs on numpy (the axis moved last in a copy) or
    ATen, against upstream: NaNs (the first one wins), ties (the first index), signed
    zeros, every axis, keepdims."""
    import torch
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    x = RNG.integers(-3, 3, (60, 50, 7)).astype(np.float32)
    x[5, 3, 1] = x[9, 3, 1] = np.nan
    x[:, 6, 2] = np.nan
    x[2, 4, 0], x[0, 4, 0] = -0.0, 0.0
    for axis in (0, 1, 2, -1):
        for keep in (False, True):
            got = getattr(mx, op)(mx.array(x), axis=axis, keepdims=keep)
            want = getattr(mlx, op)(mlx.array(x), axis=axis, keepdims=keep)
            assert got.shape == want.shape and str(got.dtype) == str(want.dtype)
            np.testing.assert_array_equal(np_of(got), np.array(want))
