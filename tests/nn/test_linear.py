"""Identity, Linear and Bilinear against upstream mlx.nn."""

import math

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import assert_same
from tests.nn.parity import (
    FLOATS,
    assert_uniform,
    build,
    call_raises_like,
    check_build,
    check_layer,
    raises_like,
    rand,
    sync,
)

# -- Identity -----------------------------------------------------------------------


def test_identity():
    e, m = nn.Identity(3, foo=1), mnn.Identity(3, foo=1)
    x = mx.array([1.0, 2.0])
    assert e(x) is x
    assert e.parameters() == {} and repr(e) == repr(m) == "Identity()"


# -- Linear -------------------------------------------------------------------------

LINEAR_CASES = [
    ((4, 3), {}, [(5, 4)]),
    ((4, 3), {"bias": False}, [(5, 4)]),
    ((4, 3), {}, [(4,)]),
    ((6, 2), {}, [(2, 3, 6)]),
    ((1, 1), {}, [(7, 1)]),
    ((8, 5), {"bias": False}, [(2, 2, 3, 8)]),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("args,kwargs,shapes", LINEAR_CASES)
def test_linear_parity(args, kwargs, shapes, dtype):
    e, m = build("Linear", *args, **kwargs)
    check_layer(e, m, *[rand(s, i) for i, s in enumerate(shapes)], dtype=dtype)


def test_linear_mixed_precision_input():
    # float16 input through float32 weights promotes like upstream
    e, m = build("Linear", 4, 3)
    sync(e, m)
    x = rand((2, 4)).astype(np.float16)
    assert_same(e(mx.array(x)), m(mlx.array(x)))


def test_linear_frozen_bias_gradients():
    e, m = build("Linear", 4, 3)
    e.freeze(keys="bias")
    m.freeze(keys="bias")
    check_layer(e, m, rand((3, 4)))


@pytest.mark.parametrize("args,kwargs", [((4, 3), {}), ((5, 2), {"bias": False}),
                                         ((1, 9), {}), ((2, 7), {"bias": False})])
def test_linear_init_and_repr(args, kwargs):
    check_build("Linear", *args, **kwargs)


def test_linear_init_statistics():
    e, m = build("Linear", 256, 400, seed=5)
    k = 1 / math.sqrt(256)
    for layer in (e, m):
        assert_uniform(layer.weight, k)
        assert_uniform(layer.bias, k)
    assert e.weight.dtype == mx.float32 and e.bias.dtype == mx.float32


@pytest.mark.parametrize("args", [(0, 3), (-1, 3), (3, -2)])
def test_linear_bad_args(args):
    raises_like(lambda: mx.eval(nn.Linear(*args).parameters()), lambda: mnn.Linear(*args))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_wrong_input_dims(bias):
    e, m = build("Linear", 4, 3, bias=bias)
    call_raises_like(e, m, (2, 5))


def test_linear_to_quantized():
    e, m = build("Linear", 128, 32)
    sync(e, m)
    qe, qm = e.to_quantized(), m.to_quantized()
    assert type(qe).__name__ == type(qm).__name__ == "QuantizedLinear"
    x = rand((3, 128))
    assert_same(qe(mx.array(x)), qm(mlx.array(x)), rtol=1e-4)
    with pytest.raises(ValueError):
        m.to_quantized(quantize_input=True)
    with pytest.raises(ValueError, match="only supported for 'nvfp4' and 'mxfp8'"):
        e.to_quantized(quantize_input=True)


# -- Bilinear -----------------------------------------------------------------------

BILINEAR_CASES = [
    ((3, 4, 5), {}, [(6, 3), (6, 4)]),
    ((3, 4, 5), {"bias": False}, [(6, 3), (6, 4)]),
    ((2, 2, 1), {}, [(2, 3, 2), (2, 3, 2)]),
    ((5, 3, 2), {}, [(5,), (3,)]),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("args,kwargs,shapes", BILINEAR_CASES)
def test_bilinear_parity(args, kwargs, shapes, dtype):
    e, m = build("Bilinear", *args, **kwargs)
    rtol = 6e-2 if dtype == "bfloat16" else None
    check_layer(e, m, *[rand(s, i) for i, s in enumerate(shapes)], dtype=dtype, rtol=rtol)


@pytest.mark.parametrize("args,kwargs", [((3, 4, 5), {}), ((2, 6, 1), {"bias": False})])
def test_bilinear_init_and_repr(args, kwargs):
    check_build("Bilinear", *args, **kwargs)


def test_bilinear_init_statistics():
    e, m = build("Bilinear", 64, 4, 1000, seed=2)
    for layer in (e, m):
        assert_uniform(layer.weight, 1 / 8)
        assert_uniform(layer.bias, 1 / 8)


def test_bilinear_mismatched_inputs():
    e, m = build("Bilinear", 3, 4, 5)
    call_raises_like(e, m, (2, 3), (2, 5))
