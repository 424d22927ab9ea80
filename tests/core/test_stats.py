"""median, minmax, count_nonzero, diff and the cumulative_* names beyond the op database."""

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


def test_aliases():
    assert mx.cumulative_sum is mx.cumsum and mx.cumulative_prod is mx.cumprod


@pytest.mark.parametrize("call", [
    lambda m: m.median(m.array([3, m.nan, 1]), -1),
    lambda m: m.median(m.array([m.inf, m.inf, 1, 2])),
    lambda m: m.median(m.array([-m.inf, m.inf])),
    lambda m: m.median(m.array([2 ** 30, 2 ** 30 + 1, 3, 2 ** 31 - 1])),
    lambda m: m.median(m.array([250, 255], m.uint8)),
    lambda m: m.median(m.array(3)),
    lambda m: m.count_nonzero(m.array([0.0, -0.0, m.nan, 1])),
    lambda m: m.count_nonzero(m.array([0j, 1j, 1])),
    lambda m: m.count_nonzero(m.array([[1, 0], [2, 3]]), 1),
    lambda m: m.diff(m.array([3, 1], m.uint8)),
    lambda m: m.diff(m.array([True, False, False]), 2),
    lambda m: m.minmax(m.array([1.0, m.nan])),
    lambda m: m.minmax(m.array([1j, 2])),
])
def test_values(call):
    _same(call)


@pytest.mark.parametrize("call", [
    lambda m: m.median(m.ones((2, 3)), 2),
    lambda m: m.median(m.array(3), 0),
    lambda m: m.median(m.ones((2, 3)), (1, 1)),
    lambda m: m.median(m.zeros((0, 3)), 0),
    lambda m: m.count_nonzero(m.ones((2, 3)), axis=3),
    lambda m: m.diff(m.array(1)),
    lambda m: m.diff(m.ones(3), -1),
    lambda m: m.diff(m.ones(3), 1.0),
    lambda m: m.diff(m.ones(3), axis=1),
    lambda m: m.minmax(m.zeros((0, 3))),
])
def test_errors(call):
    _raises_like(call)


def test_median_grad_ties():
    x = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 1.0], [4.0, 4.0, 0.0]], np.float32)
    e = mx.grad(lambda a: mx.median(a, 1).sum())(mx.array(x))
    m = mlx.grad(lambda a: mlx.median(a, 1).sum())(mlx.array(x))
    assert_same(e, m)
