"""ember.nn activations against upstream mlx.nn: forward, gradients, classes, repr."""

import functools

import mlx.core as mlx
import mlx.nn as mnn
import mlx.nn.layers.activations as mact
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.nn.layers import activations as act
from tests.helpers import assert_same, to_ember, to_mlx
from tests.nn.parity import FLOATS, assert_tree_same, raises_like, sync


def _pair(a, dt):
    """The numpy array `a` as (Ember, MLX) arrays of dtype name `dt`."""
    e, m = to_ember(a, dt), to_mlx(a, dt)
    if dt not in ("bfloat16", str(a.dtype)):
        e, m = e.astype(getattr(mx, dt)), m.astype(getattr(mlx, dt))
    return e, m


def _x(shape=(3, 8), seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# (name, kwargs): every function and argument variant
FUNCS = [
    ("sigmoid", {}), ("relu", {}), ("relu2", {}), ("relu6", {}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("log_softmax", {}), ("log_softmax", {"axis": 0}), ("log_softmax", {"axis": -2}),
    ("elu", {}), ("elu", {"alpha": 0.5}),
    ("softmax", {}), ("softmax", {"axis": 0}),
    ("softplus", {}), ("softsign", {}),
    ("softshrink", {}), ("softshrink", {"lambd": 1.5}),
    ("celu", {}), ("celu", {"alpha": 2.0}),
    ("silu", {}), ("log_sigmoid", {}),
    ("gelu", {}), ("gelu_approx", {}), ("gelu_fast_approx", {}),
    ("glu", {}), ("glu", {"axis": 0}),
    ("step", {}), ("step", {"threshold": 0.7}),
    ("selu", {}), ("mish", {}), ("hardswish", {}),
    ("hard_tanh", {}), ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}),
    ("hard_shrink", {}), ("hard_shrink", {"lambd": 1.2}),
    ("softmin", {}), ("softmin", {"axis": 0}),
    ("tanh", {}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in FUNCS]


def _call(mod, name, kw):
    return lambda x: getattr(mod, name)(x, **kw)


def _check(name, kw, e, m, msg=""):
    """Same result as upstream, or the same exception type where upstream raises."""
    try:
        expected = _call(mnn, name, kw)(m)
    except Exception as err:
        with pytest.raises(type(err)):
            mx.eval(_call(nn, name, kw)(e))
        return
    assert_same(_call(nn, name, kw)(e), expected, msg=f"{name} {msg}")


def test_names_match_upstream():
    upstream = {n for n in dir(mact) if not n.startswith("_")}
    upstream -= {"math", "partial", "Any", "mx", "Module"}
    assert set(act.__all__) == upstream
    assert len(act.__all__) == len(upstream) == 52
    for n in act.__all__:
        assert getattr(nn, n) is getattr(act, n)
        assert hasattr(mnn, n)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,kw", FUNCS, ids=IDS)
def test_function_forward(name, kw, dt):
    # a 4 x 8 input: both axes even (glu), entries spread over the kinks
    e, m = _pair(_x((4, 8)), dt)
    assert_same(_call(nn, name, kw)(e), _call(mnn, name, kw)(m), msg=name)


@pytest.fixture
def upstream_uncompiled():
    # upstream's shapeless-compiled activations reuse a graph traced on another shape of
    # the same rank, which gets empty inputs wrong (softmax of (0, 4) gives (1, 4)):
    # compare with the plain upstream ops there
    mlx.disable_compile()
    yield
    mlx.enable_compile()


@pytest.mark.parametrize("name,kw", FUNCS, ids=IDS)
def test_function_forward_shapes(name, kw, upstream_uncompiled):
    # 3-D and empty inputs
    for shape in [(2, 2, 6), (0, 4)]:
        _check(name, kw, *_pair(_x(shape, seed=1), "float32"), msg=str(shape))


ZERO_D = [(n, kw) for n, kw in FUNCS if "axis" not in kw and n != "glu"]


@pytest.mark.parametrize("name,kw", ZERO_D)
def test_function_0d(name, kw, upstream_uncompiled):
    _check(name, kw, *_pair(_x((), seed=1), "float32"), msg="0-d")


@pytest.mark.parametrize("name,kw", FUNCS, ids=IDS)
def test_function_int_input(name, kw):
    # integer inputs: the weak Python scalars decide the output dtype
    a = np.arange(-4, 4, dtype=np.int32).reshape(2, 4)
    _check(name, kw, mx.array(a), mlx.array(a), "int32")


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,kw", FUNCS, ids=IDS)
def test_function_grad(name, kw, dt):
    e, m = _pair(_x((4, 8), seed=2), dt)
    # weight the outputs so that softmax's gradient (zero for a plain sum) is not trivial
    w = _x((4, 8), seed=3, scale=1.0)
    if name == "glu":
        w = w[:2] if kw.get("axis") == 0 else w[:, :4]
    we, wm = _pair(w, dt)
    fe, fm = _call(nn, name, kw), _call(mnn, name, kw)
    ge = mx.grad(lambda x: (fe(x) * we).sum())(e)
    gm = mlx.grad(lambda x: (fm(x) * wm).sum())(m)
    assert_same(ge, gm, msg=name)


@pytest.mark.parametrize("dt", FLOATS)
def test_prelu_function(dt):
    e, m = _pair(_x((4, 3), seed=4), dt)
    for alpha in (_x((3,), seed=5, scale=0.5), _x((1,), seed=6, scale=0.5)):
        ae, am = _pair(alpha, dt)
        assert_same(nn.prelu(e, ae), mnn.prelu(m, am))
        ge = mx.grad(lambda x, a: nn.prelu(x, a).sum(), argnums=(0, 1))(e, ae)
        gm = mlx.grad(lambda x, a: mnn.prelu(x, a).sum(), argnums=(0, 1))(m, am)
        assert_same(ge, gm)


def test_log_softmax_large_logits():
    # the max shift keeps the normaliser where a plain x - logsumexp(x) loses it
    a = np.array([[1e7, 1e7, 1e7 - 1.0]], np.float32)
    assert_same(nn.log_softmax(mx.array(a)), mnn.log_softmax(mlx.array(a)))


def test_glu_odd_axis_raises():
    a = _x((3, 5))
    raises_like(lambda: mx.eval(nn.glu(mx.array(a))), lambda: mnn.glu(mlx.array(a)), ValueError)


# (class name, constructor kwargs)
CLASSES = [
    ("CELU", {}), ("CELU", {"alpha": 0.7}), ("ELU", {}), ("ELU", {"alpha": 2.0}),
    ("GELU", {}), ("GELU", {"approx": "precise"}), ("GELU", {"approx": "tanh"}),
    ("GELU", {"approx": "fast"}), ("GLU", {}), ("GLU", {"axis": 0}), ("SELU", {}),
    ("HardShrink", {}), ("HardShrink", {"lambd": 1.0}), ("Hardswish", {}), ("HardTanh", {}),
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.3}), ("LogSigmoid", {}),
    ("LogSoftmax", {}), ("Mish", {}), ("PReLU", {}), ("PReLU", {"num_parameters": 8}),
    ("PReLU", {"num_parameters": 8, "init": 0.1}), ("ReLU", {}), ("ReLU2", {}),
    ("ReLU6", {}), ("Sigmoid", {}), ("SiLU", {}), ("Softmax", {}), ("Softmin", {}),
    ("Softplus", {}), ("Softshrink", {}), ("Softshrink", {"lambd": 1.0}), ("Softsign", {}),
    ("Step", {}), ("Step", {"threshold": -0.5}), ("Tanh", {}),
]
CIDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CLASSES]


