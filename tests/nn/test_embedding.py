"""Embedding against upstream mlx.nn."""

import math

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of
from tests.nn.parity import FLOATS, build, check_build, check_layer, raises_like, rand, sync


def _ids(shape, n, dtype=np.int32, seed=0):
    return np.random.default_rng(seed).integers(0, n, shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 0)])
def test_embedding_lookup(shape, dtype):
    e, m = build("Embedding", 10, 6)
    check_layer(e, m, _ids(shape, 10), dtype=dtype)


@pytest.mark.parametrize("idtype", [np.int8, np.uint8, np.int16, np.uint32, np.int64])
def test_embedding_index_dtypes(idtype):
    e, m = build("Embedding", 7, 3)
    check_layer(e, m, _ids((4, 2), 7, idtype))


def test_embedding_repeated_ids_accumulate_grads():
    e, m = build("Embedding", 4, 3)
    ids = np.array([[0, 1, 1], [1, 3, 0]], np.int32)
    check_layer(e, m, ids)


def test_embedding_negative_ids():
    # negative indices count from the end, as in array indexing
    e, m = build("Embedding", 5, 2)
    check_layer(e, m, np.array([-1, -5, 2], np.int32))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(6,), (3, 6), (2, 2, 6)])
def test_embedding_as_linear(shape, dtype):
    e, m = build("Embedding", 9, 6)
    rtol = 6e-2 if dtype == "bfloat16" else None
    check_layer(e, m, rand(shape), dtype=dtype, rtol=rtol,
                call=lambda mod, x: mod.as_linear(x))


def test_embedding_tied_weights_gradient():
    # lookup and projection through the same table: both paths add to its gradient
    e, m = build("Embedding", 8, 4)

    def tied(mod, ids):
        return mod.as_linear(mod(ids))
    check_layer(e, m, _ids((3,), 8), call=tied)


@pytest.mark.parametrize("args", [(10, 6), (1, 1), (100, 3), (3, 1)])
def test_embedding_init_and_repr(args):
    check_build("Embedding", *args)


def test_embedding_init_statistics():
    e, m = build("Embedding", 500, 64, seed=4)
    for layer in (e, m):
        a = np_of(layer.weight)
        assert a.shape == (500, 64) and a.dtype == np.float32
        assert abs(a.mean()) < 0.01
        assert abs(a.std() - 1 / math.sqrt(64)) < 0.005
    assert abs(np_of(e.weight).std() - np_of(m.weight).std()) < 0.005


@pytest.mark.parametrize("args", [(5, 0), (-2, 3)])
def test_embedding_bad_args(args):
    raises_like(lambda: mx.eval(build("Embedding", *args)[0].parameters()),
                lambda: mlx.eval(mnn.Embedding(*args).parameters()))


def test_embedding_float_ids_rejected():
    e, m = build("Embedding", 5, 2)
    raises_like(lambda: mx.eval(e(mx.array([0.0, 1.0]))),
                lambda: mlx.eval(m(mlx.array([0.0, 1.0]))))


def test_embedding_to_quantized():
    e, m = build("Embedding", 16, 64)
    sync(e, m)
    qe, qm = e.to_quantized(bits=8), m.to_quantized(bits=8)
    assert type(qe).__name__ == type(qm).__name__ == "QuantizedEmbedding"
    ids = _ids((5,), 16)
    assert_same(qe(mx.array(ids)), qm(mlx.array(ids)), rtol=1e-4)
    with pytest.raises(ValueError, match="Quantized input is not supported"):
        e.to_quantized(quantize_input=True)
