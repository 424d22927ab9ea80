"""Entries for median, minmax, count_nonzero, diff, cumulative_sum and cumulative_prod."""

from tests.opdb import ALL_REAL, FLOATS, Op, add, rand


def _singles(shapes, low=-2.0, high=2.0):
    def samples(rng, dt):
        return [(rand(rng, s, dt, low, high),) for s in shapes]
    return samples


_MEDIAN = [(4,), (5,), (3, 4), (2, 3, 5), (), (1,)]
add(Op("median", lambda m, a: m.median(a), _singles(_MEDIAN), dtypes=FLOATS + ALL_REAL))
add(Op("median_axis", lambda m, a: m.median(a, -1), _singles([(3, 4), (2, 5), (2, 3, 1),
                                                               (0, 3)]),
       dtypes=FLOATS + ("int32", "uint8", "bool", "float64")))
add(Op("median_empty_axis", lambda m, a: m.median(a, -1), _singles([(3, 0)]), grad=False,
       vmap=False))
add(Op("median_axes_keep", lambda m, a: m.median(a, (0, 2), keepdims=True),
       _singles([(2, 3, 4), (3, 1, 1), (1, 2, 5)]), dtypes=FLOATS + ("int64",)))
add(Op("median_axis_list", lambda m, a: m.median(a, [1], True), _singles([(3, 4), (2, 3, 5)]),
       dtypes=("float32", "complex64")))
add(Op("median_oob", lambda m, a: m.median(a, 2), _singles([(3, 4), ()]), grad=False,
       vmap=False))
add(Op("median_dup", lambda m, a: m.median(a, (1, -1)), _singles([(3, 4)]), grad=False,
       vmap=False))

_RED = [(3, 4), (2, 3, 4), (), (2, 0), (1, 5)]
# (a 0-d input makes min and max the same array: only the first cotangent counts, as
# upstream, which finite differences disagree with)
add(Op("minmax", lambda m, a: m.minmax(a), _singles([(3, 4), (2, 3, 4), (1, 5)]),
       dtypes=ALL_REAL + ("complex64",)))
add(Op("minmax_0d_empty", lambda m, a: m.minmax(a), _singles([(), (2, 0)]), grad=False,
       vmap=False))
add(Op("minmax_axis", lambda m, a: m.minmax(a, 1), _singles([(3, 4), (2, 3, 4)]),
       dtypes=FLOATS + ("int32",)))
add(Op("minmax_axis_empty", lambda m, a: m.minmax(a, 1), _singles([(3, 0), (0, 2)]),
       grad=False, vmap=False))
add(Op("minmax_keep", lambda m, a: m.minmax(a, (0, -1), True), _singles([(3, 4), (2, 3, 4)])))


def _sparse(shapes):
    def samples(rng, dt):
        out = []
        for s in shapes:
            x = rand(rng, s, dt)
            out.append((x * (rng.random(s) > 0.4).astype(x.dtype),))
        return out
    return samples


add(Op("count_nonzero", lambda m, a: m.count_nonzero(a), _sparse(_RED),
       dtypes=ALL_REAL + ("complex64",), grad=False))
add(Op("count_nonzero_axis", lambda m, a: m.count_nonzero(a, axis=1, keepdims=True),
       _sparse([(3, 4), (2, 3, 4), (2, 0)]), dtypes=FLOATS + ("int8", "bool"), grad=False))
add(Op("count_nonzero_axes", lambda m, a: m.count_nonzero(a, axis=(0, -1)),
       _sparse([(3, 4), (2, 3, 4)]), dtypes=("float32", "uint16"), grad=False))
add(Op("count_nonzero_oob", lambda m, a: m.count_nonzero(a, axis=2), _sparse([(3, 4)]),
       grad=False, vmap=False))

_DIFF = [(5,), (3, 4), (2, 3, 4), (1,), (0,), (2, 1)]
add(Op("diff", lambda m, a: m.diff(a), _singles(_DIFF), dtypes=FLOATS + ALL_REAL))
add(Op("diff_n2_axis0", lambda m, a: m.diff(a, 2, 0), _singles([(5, 2), (3,), (2, 3), (1, 4)]),
       dtypes=FLOATS + ("int32", "bool", "uint8")))
add(Op("diff_n0", lambda m, a: m.diff(a, 0), _singles([(3, 4), (2,)])))
add(Op("diff_nbig", lambda m, a: m.diff(a, 7, axis=-2), _singles([(3, 4), (2, 3, 2)])))
add(Op("diff_errors", lambda m, a: m.diff(a, axis=3), _singles([(3, 4), ()]), grad=False,
       vmap=False))
add(Op("diff_negative_n", lambda m, a: m.diff(a, -1), _singles([(3, 4)]), grad=False,
       vmap=False))

add(Op("cumulative_sum", lambda m, a: m.cumulative_sum(a, 1, reverse=True), _singles([(3, 4)]),
       dtypes=FLOATS + ("int32", "bool")))
add(Op("cumulative_prod", lambda m, a: m.cumulative_prod(a, inclusive=False),
       _singles([(3, 4), (5,)]), dtypes=FLOATS + ("int32",), grad=False))
