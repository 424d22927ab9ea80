"""Entries for the shape family: reshaping, transposition, broadcasting, joining and
splitting, repeat/tile, padding, flips and rolls, diagonals."""

from tests.opdb import FLOATS, INTS, Op, add, rand

# float32 first: the vmap check runs in the first dtype
DTYPES = FLOATS + INTS + ("bool", "complex64")


def _s(*shape_sets):
    """samples(rng, dt): one tuple of random arrays per entry of shape_sets."""
    def samples(rng, dt):
        return [tuple(rand(rng, s, dt) for s in shapes) for shapes in shape_sets]
    return samples


def _op(name, fn, samples, **kw):
    kw.setdefault("dtypes", DTYPES)
    add(Op(name, fn, samples, **kw))


# -- reshaping -------------------------------------------------------------------------
_op("reshape_flat", lambda m, x: m.reshape(x, (-1,)), _s([(2, 3, 4)], [()], [(0, 3)]))
_op("reshape_split", lambda m, x: m.reshape(x, (2, -1) + x.shape[1:]),
    _s([(4, 3)], [(6,)], [(0, 3)]))
_op("reshape_unit_dims", lambda m, x: m.reshape(x, (1,) + x.shape + (1,)),
    _s([(3, 2)], [()], [(0,)]))
_op("flatten", lambda m, x: m.flatten(x), _s([(2, 3, 4)], [()], [(3, 0)]))
_op("flatten_range", lambda m, x: m.flatten(x, 1, -1), _s([(2, 3, 4)], [(2, 5)], [(1, 0, 2)]))
_op("flatten_neg", lambda m, x: m.flatten(x, -3, -2), _s([(2, 3, 4)], [(1, 2, 3, 2)]))
_op("unflatten", lambda m, x: m.unflatten(x, -1, (2, -1)), _s([(3, 4)], [(6,)], [(2, 0)]))
_op("unflatten_axis0", lambda m, x: m.unflatten(x, 0, (1, 2, 2)), _s([(4, 3)], [(4,)]))
_op("squeeze", lambda m, x: m.squeeze(x), _s([(1, 3, 1)], [(1,)], [()], [(0, 1)]))
_op("squeeze_axes", lambda m, x: m.squeeze(x, (0, -1)), _s([(1, 3, 1)], [(1, 0, 1)]))
_op("expand_dims", lambda m, x: m.expand_dims(x, (0, -1)), _s([(2, 3)], [()], [(0,)]))
_op("expand_dims_mid", lambda m, x: m.expand_dims(x, 1), _s([(2, 3)], [(4,)]))
_op("atleast_1d", lambda m, x: m.atleast_1d(x), _s([()], [(3,)], [(2, 3)]))
_op("atleast_2d", lambda m, x: m.atleast_2d(x), _s([()], [(3,)], [(2, 3)], [(2, 1, 3)]))
_op("atleast_3d", lambda m, x: m.atleast_3d(x), _s([()], [(3,)], [(2, 3)], [(2, 1, 3)]))
_op("atleast_3d_many", lambda m, x, y: m.atleast_3d(x, y), _s([(3,), (2, 3)]))

# -- transposition ---------------------------------------------------------------------
_op("transpose", lambda m, x: m.transpose(x), _s([(2, 3, 4)], [(3,)], [()], [(0, 2)]))
_op("transpose_axes", lambda m, x: m.transpose(x, (1, -1, 0)), _s([(2, 3, 4)], [(2, 0, 1)]))
_op("permute_dims", lambda m, x: m.permute_dims(x, (2, 0, 1)), _s([(2, 3, 4)]))
_op("matrix_transpose", lambda m, x: m.matrix_transpose(x), _s([(2, 3, 4)], [(3, 2)]))
_op("swapaxes", lambda m, x: m.swapaxes(x, 0, -1), _s([(2, 3, 4)], [(3, 2)], [(0, 3)]))
_op("moveaxis", lambda m, x: m.moveaxis(x, -1, 0), _s([(2, 3, 4)], [(3, 2)], [(5,)]))
_op("moveaxis_mid", lambda m, x: m.moveaxis(x, 0, 1), _s([(2, 3, 4)], [(3, 2)]))

