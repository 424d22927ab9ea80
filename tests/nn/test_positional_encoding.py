"""ember.nn positional encodings (RoPE, SinusoidalPositionalEncoding, ALiBi) against
upstream mlx.nn: outputs, dtypes, gradients, constants, repr and errors."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import assert_same
from tests.nn.parity import FLOATS, pair, raises_like, rand


def _pair(shape, dt, seed=0, scale=1.0):
    return pair(rand(shape, seed) * scale, dt)


def _grad_same(fe, fm, xe, xm, rtol=None, msg=""):
    c = rand(fm(xm).shape, 11)
    ce, cm = mx.array(c), mlx.array(c)
    ge = mx.grad(lambda x: (fe(x) * ce).sum())(xe)
    gm = mlx.grad(lambda x: (fm(x) * cm).sum())(xm)
    assert_same(ge, gm, rtol=rtol, msg=msg)


ROPE = [((8,), {}), ((8,), {"traditional": True}), ((4,), {}), ((6,), {"traditional": True}),
        ((8,), {"base": 500.0, "scale": 0.5}), ((16,), {"base": 1e6, "traditional": True})]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape,args,kw", [
    (shape, args, kw) for shape in [(2, 7, 8), (2, 3, 6, 16), (1, 2, 1, 3, 8)]
    for args, kw in ROPE if args[0] <= shape[-1]])
def test_rope(shape, args, kw, dt):
    e, m = nn.RoPE(*args, **kw), mnn.RoPE(*args, **kw)
    xe, xm = _pair(shape, dt)
    rtol = None if dt == "float32" else 2e-2
    assert_same(e(xe), m(xm), rtol=rtol, msg="offset 0")
    assert_same(e(xe, offset=5), m(xm, offset=5), rtol=rtol, msg="offset 5")
    assert_same(e(xe, 3), m(xm, 3), rtol=rtol, msg="positional offset")
    assert_same(e(xe, offset=mx.array(4)), m(xm, offset=mlx.array(4)), rtol=rtol,
                msg="array offset")
    if dt == "float32":
        _grad_same(lambda x: e(x, offset=2), lambda x: m(x, offset=2), xe, xm, rtol=1e-4,
                   msg="rope grad")


@pytest.mark.parametrize("args,kw", ROPE)
def test_rope_repr_and_parameters(args, kw):
    e, m = nn.RoPE(*args, **kw), mnn.RoPE(*args, **kw)
    assert repr(e) == repr(m)
    assert e.parameters() == {} and m.parameters() == {}
    assert (e.dims, e.traditional, e.base, e.scale) == (m.dims, m.traditional, m.base,
                                                        m.scale)


@pytest.mark.parametrize("shape", [(5, 8), (8,)])
def test_rope_bad_input(shape):
    xe, xm = _pair(shape, "float32")
    raises_like(lambda: nn.RoPE(8)(xe), lambda: mnn.RoPE(8)(xm))


def test_rope_leaves_extra_features():
    x = mx.array(rand((2, 5, 12)))
    y = nn.RoPE(8)(x, offset=1)
    np.testing.assert_array_equal(np.array(y)[..., 8:], np.array(x)[..., 8:])
    assert not np.allclose(np.array(y)[..., :8], np.array(x)[..., :8])


SINUS = [((4,), {}), ((2,), {}), ((16,), {}), ((8,), {"min_freq": 0.01, "max_freq": 2.0}),
         ((8,), {"scale": 1.0}), ((8,), {"scale": 0.3, "cos_first": True}),
         ((6,), {"full_turns": True}), ((10,), {"cos_first": True, "full_turns": True})]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("args,kw", SINUS)
@pytest.mark.parametrize("shape", [(7,), (2, 5), ()])
def test_sinusoidal(shape, args, kw, dt):
    e = nn.SinusoidalPositionalEncoding(*args, **kw)
    m = mnn.SinusoidalPositionalEncoding(*args, **kw)
    np.testing.assert_allclose(np.array(e._sigmas), np.array(m._sigmas), rtol=1e-6)
    xe, xm = _pair(shape, dt, scale=10.0)
    # half inputs meet float32 frequencies, so the output is float32 as upstream
    assert_same(e(xe), m(xm), rtol=None if dt == "float32" else 1e-3)
    if dt == "float32":
        _grad_same(e, m, xe, xm, rtol=1e-4, msg="sinusoidal grad")


@pytest.mark.parametrize("args,kw", SINUS)
def test_sinusoidal_repr_and_parameters(args, kw):
    e = nn.SinusoidalPositionalEncoding(*args, **kw)
    m = mnn.SinusoidalPositionalEncoding(*args, **kw)
    assert repr(e) == repr(m)
    # the frequencies are private: not a parameter
    assert e.parameters() == {} and m.parameters() == {}
    assert (e.scale, e.cos_first) == (m.scale, m.cos_first)


@pytest.mark.parametrize("dims", [0, -2, 3, 7])
def test_sinusoidal_bad_dims(dims):
    raises_like(lambda: nn.SinusoidalPositionalEncoding(dims),
                lambda: mnn.SinusoidalPositionalEncoding(dims))


@pytest.mark.parametrize("heads", [1, 2, 3, 6, 8, 12, 16])
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_alibi_slopes(heads, dt):
    e = nn.ALiBi.create_alibi_slope(heads, getattr(mx, dt))
    m = mnn.ALiBi.create_alibi_slope(heads, getattr(mlx, dt))
    assert_same(e, m, rtol=0)
    assert_same(nn.ALiBi.create_alibi_slope(num_heads=heads),
                mnn.ALiBi.create_alibi_slope(num_heads=heads), rtol=0)


@pytest.mark.parametrize("q,k,heads,offset", [(4, 4, 2, 0), (3, 7, 6, 0), (9, 9, 3, 4),
                                              (1, 5, 8, 4)])
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_alibi_matrix(q, k, heads, offset, dt):
    e = nn.ALiBi.create_alibi_matrix(q, k, heads, offset, getattr(mx, dt))
    m = mnn.ALiBi.create_alibi_matrix(q, k, heads, offset, getattr(mlx, dt))
    assert_same(e, m, rtol=0)
    assert_same(nn.ALiBi.create_alibi_matrix(q_sequence_length=q, k_sequence_length=k,
                                             num_heads=heads),
                mnn.ALiBi.create_alibi_matrix(q_sequence_length=q, k_sequence_length=k,
                                              num_heads=heads), rtol=0)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape,offset,mask", [((2, 4, 5, 5), 0, False),
                                               ((1, 3, 4, 6), 2, False),
                                               ((2, 6, 5, 5), 0, True),
                                               ((1, 8, 1, 7), 6, True)])
def test_alibi_layer(shape, offset, mask, dt):
    e, m = nn.ALiBi(), mnn.ALiBi()
    assert repr(e) == repr(m) and e.parameters() == {} == m.parameters()
    xe, xm = _pair(shape, dt)
    kw_e, kw_m = {}, {}
    if mask:
        mk = np.triu(np.full(shape[-2:], -1e4, np.float32), k=1 + shape[-1] - shape[-2])
        kw_e["mask"] = mx.array(mk).astype(getattr(mx, dt))
        kw_m["mask"] = mlx.array(mk).astype(getattr(mlx, dt))
    rtol = None if dt == "float32" else 1e-2
    assert_same(e(xe, offset, **kw_e), m(xm, offset, **kw_m), rtol=rtol)
    if dt == "float32":
        _grad_same(lambda x: e(x, offset=offset, **kw_e), lambda x: m(x, offset=offset, **kw_m),
                   xe, xm, msg="alibi grad")
