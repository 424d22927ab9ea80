"""Entries for gather_mm, segmented_mm, block_masked_mm, vecdot, kron and
hadamard_transform. Upstream has no jvp for the first three (and no vjp for
segmented_mm): their grads are checked in tests/core/test_matmul_ext.py."""

import numpy as np

from tests.opdb import ALL_REAL, FLOATS, Op, add, rand


def _groups(groups):
    """samples from (shapes of float inputs, extra fixed numpy arrays) per sample"""
    def samples(rng, dt):
        return [tuple(rand(rng, s, dt) for s in shapes) + tuple(extra)
                for shapes, extra in groups]
    return samples


_I = np.array
_GATHER = [
    (((4, 3, 5), (2, 5, 6)), (_I([0, 3, 1], np.uint32), _I([1, 0, 1], np.uint32))),
    (((4, 3, 5), (2, 5, 6)), (_I([[0], [3]], np.int32), _I([[1, 0, 1]], np.int64))),
    (((2, 2, 3, 5), (5, 6)), (_I([3, 0], np.int32), _I([0, 0], np.int32))),
    (((3, 5), (2, 5, 6)), (_I([0, 0, 0], np.int32), _I([1, 0, 1], np.int32))),
    (((4, 3, 5), (2, 5, 6)), (_I([], np.uint32), _I([], np.uint32))),
]
add(Op("gather_mm", lambda m, a, b, li, ri: m.gather_mm(a, b, li, ri), _groups(_GATHER),
       dtypes=("float32",), grad=False))
add(Op("gather_mm_lhs", lambda m, a, b, li: m.gather_mm(a, b, li),
       _groups([(((4, 3, 5), (3, 5, 2)), (_I([1, 3, 0], np.int32),)),
                (((4, 5), (2, 3, 5, 2)), (_I([[0, 0, 0], [0, 0, 0]], np.int32),))]),
       dtypes=("float32",), grad=False))
add(Op("gather_mm_default", lambda m, a, b: m.gather_mm(a, b),
       _groups([(((2, 3, 5), (2, 5, 4)), ()), (((3, 5), (5, 4)), ()), (((5,), (2, 5, 4)), ()),
                (((2, 3, 5), (5,)), ())]),
       dtypes=("float32", "int32"), grad=False))
add(Op("segmented_mm_errors", lambda m, a, b, seg: m.segmented_mm(a, b, seg),
       _groups([(((2, 2, 6), (6, 3)), (_I([[0, 6]], np.int32),)),
                (((2, 6), (6,)), (_I([[0, 6]], np.int32),)),
                (((2, 6), (6, 3)), (_I([0, 6, 2], np.int32),)),
                (((2, 6), (6, 3)), (_I([[0.0, 6.0]], np.float32),))]),
       dtypes=("float32",), grad=False, vmap=False))
add(Op("gather_mm_errors", lambda m, a, b: m.gather_mm(a, b),
       _groups([(((4, 3, 5), (2, 5, 6)), ()), (((3, 5), (4, 6)), ()), (((), (5, 6)), ())]),
       dtypes=("float32",), grad=False, vmap=False))

_SEGMENTS = [
    (((3, 10), (10, 4)), (_I([[0, 3], [3, 10], [2, 2]], np.int32),)),
    (((7, 10), (10, 4)), (_I([[[0, 10]], [[5, 2]]], np.uint32),)),
    (((2, 6), (6, 3)), (_I([0, 6], np.int64),)),
    (((2, 6), (6, 3)), (_I(np.zeros((0, 2)), np.int32),)),
]
# (upstream's float16 and bfloat16 segmented_mm give wrong rows on CPU: those dtypes are
# checked against float32 in test_matmul_ext.py)
add(Op("segmented_mm", lambda m, a, b, seg: m.segmented_mm(a, b, seg), _groups(_SEGMENTS),
       dtypes=("float32", "int32"), grad=False))


