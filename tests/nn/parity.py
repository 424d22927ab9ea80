"""Run the same model in Ember and upstream MLX: copy parameters across, compare trees,
build layers from the same seed, check a layer's outputs and gradients, compare errors."""

import math
import re

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten, tree_map, tree_unflatten
from tests.helpers import assert_close, assert_same, dtype_name, np_of, raises_like  # noqa: F401

FLOATS = ["float32", "float16", "bfloat16"]
# relative tolerance of a layer's outputs, by dtype
TOL = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 6e-2}


def _to_mlx(a):
    return mlx.array(np_of(a)).astype(getattr(mlx, dtype_name(a)))


def _to_ember(a):
    return mx.array(np_of(a)).astype(getattr(mx, dtype_name(a)))


def to_mlx(tree):
    """An Ember tree (arrays, dicts, lists) with each array copied into MLX."""
    return tree_map(lambda a: _to_mlx(a) if isinstance(a, mx.array) else a, tree)


def to_ember(tree):
    """An MLX tree with each array copied into Ember."""
    return tree_map(lambda a: _to_ember(a) if isinstance(a, mlx.array) else a, tree)


def sync(ember_module, mlx_module):
    """Give the MLX module the Ember module's parameters (same names, same values)."""
    flat = tree_flatten(ember_module.parameters())
    ours = {k for k, _ in flat}
    theirs = {k for k, _ in tree_flatten(mlx_module.parameters())}
    assert ours == theirs, f"parameter names differ: {sorted(ours ^ theirs)}"
    mlx_module.update(tree_unflatten([(k, _to_mlx(v)) for k, v in flat]))
    return mlx_module


def assert_tree_same(e, m, rtol=None, msg=""):
    """Two trees with equal structure, names, shapes, dtypes and (to tolerance) values.
    The reference `m` is upstream's or (GPU against CPU) Ember's own."""
    fe, fm = tree_flatten(e), tree_flatten(m)
    assert [k for k, _ in fe] == [k for k, _ in fm], f"{msg}: keys differ"
    for (k, a), (_, b) in zip(fe, fm):
        if not isinstance(b, (mlx.array, mx.array)):
            assert a == b, f"{msg} {k}"
            continue
        assert isinstance(a, mx.array), f"{msg} {k}: {type(a)}"
        assert tuple(a.shape) == tuple(b.shape), f"{msg} {k}: {a.shape} != {b.shape}"
        assert dtype_name(a) == dtype_name(b), f"{msg} {k}: {a.dtype} != {b.dtype}"
        assert_close(np_of(a), np_of(b), dtype_name(b), rtol, f"{msg} {k}")


def result_tree(x, as_list=False):
    """A result in comparable form: arrays as ("array", shape, dtype, values) (values a
    list with `as_list`, else numpy, bfloat16 as float32), modules by class name, dtypes
    by name, containers recursively, reprs without object addresses."""
    if isinstance(x, (mx.array, mlx.array)):
        v = np_of(x)
        return ("array", tuple(x.shape), dtype_name(x), v.tolist() if as_list else v)
    if isinstance(x, (nn.Module, mnn.Module)):
        return ("module", type(x).__name__)
    if isinstance(x, dict):
        return {k: result_tree(v, as_list) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [result_tree(v, as_list) for v in x])
    if isinstance(x, set):
        return ("set", sorted(x))
    if isinstance(x, (mx.Dtype, mlx.Dtype)):
        return ("dtype", str(x).split(".")[-1])
    if isinstance(x, str):
        return re.sub(r" at 0x[0-9a-f]+", "", x)
    return x


def rand(shape, seed=0, dtype=np.float32):
    """The same random input for both frameworks, as numpy."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _array(fw, x, dtype):
    if x is None or isinstance(x, str):
        return x
    a = fw.array(x)
    return a.astype(getattr(fw, dtype)) if x.dtype.kind == "f" else a


def E(x, dtype="float32"):
    """Numpy `x` as an Ember array, cast to `dtype` if it holds floats (bools and ints
    keep theirs); None and strings (e.g. mask="causal") are returned as given."""
    return _array(mx, x, dtype)


def M(x, dtype="float32"):
    """`E` for upstream MLX."""
    return _array(mlx, x, dtype)


def pair(x, dtype="float32"):
    """(E(x, dtype), M(x, dtype))."""
    return E(x, dtype), M(x, dtype)


def names(tree):
    """The sorted dotted names of a parameter tree."""
    return sorted(k for k, _ in tree_flatten(tree))


def both(fn, s=0):
    """(fn(ember.nn), fn(mlx.nn)), each built after seeding its framework with `s`."""
    mx.random.seed(s)
    e = fn(nn)
    mlx.random.seed(s)
    m = fn(mnn)
    return e, m


def build(name, *args, seed=0, **kwargs):
    """The layer `name` built in both frameworks from the same random state."""
    return both(lambda lib: getattr(lib, name)(*args, **kwargs), seed)


def check_build(name, *args, **kwargs):
    """The layer `name` built in both frameworks (as `build`) with the same dict keys,
    initial parameters and repr; returns the pair."""
    e, m = build(name, *args, **kwargs)
    assert sorted(e.keys()) == sorted(m.keys())
    assert_same_init(e, m)
    assert repr(e) == repr(m)
    return e, m


def case_id(case):
    """The pytest id of a (layer name, args, kwargs, ...) case."""
    name, args, kwargs = case[:3]
    return f"{name}-{args}-{sorted(kwargs.items())}"


def build_raises_like(name, *args, **kwargs):
    """Building the layer `name` raises in upstream, and the same in Ember."""
    raises_like(lambda: getattr(nn, name)(*args, **kwargs),
                lambda: getattr(mnn, name)(*args, **kwargs))


def call_raises_like(e, m, *shapes):
    """Calling the layers on zeros of `shapes` raises in upstream, and the same in Ember."""
    raises_like(lambda: mx.eval(e(*[mx.zeros(s) for s in shapes])),
                lambda: mlx.eval(m(*[mlx.zeros(s) for s in shapes])))


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
    ex, mxs = [E(x, dtype) for x in xs], [M(x, dtype) for x in xs]
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
        raises_like(lambda: nn.value_and_grad(e_mod, le)(*ex),
                    lambda: mnn.value_and_grad(m_mod, lm)(*mxs), ValueError)
    argnums = tuple(i for i, x in enumerate(xs) if x.dtype.kind == "f")
    if input_grad and argnums:
        assert_same(list(mx.grad(le, argnums)(*ex)), list(mlx.grad(lm, argnums)(*mxs)),
                    rtol=rtol, msg="input grads")
    return ye


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
