"""searchsorted and unique beyond the op database: NaN order, argument errors, vmap rules,
grads."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same


def _raises_like(f):
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


def _same(f):
    assert_same(f(mx), f(mlx))


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_nan_and_inf(side):
    _same(lambda m: m.searchsorted(m.array([1.0, 2.0, m.inf, m.nan, m.nan]),
                                   m.array([m.nan, 1.0, m.inf, -m.inf, 2.5]), side))


def test_searchsorted_complex_and_mixed():
    _same(lambda m: m.searchsorted(m.array([1 + 1j, 1 + 2j, 2]), m.array([1 + 1.5j, 2j, 3])))
    _same(lambda m: m.searchsorted(m.array([1, 2, 3], m.uint8), m.array([-1, 2, 300])))


@pytest.mark.parametrize("call", [
    lambda m: m.searchsorted(m.array([1, 2]), m.array([1]), "middle"),
    lambda m: m.searchsorted(m.array([1, 2]), m.array([1]), None),
    lambda m: m.searchsorted(m.array([1, 2]), 1),
    lambda m: m.searchsorted(np.array([1, 2]), m.array([1])),
    lambda m: m.searchsorted(m.ones((2, 2)), m.array([1])),
    lambda m: m.unique(m.array([1, 2]), -1),
    lambda m: m.unique(m.array([1, 2]), 2.0),
    lambda m: m.unique(m.array([1, 2])),
    lambda m: m.unique(m.array([], m.int32), 2),
    lambda m: m.unique(m.array([1, 2]), 3, fill_value=m.array([1, 2])),
    lambda m: m.unique(m.array([1, 2], m.uint8), 3, fill_value=-1),
])
def test_errors(call):
    _raises_like(call)


def test_searchsorted_vmap():
    seq = [1.0, 2.0, 2.0, 4.0]
    vals = np.array([[1.5, 2.0], [0.0, 5.0]], np.float32)
    for mod in (mx, mlx):
        with pytest.raises(ValueError):
            mod.vmap(lambda s: mod.searchsorted(s, mod.array([1.5])))(mod.array([seq, seq]))
    e = mx.vmap(lambda v: mx.searchsorted(mx.array(seq), v, "right"), in_axes=1)(mx.array(vals))
    m = mlx.vmap(lambda v: mlx.searchsorted(mlx.array(seq), v, "right"), in_axes=1)(
        mlx.array(vals))
    assert_same(e, m)


def test_unique_edge_cases():
    _same(lambda m: m.unique(m.array([1.5, m.nan, m.nan, -0.0, 0.0]), 5, True, True, True))
    _same(lambda m: m.unique(m.array([], m.int32), 3, True, True, True, fill_value=4))
    _same(lambda m: m.unique(m.array(5), 2, True, True, True))
    _same(lambda m: m.unique(m.array([[3, 1], [1, 2]]), 2, True, True, True, fill_value=9.5))
    _same(lambda m: m.unique(m.array([True, False, True]), 3, True, True, True))


def test_unique_vmap():
    x = np.array([[2.0, 1, 2, 5], [1, 1, 1, 1], [3, 2, 1, 0]], np.float32)
    e = mx.vmap(lambda a: mx.unique(a, 3, True, True, True))(mx.array(x))
    m = mlx.vmap(lambda a: mlx.unique(a, 3, True, True, True))(mlx.array(x))
    assert_same(list(e), list(m))


def test_searchsorted_grads_are_zero():
    s = mx.array([1.0, 2.0, 3.0])
    g = mx.grad(lambda v: mx.searchsorted(s, v).astype(mx.float32).sum())(mx.array([1.5]))
    assert_same(g, mlx.zeros((1,)))


@pytest.mark.parametrize("kw", [{}, {"fill_value": 0.0}])
def test_unique_gradient_matches_upstream(kw):
    # the indices are computed under stop_gradient: only the gathered values carry grads
    x = np.array([3.0, 1.0, 3.0, 2.0, 5.0, 1.0], np.float32)
    w = np.arange(1.0, 6.0, dtype=np.float32)

    def f(m):
        return lambda a: (m.unique(a, size=5, **kw) * m.array(w)).sum()
    assert_same(mx.grad(f(mx))(mx.array(x)), mlx.grad(f(mlx))(mlx.array(x)))