# -- broadcasting ----------------------------------------------------------------------
_op("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 4)),
    _s([(3, 1)], [()], [(1, 3, 4)], [(4,)]))
_op("broadcast_to_empty", lambda m, x: m.broadcast_to(x, (2, 0, 3)), _s([(1, 3)], [(0, 1)]))
_op("broadcast_arrays", lambda m, x, y: m.broadcast_arrays(x, y),
    _s([(3, 1), (4,)], [(), (2, 3)], [(2, 1, 1), (1, 3)]))

# -- joining and splitting -------------------------------------------------------------
_op("concatenate", lambda m, x, y: m.concatenate([x, y]),
    _s([(2, 3), (4, 3)], [(1,), (3,)], [(0, 2), (3, 2)]))
_op("concatenate_neg_axis", lambda m, x, y, z: m.concatenate([x, y, z], axis=-1),
    _s([(3, 2), (3, 0), (3, 4)], [(2, 1, 1), (2, 1, 3), (2, 1, 2)]))
_op("concatenate_flat", lambda m, x, y: m.concatenate([x, y], axis=None),
    _s([(2, 3), (4,)], [(), (0, 2)]))
# grads only through the input that is not cast (casts round)
_op("concatenate_promote", lambda m, x, y: m.concatenate([x, y.astype(m.int8)], 1),
    _s([(2, 3), (2, 2)]), grad_argnums=(0,))
_op("concatenate_promote_f16", lambda m, x, y: m.concat([y.astype(m.float16), x], 0),
    _s([(2, 3), (1, 3)]), grad_argnums=(0,))
_op("stack", lambda m, x, y: m.stack([x, y]), _s([(2, 3), (2, 3)], [(), ()], [(0, 2), (0, 2)]))
_op("stack_neg_axis", lambda m, x, y, z: m.stack([x, y, z], axis=-1), _s([(2, 3)] * 3))
_op("stack_mid", lambda m, x, y: m.stack([x, y], axis=1), _s([(2, 3), (2, 3)]))
_op("stack_promote", lambda m, x, y: m.stack([x.astype(m.uint8), y], axis=-2),
    _s([(2, 3), (2, 3)]), grad_argnums=(1,))
_op("split_sections", lambda m, x: m.split(x, 3, axis=1), _s([(2, 6)], [(4, 3, 2)], [(2, 0)]))
_op("split_indices", lambda m, x: m.split(x, [1, 3], axis=-1), _s([(2, 5)], [(3, 4)], [(2, 1)]))
_op("split_overlapping", lambda m, x: m.split(x, [3, 1, -1]), _s([(5, 2)], [(6,)]))
_op("split_one", lambda m, x: m.split(x, 2)[1], _s([(4, 3)]))
_op("unstack", lambda m, x: m.unstack(x, axis=1), _s([(2, 3)], [(3, 1, 2)], [(0, 2)]))
_op("unstack_first", lambda m, x: m.unstack(x), _s([(3,)], [(2, 3)]))
_op("repeat", lambda m, x: m.repeat(x, 3, axis=1), _s([(2, 3)], [(2, 1, 2)], [(0, 2)]))
_op("repeat_flat", lambda m, x: m.repeat(x, 2), _s([(2, 3)], [()], [(0,)]))
_op("repeat_neg_axis", lambda m, x: m.repeat(x, 2, axis=-1), _s([(2, 3)], [(4,)]))
_op("tile", lambda m, x: m.tile(x, (2, 1, 3)), _s([(2, 3)], [()], [(2, 1, 2)], [(0, 2)]))
_op("tile_int", lambda m, x: m.tile(x, 3), _s([(2, 3)], [(4,)]))

