"""RNN, GRU and LSTM against upstream mlx.nn."""

import re

import mlx.core as mlx
import mlx.nn as mnn
import pytest

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten
from tests.nn.parity import E, M, assert_tree_same, both, rand, sync

DTYPES = ["float32", "float16", "bfloat16"]
TOL = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
LAYERS = ["RNN", "GRU", "LSTM"]


def no_address(s):
    return re.sub(r" at 0x[0-9a-f]+", "", s)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("bias", [True, False])
def test_init_matches_upstream(name, bias):
    # same seed: the same draws in the same order, so bit-identical parameters
    e, m = both(lambda nn: getattr(nn, name)(5, 7, bias=bias), s=3)
    assert_tree_same(e.parameters(), m.parameters(), 0)
    assert sorted(k for k, _ in tree_flatten(e.trainable_parameters())) == \
        sorted(k for k, _ in tree_flatten(m.trainable_parameters()))
    assert no_address(repr(e)) == no_address(repr(m))
    assert e.hidden_size == m.hidden_size == 7


@pytest.mark.parametrize("name", LAYERS)
def test_init_statistics(name):
    # uniform in [-1/sqrt(H), 1/sqrt(H)]
    e = getattr(nn, name)(64, 100)
    for _, p in tree_flatten(e.parameters()):
        v = p.tolist()
        flat = [a for row in v for a in row] if isinstance(v[0], list) else v
        assert max(abs(a) for a in flat) <= 0.1
        assert abs(sum(flat) / len(flat)) < 0.01
        var = sum(a * a for a in flat) / len(flat)
        assert abs(var - 0.01 / 3) < 0.001


def run(layer, name, x, h, c):
    if name == "LSTM":
        return layer(x, h, c)
    return layer(x, h)


CASES = [
    # x shape, hidden given, cell given (LSTM only)
    ((2, 6, 5), False, False), ((2, 6, 5), True, False), ((2, 6, 5), True, True),
    ((2, 6, 5), False, True), ((6, 5), False, False), ((6, 5), True, True),
    ((3, 2, 1, 5), True, False), ((2, 1, 5), True, True),
]


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape,with_h,with_c", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_grads(name, bias, shape, with_h, with_c, dtype):
    e, m = both(lambda nn: getattr(nn, name)(5, 4, bias=bias), s=1)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    sync(e, m)
    state_shape = shape[:-2] + (4,)
    x = rand(shape, 2)
    h = rand(state_shape, 3) if with_h else None
    c = rand(state_shape, 4) if with_c and name == "LSTM" else None
    tol = TOL[dtype]
    ye = run(e, name, E(x, dtype), E(h, dtype), E(c, dtype))
    ym = run(m, name, M(x, dtype), M(h, dtype), M(c, dtype))
    assert_tree_same(ye, ym, rtol=tol, msg="forward")

    def loss(model, x, h, c):
        out = run(model, name, x, h, c)
        out = out if name != "LSTM" else out[0] * 2 + out[1]
        return (out.astype(mx.float32 if isinstance(out, mx.array) else mlx.float32)
                ** 2).sum()

    ve, ge = nn.value_and_grad(e, loss)(e, E(x, dtype), E(h, dtype), E(c, dtype))
    vm, gm = mnn.value_and_grad(m, loss)(m, M(x, dtype), M(h, dtype), M(c, dtype))
    assert_tree_same(ve, vm, rtol=tol, msg="loss")
    assert_tree_same(ge, gm, rtol=tol * 5, msg="grad params")
    # gradients with respect to the input and the initial states
    argnums = [0] + ([1] if with_h else []) + ([2] if c is not None else [])
    gxe = mx.grad(lambda *a: loss(e, *a), argnums)(E(x, dtype), E(h, dtype), E(c, dtype))
    gxm = mlx.grad(lambda *a: loss(m, *a), argnums)(M(x, dtype), M(h, dtype), M(c, dtype))
    assert_tree_same(list(gxe), list(gxm), rtol=tol * 5, msg="grad inputs")


def test_rnn_custom_nonlinearity_and_repr():
    def half(v):
        return v * 0.5

    e, m = both(lambda nn: nn.RNN(3, 4, nonlinearity=half), s=5)
    assert no_address(repr(e)) == no_address(repr(m))
    assert ".half at" in repr(e)
    e, m = both(lambda nn: nn.RNN(3, 4, nonlinearity=nn.relu), s=5)
    x = rand((2, 5, 3), 0)
    assert_tree_same(e(E(x)), m(M(x)), rtol=1e-5)
    e, m = both(lambda nn: nn.RNN(3, 4, nonlinearity=lambda v: v * 0.5), s=5)
    assert_tree_same(e(E(x), E(rand((2, 4), 1))), m(M(x), M(rand((2, 4), 1))), rtol=1e-5)


@pytest.mark.parametrize("bad", ["tanh", 3])
def test_rnn_bad_nonlinearity(bad):
    with pytest.raises(ValueError) as m_err:
        mnn.RNN(3, 4, nonlinearity=bad)
    with pytest.raises(ValueError) as e_err:
        nn.RNN(3, 4, nonlinearity=bad)
    assert str(e_err.value) == str(m_err.value)


@pytest.mark.parametrize("name", LAYERS)
def test_bad_input_size_raises_like_upstream(name):
    e, m = both(lambda nn: getattr(nn, name)(5, 4))
    x = rand((2, 3, 6), 0)
    with pytest.raises(ValueError):
        mlx.eval(run(m, name, M(x), None, None))
    with pytest.raises(ValueError):
        mx.eval(run(e, name, E(x), None, None))


@pytest.mark.parametrize("name", LAYERS)
def test_empty_sequence_raises_like_upstream(name):
    e, m = both(lambda nn: getattr(nn, name)(5, 4))
    x = rand((2, 0, 5), 0)
    with pytest.raises(ValueError):
        mlx.eval(run(m, name, M(x), None, None))
    with pytest.raises(ValueError):
        mx.eval(run(e, name, E(x), None, None))


@pytest.mark.parametrize("name", LAYERS)
def test_mixed_dtypes_promote_like_upstream(name):
    # float16 input into float32 parameters
    e, m = both(lambda nn: getattr(nn, name)(5, 4), s=8)
    x = rand((2, 3, 5), 0)
    assert_tree_same(run(e, name, E(x, "float16"), None, None),
                     run(m, name, M(x, "float16"), None, None), rtol=1e-3)