def _block(bs, shapes, nmasks, bool_masks=()):
    def samples(rng, dt):
        out = []
        for (sa, sb) in shapes:
            m, k, n = sa[-2], sa[-1], sb[-1]
            c = lambda d: -(-d // bs)  # noqa: E731
            ms = [(c(m), c(n)), (c(m), c(k)), (c(k), c(n))][:nmasks]
            masks = [rng.random(s) > 0.3 if i in bool_masks else
                     rng.uniform(0, 2, s).astype(np.float32) for i, s in enumerate(ms)]
            out.append((rand(rng, sa, dt), rand(rng, sb, dt)) + tuple(masks))
        return out
    return samples


_BM_SHAPES = [((40, 36), (36, 70)), ((2, 33, 65), (65, 20))]
add(Op("block_masked_mm_32", lambda m, a, b, mo, ml, mr: m.block_masked_mm(a, b, 32, mo, ml, mr),
       _block(32, _BM_SHAPES, 3), dtypes=("float32",), grad=False))
add(Op("block_masked_mm_64_bool", lambda m, a, b, mo, ml: m.block_masked_mm(a, b, 64, mo, ml),
       _block(64, [((70, 40), (40, 66))], 2, bool_masks=(0, 1)), dtypes=("float32",),
       grad=False))
add(Op("block_masked_mm_rhs", lambda m, a, b, mo, ml, mr: m.block_masked_mm(
    a, b, 32, None, None, mr), _block(32, _BM_SHAPES, 3, bool_masks=(2,)), dtypes=("float32",),
    grad=False))
add(Op("block_masked_mm_nomask", lambda m, a, b: m.block_masked_mm(a, b, 16),
       _groups([(((3, 4), (4, 5)), ()), (((2, 3, 4), (4,)), ())]), grad=False))


def _pairs(shapes):
    def samples(rng, dt):
        return [(rand(rng, sa, dt), rand(rng, sb, dt)) for sa, sb in shapes]
    return samples


_VECDOT = [((2, 3), (2, 3)), ((2, 1, 3), (1, 4, 3)), ((2, 3), (1, 3)), ((3,), (3,)),
           ((2, 0), (2, 0))]
add(Op("vecdot", lambda m, a, b: m.vecdot(a, b), _pairs(_VECDOT),
       dtypes=FLOATS + ("int32", "uint8", "bool", "complex64")))
add(Op("vecdot_errors", lambda m, a, b: m.vecdot(a, b),
       _pairs([((2, 3), (3,)), ((2, 3), (2, 4)), ((), (3,)), ((2, 3), (4, 3))]), grad=False,
       vmap=False))
add(Op("vecdot_axis0", lambda m, a, b: m.vecdot(a, b, axis=0),
       _pairs([((3, 2), (3, 2)), ((3, 3), (3,)), ((2, 3), (2, 1)), ((4,), (4,))]),
       dtypes=FLOATS + ("int16",)))
add(Op("vecdot_axis_neg2", lambda m, a, b: m.vecdot(a, b, axis=-2),
       _pairs([((2, 3, 4), (2, 3, 4)), ((2, 3), (2, 3))])))
add(Op("vecdot_axis_errors", lambda m, a, b: m.vecdot(a, b, axis=-2),
       _pairs([((3, 4), (2, 3, 4)), ((2, 3), (2, 3, 1)), ((3,), (3,))]), grad=False,
       vmap=False))

_KRON = [((2, 2), (2, 3)), ((2,), (2, 3)), ((), (3,)), ((2, 1, 2), (3, 1)), ((3,), ()),
         ((1,), (1, 1, 2))]
add(Op("kron", lambda m, a, b: m.kron(a, b), _pairs(_KRON),
       dtypes=ALL_REAL + ("complex64",)))
add(Op("kron_empty", lambda m, a, b: m.kron(a, b), _pairs([((0, 2), (2,)), ((3,), (2, 0))]),
       grad=False, vmap=False))


def _singles(shapes):
    def samples(rng, dt):
        return [(rand(rng, s, dt),) for s in shapes]
    return samples


_HAD = [(8,), (3, 16), (2, 12), (24,), (1,), (), (2, 3, 48), (4, 1024)]
add(Op("hadamard_transform", lambda m, a: m.hadamard_transform(a), _singles(_HAD),
       dtypes=FLOATS + ("int32", "bool", "uint8")))
add(Op("hadamard_transform_errors", lambda m, a: m.hadamard_transform(a),
       _singles([(3,), (0,), (2, 6), (40, 3)]), grad=False, vmap=False))
add(Op("hadamard_transform_scale", lambda m, a: m.hadamard_transform(a, 0.25),
       _singles([(16,), (2, 96), (), (1,)]), dtypes=FLOATS + ("int32",)))
# upstream's vjp applies H instead of H^T, which differs for the non-symmetric orders 20
# and 28: their grads are checked against finite differences in test_matmul_ext.py
add(Op("hadamard_transform_20_28", lambda m, a: m.hadamard_transform(a),
       _singles([(20,), (2, 40), (28,), (3, 56), (5, 112)]), grad=False))
