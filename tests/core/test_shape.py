"""Shape ops beyond the op database: argument forms, errors, edge cases, transforms.

Most cases are expressions run on both `ember.core` and upstream `mlx.core`: results must
match (structure, shape, dtype, values), and where upstream raises we must raise the same
exception type.
"""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, np_of, on_cpu


def _env(m):
    rng = np.random.default_rng(0)
    return {
        "m": m, "np": np,
        "a": m.array(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "b": m.array(np.arange(24, dtype=np.int32).reshape(2, 3, 4)),
        "f": m.array(rng.standard_normal((2, 3)).astype(np.float32)),
        "h": m.ones((2, 2), dtype=m.float16),
        "e": m.zeros((0, 2)),
        "z": m.array(3),
        "v": m.array(np.arange(4, dtype=np.float32)),
    }


CASES = [
    # reshape
    "m.reshape(a, (3, 2))", "m.reshape(a, [3, -1])", "m.reshape(a, (4,))",
    "m.reshape(a, (-1, -1))", "m.reshape(a, (-2, 3))", "m.reshape(e, (-1, 0))",
    "m.reshape(e, (-1, 2))", "m.reshape(e, (2, 0, 5))", "m.reshape(a, 6)", "m.reshape(z, ())",
    "m.reshape(z, (1, 1))", "m.reshape(a, (np.int64(3), 2))", "m.reshape(np.ones(6), [3, 2])",
    "m.reshape(1.0, [1])", "a.reshape(3, 2)", "a.reshape((6,))",
    # flatten / unflatten
    "m.flatten(a)", "m.flatten(z)", "m.flatten(a, -10, 10)", "m.flatten(a, 1, 0)",
    "m.flatten(z, 3, 5)", "m.flatten(b, 1)", "m.flatten(b, 0, 1)", "m.flatten(b, -2, -1)",
    "m.flatten(e)", "m.flatten(1.0)", "m.unflatten(a, 1, (3, 1))", "m.unflatten(a, -1, (-1, 1))",
    "m.unflatten(a, 1, (2, 2))", "m.unflatten(a, 1, (-1, -1))", "m.unflatten(a, 1, ())",
    "m.unflatten(a, 2, (3,))", "m.unflatten(z, 0, (1,))", "m.unflatten(e, 0, (-1, 2))",
    "m.unflatten(b, 0, [1, 2, 1])",
    # squeeze / expand_dims
    "m.squeeze(m.zeros((1, 2, 1)))", "m.squeeze(m.zeros((1, 2, 1)), -1)",
    "m.squeeze(m.zeros((1, 2, 1)), (0, 2))", "m.squeeze(m.zeros((1, 2, 1)), [0])",
    "m.squeeze(a, 0)", "m.squeeze(a, 5)", "m.squeeze(m.zeros((1, 1)), (0, -2))", "m.squeeze(z)",
    "m.squeeze(m.zeros((1, 2, 1)), -4)", "m.squeeze(1.0)", "m.squeeze(e)",
    "m.expand_dims(a, 0)", "m.expand_dims(a, (0, 0))", "m.expand_dims(a, 3)",
    "m.expand_dims(a, (-1, -4))", "m.expand_dims(z, 0)", "m.expand_dims(z, -1)",
    "m.expand_dims(z, 1)", "m.expand_dims(a, ())", "m.expand_dims(a, [0, 2])",
    "m.expand_dims(np.ones(2), 1)", "m.expand_dims(e, 1)",
    # atleast
    "m.atleast_1d(z)", "m.atleast_1d(z, a)", "m.atleast_1d()", "m.atleast_2d(v)",
    "m.atleast_2d(z)", "m.atleast_2d(b)", "m.atleast_3d(v)", "m.atleast_3d(a)",
    "m.atleast_3d(z)", "m.atleast_3d(b)", "m.atleast_3d(z, v, a, b)", "m.atleast_2d(e)",
    # transpose family
    "m.transpose(a)", "m.transpose(b, (2, 0, 1))", "m.transpose(a, (0,))",
    "m.transpose(a, (0, 0))", "m.transpose(a, (0, 2))", "m.transpose(a, (-1, 0))",
    "m.transpose(z)", "m.transpose(1.0)", "m.transpose(a, (1.0, 0))",
    "m.permute_dims(b, [1, 0, 2])",
    "m.permute_dims(b)", "b.transpose(1, 2, 0)", "b.T", "m.matrix_transpose(b)",
    "m.matrix_transpose(v)", "m.matrix_transpose(z)", "m.matrix_transpose(e)",
    "m.swapaxes(b, 0, -1)", "m.swapaxes(a, 0, 2)", "m.swapaxes(z, 0, 0)", "a.swapaxes(0, 1)",
    "m.moveaxis(b, 0, -1)", "m.moveaxis(b, -1, 0)", "m.moveaxis(a, 0, 2)", "m.moveaxis(a, 0, -3)",
    "a.moveaxis(1, 0)",
    # broadcasting
    "m.broadcast_to(a, (4, 2, 3))", "m.broadcast_to(a, (3, 3))", "m.broadcast_to(a, (3,))",
    "m.broadcast_to(2.5, (3,))", "m.broadcast_to(a, (-1, 3))", "m.broadcast_to(a, 3)",
    "m.broadcast_to(np.ones(3, np.float32), (2, 3))", "m.broadcast_to(z, (2, 0))",
    "m.broadcast_to(e, (3, 0, 2))",
    "m.broadcast_to(a, (2, 0, 3))", "m.broadcast_to(v, [2, 4])",
    "m.broadcast_arrays(a, m.zeros((4, 1, 1)))", "m.broadcast_arrays(a, m.zeros((4,)))",
    "m.broadcast_arrays()", "m.broadcast_arrays(a)", "m.broadcast_arrays(z, e, stream=m.cpu)",
    "m.broadcast_shapes((1,), (3, 1))", "m.broadcast_shapes((6, 7), (5, 6, 1), (7,))",
    "m.broadcast_shapes()", "m.broadcast_shapes((2,), (3,))", "m.broadcast_shapes([2, 3], [1])",
    # concatenate / stack
    "m.concatenate([a, h.astype(m.int32)], axis=1)", "m.concatenate([a, h], axis=1)",
    "m.concatenate([m.array([True]), m.array([1], m.int8)])",
    "m.concatenate([m.array([1], m.uint32), m.array([1], m.int32)])",
    "m.concatenate([f, a, a.astype(m.bfloat16)])", "m.concatenate([])",
    "m.concatenate([a, m.zeros((3,))])", "m.concatenate([a, h], axis=0)",
    "m.concatenate([a, a, m.zeros((1, 2))], axis=0)", "m.concatenate([a, a], axis=2)",
    "m.concatenate([a, a], axis=None)", "m.concatenate([z, z])", "m.concatenate([z, z], None)",
    "m.concatenate([a, a], axis=-1)", "m.concatenate([a])", "m.concatenate((a, a))",
    "m.concatenate([a, 1])", "m.concatenate([a, np.ones((2, 3))])",
    "m.concatenate([m.zeros((0, 3)), a])", "m.concatenate([e, e], 1)",
    "m.concatenate([b, b, b], 1)", "m.concat([a, a], 1)",
    "m.stack([a, a], axis=-1)", "m.stack([a, a], axis=None)", "m.stack([a, a.astype(m.float16)])",
    "m.stack([a, h])", "m.stack([])", "m.stack([a, a], axis=3)", "m.stack([a, a], axis=-4)",
    "m.stack([z, z])", "m.stack([a])", "m.stack([a], axis=2)", "m.stack([e, e, e], 1)",
    "m.stack([v, v.astype(m.int8), v > 1])", "m.stack((x for x in [a, a]))",
    # split / unstack
    "m.split(v, 2)", "m.split(v, 3)", "m.split(m.arange(6), [1, 3])",
    "m.split(m.arange(6), [1, 10])", "m.split(m.arange(6), [4, 2])", "m.split(m.arange(6), [-2])",
    "m.split(m.arange(6), [-10])", "m.split(m.arange(6), [])", "m.split(m.arange(6), 0)",
    "m.split(m.arange(6), -2)", "m.split(a, 3, axis=-1)", "m.split(a, 3, axis=2)",
    "m.split(z, 1)", "m.split(e, 2)", "m.split(m.arange(6), (2,))", "m.split(m.arange(6), 1)",
    "m.split(a, np.int64(2), axis=0)", "m.split(a, [np.int64(1)])", "m.split(a, m.array([1]))",
    "m.split(m.zeros((0,)), 3)", "m.split(m.zeros((4,)), 4)", "m.split(a, 2.0)",
    "m.split(b, [1, 1, 3], axis=2)", "a.split(2)", "m.split([1.0, 2.0], 2)",
    "m.unstack(a)", "m.unstack(a, axis=-1)", "m.unstack(z)", "m.unstack(e)", "m.unstack(a, axis=2)",
    "m.unstack(v)", "m.unstack(b, axis=1)", "m.unstack([1.0, 2.0])", "m.unstack(e, axis=1)",
    # repeat / tile
    "m.repeat(a, 2)", "m.repeat(a, 2, axis=-1)", "m.repeat(a, 0, axis=0)", "m.repeat(a, -1, 0)",
    "m.repeat(a, 2, axis=2)", "m.repeat(z, 2)", "m.repeat(z, 2, axis=0)", "m.repeat(a, [1, 2], 0)",
    "m.repeat(a, repeats=2, axis=0)", "m.repeat(a, 1, 1)", "m.repeat(a, 3, 1)", "m.repeat(e, 2, 0)",
    "m.repeat(a, np.int64(2))", "m.repeat(1.0, 2)",
    "m.tile(a, 2)", "m.tile(a, [2, 1, 2])", "m.tile(m.zeros((2, 3, 4)), [2])", "m.tile(a, [0, 1])",
    "m.tile(a, [-1, 1])", "m.tile(z, 3)", "m.tile(a, [])", "m.tile(a, (2,))",
    "m.tile(a, np.int64(2))",
    "m.tile(a, (2, 2, 2, 2))", "m.tile(e, (2, 3))", "m.tile(v, (1, 1))", "m.tile([1.0, 2.0], 2)",
    # pad: width forms, modes, constants
    "m.pad(a, 1)", "m.pad(a, (1,))", "m.pad(a, (1, 2))", "m.pad(a, [(1, 2), (0, 1)])",
    "m.pad(a, [(1, 2)])", "m.pad(a, [1, 2])", "m.pad(a, ((1,), (2,)))", "m.pad(a, [(1, 2)] * 3)",
    "m.pad(a, (1, 2, 3))", "m.pad(a, -1)", "m.pad(a, [(-1, 0), (0, 0)])",
    "m.pad(a, [(0, 0), (0, -1)])",
    "m.pad(a, ((1, 2), (0, 1)))", "m.pad(a, [[1, 2], [0, 1]])", "m.pad(a, [[1], [0]])",
    "m.pad(a, [(1,)])", "m.pad(a, [1])", "m.pad(a, [])", "m.pad(a, ())", "m.pad(a, np.int64(1))",
    "m.pad(a, [(1, 2, 3)])", "m.pad(a, 0)", "m.pad(z, 1)", "m.pad(z, [])", "m.pad(1.0, 1)",
    "m.pad(a, 1, constant_values=7)", "m.pad(a, 1, constant_values=7.5)",
    "m.pad(a, 1, constant_values=-7.5)", "m.pad(a, 1, constant_values=m.array(2.5))",
    "m.pad(a, 1, constant_values=m.array([2.5]))", "m.pad(a, 1, constant_values=m.array([2.5, 3]))",
    "m.pad(a, 1, constant_values=m.array([[5, 6], [7, 8]]))",
    "m.pad(a, 1, constant_values=m.array([]))",
    "m.pad(a, 1, constant_values=m.array(2, m.float16))",
    "m.pad(h, 1, constant_values=1e10)", "m.pad(h, 1, constant_values=100000)",
    "m.pad(h.astype(m.bfloat16), 1, constant_values=100000)",
    "m.pad(a > 2, 1, constant_values=True)", "m.pad(a > 2, 1, constant_values=5)",
    "m.pad(f, 1, constant_values=True)", "m.pad(f, 1, constant_values=1 + 2j)",
    "m.pad(f, 1, constant_values=-0.0)", "m.pad(f, 1, constant_values=float('nan'))",
    "m.pad(f, 1, constant_values=float('-inf'))",
    "m.pad(f.astype(m.complex64), 1, constant_values=1 + 2j)",
    "m.pad(a.astype(m.uint8), 1, constant_values=-1)",
    "m.pad(a.astype(m.uint8), 1, constant_values=300)",
    "m.pad(a.astype(m.uint8), 1, constant_values=-2.5)",
    "m.pad(a.astype(m.uint16), 1, constant_values=65535)",
    "m.pad(a.astype(m.uint16), 1, constant_values=65536)",
    "m.pad(a.astype(m.int16), 1, constant_values=-32768)",
    "m.pad(a.astype(m.uint32), 1, constant_values=2**32 - 1)",
    "m.pad(a.astype(m.uint64), 1, constant_values=-1)",
    "m.pad(a.astype(m.uint64), 1, constant_values=2**40)",
    "m.pad(a.astype(m.int64), 1, constant_values=-2**40)",
    "m.pad(a, 1, constant_values=2**40)", "m.pad(a.astype(m.int8), 1, constant_values=-129)",
    "m.pad(a, 1, constant_values=np.float32(3))", "m.pad(a, 1, constant_values=[1, 2])",
    "m.pad(a, 1, mode='edge')", "m.pad(a, 4, mode='edge')", "m.pad(a, 1, mode='reflect')",
    "m.pad(a, 3, mode='reflect')", "m.pad(m.arange(3), 5, mode='reflect')",
    "m.pad(a, 1, mode='symmetric')", "m.pad(m.arange(3), 5, mode='symmetric')",
    "m.pad(a, [(2, 0), (1, 4)], mode='symmetric')", "m.pad(a, [(0, 0), (3, 1)], mode='reflect')",
    "m.pad(a, 1, mode='wrap')", "m.pad(e, 1, mode='edge')", "m.pad(e, 1)",
    "m.pad(e, 1, mode='reflect')", "m.pad(e, 1, mode='symmetric')",
    "m.pad(m.array([[3.0, 4.0]]), 1, mode='reflect')",
    "m.pad(e, [(0, 0), (1, 1)], mode='edge')", "m.pad(e, [(1, 1), (0, 0)], mode='edge')",
    "m.pad(e, [(0, 0), (1, 1)], mode='reflect')", "m.pad(e, [(0, 0), (0, 0)], mode='reflect')",
    "m.pad(a, 1, mode='edge', constant_values=9)",
    "m.pad(a, pad_width=1, mode='constant', constant_values=1)",
    "m.pad(b > 5, [(1, 0), (0, 2), (1, 1)], mode='edge')",
    # flip / roll
    "m.flip(a)", "m.flip(a, -1)", "m.flip(a, (0, 0))", "m.flip(a, 2)", "m.flip(z)", "m.flip(a, ())",
    "m.flip(a, [0, 1])", "m.flip(b, (0, 2))", "m.flip(e, 0)", "m.flip(1.0)",
    "m.roll(a, 1)", "m.roll(a, 1, 1)", "m.roll(a, 1, axis=1)", "m.roll(a, (1, 2), (0, 1))",
    "m.roll(a, 1, (0, 1))", "m.roll(a, (1, 2), 1)", "m.roll(a, (1, 2))",
    "m.roll(a, (1, 2, 3), (0, 1))",
    "m.roll(a, -4, 1)", "m.roll(a, 100)", "m.roll(a, (1, 1), (1, 1))", "m.roll(a, 1, 2)",
    "m.roll(z, 1)", "m.roll(m.zeros((0, 3)), 1, 0)", "m.roll(m.zeros((0, 3)), 1)",
    "m.roll(a, (1,), (0, 1))", "m.roll(a, (), (0, 1))", "m.roll(a, (1, 2), ())", "m.roll(a, 1, ())",
    "m.roll(a, np.int64(1), np.int64(0))", "m.roll(a, [1, 2], [0, 1])", "m.roll(b, -7, (0, 2))",
    "m.roll(a, 3, -1)", "m.roll(1.0, 1)", "m.roll(a, 1, -3)",
    # diagonals
    "m.diagonal(a)", "m.diagonal(a, 1)", "m.diagonal(a, -1)", "m.diagonal(a, 5)",
    "m.diagonal(a, -5)",
    "m.diagonal(b, 0, 0, 2)", "m.diagonal(b, 1, -1, 1)", "m.diagonal(b, 0, 1, 1)",
    "m.diagonal(b, 0, 1, -2)", "m.diagonal(b, 0, 0, 3)", "m.diagonal(b, 0, 5, 1)", "m.diagonal(v)",
    "m.diagonal(a, offset=1, axis1=1, axis2=0)", "m.diagonal([[1.0, 2.0]])", "a.diagonal(1)",
    "m.diagonal(m.zeros((3, 0)))",
    "m.diag(v)", "m.diag(v, 1)", "m.diag(v, k=-2)", "m.diag(a, 1)", "m.diag(a, -1)", "m.diag(b)",
    "m.diag(z)", "m.diag(m.zeros((0,)))", "m.diag(v > 1)", "a.diag()", "m.diag([1.0, 2.0])",
    "m.trace(a)", "m.trace(a, 1)", "m.trace(b, 0, 0, 2)", "m.trace(b, axis1=1, axis2=2)",
    "m.trace(a.astype(m.int8))", "m.trace(a > 2)", "m.trace(a.astype(m.uint8))",
    "m.trace(a.astype(m.float16))", "m.trace(a, dtype=m.float16)",
    "m.trace(a.astype(m.float32) + 0.7, dtype=m.int8)", "m.trace(v)", "m.trace(b, 0, 1, 1)",
    "m.trace(b, 0, 0, 5)", "m.trace(b, 0, -5, 1)", "m.trace(a, 5)", "m.trace(a.astype(m.int8), 5)",
    "m.trace([[1.0, 2.0]])",
    # an array for a list of arrays, one array
    "m.concatenate([z])", "m.concatenate([a], 5)", "m.concatenate([z], None)",
    "m.concatenate(b, 1)", "m.concatenate(b, None)", "m.concatenate(v)", "m.concatenate(e)",
    "m.concatenate(z)", "m.stack(b, 1)", "m.stack(v)", "m.stack(e)", "m.stack(z)",
    "m.pad(a, pad_width=1, mode='edge')",
    # shapes and ints as upstream's binding converts them (int32)
    "m.unflatten(a, 1, 3)", "m.unflatten(a, 1, (2**31,))", "m.broadcast_to(a, (2.0, 3))",
    "m.broadcast_to(a, (np.float32(2), 3))", "m.broadcast_to(a, (2**31, 2, 3))",
    "m.broadcast_to(a, m.array([2, 3]))", "m.broadcast_to(a, (True, 2, 3))",
    "m.roll(a, 2**31)", "m.roll(a, 2**31 - 1)", "m.roll(a, 1, 2**31)", "m.tile(a, 2**31)",
    "m.repeat(a, 2**31)", "m.repeat(a, 2, 2**31)", "m.pad(a, 2**31)", "m.pad(a, (1, 2**31))",
    "m.flatten(a, 2**31)", "m.flatten(a, 0, 2**31)", "m.squeeze(a, 2**31)",
    "m.expand_dims(a, (2**31,))", "m.transpose(a, (2**31, 0))", "m.swapaxes(a, 2**31, 0)",
    "m.moveaxis(a, 2**31, 0)", "m.diagonal(a, 2**31)", "m.diagonal(a, 0, 2**31, 1)",
    "m.diag(a, 2**31)", "m.trace(a, 2**31)", "m.split(a, 2, 2**31)",
    "m.concatenate([a, a], 2**31)", "m.concatenate([a], 2**31)", "m.stack([a, a], 2**31)",
    "m.unstack(a, axis=2**31)", "m.flip(a, 2**31)", "m.unflatten(a, 2**31, (3,))",
    "m.unflatten(a, -3, (3,))", "m.transpose(b, (0, 1, -4))",
    # 0-d arrays as ints
    "m.squeeze(m.zeros((1, 2, 1)), m.array(0))", "m.squeeze(m.zeros((1, 2)), m.array(0.0))",
    "m.expand_dims(a, m.array(0))", "m.tile(a, m.array(2))", "m.roll(a, m.array(1))",
    "m.roll(a, 1, m.array(0))", "m.flip(a, m.array(0))", "m.pad(a, [m.array(1), 2])",
    "m.pad(a, [(m.array(1), 2), (0, 1)])", "m.repeat(a, m.array(2.0))",
    "m.repeat(a, m.array(2), m.array(1))", "m.diag(v, m.array(1))",
    # pad: widths as arrays, the mode's type, constants beyond int64
    "m.pad(a, m.array(1))", "m.pad(a, m.array([1, 2]))", "m.pad(a, m.array([[1, 2], [0, 1]]))",
    "m.pad(a, m.array([1.5]))", "m.pad(a, 1, mode=None)", "m.pad(a, 1, constant_values=2**63)",
    "m.pad(f, 1, constant_values=-2**64)", "m.pad(a > 2, 1, constant_values=2**32)",
    "m.pad(a > 2, 1, constant_values=-2**63)", "m.pad(a > 2, 1, constant_values=2**40 + 1)",
    # contiguous
    "m.contiguous(a)", "m.contiguous(a.T, True)", "m.contiguous(b.T)", "m.contiguous(1.0)",
    "m.contiguous(z)",
]


def _run(m, expr):
    return eval(expr, _env(m))  # noqa: S307 - test expressions written above


def _check(got, want, expr):
    if isinstance(want, (list, tuple)):
        assert type(got) is type(want), f"{expr}: {type(got)} != {type(want)}"
    assert_same(got, want, msg=expr)


@pytest.mark.parametrize("expr", CASES)
def test_matches_upstream(expr):
    try:
        want = _run(mlx, expr)
        if isinstance(want, mlx.array):
            mlx.eval(want)
    except Exception as err:
        with pytest.raises(type(err)):
            got = _run(mx, expr)
            mx.eval(got)
        return
    _check(_run(mx, expr), want, expr)


# -- transforms beyond the op database -------------------------------------------------

def _both(fn, *arrays, **kw):
    """fn run on ember and on upstream with the same numpy inputs."""
    got = fn(mx, *[mx.array(x) for x in arrays], **kw)
    want = fn(mlx, *[mlx.array(x) for x in arrays], **kw)
    return got, want


_R = np.random.default_rng(1)


def _f32(*shape):
    return _R.standard_normal(shape).astype(np.float32)


VMAPS = [
    ("concat_unbatched", lambda m, x, y: m.vmap(lambda a, b: m.concatenate([a, b], -1),
                                                in_axes=(1, None))(x, y), [(2, 3, 4), (2, 5)]),
    ("stack_unbatched", lambda m, x, y: m.vmap(lambda a, b: m.stack([b, a], 0),
                                               in_axes=(None, 0))(x, y), [(2, 4), (3, 2, 4)]),
    ("split_axis1", lambda m, x: m.vmap(lambda a: m.split(a, [1, 2], axis=-1),
                                        in_axes=1)(x), [(3, 2, 4)]),
    ("unstack_axis2", lambda m, x: m.vmap(lambda a: m.unstack(a, axis=0), in_axes=2)(x),
     [(3, 2, 4)]),
    ("roll_flat", lambda m, x: m.vmap(lambda a: m.roll(a, 5), in_axes=1)(x), [(3, 2, 4)]),
    ("roll_axes", lambda m, x: m.vmap(lambda a: m.roll(a, (1, 2), (0, 1)), in_axes=-1)(x),
     [(3, 2, 4)]),
    ("flip", lambda m, x: m.vmap(lambda a: m.flip(a, 0), in_axes=1)(x), [(3, 2, 4)]),
    ("pad_edge", lambda m, x: m.vmap(lambda a: m.pad(a, (1, 2), mode="edge"), in_axes=1)(x),
     [(3, 2, 4)]),
    ("pad_reflect_out1", lambda m, x: m.vmap(lambda a: m.pad(a, 2, mode="reflect"),
                                             out_axes=1)(x), [(3, 4, 5)]),
    ("pad_const_array", lambda m, x, c: m.vmap(lambda a, b: m.pad(a, 1, constant_values=b),
                                               in_axes=(0, None))(x, c), [(3, 2, 2), ()]),
    ("diag", lambda m, x: m.vmap(lambda a: m.diag(a, 1), in_axes=1)(x), [(3, 2)]),
    ("diagonal", lambda m, x: m.vmap(lambda a: m.diagonal(a, -1, 1, 0), in_axes=2)(x),
     [(3, 4, 2)]),
    ("trace", lambda m, x: m.vmap(lambda a: m.trace(a, 1))(x), [(2, 3, 4)]),
    ("tile", lambda m, x: m.vmap(lambda a: m.tile(a, (2, 1, 2)), in_axes=1)(x), [(3, 2, 4)]),
    ("repeat_flat", lambda m, x: m.vmap(lambda a: m.repeat(a, 2), in_axes=1)(x), [(3, 2, 4)]),
    ("broadcast_arrays", lambda m, x, y: m.vmap(m.broadcast_arrays, in_axes=(1, None))(x, y),
     [(3, 2, 1), (4,)]),
    ("contiguous", lambda m, x: m.vmap(m.contiguous, in_axes=1)(x), [(3, 2, 4)]),
    ("grad_of_vmap_concat", lambda m, x: m.grad(lambda a: m.sum(m.vmap(
        lambda b: m.concatenate([b, m.flip(b)]))(a) * m.arange(12).reshape(2, 6)))(x),
     [(2, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", VMAPS, ids=[v[0] for v in VMAPS])
def test_vmap_matches_upstream(name, fn, shapes):
    got, want = _both(fn, *[_f32(*s) for s in shapes])
    _check(got, want, name)


def test_vmap_pad_with_batched_constant():
    x, c = _f32(3, 2, 2), _f32(3)
    got = mx.vmap(lambda a, b: mx.pad(a, [(1, 0), (0, 2)], constant_values=b))(mx.array(x),
                                                                              mx.array(c))
    for g, xi, ci in zip(mx.unstack(got), x, c):
        assert_same(g, mlx.pad(mlx.array(xi), [(1, 0), (0, 2)], constant_values=mlx.array(ci)))


def _fd_check(f, *xs, h=1e-6):
    """jvp of f against central differences, and vjp against jvp (<c, J t> = <J^T c, t>),
    in float64."""
    prim = [mx.array(x, mx.float64) for x in xs]
    tans = [_R.standard_normal(np.shape(x)) for x in xs]
    (out,), (jv,) = mx.jvp(f, prim, [mx.array(t, mx.float64) for t in tans])
    plus = f(*[mx.array(x + h * t, mx.float64) for x, t in zip(xs, tans)])
    minus = f(*[mx.array(x - h * t, mx.float64) for x, t in zip(xs, tans)])
    np.testing.assert_allclose(np_of(jv), (np_of(plus) - np_of(minus)) / (2 * h), rtol=1e-5,
                               atol=1e-6)
    cot = _R.standard_normal(out.shape)
    _, vj = mx.vjp(f, prim, [mx.array(cot, mx.float64)])
    lhs = float(np.sum(cot * np_of(jv)))
    rhs = sum(float(np.sum(np_of(v) * t)) for v, t in zip(vj, tans))
    assert abs(lhs - rhs) <= 1e-8 * max(1.0, abs(lhs))


def test_pad_constant_value_gradient():
    # upstream crashes differentiating the constant: check against central differences
    _fd_check(lambda x, c: mx.pad(x, [(1, 2), (0, 1)], constant_values=c) * 1.5,
              _f32(2, 3).astype(np.float64), np.float64(0.3))


@pytest.mark.parametrize("k", [0, 2, -1])
def test_diag_construct_gradients(k):
    x = _f32(3)
    _fd_check(lambda a: mx.diag(a, k), x.astype(np.float64))
    cot = _f32(3 + abs(k), 3 + abs(k))
    got = mx.vjp(lambda a: mx.diag(a, k), [mx.array(x)], [mx.array(cot)])[1][0]
    want = mlx.vjp(lambda a: mlx.diag(a, k), [mlx.array(x)], [mlx.array(cot)])[1][0]
    assert_same(got, want)


def test_diagonal_of_empty_gradient():
    got = mx.grad(lambda a: mx.sum(mx.diagonal(a)))(mx.zeros((0, 3)))
    assert got.shape == (0, 3) and got.dtype == mx.float32


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric"])
def test_pad_mode_second_order(mode):
    # PadAdjoint's own rules: the gradient of a gradient
    def f(x):
        g = mx.grad(lambda y: mx.sum(mx.pad(y, (3, 2), mode=mode) ** 3))(x)
        return g * 1.0
    _fd_check(f, _f32(4).astype(np.float64))


def test_split_overlapping_pieces_gradient():
    _fd_check(lambda x: mx.concatenate(mx.split(x, [4, 1, -1], axis=1), axis=1) ** 2,
              _f32(2, 6).astype(np.float64))


# -- graph shape: fast paths build one node ------------------------------------------------

@pytest.mark.parametrize("expr,prim", [
    ("m.concatenate([x, x, x], 1)", "Concatenate"), ("m.stack([x, x], -1)", "Stack"),
    ("m.pad(x, 2)", "Pad"), ("m.pad(x, 1, mode='reflect')", "Pad"), ("m.flip(x)", "Flip"),
    ("m.roll(x, 1, 0)", "Roll"), ("m.diagonal(x)", "Diagonal"),
    ("m.diag(m.flatten(x))", "DiagonalAdjoint"),
])
def test_single_kernel(expr, prim):
    x = mx.array(_f32(3, 4))
    y = eval(expr, {"m": mx, "x": x})  # noqa: S307
    assert y._prim.name == prim
    assert all(i is x or i._prim.name == "Reshape" for i in y._inputs)
    mx.eval(y)


def test_ops_return_lists_and_tuples_like_upstream():
    a = mx.zeros((2, 3))
    assert type(mx.split(a, 2)) is list
    assert type(mx.unstack(a)) is tuple
    assert type(mx.broadcast_arrays(a, a)) is list
    assert type(mx.atleast_1d(a, a)) is list
    assert list(iter(a))[1].shape == (3,)


def _same_message(f):
    try:
        want = f(mlx)
    except Exception as e:  # noqa: BLE001 - any error upstream raises
        up = e
    else:  # a valid case among the bad ones: the same result
        assert_same(f(mx), want)
        return
    with pytest.raises(type(up)) as got:
        f(mx)
    # the binding's TypeError also lists the argument types it was called with
    assert str(got.value) == str(up).split("\n\nInvoked with")[0]


@pytest.mark.parametrize("src", [(2, 3), (0, 3), (4,), ()])
@pytest.mark.parametrize("shape", [(-1, 5), (4, -1), (1, -1, 7), (-1, -2), (-2, -1), (-1, -1),
                                   (0, -1), (7,), (2.0, 3), (2, np.float32(3)), 3.0, 6, "ab",
                                   None, [[2], 3], (2**31,), (-2**31 - 1, 1), (2**40, -1)])
def test_reshape_error_messages_match(src, shape):
    if src == (0, 3) and shape in ((-1, -2), (-2, -1)):
        pytest.skip("upstream builds an array with a negative dimension here")
    _same_message(lambda m: m.reshape(m.ones(src), shape))


def test_reshape_to_the_same_shape_with_float_dims_raises():
    _same_message(lambda m: m.reshape(m.ones((2, 3)), (2.0, 3)))


@pytest.mark.parametrize("ios", [4, 5, 0, -2, 2.0, [1.0], np.float64(2), "ab", None, 2**31,
                                 -2**31 - 1])
@pytest.mark.parametrize("axis", [0, -1, 1, 2.0])
def test_split_error_messages_match(ios, axis):
    _same_message(lambda m: m.split(m.ones((3, 6)) if axis == -1 else m.ones((6, 3)), ios,
                                    axis=axis))


@pytest.mark.parametrize("ios", [True, [True, 4], np.int64(2), np.array([1, 2])])
def test_split_takes_what_upstream_takes(ios):
    assert [np_of(e).tolist() for e in mx.split(mx.arange(6), ios)] == \
        [np.array(u).tolist() for u in mlx.split(mlx.arange(6), ios)]


@pytest.mark.parametrize("expr", [
    "m.broadcast_to(m.ones((2, 3)), (3, 3))", "m.broadcast_to(m.ones((2, 3)), (1,))",
    "m.broadcast_to(m.ones((3, 1)), (3,))", "m.pad(m.ones(3), 1, mode='x')",
    "m.flatten(m.ones((2, 3)), 5)", "m.flatten(m.ones((2, 3)), -5, -6)",
    "m.flatten(m.ones((2, 3)), 1, 0)", "m.flatten(m.ones((2, 3)), 0, 9)",
    "m.flatten(m.ones((2, 3)), -9, 0)", "m.pad(m.arange(3), -1)", "m.pad(m.arange(3), [(0, -1)])",
    "m.pad(m.ones((2, 2)), [(0, 1)] * 3)", "m.broadcast_to(m.ones((2, 3)), (2, 1))",
    "m.broadcast_to(m.zeros((0, 2)), (1, 2))", "m.tile(m.ones((2, 3)), [1, -1])",
    "m.pad(m.arange(3).astype(m.uint8), 1, constant_values=-1)",
    "m.pad(m.arange(3), 1, constant_values=2**31)", "m.pad(m.arange(3), 1, constant_values=[1])",
    "m.unflatten(m.ones((2, 3)), -3, (3,))", "m.unflatten(m.ones((2, 3)), 1, (-1, 4))",
    "m.unflatten(m.ones((2, 3)), 1, (-2, -1))", "m.transpose(m.ones((2, 3, 4)), (0, 1, -4))",
])
def test_shape_errors_read_as_upstream(expr):
    def run(m):
        try:
            out = eval(expr, {"m": m})  # noqa: S307
            m.eval(out)
        except Exception as e:  # noqa: BLE001 - compared below
            return (type(e), str(e))
        return np.array(out)
    got, want = run(mx), run(mlx)
    if isinstance(want, tuple):
        assert got == want
    else:
        np.testing.assert_array_equal(got, want)


_DTYPES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
           "float16", "bfloat16", "float32", "float64", "complex64"]


def _bits(x, m):
    """dtype, shape and bytes of array `x` of module `m` (bfloat16 as its bits)."""
    if x.dtype == m.bfloat16:
        x = x.view(m.uint16)
    return str(x.dtype).split(".")[-1], tuple(x.shape), np.array(x).tobytes()


@pytest.mark.parametrize("value", [
    "7", "-1", "2.5", "-2.5", "True", "300", "2**31", "-2**31 - 1", "2**32", "-2**63", "1e10",
    "-1e10", "-3e9", "16777217.0", "1e40", "-0.0", "float('nan')", "-float('nan')",
    "float('-inf')", "1 + 2j", "m.array(2.5)", "m.array(-3, m.int8)", "m.array(70000.5)",
    "m.array([2.5, 1])", "np.float16(3.5)", "np.uint8(250)"])
@pytest.mark.parametrize("dtype", _DTYPES)
@on_cpu  # (out-of-range and NaN conversions: upstream's CPU casts)
def test_pad_constant_bits_match_upstream(dtype, value):
    """The padding value converted to each dtype as upstream converts it, bit for bit
    (NaN payloads, wrap-around of floats into unsigned types included)."""
    def run(m):
        x = m.array(np.arange(4).reshape(2, 2)).astype(getattr(m, dtype))
        try:
            out = m.pad(x, [(1, 0), (0, 1)], constant_values=eval(value, {"m": m, "np": np}))
            return _bits(out, m)
        except Exception as e:  # noqa: BLE001 - compared below
            return type(e)
    assert run(mx) == run(mlx)


@pytest.mark.parametrize("case", ["concatenate", "stack", "tile", "repeat", "pad", "pad_complex",
                                  "pad_array_value", "transpose_reshape", "mixed_concat"])
def test_large_outputs_through_the_buffer_cache_match_upstream(case):
    """Outputs of 16 MB and more come from reused buffers on the CPU; twice in a row (the
    second call reuses the first's buffer) they equal upstream's."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 2048)).astype(np.float32)
    b = rng.standard_normal((1024, 2048)).astype(np.float32)

    def run(m):
        x, y = m.array(a), m.array(b)
        if case == "concatenate":
            return m.concatenate([x, y], axis=1)
        if case == "stack":
            return m.stack([x, y], axis=1)
        if case == "tile":
            return m.tile(x, (2, 2))
        if case == "repeat":
            return m.repeat(x, 2, axis=1)
        xy = m.concatenate([x, y])
        if case == "pad":
            return m.pad(xy, ((3, 1), (2, 5)), constant_values=-2.5)
        if case == "pad_complex":
            return m.pad(x.astype(m.complex64), 1, constant_values=1 + 2j)
        if case == "pad_array_value":
            return m.pad(xy, 2, constant_values=m.array(7.0))
        if case == "transpose_reshape":
            return m.reshape(m.transpose(m.stack([x, y])), (-1, 4))
        return m.concatenate([x.astype(m.float16), y, x.astype(m.int32)], axis=0)

    with mx.stream(mx.cpu):
        got = [np.array(run(mx)) for _ in range(2)]
    want = np.array(run(mlx))
    for g in got:
        assert g.dtype == want.dtype and g.shape == want.shape
        np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("args", [(), (2, 3), ((2.0,),), ((2,), [1.5]), ((2,), (3,)),
                                  ((2, 1), (1, 3)), ([2], (1,)), ((2,), ()), ((2,), 3),
                                  (3, (2,)), ((True,),)])
def test_broadcast_shapes_as_upstream(args):
    try:
        want = mlx.broadcast_shapes(*args)
    except Exception as e:  # noqa: BLE001 - the same error type is the point
        with pytest.raises(type(e)) as got:
            mx.broadcast_shapes(*args)
        if str(e).startswith("["):
            assert str(got.value) == str(e)
        return
    assert mx.broadcast_shapes(*args) == want


@pytest.mark.parametrize("expr", [
    "a.reshape((3, -1), 1)", "a.reshape((3, 2), (1,))", "a.reshape(3.0, 2)", "a.reshape([3, 2])",
    "a.reshape(3, 2)", "a.reshape(6)", "a.reshape(np.int64(6))", "a.reshape(True, 6)",
    "a.reshape(6, None)", "a.reshape(m.array([3, 2]))", "a.reshape(np.array([3, 2]))",
    "b.transpose((1, 2, 0), 1)", "b.transpose(None)", "b.transpose()", "b.transpose(1, 2, 0)",
    "b.transpose([1, 2, 0])", "b.transpose(np.int32(1), 2, 0)"])
def test_method_shape_arguments_as_upstream(expr):
    def run(m):
        a, b = m.zeros((6,)), m.zeros((2, 3, 4))  # noqa: F841 - read by the expression
        return eval(expr)
    try:
        want = run(mlx)
    except Exception as e:  # noqa: BLE001 - the same error type is the point
        with pytest.raises(type(e)):
            run(mx)
        return
    assert run(mx).shape == want.shape


@pytest.mark.parametrize("axis", [-3, 0, (0, -1), (-2, 2)])
def test_squeeze_message_names_the_axis_as_given(axis):
    with pytest.raises(ValueError) as want:
        mlx.squeeze(mlx.zeros((2, 1, 4)), axis)
    with pytest.raises(ValueError) as got:
        mx.squeeze(mx.zeros((2, 1, 4)), axis)
    assert str(got.value) == str(want.value)
