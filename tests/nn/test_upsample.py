"""ember.nn Upsample and the upsample_* functions against upstream mlx.nn: outputs,
dtypes, gradients, repr and errors, over modes, scales and spatial ranks."""

import mlx.core as mlx
import mlx.nn as mnn
import mlx.nn.layers.upsample as mup
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.nn.layers import upsample as up
from tests.helpers import assert_same
from tests.nn.parity import FLOATS, pair, raises_like, rand

# (input shape, scale_factor)
SHAPES = [
    ((2, 5, 3), 2),
    ((2, 5, 3), 1.5),
    ((1, 7, 2), 0.5),
    ((1, 9, 2), 0.3),
    ((2, 4, 3, 2), 2),
    ((1, 4, 3, 2), (2, 3)),
    ((1, 4, 5, 2), (1.5, 0.75)),
    ((1, 6, 5, 1), (2.5, 1)),
    ((1, 3, 4, 2, 2), (2, 1.5, 3)),
    ((1, 4, 3, 2, 1), 1),
]
MODES = [("nearest", False), ("linear", False), ("linear", True), ("cubic", False),
         ("cubic", True)]


def _pair(shape, dt, seed=0):
    a = rand(shape, seed) * 2
    if dt == "int32":
        a = np.round(a * 5)
    return pair(a, dt)


def _rtol(mode, dt):
    if mode == "nearest":
        return 0  # a gather: exact
    return None if dt in ("float32", "int32") else 1e-2


@pytest.mark.parametrize("dt", FLOATS + ["int32"])
@pytest.mark.parametrize("mode,align", MODES)
@pytest.mark.parametrize("shape,scale", SHAPES)
def test_forward(shape, scale, mode, align, dt):
    e = nn.Upsample(scale, mode, align)
    m = mnn.Upsample(scale, mode, align)
    xe, xm = _pair(shape, dt)
    assert_same(e(xe), m(xm), rtol=_rtol(mode, dt), msg=f"{mode} {align} {shape} {scale}")


@pytest.mark.parametrize("mode,align", MODES[1:])
@pytest.mark.parametrize("shape,scale", SHAPES)
def test_gradient(shape, scale, mode, align):
    e = nn.Upsample(scale, mode, align)
    m = mnn.Upsample(scale, mode, align)
    xe, xm = _pair(shape, "float32")
    c = rand(m(xm).shape, 3)
    ce, cm = mx.array(c), mlx.array(c)
    ge = mx.grad(lambda x: (e(x) * ce).sum())(xe)
    gm = mlx.grad(lambda x: (m(x) * cm).sum())(xm)
    assert_same(ge, gm, rtol=1e-4, msg="input grad")


@pytest.mark.parametrize("shape,scale", SHAPES)
def test_nearest_gradient(shape, scale):
    xe, xm = _pair(shape, "float32")
    c = rand(mnn.Upsample(scale)(xm).shape, 3)
    ge = mx.grad(lambda x: (nn.Upsample(scale)(x) * mx.array(c)).sum())(xe)
    gm = mlx.grad(lambda x: (mnn.Upsample(scale)(x) * mlx.array(c)).sum())(xm)
    assert_same(ge, gm, msg="nearest grad")


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("shape,scale", [((1, 8, 6, 2), 0.5), ((2, 9, 7, 1), (1 / 3, 0.4)),
                                         ((1, 10, 3), 0.25), ((1, 4, 4, 2), 2),
                                         ((1, 6, 5, 2), (0.5, 1.5))])
@pytest.mark.parametrize("dt", FLOATS)
def test_antialias(shape, scale, mode, dt):
    e = nn.Upsample(scale, mode, antialias=True)
    m = mnn.Upsample(scale, mode, antialias=True)
    xe, xm = _pair(shape, dt)
    assert_same(e(xe), m(xm), rtol=_rtol(mode, dt), msg="antialias")
    if dt == "float32":
        c = rand(m(xm).shape, 3)
        ge = mx.grad(lambda x: (e(x) * mx.array(c)).sum())(xe)
        gm = mlx.grad(lambda x: (m(x) * mlx.array(c)).sum())(xm)
        assert_same(ge, gm, rtol=1e-4, msg="antialias grad")
    # the filter changes the result of a downscale
    if max(np.atleast_1d(scale)) < 1:
        plain = nn.Upsample(scale, mode)(xe)
        assert not np.allclose(np.array(plain.astype(mx.float32)),
                               np.array(e(xe).astype(mx.float32)), atol=1e-2)