# -- padding ---------------------------------------------------------------------------
_op("pad", lambda m, x: m.pad(x, ((1, 2), (0, 3))), _s([(2, 3)], [(0, 2)], [(1, 1)]))
_op("pad_int", lambda m, x: m.pad(x, 2), _s([(2, 3)], [(3,)], [()], [(1, 2, 2)]))
_op("pad_pair", lambda m, x: m.pad(x, (0, 2), constant_values=3), _s([(2, 3)], [(4,)]))
_op("pad_value_array", lambda m, x, c: m.pad(x, [(1, 1), (2, 0)], constant_values=c),
    _s([(2, 3), ()], [(0, 1), ()]), grad_argnums=(0,))
_op("pad_edge", lambda m, x: m.pad(x, ((1, 3), (2, 0)), mode="edge"),
    _s([(2, 3)], [(1, 4)], [(3, 1)]))
_op("pad_reflect", lambda m, x: m.pad(x, ((1, 3), (4, 2)), mode="reflect"),
    _s([(2, 3)], [(4, 5)], [(1, 2)]))
_op("pad_symmetric", lambda m, x: m.pad(x, ((2, 3), (0, 4)), mode="symmetric"),
    _s([(2, 3)], [(1, 5)], [(3, 1)]))
_op("pad_edge_3d", lambda m, x: m.pad(x, [(0, 0), (1, 1), (2, 1)], mode="edge"),
    _s([(2, 3, 4)], [(0, 2, 2)]))

# -- flips and rolls -------------------------------------------------------------------
_op("flip", lambda m, x: m.flip(x), _s([(2, 3, 4)], [()], [(0, 3)]))
_op("flip_axis", lambda m, x: m.flip(x, -1), _s([(2, 3)], [(5,)]))
_op("flip_axes", lambda m, x: m.flip(x, (0, 2)), _s([(2, 3, 4)], [(3, 1, 2)]))
_op("roll", lambda m, x: m.roll(x, 2), _s([(2, 3)], [()], [(0, 3)], [(5,)]))
_op("roll_axis", lambda m, x: m.roll(x, -1, 1), _s([(2, 3)], [(4, 5, 2)]))
_op("roll_axes", lambda m, x: m.roll(x, (1, 5), (0, -1)), _s([(2, 3)], [(4, 5, 2)]))
_op("roll_shared_shift", lambda m, x: m.roll(x, 1, axis=(0, 1)), _s([(3, 4)], [(2, 2, 3)]))

# -- diagonals -------------------------------------------------------------------------
# upstream's diagonal vjp fails on empty inputs and its diag has no jvp (scatter): the
# grads of those are checked in tests/core/test_shape.py
_op("diagonal", lambda m, x: m.diagonal(x), _s([(3, 4)], [(4, 3)], [(2, 3, 4)], [(0, 3)]),
    fd_samples=_s([(3, 4)], [(4, 3)], [(2, 3, 4)]))
_op("diagonal_offset", lambda m, x: m.diagonal(x, 1, -1, 0),
    _s([(3, 4)], [(4, 2, 3)], [(2, 1)]))
_op("diagonal_neg_offset", lambda m, x: m.diagonal(x, -2, 2, 1), _s([(2, 4, 3)], [(2, 2, 5)]))
_op("diag_construct", lambda m, x: m.diag(x), _s([(3,)], [(0,)]), grad=False)
_op("diag_construct_k", lambda m, x: m.diag(x, -2), _s([(3,)], [(1,)]), grad=False)
_op("diag_extract", lambda m, x: m.diag(x, 1), _s([(3, 4)], [(4, 2)], [(1, 1)]))
_op("trace", lambda m, x: m.trace(x), _s([(3, 4)], [(4, 3)], [(2, 2)]))
_op("trace_3d", lambda m, x: m.trace(x, -1, 2, 0), _s([(3, 2, 4)], [(2, 5, 3)]))
_op("trace_dtype", lambda m, x: m.trace(x, dtype=m.float32), _s([(3, 3)], [(2, 4)]),
    grad=False)

# -- layout ----------------------------------------------------------------------------
_op("contiguous", lambda m, x: m.contiguous(x), _s([(2, 3)], [()], [(0,)]))
_op("contiguous_transposed", lambda m, x: m.contiguous(m.swapaxes(x, 0, 1), True),
    _s([(2, 3, 2)]))
