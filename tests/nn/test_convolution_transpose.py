"""ConvTranspose1d, ConvTranspose2d and ConvTranspose3d against upstream mlx.nn."""

import math

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import np_of
from tests.nn.parity import (
    FLOATS,
    assert_uniform,
    build,
    build_raises_like,
    call_raises_like,
    case_id,
    check_build,
    check_layer,
    rand,
    sync,
)

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


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_transpose_parity(case, dtype):
    name, args, kwargs, shape = case
    e, m = build(name, *args, **kwargs)
    rtol = {"float16": 1e-2, "bfloat16": 6e-2}.get(dtype)
    # upstream's input gradient has the wrong shape when output_padding > 0 (mlx 0.32.4);
    # test_conv_transpose_input_grad_adjoint checks those against upstream's forward
    padded = np.any(np.array(kwargs.get("output_padding", 0)) > 0)
    check_layer(e, m, rand(shape, 4), dtype=dtype, rtol=rtol, input_grad=not padded)


@pytest.mark.parametrize("case", CASES, ids=case_id)
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


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_transpose_init_and_repr(case):
    name, args, kwargs, _ = case
    e, _ = check_build(name, *args, **kwargs)
    assert ("bias" in e) == kwargs.get("bias", True)


@pytest.mark.parametrize("name,args,kwargs", [
    ("ConvTranspose2d", (2, 3, [3, 2]),
     {"stride": [2, 2], "padding": [0, 1], "output_padding": [1, 0]}),
    ("ConvTranspose3d", (2, 3, [1, 2, 2]), {"dilation": (1, 2, 1), "output_padding": 0}),
    ("ConvTranspose1d", (2, 3, 4), {"stride": 3, "output_padding": 2}),
])
def test_conv_transpose_list_arguments(name, args, kwargs):
    check_build(name, *args, **kwargs)


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
    build_raises_like(name, *args, **kwargs)


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("ConvTranspose1d", (3, 4, 3), {}, (2, 10, 4)),
    ("ConvTranspose2d", (3, 4, 3), {}, (1, 5, 3)),
    ("ConvTranspose3d", (2, 2, 2), {}, (1, 4, 4, 2)),
])
def test_conv_transpose_bad_inputs(name, args, kwargs, shape):
    e, m = build(name, *args, **kwargs)
    call_raises_like(e, m, shape)