@pytest.mark.parametrize("fn,args", [
    ("upsample_nearest", ()), ("upsample_linear", ()), ("upsample_linear", (True,)),
    ("upsample_linear", (False, True)), ("upsample_cubic", ()), ("upsample_cubic", (True,)),
    ("upsample_cubic", (False, True))])
@pytest.mark.parametrize("shape,scale", [((2, 5, 3), (2.0,)), ((1, 4, 5, 2), (1.5, 0.5)),
                                         ((1, 3, 3, 2), (2, 3)), ((1, 2, 3, 2, 1), (2, 1, 1.5))])
def test_functions(fn, args, shape, scale):
    xe, xm = _pair(shape, "float32")
    assert_same(getattr(up, fn)(xe, scale, *args), getattr(mup, fn)(xm, scale, *args),
                rtol=0 if fn == "upsample_nearest" else None, msg=fn)
    # one scale per spatial axis is required
    raises_like(lambda: getattr(up, fn)(xe, scale + (2.0,), *args),
                lambda: getattr(mup, fn)(xm, scale + (2.0,), *args))


@pytest.mark.parametrize("kw", [
    {"scale_factor": 2}, {"scale_factor": 1.5, "mode": "linear"},
    {"scale_factor": (2, 3), "mode": "cubic", "align_corners": True},
    {"scale_factor": [2, 0.5], "mode": "linear", "antialias": True},
    {"scale_factor": 0.5, "mode": "cubic", "antialias": True}])
def test_repr_and_no_parameters(kw):
    e, m = nn.Upsample(**kw), mnn.Upsample(**kw)
    assert repr(e) == repr(m)
    assert e.parameters() == {} and m.parameters() == {}
    assert e.scale_factor == m.scale_factor


@pytest.mark.parametrize("kw", [
    {"scale_factor": 2, "mode": "bilinear"}, {"scale_factor": 2, "mode": "nearest",
                                              "antialias": True},
    {"scale_factor": 2, "mode": "linear", "antialias": True, "align_corners": True},
    {"scale_factor": 2, "mode": "cubic", "antialias": True, "align_corners": True}])
def test_bad_arguments(kw):
    raises_like(lambda: nn.Upsample(**kw), lambda: mnn.Upsample(**kw))


@pytest.mark.parametrize("scale,shape", [(2, (4, 3)), (2, (3,)), ((2, 2), (1, 4, 3)),
                                         ((2,), (1, 4, 4, 3))])
def test_bad_inputs(scale, shape):
    xe, xm = _pair(shape, "float32")
    raises_like(lambda: nn.Upsample(scale)(xe), lambda: mnn.Upsample(scale)(xm))


def test_known_values():
    # a 2 x 2 image doubled (upstream's documented example)
    x = mx.arange(1, 5).reshape((1, 2, 2, 1))
    np.testing.assert_array_equal(np.array(nn.Upsample(2)(x)).squeeze(),
                                  [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    y = np.array(nn.Upsample(2, "linear", align_corners=True)(x)).squeeze()
    np.testing.assert_allclose(y[0], [1, 4 / 3, 5 / 3, 2], rtol=1e-6)
    np.testing.assert_allclose(y[:, 0], [1, 5 / 3, 7 / 3, 3], rtol=1e-6)


@pytest.mark.parametrize("mode,align", MODES)
def test_compiled(mode, align):
    # the cached indices and weights may first be made inside a compile trace
    up._axis_taps.cache_clear()
    e, m = nn.Upsample((1.5, 2), mode, align), mnn.Upsample((1.5, 2), mode, align)
    xe, xm = _pair((2, 5, 4, 3), "float32")
    assert_same(mx.compile(e)(xe), m(xm), rtol=_rtol(mode, "float32"), msg="compiled")
    assert_same(e(xe), m(xm), rtol=_rtol(mode, "float32"), msg="after compile")
