"""Identity, Linear and Bilinear against upstream mlx.nn.

`check_layer` (used by the other layer tests too) runs one layer in both frameworks:
same parameter names/shapes/dtypes, then after `sync` the same outputs, parameter
gradients and input gradients.
"""

import math

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten
from tests.helpers import assert_same, dtype_name, np_of
from tests.nn.parity import assert_tree_same, rand, sync

FLOATS = ["float32", "float16", "bfloat16"]


def _inputs(xs, dtype):
    """The numpy inputs as (Ember, MLX) arrays; float inputs cast to `dtype`."""
    e, m = [], []
    for x in xs:
        if x.dtype.kind == "f":
            e.append(mx.array(x).astype(getattr(mx, dtype)))
            m.append(mlx.array(x).astype(getattr(mlx, dtype)))
        else:
            e.append(mx.array(x))
            m.append(mlx.array(x))
    return e, m


def param_specs(module):
    return [(k, tuple(v.shape), dtype_name(v)) for k, v in tree_flatten(module.parameters())]


def check_layer(e_mod, m_mod, *xs, dtype="float32", rtol=None, call=None, input_grad=True,
                grad=True):
    """Same parameters (names, shapes, dtypes); after sync the same output, gradients
    w.r.t. the trainable parameters and (for float inputs) w.r.t. the inputs.

    `call(module, *inputs)` defaults to `module(*inputs)`; `dtype` casts the parameters
    and the float inputs."""
    call = call or (lambda mod, *a: mod(*a))
    if dtype != "float32":
        e_mod.set_dtype(getattr(mx, dtype))
        m_mod.set_dtype(getattr(mlx, dtype))
    assert param_specs(e_mod) == param_specs(m_mod)
    sync(e_mod, m_mod)
    ex, mxs = _inputs(xs, dtype)
    ye, ym = call(e_mod, *ex), call(m_mod, *mxs)
    assert_same(ye, ym, rtol=rtol, msg="output")
    if not grad:
        return ye
    cot = rand(ym.shape, seed=123)
    ce, cm = mx.array(cot), mlx.array(cot)

    def le(*a):
        return (call(e_mod, *a) * ce).sum()

    def lm(*a):
        return (call(m_mod, *a) * cm).sum()

    if tree_flatten(m_mod.trainable_parameters()):
        ve, ge = nn.value_and_grad(e_mod, le)(*ex)
        vm, gm = mnn.value_and_grad(m_mod, lm)(*mxs)
        assert_same(ve, vm, rtol=rtol, msg="loss")
        assert_tree_same(ge, gm, rtol, "parameter grads")
    else:  # nothing to differentiate: both refuse
        with pytest.raises(ValueError):
            mnn.value_and_grad(m_mod, lm)(*mxs)
        with pytest.raises(ValueError):
            nn.value_and_grad(e_mod, le)(*ex)
    argnums = tuple(i for i, x in enumerate(xs) if x.dtype.kind == "f")
    if input_grad and argnums:
        assert_same(list(mx.grad(le, argnums)(*ex)), list(mlx.grad(lm, argnums)(*mxs)),
                    rtol=rtol, msg="input grads")
    return ye


def build(name, *args, seed=0, **kwargs):
    """The layer `name` built in both frameworks from the same random state."""
    mx.random.seed(seed)
    e = getattr(nn, name)(*args, **kwargs)
    mlx.random.seed(seed)
    m = getattr(mnn, name)(*args, **kwargs)
    return e, m


def assert_same_init(e, m):
    """Seeded the same, both frameworks draw the same initial parameters."""
    assert param_specs(e) == param_specs(m)
    assert_tree_same(e.parameters(), m.parameters(), 1e-6, "init")


def assert_uniform(w, k):
    """Values of `w` look uniform on [-k, k]."""
    a = np_of(w).ravel()
    assert a.min() >= -k and a.max() <= k
    assert a.min() < -0.98 * k and a.max() > 0.98 * k
    assert abs(a.mean()) < 0.05 * k
    assert abs(a.std() - k / math.sqrt(3)) < 0.05 * k


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
    assert sorted(e.keys()) == sorted(m.keys())
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
                                         ((1, 9), {})])
def test_linear_init_matches(args, kwargs):
    assert_same_init(*build("Linear", *args, **kwargs))


def test_linear_init_statistics():
    e, m = build("Linear", 256, 400, seed=5)
    k = 1 / math.sqrt(256)
    for layer in (e, m):
        assert_uniform(layer.weight, k)
        assert_uniform(layer.bias, k)
    assert e.weight.dtype == mx.float32 and e.bias.dtype == mx.float32


@pytest.mark.parametrize("args,kwargs", [((4, 3), {}), ((2, 7), {"bias": False})])
def test_linear_repr(args, kwargs):
    e, m = build("Linear", *args, **kwargs)
    assert repr(e) == repr(m)


@pytest.mark.parametrize("args", [(0, 3), (-1, 3), (3, -2)])
def test_linear_bad_args(args):
    with pytest.raises(Exception) as up:
        mnn.Linear(*args)
    with pytest.raises(type(up.value)):
        mx.eval(nn.Linear(*args).parameters())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_wrong_input_dims(bias):
    e, m = build("Linear", 4, 3, bias=bias)
    with pytest.raises(Exception) as up:
        mlx.eval(m(mlx.zeros((2, 5))))
    with pytest.raises(type(up.value)):
        mx.eval(e(mx.zeros((2, 5))))


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
    e, m = build("Bilinear", *args, **kwargs)
    assert_same_init(e, m)
    assert repr(e) == repr(m)


def test_bilinear_init_statistics():
    e, m = build("Bilinear", 64, 4, 1000, seed=2)
    for layer in (e, m):
        assert_uniform(layer.weight, 1 / 8)
        assert_uniform(layer.bias, 1 / 8)


def test_bilinear_mismatched_inputs():
    e, m = build("Bilinear", 3, 4, 5)
    with pytest.raises(Exception) as up:
        mlx.eval(m(mlx.zeros((2, 3)), mlx.zeros((2, 5))))
    with pytest.raises(type(up.value)):
        mx.eval(e(mx.zeros((2, 3)), mx.zeros((2, 5))))
