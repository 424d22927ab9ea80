"""Entries for searchsorted and unique."""

import numpy as np

from tests.opdb import ALL_REAL, FLOATS, Op, add, rand

_SEQ = np.array([-3.0, -1.5, -1.5, 0.0, 0.5, 2.0, 2.0, 7.0], np.float32)


def _values(shapes):
    def samples(rng, dt):
        out = []
        for s in shapes:
            x = rand(rng, s, dt, -4.0, 4.0)
            if x.dtype.kind == "f" and x.size:  # hit some elements exactly
                x.flat[::2] = rng.choice(_SEQ, x.flat[::2].shape)
            out.append((x,))
        return out
    return samples


_SHAPES = [(5,), (2, 3), (), (0,), (3, 1, 2)]
for side in ("left", "right"):
    add(Op(f"searchsorted_{side}",
           lambda m, v, side=side: m.searchsorted(m.array(_SEQ), v, side),
           _values(_SHAPES), dtypes=FLOATS + ALL_REAL, grad=False))
    add(Op(f"searchsorted_int_seq_{side}",
           lambda m, v, side=side: m.searchsorted(m.array(np.array([-5, 0, 0, 3, 8], np.int8)),
                                                  v, side=side),
           _values(_SHAPES), dtypes=FLOATS + ALL_REAL, grad=False))


def _sorted_pair(shapes):
    def samples(rng, dt):
        return [(np.sort(rand(rng, sq, dt)) if sq else rand(rng, sq, dt), rand(rng, sv, dt))
                for sq, sv in shapes]
    return samples


add(Op("searchsorted_both", lambda m, s, v: m.searchsorted(s, v),
       _sorted_pair([((6,), (4,)), ((0,), (3,)), ((3,), (2, 2)), ((1,), ())]),
       dtypes=FLOATS + ALL_REAL, grad=False, vmap=False))
add(Op("searchsorted_errors", lambda m, s, v: m.searchsorted(s, v),
       _sorted_pair([((2, 3), (4,)), ((), (3,))]), grad=False, vmap=False))


def _repeats(shapes):
    def samples(rng, dt):
        out = []
        for s in shapes:
            x = rand(rng, s, dt)
            if x.size and x.dtype.kind == "f":
                x = rng.choice(x.reshape(-1)[:3], s).astype(x.dtype)
            out.append((x,))
        return out
    return samples


_U = [(6,), (2, 5), (), (7,), (3, 3)]
add(Op("unique", lambda m, a: m.unique(a, 4), _repeats(_U), dtypes=FLOATS + ALL_REAL,
       grad=False))
add(Op("unique_all", lambda m, a: m.unique(a, 3, True, True, True), _repeats(_U),
       dtypes=FLOATS + ("int32", "uint8", "bool", "int64"), grad=False))
add(Op("unique_fill", lambda m, a: m.unique(a, 9, return_counts=True, fill_value=-1),
       _repeats(_U + [(0,)]), dtypes=FLOATS + ("int32", "uint32"), grad=False))
add(Op("unique_size0", lambda m, a: m.unique(a, 0, return_inverse=True), _repeats(_U),
       grad=False))
