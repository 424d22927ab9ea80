"""MaxPool1d/2d/3d and AvgPool1d/2d/3d against upstream mlx.nn."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import assert_same
from tests.nn.parity import FLOATS, call_raises_like, check_layer, raises_like, rand

CASES = [
    # (rank, kwargs, input shape)
    (1, {"kernel_size": 2}, (2, 8, 3)),
    (1, {"kernel_size": 3, "stride": 1}, (2, 7, 2)),
    (1, {"kernel_size": 3, "stride": 2, "padding": 1}, (1, 9, 2)),
    (1, {"kernel_size": 4}, (1, 10, 2)),                       # ragged end dropped
    (1, {"kernel_size": 2, "stride": 3}, (1, 10, 2)),          # gaps between windows
    (1, {"kernel_size": 2, "padding": 3}, (1, 5, 2)),          # windows of padding only
    (1, {"kernel_size": 6, "stride": 1}, (1, 5, 2)),           # no window fits
    (1, {"kernel_size": (3,), "stride": (2,), "padding": (1,)}, (2, 6, 1)),
    (2, {"kernel_size": 2}, (2, 8, 8, 3)),
    (2, {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0)}, (2, 7, 6, 2)),
    (2, {"kernel_size": 3, "stride": 2, "padding": 1}, (1, 9, 9, 2)),
    (2, {"kernel_size": 2}, (1, 7, 5, 2)),
    (2, {"kernel_size": [1, 3], "stride": [1, 1]}, (2, 3, 5, 1)),
    (2, {"kernel_size": 2, "stride": (1, 2)}, (1, 4, 6, 3)),
    (3, {"kernel_size": 2}, (1, 4, 6, 4, 2)),
    (3, {"kernel_size": 3, "stride": 2, "padding": 1}, (1, 5, 5, 5, 2)),
    (3, {"kernel_size": (1, 2, 3), "stride": (1, 2, 1)}, (2, 3, 4, 5, 1)),
]
KINDS = ["Max", "Avg"]


def _build(kind, rank, kwargs):
    name = f"{kind}Pool{rank}d"
    return getattr(nn, name)(**kwargs), getattr(mnn, name)(**kwargs)


def _id(case):
    rank, kwargs, shape = case
    return f"{rank}d-{sorted(kwargs.items())}-{shape}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("kind", KINDS)
def test_pool_parity(kind, case, dtype):
    rank, kwargs, shape = case
    e, m = _build(kind, rank, kwargs)
    check_layer(e, m, rand(shape, 5), dtype=dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_pool_ties_gradient(kind):
    # equal values inside a window: the max gradient is shared as upstream shares it
    x = np.array([[[1.0], [1.0], [2.0], [2.0], [0.0], [3.0]]], np.float32)
    e, m = _build(kind, 1, {"kernel_size": 3, "stride": 1, "padding": 1})
    check_layer(e, m, x)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int16])
@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1},
                                    {"kernel_size": 2, "padding": 1}])
@pytest.mark.parametrize("kind", KINDS)
def test_pool_integer_inputs(kind, kwargs, dtype):
    e, m = _build(kind, 1, kwargs)
    x = np.random.default_rng(0).integers(0, 100, (2, 7, 3)).astype(dtype)
    assert_same(e(mx.array(x)), m(mlx.array(x)))


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2}])
@pytest.mark.parametrize("kind", KINDS)
def test_pool_non_contiguous_input(kind, kwargs):
    # a transposed view pools like its row-major copy
    e, m = _build(kind, 2, kwargs)
    x = rand((2, 6, 7, 3))
    xe, xm = mx.array(x).transpose(0, 2, 1, 3), mlx.array(x).transpose(0, 2, 1, 3)
    assert_same(e(xe), m(xm))
    assert_same(e(xe[:, ::2]), m(xm[:, ::2]))
    ge = mx.grad(lambda a: (e(a.transpose(0, 2, 1, 3)) ** 2).sum())(mx.array(x))
    gm = mlx.grad(lambda a: (m(a.transpose(0, 2, 1, 3)) ** 2).sum())(mlx.array(x))
    assert_same(ge, gm)


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("kind", KINDS)
def test_pool_repr_and_no_parameters(kind, case):
    rank, kwargs, _ = case
    e, m = _build(kind, rank, kwargs)
    assert repr(e) == repr(m)
    assert e.parameters() == {} == m.parameters()
    assert e.children() == m.children()


BAD_ARGS = [
    (1, {"kernel_size": 0}),
    (1, {"kernel_size": 2, "stride": -1}),
    (1, {"kernel_size": 2, "padding": -1}),
    (1, {"kernel_size": 2.0}),
    (1, {"kernel_size": (2, 2)}),
    (1, {"kernel_size": 2, "stride": "a"}),
    (2, {"kernel_size": (2,)}),
    (2, {"kernel_size": (2, 0)}),
    (2, {"kernel_size": 2, "stride": (1, 0)}),
    (2, {"kernel_size": 2, "padding": (1, -2)}),
    (2, {"kernel_size": 2, "padding": None}),
    (3, {"kernel_size": (1, 2)}),
    (3, {"kernel_size": 2, "stride": [1, 1, 1, 1]}),
    (3, {"kernel_size": -1, "stride": 0}),
]


@pytest.mark.parametrize("rank,kwargs", BAD_ARGS)
@pytest.mark.parametrize("kind", KINDS)
def test_pool_bad_args(kind, rank, kwargs):
    name = f"{kind}Pool{rank}d"
    raises_like(lambda: getattr(nn, name)(**kwargs), lambda: getattr(mnn, name)(**kwargs),
                same_message=True)


@pytest.mark.parametrize("rank,kwargs,shape", [
    (2, {"kernel_size": 2}, (2, 3)),                      # fewer than 3 dims
    (2, {"kernel_size": 2}, (2, 4, 3)),                   # one spatial axis for 2
    (1, {"kernel_size": 2}, (1, 4, 4, 3)),                # two spatial axes for 1
    (1, {"kernel_size": 8, "stride": 1}, (1, 5, 2)),      # window far beyond the input
    (3, {"kernel_size": 2}, (4, 4, 4, 2)),
])
@pytest.mark.parametrize("kind", KINDS)
def test_pool_bad_inputs(kind, rank, kwargs, shape):
    e, m = _build(kind, rank, kwargs)
    call_raises_like(e, m, shape)
