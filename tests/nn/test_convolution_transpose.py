"""ConvTranspose1d, ConvTranspose2d and ConvTranspose3d against upstream mlx.nn."""

import math

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import np_of
from tests.nn.parity import rand, sync
from tests.nn.test_linear import FLOATS, assert_same_init, assert_uniform, build, check_layer

CASES = [
    # (layer, args, kwargs, input shape)
    ("ConvTranspose1d", (3, 4, 3), {}, (2, 6, 3)),
    ("ConvTranspose1d", (2, 3, 4), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 5, 2)),
    ("ConvTranspose1d", (2, 2, 3), {"dilation": 2, "bias": False}, (1, 4, 2)),
    ("ConvTranspose1d", (4, 1, 1), {"stride": 3, "output_padding": 2}, (1, 3, 4)),
    ("ConvTranspose2d", (3, 5, 3), {}, (2, 4, 4, 3)),
    ("ConvTranspose2d", (2, 3, (3, 2)),
     {"stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0)}, (2, 3, 5, 2)),
    ("ConvTranspose2d", (2, 2, 2), {"stride": 2, "dilation": (1, 2), "bias": False},
     (1, 3, 3, 2)),
    ("ConvTranspose2d", (3, 2, 3), {"stride": 3, "padding": 1, "output_padding": 2},
     (1, 2, 3, 3)),
    ("ConvTranspose3d", (2, 3, 2), {}, (1, 3, 2, 4, 2)),
    ("ConvTranspose3d", (3, 2, (1, 2, 3)),
     {"stride": (1, 2, 2), "padding": (0, 1, 1), "output_padding": (0, 1, 0)},
     (2, 2, 3, 3, 3)),
    ("ConvTranspose3d", (1, 2, 2), {"dilation": 2, "bias": False}, (1, 2, 2, 2, 1)),
    # output_padding >= stride is accepted by upstream too
    ("ConvTranspose2d", (2, 2, 3), {"stride": 2, "output_padding": 2}, (1, 3, 3, 2)),
    ("ConvTranspose1d", (2, 2, 3), {"output_padding": 1}, (1, 3, 2)),
]


def _id(case):
    name, args, kwargs, shape = case
    return f"{name}-{args}-{sorted(kwargs.items())}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_conv_transpose_parity(case, dtype):
    name, args, kwargs, shape = case
    e, m = build(name, *args, **kwargs)
    rtol = {"float16": 1e-2, "bfloat16": 6e-2}.get(dtype)
    # upstream's input gradient has the wrong shape when output_padding > 0 (mlx 0.32.4);
    # test_conv_transpose_input_grad_adjoint checks those against upstream's forward
    padded = np.any(np.array(kwargs.get("output_padding", 0)) > 0)
    check_layer(e, m, rand(shape, 4), dtype=dtype, rtol=rtol, input_grad=not padded)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_conv_transpose_input_grad_adjoint(case):
    # the layer is affine in x: <d/dx sum(cot * layer(x)), v> = <cot, layer(v) - layer(0)>,
    # with the right side from upstream's forward pass
    name, args, kwargs, shape = case
    e, m = build(name, *args, **kwargs)
    sync(e, m)
    x, v = rand(shape, 1), rand(shape, 2)
    y = m(mlx.array(x))
    cot = rand(y.shape, 3)
    gx = mx.grad(lambda a: (e(a) * mx.array(cot)).sum())(mx.array(x))
    assert gx.shape == x.shape
    lin = np.array(m(mlx.array(v))) - np.array(m(mlx.zeros(shape)))
    np.testing.assert_allclose((np_of(gx) * v).sum(), (cot * lin).sum(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_conv_transpose_init_and_repr(case):
    name, args, kwargs, _ = case
    e, m = build(name, *args, **kwargs)
    assert_same_init(e, m)
    assert repr(e) == repr(m)
    assert ("bias" in e) == ("bias" in m) == kwargs.get("bias", True)


@pytest.mark.parametrize("name,args,kwargs", [
    ("ConvTranspose2d", (2, 3, [3, 2]),
     {"stride": [2, 2], "padding": [0, 1], "output_padding": [1, 0]}),
    ("ConvTranspose3d", (2, 3, [1, 2, 2]), {"dilation": (1, 2, 1), "output_padding": 0}),
    ("ConvTranspose1d", (2, 3, 4), {"stride": 3, "output_padding": 2}),
])
def test_conv_transpose_list_arguments(name, args, kwargs):
    e, m = build(name, *args, **kwargs)
    assert repr(e) == repr(m)
    assert sorted(e.keys()) == sorted(m.keys())
    assert_same_init(e, m)


@pytest.mark.parametrize("name,args,fan_in", [
    ("ConvTranspose1d", (32, 64, 5), 32 * 5),
    ("ConvTranspose2d", (16, 64, 3), 16 * 9),
    ("ConvTranspose3d", (8, 32, (3, 1, 2)), 8 * 6),
])
def test_conv_transpose_init_statistics(name, args, fan_in):
    e, m = build(name, *args, seed=9)
    for layer in (e, m):
        assert_uniform(layer.weight, 1 / math.sqrt(fan_in))
        np.testing.assert_array_equal(np_of(layer.bias), np.zeros(args[1], np.float32))


@pytest.mark.parametrize("name,args,kwargs", [
    ("ConvTranspose1d", (0, 4, 3), {}),
    ("ConvTranspose2d", (3, 4, 3), {"groups": 3}),
    ("ConvTranspose3d", (3, 4, (2, 2)), {}),
    ("ConvTranspose2d", (3, 4, -1), {}),
])
def test_conv_transpose_bad_constructor_args(name, args, kwargs):
    with pytest.raises(Exception) as up:
        getattr(mnn, name)(*args, **kwargs)
    with pytest.raises(type(up.value)):
        getattr(nn, name)(*args, **kwargs)


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("ConvTranspose1d", (3, 4, 3), {}, (2, 10, 4)),
    ("ConvTranspose2d", (3, 4, 3), {}, (1, 5, 3)),
    ("ConvTranspose3d", (2, 2, 2), {}, (1, 4, 4, 2)),
])
def test_conv_transpose_bad_inputs(name, args, kwargs, shape):
    e, m = build(name, *args, **kwargs)
    with pytest.raises(Exception) as up:
        mlx.eval(m(mlx.zeros(shape)))
    with pytest.raises(type(up.value)):
        mx.eval(e(mx.zeros(shape)))
