"""Run the same model in Ember and upstream MLX: copy parameters across, compare trees."""

import mlx.core as mlx
import numpy as np

import ember.core as mx
from ember.utils import tree_flatten, tree_map, tree_unflatten
from tests.helpers import assert_close, dtype_name, np_of


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
    """Two trees with equal structure, names, shapes, dtypes and (to tolerance) values."""
    fe, fm = tree_flatten(e), tree_flatten(m)
    assert [k for k, _ in fe] == [k for k, _ in fm], f"{msg}: keys differ"
    for (k, a), (_, b) in zip(fe, fm):
        if not isinstance(b, mlx.array):
            assert a == b, f"{msg} {k}"
            continue
        assert isinstance(a, mx.array), f"{msg} {k}: {type(a)}"
        assert tuple(a.shape) == tuple(b.shape), f"{msg} {k}: {a.shape} != {b.shape}"
        assert dtype_name(a) == dtype_name(b), f"{msg} {k}: {a.dtype} != {b.dtype}"
        assert_close(np_of(a), np_of(b), dtype_name(b), rtol, f"{msg} {k}")


def rand(shape, seed=0, dtype=np.float32):
    """The same random input for both frameworks, as numpy."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
