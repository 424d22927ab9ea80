"""Conv1d, Conv2d and Conv3d against upstream mlx.nn."""

import math

import numpy as np
import pytest

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
)

CASES = [
    # (layer, args, kwargs, input shape)
    ("Conv1d", (3, 4, 3), {}, (2, 10, 3)),
    ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}, (2, 11, 4)),
    ("Conv1d", (2, 2, 1), {"bias": False}, (1, 5, 2)),
    ("Conv1d", (4, 4, 3), {"groups": 4, "padding": 1}, (3, 6, 4)),
    ("Conv1d", (2, 3, 5), {"padding": 2}, (1, 3, 2)),
    ("Conv2d", (3, 5, 3), {}, (2, 8, 8, 3)),
    ("Conv2d", (4, 4, (3, 2)),
     {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}, (2, 9, 7, 4)),
    ("Conv2d", (2, 3, 2), {"stride": 2, "bias": False}, (1, 7, 5, 2)),
    ("Conv2d", (6, 6, 3), {"groups": 3, "padding": 1, "dilation": 2}, (1, 6, 6, 6)),
    ("Conv3d", (2, 3, 2), {}, (1, 4, 5, 6, 2)),
    ("Conv3d", (3, 2, (1, 2, 3)), {"stride": (1, 2, 1), "padding": (0, 1, 1), "dilation": 2},
     (2, 3, 6, 7, 3)),
    ("Conv3d", (1, 2, 3), {"padding": 1, "bias": False}, (1, 3, 3, 3, 1)),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_parity(case, dtype):
    name, args, kwargs, shape = case
    e, m = build(name, *args, **kwargs)
    rtol = {"float16": 1e-2, "bfloat16": 6e-2}.get(dtype)
    check_layer(e, m, rand(shape, 3), dtype=dtype, rtol=rtol)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_init_and_repr(case):
    name, args, kwargs, _ = case
    e, _ = check_build(name, *args, **kwargs)
    assert ("bias" in e) == kwargs.get("bias", True)


@pytest.mark.parametrize("name,args,kwargs", [
    ("Conv2d", (2, 3, [3, 2]), {"stride": [1, 2], "padding": [0, 1], "dilation": [1, 1]}),
    ("Conv3d", (2, 3, [1, 2, 2]), {"stride": (1, 1, 2), "dilation": (1, 2, 1)}),
    ("Conv1d", (2, 3, 4), {"stride": 3, "dilation": 2}),
])
def test_conv_list_arguments(name, args, kwargs):
    # lists are kept as given (so they show in repr and in the dict as upstream's do)
    check_build(name, *args, **kwargs)


@pytest.mark.parametrize("name,args,kwargs,fan_in", [
    ("Conv1d", (32, 64, 5), {}, 32 * 5),
    ("Conv2d", (16, 64, 3), {}, 16 * 9),
    ("Conv2d", (16, 64, (3, 1)), {"groups": 4}, 4 * 3),
    ("Conv3d", (8, 32, 3), {}, 8 * 27),
])
def test_conv_init_statistics(name, args, kwargs, fan_in):
    e, m = build(name, *args, **kwargs, seed=7)
    for layer in (e, m):
        assert_uniform(layer.weight, 1 / math.sqrt(fan_in))
        assert layer.weight.dtype == layer.bias.dtype
        np.testing.assert_array_equal(np_of(layer.bias), np.zeros(args[1], np.float32))


@pytest.mark.parametrize("name,args,kwargs", [
    ("Conv1d", (3, 4, 3), {"groups": 2}),
    ("Conv2d", (5, 4, 3), {"groups": 2}),
    ("Conv3d", (4, 4, 3), {"groups": 2}),
    ("Conv2d", (0, 4, 3), {}),
    ("Conv1d", (3, 4, 0), {}),
    ("Conv1d", (3, 4, (3,)), {}),
    ("Conv2d", (3, 4, (3,)), {}),
    ("Conv3d", (3, 4, (3, 3)), {}),
])
def test_conv_bad_constructor_args(name, args, kwargs):
    build_raises_like(name, *args, **kwargs)


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("Conv1d", (3, 4, 3), {}, (2, 10, 4)),     # wrong channel count
    ("Conv1d", (3, 4, 3), {}, (10, 3)),        # no batch axis
    ("Conv2d", (3, 4, 3), {}, (1, 2, 2, 3)),   # input smaller than the kernel
    ("Conv2d", (3, 4, 3), {}, (1, 5, 3)),      # wrong rank
    ("Conv3d", (2, 2, 2), {}, (1, 4, 4, 2)),
])
def test_conv_bad_inputs(name, args, kwargs, shape):
    e, m = build(name, *args, **kwargs)
    call_raises_like(e, m, shape)


def test_conv_attributes_are_read_per_call():
    # changing stride after construction changes the next call, as upstream
    e, m = build("Conv2d", 2, 2, 3)
    e.stride, m.stride = (2, 2), (2, 2)
    check_layer(e, m, rand((1, 7, 7, 2)))
