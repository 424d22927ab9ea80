"""ember.nn normalization layers against upstream mlx.nn: parameters and state, outputs,
gradients, batch-norm running statistics, train/eval, repr and errors."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten, tree_unflatten
from tests.helpers import assert_same, dtype_name
from tests.nn.parity import FLOATS, assert_tree_same, raises_like, rand, sync, to_ember, to_mlx

# (class name, constructor args, constructor kwargs, input shapes)
CASES = [
    ("LayerNorm", (8,), {}, [(8,), (4, 8), (2, 3, 8)]),
    ("LayerNorm", (8,), {"eps": 1e-3}, [(4, 8)]),
    ("LayerNorm", (8,), {"affine": False}, [(4, 8)]),
    ("LayerNorm", (8,), {"bias": False}, [(2, 3, 8)]),
    ("RMSNorm", (8,), {}, [(8,), (4, 8), (2, 3, 8)]),
    ("RMSNorm", (8,), {"eps": 1e-2}, [(4, 8)]),
    ("GroupNorm", (4, 8), {}, [(2, 3, 8), (2, 3, 5, 8)]),
    # no spatial axes: 4 values per group (with 2 the input gradient is all rounding)
    ("GroupNorm", (2, 8), {"affine": False}, [(2, 3, 5, 8), (3, 8)]),
    ("GroupNorm", (4, 8), {"pytorch_compatible": True}, [(2, 3, 8), (2, 3, 5, 8)]),
    ("GroupNorm", (8, 8), {"eps": 1e-3, "pytorch_compatible": True}, [(2, 6, 8)]),
    ("InstanceNorm", (8,), {}, [(2, 5, 8), (2, 3, 4, 8)]),
    ("InstanceNorm", (8,), {"affine": True, "eps": 1e-4}, [(2, 5, 8), (1, 2, 3, 2, 8)]),
    ("BatchNorm", (8,), {}, [(6, 8), (2, 5, 8), (2, 3, 4, 8)]),
    ("BatchNorm", (8,), {"affine": False}, [(2, 5, 8)]),
    ("BatchNorm", (8,), {"track_running_stats": False}, [(2, 5, 8)]),
    ("BatchNorm", (8,), {"momentum": 0.3, "eps": 1e-3}, [(3, 8)]),
]
IDS = [f"{c}-{a}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, a, kw, _ in CASES]


def _build(name, args, kw, dt="float32", seed=0):
    """The layer in both frameworks with the same (random, non-trivial) parameters."""
    e = getattr(nn, name)(*args, **kw)
    rng = np.random.default_rng(seed)
    new = []
    for k, v in tree_flatten(e.parameters()):
        a = rng.standard_normal(v.shape).astype(np.float32)
        if k == "running_var":
            a = np.abs(a) + 0.5
        new.append((k, mx.array(a)))
    e.update(tree_unflatten(new))
    e.set_dtype(getattr(mx, dt))
    m = getattr(mnn, name)(*args, **kw)
    sync(e, m)
    return e, m


def _input(shape, dt, seed=1):
    # an offset and a scale so that the normalization does something
    a = rand(shape, seed) * 3 + 1.5
    return mx.array(a).astype(getattr(mx, dt)), mlx.array(a).astype(getattr(mlx, dt))


def _check_grads(e, m, xe, xm, msg):
    """Gradients of a weighted sum of the outputs, w.r.t. the parameters and the input."""
    # (both called once here, so that BatchNorm's running statistics stay in step)
    assert e(xe).shape == m(xm).shape
    ym = m(xm)
    e(xe)
    cot = rand(ym.shape, 7)
    ce, cm = mx.array(cot), mlx.array(cot)
    # the loss is a sum with cancellations: its error scales with the sum of |terms|
    terms = float(mlx.abs(ym.astype(mlx.float32) * cm).sum())

    def le(x):
        return (e(x) * ce).sum()

    def lm(x):
        return (m(x) * cm).sum()

    rtol = None if xe.dtype == mx.float32 else 5e-2
    if not tree_flatten(m.trainable_parameters()):
        # upstream raises for a model without trainable parameters; so do we
        raises_like(lambda: nn.value_and_grad(e, le)(xe),
                    lambda: mnn.value_and_grad(m, lm)(xm))
    else:
        ve, ge = nn.value_and_grad(e, le)(xe)
        vm, gm = mnn.value_and_grad(m, lm)(xm)
        tol = 1e-5 if xe.dtype == mx.float32 else 1e-2
        assert abs(ve.item() - vm.item()) <= tol * (terms + 1), f"{msg} loss"
        assert dtype_name(ve) == dtype_name(vm), f"{msg} loss dtype"
        assert_tree_same(ge, gm, rtol=rtol, msg=f"{msg} param grads")
    assert_same(mx.grad(le)(xe), mlx.grad(lm)(xm), rtol=rtol, msg=f"{msg} input grad")


@pytest.mark.parametrize("name,args,kw,shapes", CASES, ids=IDS)
def test_parameters_and_repr(name, args, kw, shapes):
    e, m = getattr(nn, name)(*args, **kw), getattr(mnn, name)(*args, **kw)
    assert_tree_same(e.parameters(), to_mlx(to_ember(m.parameters())), msg="params")
    assert_tree_same(e.parameters(), m.parameters(), rtol=0, msg="initial values")
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), rtol=0,
                     msg="trainable")
    assert repr(e) == repr(m)
    assert e.training and m.training


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,args,kw,shapes", CASES, ids=IDS)
def test_forward_and_grad(name, args, kw, shapes, dt):
    for shape in shapes:
        e, m = _build(name, args, kw, dt)
        xe, xm = _input(shape, dt)
        msg = f"{name} {shape} {dt}"
        assert_same(e(xe), m(xm), rtol=None if dt == "float32" else 3e-2, msg=msg)
        e, m = _build(name, args, kw, dt)
        _check_grads(e, m, xe, xm, msg)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,args,kw,shapes", CASES, ids=IDS)
def test_eval_mode(name, args, kw, shapes, dt):
    e, m = _build(name, args, kw, dt)
    e.eval()
    m.eval()
    assert not e.training
    xe, xm = _input(shapes[-1], dt)
    assert_same(e(xe), m(xm), rtol=None if dt == "float32" else 3e-2, msg="eval")
    _check_grads(e, m, xe, xm, "eval")
    assert_tree_same(e.parameters(), m.parameters(), msg="state unchanged in eval")


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("kw", [{}, {"momentum": 0.25}, {"affine": False},
                                {"track_running_stats": False}])
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4), (2, 3, 2, 4)])
def test_batchnorm_running_stats(shape, kw, dt):
    e, m = nn.BatchNorm(4, **kw), mnn.BatchNorm(4, **kw)
    e.set_dtype(getattr(mx, dt))
    m.set_dtype(getattr(mlx, dt))
    for step in range(4):
        xe, xm = _input(shape, dt, seed=10 + step)
        assert_same(e(xe), m(xm), rtol=None if dt == "float32" else 3e-2, msg=f"step {step}")
        mx.eval(e.parameters())
        mlx.eval(m.parameters())
    # running stats: values and dtypes (a float32 batch statistic promotes half stats)
    assert_tree_same(e.parameters(), m.parameters(), rtol=None if dt == "float32" else 2e-2,
                     msg="after training")
    if "track_running_stats" not in kw:
        assert not np.allclose(np.array(e.running_mean.astype(mx.float32)), 0)
    # a step inside value_and_grad updates the stats as well
    xe, xm = _input(shape, dt, seed=20)
    _check_grads(e, m, xe, xm, "grad step")
    assert_tree_same(e.parameters(), m.parameters(), rtol=None if dt == "float32" else 2e-2,
                     msg="after grad step")
    e.eval()
    m.eval()
    xe, xm = _input(shape, dt, seed=30)
    assert_same(e(xe), m(xm), rtol=None if dt == "float32" else 3e-2, msg="eval")


def test_batchnorm_eval_uses_running_stats():
    bn = nn.BatchNorm(3, affine=False)
    bn.running_mean = mx.array([1.0, 2.0, 3.0])
    bn.running_var = mx.array([4.0, 1.0, 0.25])
    bn.eval()
    x = mx.array(rand((5, 3), 2))
    expect = (np.array(x) - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(np.array(bn(x)), expect, rtol=1e-5, atol=1e-6)
    # train mode normalizes with the batch statistics instead
    bn.train()
    y = np.array(bn(x))
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)


def test_batchnorm_frozen_state():
    e, m = nn.BatchNorm(4), mnn.BatchNorm(4)
    names = sorted(k for k, _ in tree_flatten(e.trainable_parameters()))
    assert names == ["bias", "weight"]
    e.unfreeze()
    m.unfreeze()
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), msg="unfreeze")
    e.freeze()
    m.freeze()
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), msg="freeze")
    e.unfreeze(keys=["running_mean", "weight"])
    m.unfreeze(keys=["running_mean", "weight"])
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), msg="unfreeze keys")
    # without running statistics unfreeze has nothing to re-freeze
    e, m = nn.BatchNorm(4, track_running_stats=False), mnn.BatchNorm(4,
                                                                     track_running_stats=False)
    e.unfreeze()
    m.unfreeze()
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), msg="no stats")
    # gradients never reach the running statistics
    e = nn.BatchNorm(4)
    _, g = nn.value_and_grad(e, lambda x: e(x).sum())(mx.array(rand((3, 4))))
    assert sorted(g) == ["bias", "weight"]


def test_modes_propagate():
    e = nn.BatchNorm(4)
    e.eval()
    assert not e.training
    e.train()
    assert e.training


def test_half_dtypes_kept():
    # the fast kernels keep the input dtype; BatchNorm with float32 stats promotes in eval
    x16 = mx.array(rand((2, 3, 8))).astype(mx.float16)
    for layer in (nn.LayerNorm(8), nn.RMSNorm(8), nn.GroupNorm(2, 8), nn.InstanceNorm(8)):
        layer.set_dtype(mx.float16)
        assert layer(x16).dtype == mx.float16, layer
    bn, mbn = nn.BatchNorm(8), mnn.BatchNorm(8)
    bn.eval()
    mbn.eval()
    assert_same(bn(x16), mbn(to_mlx(x16)), rtol=1e-2)


@pytest.mark.parametrize("name,args", [
    ("LayerNorm", (4,)), ("RMSNorm", (4,)), ("GroupNorm", (2, 4)), ("InstanceNorm", (4,)),
    ("BatchNorm", (4,))])
@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_bad_eps(name, args, eps):
    raises_like(lambda: getattr(nn, name)(*args, eps=eps),
                lambda: getattr(mnn, name)(*args, eps=eps), same_message=True)


@pytest.mark.parametrize("args", [(0, 4), (-1, 4), (2, 0), (3, 4), (4, 6)])
def test_groupnorm_bad_args(args):
    raises_like(lambda: nn.GroupNorm(*args), lambda: mnn.GroupNorm(*args), same_message=True)


@pytest.mark.parametrize("shape,train", [((4,), True), ((1, 2, 3, 4, 4), True),
                                         ((1, 4), True), ((1, 1, 4), True),
                                         ((4,), False), ((1, 2, 1, 1, 4), False)])
def test_batchnorm_bad_inputs(shape, train):
    e, m = nn.BatchNorm(4), mnn.BatchNorm(4)
    e.train(train)
    m.train(train)
    x = rand(shape)
    raises_like(lambda: e(mx.array(x)), lambda: m(mlx.array(x)), same_message=True)


def test_batchnorm_single_value_eval_ok():
    e, m = nn.BatchNorm(4), mnn.BatchNorm(4)
    e.eval()
    m.eval()
    x = rand((1, 4))
    assert_same(e(mx.array(x)), m(mlx.array(x)))


@pytest.mark.parametrize("shape", [(4,), (2, 4)])
def test_instancenorm_bad_inputs(shape):
    x = rand(shape)
    raises_like(lambda: nn.InstanceNorm(4)(mx.array(x)),
                lambda: mnn.InstanceNorm(4)(mlx.array(x)), same_message=True)


def test_groupnorm_pytorch_layout_differs():
    # the two groupings differ, so the flag must change the result
    x = mx.array(rand((2, 3, 8), 4) * np.arange(1, 9, dtype=np.float32))
    a = nn.GroupNorm(2, 8)(x)
    b = nn.GroupNorm(2, 8, pytorch_compatible=True)(x)
    assert not np.allclose(np.array(a), np.array(b), atol=1e-3)


def test_in_a_model():
    # normalization layers inside a container: names, values, grads as upstream
    def build(nnmod):
        return nnmod.Sequential(nnmod.Linear(6, 8), nnmod.BatchNorm(8),
                                nnmod.LayerNorm(8), nnmod.GroupNorm(2, 8),
                                nnmod.RMSNorm(8))
    e, m = build(nn), build(mnn)
    sync(e, m)
    xe, xm = _input((5, 6), "float32")
    _check_grads(e, m, xe, xm, "model")
    assert_tree_same(e.parameters(), m.parameters(), msg="model state")
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), msg="trainable")
    e.unfreeze()
    m.unfreeze()
    assert_tree_same(e.trainable_parameters(), m.trainable_parameters(), msg="unfrozen")
