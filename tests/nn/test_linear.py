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
    ((3, 4, 5), {}, [(6, 3), (4,)]),  # x2 broadcast over x1's batch
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


@pytest.mark.parametrize("shapes", [((2, 3), (2, 5)), ((2, 3), (3, 4)), ((2, 2), (2, 4)),
                                    ((2, 3), (4, 4))])
def test_bilinear_mismatched_inputs(shapes):
    e, m = build("Bilinear", 3, 4, 5)
    raises_like(lambda: mx.eval(e(*[mx.zeros(s) for s in shapes])),
                lambda: mlx.eval(m(*[mlx.zeros(s) for s in shapes])), same_message=True)


# -- the Linear node under the transforms ---------------------------------------------
# Ember's Linear is one graph node (x @ wᵀ + bias) whose weight cotangent is one more;
# upstream builds addmm(bias, x, weight.T). These check every transform through it
# against upstream, on the module's parameters as functions.

def _fns(bias):
    def f(lib, core):
        def fn(w, b, x):
            y = lib.Linear(4, 3, bias=bias)
            y.update({"weight": w, **({"bias": b} if bias else {})})
            return core.tanh(y(x))
        return fn
    return f(nn, mx), f(mnn, mlx)


def _inputs(xshape, dtype="float32"):
    w, b, x = rand((3, 4), 1), rand((3,), 2), rand(xshape, 3)
    return ([mx.array(a).astype(getattr(mx, dtype)) for a in (w, b, x)],
            [mlx.array(a).astype(getattr(mlx, dtype)) for a in (w, b, x)])


def _same(e, m, rtol=1e-5):
    for a, b in zip(e, m):
        np.testing.assert_allclose(np.array(a.astype(mx.float32)),
                                   np.array(b.astype(mlx.float32)), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape", [(5, 4), (2, 3, 4), (2, 1, 3, 4)])
def test_linear_node_grads_and_second_order(bias, xshape):
    (fe, fm), (ie, im) = _fns(bias), _inputs(xshape)
    argnums = (0, 1, 2) if bias else (0, 2)

    def loss(f, core):
        return lambda w, b, x: core.sum(f(w, b, x) ** 2)
    _same(mx.grad(loss(fe, mx), argnums)(*ie), mlx.grad(loss(fm, mlx), argnums)(*im))

    # the gradient's own gradient: through the weight-gradient node
    def gnorm(f, core):
        def h(w, b, x):
            gw = core.grad(loss(f, core), (0, 2))(w, b, x)
            return core.sum(gw[0] ** 2) + core.sum(core.sin(gw[1]))
        return h
    _same(mx.grad(gnorm(fe, mx), argnums)(*ie), mlx.grad(gnorm(fm, mlx), argnums)(*im),
          rtol=1e-4)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_node_jvp(bias):
    (fe, fm), (ie, im) = _fns(bias), _inputs((2, 3, 4))
    te = [mx.array(rand(a.shape, 9 + i)) for i, a in enumerate(ie)]
    tm = [mlx.array(np.array(t)) for t in te]
    _same(mx.jvp(fe, ie, te)[1], mlx.jvp(fm, im, tm)[1])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_axes", [(None, None, 0), (0, None, 0), (None, 0, 1), (0, 0, None),
                                     (0, None, None)])
def test_linear_node_vmap(bias, in_axes):
    (fe, fm), _ = _fns(bias), None
    shapes = [(3, 4), (3,), (2, 5, 4)]
    args = []
    for i, (sh, ax) in enumerate(zip(shapes, in_axes)):
        if ax is not None:
            sh = sh[:ax] + (6,) + sh[ax:]
        args.append(rand(sh, 20 + i))
    e = mx.vmap(fe, in_axes)(*[mx.array(a) for a in args])
    m = mlx.vmap(fm, in_axes)(*[mlx.array(a) for a in args])
    _same([e], [m])
    # and the gradient of the vmapped function (the weight-gradient node under vmap)
    ge = mx.grad(lambda *a: mx.sum(mx.vmap(fe, in_axes)(*a) ** 2), (0, 2))(
        *[mx.array(a) for a in args])
    gm = mlx.grad(lambda *a: mlx.sum(mlx.vmap(fm, in_axes)(*a) ** 2), (0, 2))(
        *[mlx.array(a) for a in args])
    _same(ge, gm, rtol=1e-4)


def test_linear_node_per_example_weight_grads():
    """vmap of grad over examples: each example's weight gradient (the weight-gradient
    node under vmap)."""
    (fe, fm), (ie, im) = _fns(True), _inputs((6, 4))

    def per(f, core):
        g = core.grad(lambda w, b, x: core.sum(f(w, b, x[None]) ** 2))
        return core.vmap(g, (None, None, 0))
    _same([per(fe, mx)(*ie)], [per(fm, mlx)(*im)], rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_linear_node_half_grads(dtype):
    (fe, fm), (ie, im) = _fns(True), _inputs((2, 3, 4), dtype)

    def loss(f, core):
        return lambda w, b, x: core.sum(f(w, b, x))
    _same(mx.grad(loss(fe, mx), (0, 1, 2))(*ie), mlx.grad(loss(fm, mlx), (0, 1, 2))(*im),
          rtol=3e-2)


def test_linear_node_compiled_train_step():
    e, m = build("Linear", 4, 3)
    sync(e, m)
    x = rand((2, 5, 4), 4)

    def step(lib, core, model):
        return core.value_and_grad(lambda p, x: core.sum(
            (model.update(p) or model)(x) ** 2))
    ve, gre = mx.compile(step(nn, mx, e))(e.trainable_parameters(), mx.array(x))
    vm, grm = step(mnn, mlx, m)(m.trainable_parameters(), mlx.array(x))
    _same([ve, gre["weight"], gre["bias"]], [vm, grm["weight"], grm["bias"]])



@pytest.mark.gpu
@pytest.mark.parametrize("cols", [(768, 3072), (3072, 768), (512, 512)])
def test_gpu_weight_grads_of_many_rows(cols):
    """Weight gradients over 2048 rows on CUDA, where the operand with fewer columns is
    transposed into a copy before the product: gᵀx against the CPU's."""
    n, k = cols
    rng = np.random.default_rng(0)
    g = rng.standard_normal((2048, n)).astype(np.float32)
    x = rng.standard_normal((2048, k)).astype(np.float32)

    def wgrad(device):
        with mx.stream(device):
            layer = nn.Linear(k, n, bias=False)
            loss = nn.value_and_grad(layer, lambda a, b: mx.sum(b * layer(a)))
            return np.array(loss(mx.array(x), mx.array(g))[1]["weight"])
    got, want = wgrad(mx.gpu), wgrad(mx.cpu)
    np.testing.assert_allclose(want, g.T.astype(np.float64) @ x, rtol=1e-3, atol=1e-2)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got / scale, want / scale, atol=5e-3)
