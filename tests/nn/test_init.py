"""ember.nn.init against upstream mlx.nn.init: seeded draws equal upstream's (mx.random
is bit-identical), moments match the distribution, shapes/dtypes exact, errors alike."""

import inspect
import math

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import assert_same, np_of
from tests.nn.parity import FLOATS, raises_like

ALL = ["constant", "normal", "uniform", "identity", "glorot_normal", "glorot_uniform",
       "he_normal", "he_uniform", "sparse", "orthogonal"]


def _run(name, args, kw, shape, call_kw=None, seed=7):
    """Apply the initializer built by `name(*args, **kw)` to a zeros array of `shape`, in
    both frameworks with the same seed. `dtype` in kw is a name."""
    out = []
    for mod, lib in ((nn, mx), (mnn, mlx)):
        kws = dict(kw)
        if "dtype" in kws:
            kws["dtype"] = getattr(lib, kws["dtype"])
        lib.random.seed(seed)
        out.append(getattr(mod.init, name)(*args, **kws)(lib.zeros(shape), **(call_kw or {})))
    return out


# (name, factory args, factory kwargs, input shape, initializer kwargs)
CASES = [
    ("constant", (0.5,), {}, (3, 4), {}),
    ("constant", (2,), {"dtype": "int32"}, (5,), {}),
    ("normal", (), {}, (64, 32), {}),
    ("normal", (1.5, 0.2), {}, (64, 32), {}),
    ("uniform", (), {}, (64, 32), {}),
    ("uniform", (-3.0, 2.0), {}, (4, 8, 16), {}),
    ("identity", (), {}, (5, 5), {}),
    ("glorot_normal", (), {}, (64, 32), {}),
    ("glorot_normal", (), {}, (16, 3, 3, 8), {"gain": 2.0}),
    ("glorot_uniform", (), {}, (64, 32), {}),
    ("glorot_uniform", (), {}, (16, 5, 8), {"gain": 0.5}),
    ("he_normal", (), {}, (64, 32), {}),
    ("he_normal", (), {}, (64, 32), {"mode": "fan_out", "gain": 2.0}),
    ("he_normal", (), {}, (16, 3, 3, 8), {"mode": "fan_in"}),
    ("he_uniform", (), {}, (64, 32), {}),
    ("he_uniform", (), {}, (16, 3, 8), {"mode": "fan_out", "gain": 3.0}),
    ("sparse", (0.5,), {}, (16, 10), {}),
    ("sparse", (0.25, 1.0, 0.1), {}, (8, 7), {}),
    ("sparse", (0.0,), {}, (4, 6), {}),
    ("sparse", (1.0,), {}, (4, 6), {}),
    ("orthogonal", (), {}, (6, 6), {}),
    ("orthogonal", (2.0,), {}, (8, 5), {}),
    ("orthogonal", (), {}, (3, 7), {}),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def test_names_and_signatures():
    assert sorted(nn.init.__all__) == sorted(ALL)
    for n in ALL:
        ours, theirs = inspect.signature(getattr(nn.init, n)), inspect.signature(
            getattr(mnn.init, n))
        assert list(ours.parameters) == list(theirs.parameters), n
        for p in ours.parameters.values():
            d = theirs.parameters[p.name].default
            assert (str(p.default) == str(d)) if "Dtype" in type(d).__name__ \
                else p.default == d, (n, p.name)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,args,kw,shape,call_kw", CASES, ids=IDS)
def test_same_draw_as_upstream(name, args, kw, shape, call_kw, dt):
    # seeded: the very same values (orthogonal goes through a QR: close, not equal)
    kw = {"dtype": dt, **kw}
    e, m = _run(name, args, kw, shape, call_kw)
    assert tuple(e.shape) == tuple(m.shape) == shape
    assert_same(e, m, rtol=1e-4 if name == "orthogonal" else None, msg=name)


def test_default_dtype_is_float32():
    for name, args, kw, shape, call_kw in CASES:
        if "dtype" not in kw:
            e, m = _run(name, args, kw, shape, call_kw)
            assert e.dtype == mx.float32 and str(m.dtype) == "mlx.core.float32"


# (name, factory args, initializer kwargs, shape, expected mean, std, bound)
def _fans(shape):
    rf = math.prod(shape[1:-1])
    return shape[-1] * rf, shape[0] * rf


MOMENTS = [
    ("normal", (0.3, 2.0), {}, (256, 256), 0.3, 2.0, None),
    ("uniform", (-1.0, 3.0), {}, (256, 256), 1.0, 4 / math.sqrt(12), (-1.0, 3.0)),
    ("glorot_normal", (), {}, (256, 128), 0.0, math.sqrt(2 / 384), None),
    ("glorot_uniform", (), {"gain": 2.0}, (64, 3, 3, 32), 0.0,
     2 * math.sqrt(6 / (9 * 96)) / math.sqrt(3), (-2 * math.sqrt(6 / (9 * 96)),) * 2),
    ("he_normal", (), {"mode": "fan_out"}, (128, 5, 256), 0.0, 1 / math.sqrt(640), None),
    ("he_uniform", (), {}, (128, 256), 0.0, math.sqrt(3 / 256) / math.sqrt(3),
     (-math.sqrt(3 / 256),) * 2),
]


@pytest.mark.parametrize("name,args,call_kw,shape,mean,std,bound", MOMENTS,
                         ids=[m[0] for m in MOMENTS])
def test_moments(name, args, call_kw, shape, mean, std, bound):
    # moments of a large draw: against the distribution and against upstream (new seed)
    e, m = _run(name, args, {}, shape, call_kw, seed=123)
    a, b = np_of(e).astype(np.float64), np_of(m).astype(np.float64)
    for x in (a, b):
        assert abs(x.mean() - mean) < 0.02 * std + 1e-3 * abs(mean)
        assert abs(x.std() - std) < 0.02 * std
    assert abs(a.mean() - b.mean()) < 0.02 * std
    assert abs(a.std() - b.std()) < 0.02 * std
    if bound is not None:
        lo, hi = bound[0], abs(bound[1])
        assert a.min() >= lo and a.max() <= hi
        assert a.min() < lo + 0.01 * (hi - lo) and a.max() > hi - 0.01 * (hi - lo)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("shape", [(20, 16), (5, 33)])
def test_sparse_zeros_per_row(sparsity, shape):
    # every row has exactly ceil(sparsity * columns) zeros, like upstream
    mx.random.seed(3)
    a = np_of(nn.init.sparse(sparsity, std=2.0)(mx.zeros(shape)))
    mlx.random.seed(3)
    b = np_of(mnn.init.sparse(sparsity, std=2.0)(mlx.zeros(shape)))
    want = math.ceil(sparsity * shape[1])
    assert ((a == 0).sum(axis=1) == want).all()
    assert ((b == 0).sum(axis=1) == want).all()
    assert ((a == 0) == (b == 0)).all()  # the same zeroed positions
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    if 0 < want < shape[1]:
        # the zeroed columns differ between rows
        assert len({tuple(np.flatnonzero(r == 0)) for r in a}) > 1


@pytest.mark.parametrize("gain", [1.0, 0.5])
@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10), (1, 5)])
def test_orthogonal_is_orthogonal(shape, gain):
    q = np_of(nn.init.orthogonal(gain)(mx.zeros(shape))).astype(np.float64) / gain
    rows, cols = shape
    gram = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-5)