def test_every_class_is_covered():
    classes = {n for n in act.__all__ if n[0].isupper()}
    assert classes == {n for n, _ in CLASSES}
    assert len(classes) == 25


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name,kw", CLASSES, ids=CIDS)
def test_class_forward(name, kw, dt):
    em, mm = getattr(nn, name)(**kw), getattr(mnn, name)(**kw)
    assert isinstance(em, nn.Module)
    assert repr(em) == repr(mm)
    assert_tree_same(em.parameters(), mm.parameters(), msg=name)
    sync(em, mm)
    e, m = _pair(_x((4, 8), seed=7), dt)
    assert_same(em(e), mm(m), msg=name)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("kw", [{}, {"num_parameters": 8, "init": 0.5}])
def test_prelu_layer_grad(kw, dt):
    em, mm = nn.PReLU(**kw), mnn.PReLU(**kw)
    assert em.weight.shape == (kw.get("num_parameters", 1),)
    assert em.weight.dtype == mx.float32
    em.set_dtype(getattr(mx, dt))
    mm.set_dtype(getattr(mlx, dt))
    sync(em, mm)
    e, m = _pair(_x((4, 8), seed=9), dt)
    ve, ge = nn.value_and_grad(em, lambda x: em(x).sum())(e)
    vm, gm = mnn.value_and_grad(mm, lambda x: mm(x).sum())(m)
    assert_same(ve, vm)
    assert_tree_same(ge, gm, msg="grad")


