"""ember.nn dropout layers against upstream mlx.nn: seeded masks bit for bit, scaling,
channel-wise masks, train/eval, gradients, repr and errors."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import assert_same, np_of
from tests.nn.parity import FLOATS, assert_tree_same, pair, raises_like, rand, sync

# (class, input shapes it accepts, input shapes it rejects)
LAYERS = [
    ("Dropout", [(7,), (4, 9), (2, 3, 4, 5), (3, 0)], []),
    ("Dropout2d", [(3, 4, 6), (2, 3, 4, 6)], [(4, 6), (1, 2, 3, 4, 6)]),
    ("Dropout3d", [(2, 3, 4, 6), (2, 2, 3, 4, 6)], [(3, 4, 6), (1, 1, 2, 3, 4, 6)]),
]


def _pair(shape, dt, seed=0):
    return pair(rand(shape, seed) + 2, dt)  # no zeros, so a dropped element is visible


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.75, 0.9])
@pytest.mark.parametrize("name", [n for n, _, _ in LAYERS])
def test_repr_and_no_parameters(name, p):
    e, m = getattr(nn, name)(p), getattr(mnn, name)(p)
    assert repr(e) == repr(m)
    assert e.parameters() == {} and m.parameters() == {}
    assert repr(getattr(nn, name)()) == repr(getattr(mnn, name)())


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("name", [n for n, _, _ in LAYERS])
def test_bad_probability(name, p):
    # same message too: upstream's carries no "[Dropout]" prefix
    raises_like(lambda: getattr(nn, name)(p), lambda: getattr(mnn, name)(p),
                same_message=True)


@pytest.mark.parametrize("name,good,bad", LAYERS)
def test_bad_input_rank(name, good, bad):
    for shape in bad:
        for train in (True, False):
            e, m = getattr(nn, name)(0.5), getattr(mnn, name)(0.5)
            e.train(train)
            m.train(train)
            xe, xm = _pair(shape, "float32")
            raises_like(lambda: e(xe), lambda: m(xm), same_message=True)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("name,good,bad", LAYERS)
def test_seeded_masks_match_upstream(name, good, bad, p, dt):
    e, m = getattr(nn, name)(p), getattr(mnn, name)(p)
    for i, shape in enumerate(good):
        xe, xm = _pair(shape, dt, i)
        mx.random.seed(42 + i)
        mlx.random.seed(42 + i)
        ye, ym = e(xe), m(xm)
        # the same kept elements exactly, scaled the same way
        np.testing.assert_array_equal(np_of(ye) == 0, np_of(ym) == 0)
        assert_same(ye, ym, msg=f"{name} {shape}")
        # a second call draws a new mask from the advanced key, as upstream
        assert_same(e(xe), m(xm), msg=f"{name} {shape} second call")


@pytest.mark.parametrize("name,good,bad", LAYERS)
def test_eval_and_zero_p_are_identity(name, good, bad):
    xe, _ = _pair(good[-1], "float32")
    layer = getattr(nn, name)(0.5)
    layer.eval()
    assert layer(xe) is xe
    layer = getattr(nn, name)(0.0)
    assert layer.training and layer(xe) is xe
    # back in training the mask applies
    layer = getattr(nn, name)(0.5)
    layer.eval()
    layer.train()
    if xe.size:
        assert (np.array(layer(xe)) == 0).any()


@pytest.mark.parametrize("name,shape,channel_axes", [
    ("Dropout", (200, 100), None),
    ("Dropout2d", (8, 3, 5, 64), (1, 2)),
    ("Dropout2d", (3, 5, 512), (0, 1)),
    ("Dropout3d", (4, 2, 3, 5, 64), (1, 2, 3)),
    ("Dropout3d", (2, 3, 5, 512), (0, 1, 2)),
])
@pytest.mark.parametrize("p", [0.25, 0.6])
def test_statistics_and_channel_masks(name, shape, channel_axes, p):
    x = mx.ones(shape)
    mx.random.seed(7)
    y = np.array(getattr(nn, name)(p)(x))
    kept = y != 0
    # the survivors are scaled by 1 / (1 - p)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    if channel_axes is not None:
        # a channel is dropped or kept as a whole
        assert (kept.all(axis=channel_axes) | ~kept.any(axis=channel_axes)).all()
        kept = kept.any(axis=channel_axes)
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / kept.size)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,good,bad", LAYERS)
def test_gradient_matches_upstream(name, good, bad, dt):
    shape = max(good, key=len)
    e, m = getattr(nn, name)(0.3), getattr(mnn, name)(0.3)
    xe, xm = _pair(shape, dt)
    c = rand(shape, 5)
    ce, cm = mx.array(c), mlx.array(c)
    mx.random.seed(3)
    mlx.random.seed(3)
    ge = mx.grad(lambda x: (e(x) * ce).sum())(xe)
    gm = mlx.grad(lambda x: (m(x) * cm).sum())(xm)
    assert_same(ge, gm, msg=name)
    # a dropout inside a model: parameter gradients through the same mask
    le = nn.Sequential(nn.Linear(shape[-1], 4), e)
    lm = mnn.Sequential(mnn.Linear(shape[-1], 4), m)
    sync(le, lm)
    xe32, xm32 = _pair(shape, "float32")
    mx.random.seed(9)
    mlx.random.seed(9)
    _, ge = nn.value_and_grad(le, lambda x: le(x).sum())(xe32)
    _, gm = mnn.value_and_grad(lm, lambda x: lm(x).sum())(xm32)
    assert_tree_same(ge, gm, msg="model grads")