def test_orthogonal_dtype():
    q = nn.init.orthogonal(dtype=mx.bfloat16)(mx.zeros((4, 4)))
    assert q.dtype == mx.bfloat16 and q.shape == (4, 4)


def _same_error(fe, fm):
    raises_like(lambda: mx.eval(fe()), fm, same_message=True)


BAD = [
    ("identity", (), (3, 4), {}),
    ("identity", (), (3,), {}),
    ("identity", (), (2, 2, 2), {}),
    ("glorot_normal", (), (5,), {}),
    ("glorot_uniform", (), (), {}),
    ("he_normal", (), (4,), {}),
    ("he_uniform", (), (3, 3), {"mode": "fan_avg"}),
    ("he_normal", (), (3, 3), {"mode": "in"}),
    ("sparse", (0.5,), (3, 4, 5), {}),
    ("sparse", (0.5,), (6,), {}),
    ("sparse", (0.5,), (0, 4), {}),  # no rows: upstream's index assignment refuses it
    ("orthogonal", (), (3,), {}),
    ("orthogonal", (), (2, 3, 4), {}),
]


@pytest.mark.parametrize("name,args,shape,call_kw", BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_errors(name, args, shape, call_kw):
    _same_error(lambda: getattr(nn.init, name)(*args)(mx.zeros(shape), **call_kw),
                lambda: getattr(mnn.init, name)(*args)(mlx.zeros(shape), **call_kw))


def test_input_values_unused():
    # the input only gives the shape; it is left unchanged
    x = mx.ones((4, 4))
    nn.init.sparse(0.5)(x)
    nn.init.normal()(x)
    assert (np.array(x) == 1).all()


def test_inits_in_a_layer_like_pattern():
    # the usual use: re-initialise a parameter tree with an initializer
    params = {"w": mx.zeros((8, 4)), "b": mx.zeros((8,))}
    init = nn.init.he_uniform()
    mx.random.seed(0)
    out = {k: init(v) if v.ndim > 1 else v for k, v in params.items()}
    mlx.random.seed(0)
    ref = mnn.init.he_uniform()(mlx.zeros((8, 4)))
    assert_same(out["w"], ref)
    assert (np.array(out["b"]) == 0).all()


# (name, factory args, factory kwargs, input shape, initializer kwargs): empty and 0-d
# shapes, 1-d..5-d fans, limits of the arguments, dtypes other than float32
EDGES = [
    ("constant", (0.5,), {}, (), {}),
    ("constant", (float("nan"),), {"dtype": "float16"}, (2,), {}),
    ("constant", (2.7,), {"dtype": "int32"}, (3,), {}),
    ("constant", (1,), {"dtype": "bool_"}, (3,), {}),
    ("normal", (), {}, (0, 3), {}),
    ("normal", (1.0, 0.0), {}, (), {}),
    ("normal", (0.0, 2.0), {"dtype": "float16"}, (3, 2), {}),
    ("uniform", (2.0, -1.0), {}, (5,), {}),
    ("uniform", (1.0, 1.0), {"dtype": "bfloat16"}, (5,), {}),
    ("uniform", (), {"dtype": "int32"}, (5,), {}),
    ("identity", (), {}, (0, 0), {}),
    ("identity", (), {"dtype": "int32"}, (3, 3), {}),
    ("identity", (), {}, (), {}),
    ("glorot_normal", (), {}, (1, 1), {"gain": 0.0}),
    ("glorot_normal", (), {}, (2, 3, 4, 5, 6), {"gain": -2.0}),
    ("glorot_uniform", (), {}, (0, 3), {}),
    ("glorot_uniform", (), {}, (2, 0, 4), {}),
    ("glorot_uniform", (), {}, (3, 2, 2, 5), {"gain": 3}),
    ("glorot_uniform", (), {}, (), {}),
    ("he_normal", (), {}, (2, 3, 4, 5, 6), {"mode": "fan_out"}),
    ("he_normal", (), {}, (3, 0), {}),
    ("he_uniform", (), {}, (3, 0), {"mode": "fan_out"}),
    ("he_uniform", (), {}, (7, 3, 5), {"mode": "fan_out", "gain": 2.0}),
    ("he_uniform", (), {}, (5,), {"mode": "fan_avg"}),  # the dims check comes first
    ("he_uniform", (), {}, (0,), {}),
    ("sparse", (1.5,), {}, (4, 6), {}),
    ("sparse", (-0.5,), {}, (4, 6), {}),
    ("sparse", (0.5,), {}, (4, 0), {}),
    ("sparse", (0.4, 1.0, 2.0), {"dtype": "float16"}, (9, 11), {}),
    ("orthogonal", (), {}, (0, 3), {}),
    ("orthogonal", (), {}, (1, 1), {}),
    ("orthogonal", (0.0,), {"dtype": "float16"}, (3, 5), {}),
    ("orthogonal", (), {}, (), {}),
]


@pytest.mark.parametrize("name,args,kw,shape,call_kw", EDGES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(EDGES)])
def test_edges(name, args, kw, shape, call_kw):
    def build(mod, lib):
        kws = {k: getattr(lib, v) if k == "dtype" else v for k, v in kw.items()}
        return lambda: getattr(mod.init, name)(*args, **kws)(lib.zeros(shape), **call_kw)

    try:
        mlx.eval(build(mnn, mlx)())
    except (ValueError, ZeroDivisionError):  # a zero fan divides by zero upstream
        _same_error(build(nn, mx), build(mnn, mlx))
        return
    e, m = _run(name, args, kw, shape, call_kw)
    assert_same(e, m, rtol=1e-4 if name == "orthogonal" else None, msg=name)