def test_prelu_int_init():
    # an int init gives an int32 weight, as upstream
    assert_tree_same(nn.PReLU(2, init=1).parameters(), mnn.PReLU(2, init=1).parameters())


def test_gelu_bad_approx():
    raises_like(lambda: nn.GELU(approx="erf"),
                lambda: mnn.GELU(approx="erf"), ValueError, same_message=True)


@pytest.mark.parametrize("name,kw", CLASSES, ids=CIDS)
def test_class_grad(name, kw):
    em, mm = getattr(nn, name)(**kw), getattr(mnn, name)(**kw)
    sync(em, mm)
    e, m = _pair(_x((4, 8), seed=10), "float32")
    w = _x((4, 4) if name == "GLU" and not kw else (2, 8) if name == "GLU" else (4, 8),
           seed=11, scale=1.0)
    we, wm = _pair(w, "float32")
    ge = mx.grad(lambda x: (em(x) * we).sum())(e)
    gm = mlx.grad(lambda x: (mm(x) * wm).sum())(m)
    assert_same(ge, gm, msg=name)


def test_layer_attributes_like_upstream():
    # code that reads a layer's settings finds them under upstream's names
    for name, kw in CLASSES:
        em, mm = getattr(nn, name)(**kw), getattr(mnn, name)(**kw)
        for attr in ("axis", "lambd", "threshold", "_alpha", "_negative_slope", "_approx"):
            assert hasattr(em, attr) == hasattr(mm, attr), (name, attr)
            if hasattr(mm, attr):
                assert getattr(em, attr) == getattr(mm, attr), (name, attr)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name,kw", [("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
                                     ("leaky_relu", {"negative_slope": 1.5}),
                                     ("leaky_relu", {"negative_slope": -0.3}),
                                     ("hardswish", {})])
def test_one_pass_activations_have_upstream_bits(name, kw, dtype):
    """leaky_relu and hardswish of float32 run as one fused op; values and vjps keep
    upstream's bits there and in the composite kept for other dtypes and slopes."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4099) * 4,
                        [0.0, -0.0, np.nan, np.inf, -np.inf, -3.0, 3.0, 1.0]]).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    out = []
    for m, mod in ((mx, nn), (mlx, mnn)):
        f = functools.partial(getattr(mod, name), **kw)
        a, c = m.array(x).astype(getattr(m, dtype)), m.array(g).astype(getattr(m, dtype))
        y, (vj,) = m.vjp(f, [a], [c])
        out.append([np.array(t.astype(m.float32)) for t in (y[0], vj)])
    for got, want in zip(*out):
        np.testing.assert_array_equal(got, want)
