"""Entries for the indexing family: getitem (basic and integer-array indices), take,
take_along_axis, dynamic slices, and the updates (setitem, array.at, put_along_axis,
slice_update).

Index arrays are drawn fresh per sample (negative ones included: they wrap), so the vmap
check batches them too. Scatters whose upstream jvp is missing (integer-array setitem and
array.at) have grad=False here; tests/core/test_indexing.py checks their vjp against
upstream and their jvp against finite differences.
"""

import numpy as np

from tests.opdb import FLOATS, INTS, Op, add, rand

# float32 first: the vmap check runs in the first dtype
DTYPES = FLOATS + INTS + ("bool", "complex64")
REAL = FLOATS + INTS + ("bool",)


def _idx(rng, n, shape):
    return rng.integers(-n, n, size=shape).astype(np.int32)


def _uniq(rng, n, k):
    """k distinct indices into an axis of size n (some negative)."""
    i = rng.permutation(n)[:k]
    return np.where(rng.random(k) < 0.5, i - n, i).astype(np.int32)


def _x(*shapes):
    def samples(rng, dt):
        return [(rand(rng, s, dt),) for s in shapes]
    return samples


def _xi(*specs):
    """samples of (x, index arrays...): spec = (x shape, [(axis size, index shape)...])."""
    def samples(rng, dt):
        return [(rand(rng, xs, dt),) + tuple(_idx(rng, n, s) for n, s in ispecs)
                for xs, ispecs in specs]
    return samples


def _op(name, fn, samples, **kw):
    kw.setdefault("dtypes", DTYPES)
    add(Op(name, fn, samples, **kw))


def _copy(m, x):
    # a new array to update (upstream arrays are values; updating x itself would rebind
    # the traced input)
    return x + m.zeros_like(x)


# -- getitem: basic indices -------------------------------------------------------------
_op("getitem_int", lambda m, x: x[1], _x((3, 4), (2, 3, 4), (2,)))
_op("getitem_neg_int", lambda m, x: x[-2], _x((3, 4), (2,)))
_op("getitem_ints", lambda m, x: x[1, -1], _x((3, 4), (2, 3, 4)))
_op("getitem_slice", lambda m, x: x[1:3], _x((4, 3), (3,), (5, 2, 2), (1, 2)))
_op("getitem_slice_step", lambda m, x: x[::2, 1::2], _x((5, 4), (3, 3, 2)))
_op("getitem_slice_neg_step", lambda m, x: x[::-1, -1:0:-2], _x((3, 5), (2, 4, 2)))
_op("getitem_slice_clip", lambda m, x: x[-10:10, 5:], _x((3, 4), (2, 7)))
_op("getitem_slice_empty", lambda m, x: x[2:1], _x((3, 4), (0, 2)))
_op("getitem_int_slice", lambda m, x: x[:, 1:3, 0], _x((2, 4, 3), (1, 3, 2)))
_op("getitem_ellipsis", lambda m, x: x[..., 1], _x((3, 4), (2, 3, 2), (2,)))
_op("getitem_ellipsis_mid", lambda m, x: x[1, ..., ::-1], _x((3, 4), (2, 3, 2)))
_op("getitem_none", lambda m, x: x[None, :, None, 1], _x((3, 4), (2, 3, 2)))
_op("getitem_0d", lambda m, x: x[None, ...], _x((), (2,)))
_op("getitem_full", lambda m, x: x[:], _x((3, 2), (0,)))

# -- getitem: integer arrays ------------------------------------------------------------
_op("getitem_array", lambda m, x, i: x[i], _xi(((5, 3), [(5, (2, 3))]), ((4,), [(4, (3,))]),
                                                ((3, 2), [(3, ())]), ((3, 2), [(3, (0,))])))
_op("getitem_array_axis1", lambda m, x, i: x[:, i], _xi(((2, 5, 3), [(5, (4,))]),
                                                         ((3, 2), [(2, (2, 2))])))
_op("getitem_arrays_adjacent", lambda m, x, i, j: x[:, i, j],
    _xi(((2, 4, 3), [(4, (2, 1)), (3, (3,))]), ((2, 3, 5, 2), [(3, (2,)), (5, (2,))])))
_op("getitem_arrays_split", lambda m, x, i, j: x[i, :, j],
    _xi(((4, 3, 5), [(4, (2, 1)), (5, (3,))]), ((3, 2, 2, 2), [(3, ()), (2, (2,))])))
_op("getitem_int_array", lambda m, x, i: x[0, :, i], _xi(((2, 3, 4), [(4, (2,))]),
                                                          ((3, 2, 5, 2), [(5, (3, 1))])))
_op("getitem_array_int", lambda m, x, i: x[:, i, -1], _xi(((2, 3, 4), [(3, (2,))])))
_op("getitem_array_none", lambda m, x, i, j: x[i, None, j],
    _xi(((3, 4, 2), [(3, (2,)), (4, (2,))])))
_op("getitem_none_array", lambda m, x, i: x[None, i, None], _xi(((3, 4), [(3, (2, 2))])))
_op("getitem_array_slice", lambda m, x, i: x[i, 1:3], _xi(((3, 4, 2), [(3, (2,))])))
_op("getitem_slice_array", lambda m, x, i: x[1:, ::-1, i], _xi(((3, 4, 5), [(5, (2,))])))
_op("getitem_array_ellipsis", lambda m, x, i: x[..., i], _xi(((3, 4, 5), [(5, (2, 2))]),
                                                              ((4,), [(4, (3,))])))
_op("getitem_arrays_ellipsis", lambda m, x, i, j: x[i, ..., j],
    _xi(((3, 4, 5), [(3, (2,)), (5, (2,))]), ((3, 4), [(3, (2,)), (4, (2,))])))
_op("getitem_list", lambda m, x: x[[0, -1, 1]], _x((3, 2), (4,)))
_op("getitem_list_pair", lambda m, x: x[[0, 1], [2, -1]], _x((3, 4), (2, 3, 2)))

# -- take, take_along_axis, slice ---------------------------------------------------------
_op("take_flat", lambda m, x, i: m.take(x, i), _xi(((3, 4), [(12, (2, 3))]),
                                                    ((), [(1, (2,))])))
_op("take_axis", lambda m, x, i: m.take(x, i, axis=1), _xi(((2, 5, 3), [(5, (4,))]),
                                                            ((3, 2), [(2, (2, 2))])))
_op("take_neg_axis", lambda m, x, i: m.take(x, i, axis=-1), _xi(((2, 3, 4), [(4, (2, 2))])))
_op("take_scalar_index", lambda m, x, i: m.take(x, i, axis=0), _xi(((3, 2), [(3, ())])))
_op("take_int", lambda m, x: m.take(x, 2, axis=1), _x((2, 3, 4), (3, 3)))
_op("take_int_flat", lambda m, x: m.take(x, 5), _x((2, 3, 4), (6,)))


def _along(specs):
    def samples(rng, dt):
        return [(rand(rng, xs, dt), rng.integers(-xs[ax], xs[ax], size=ishape).astype(np.int32))
                for xs, ishape, ax in specs]
    return samples


_op("take_along_axis", lambda m, x, i: m.take_along_axis(x, i, axis=1),
    _along([((3, 4), (3, 2), 1), ((2, 3, 2), (2, 5, 2), 1), ((2, 3, 2), (1, 2, 2), 1),
            ((2, 3, 1), (2, 2, 3), 1), ((3, 4), (3, 0), 1)]))
_op("take_along_axis_last", lambda m, x, i: m.take_along_axis(x, i),
    _along([((3, 4), (3, 6), 1), ((2, 3, 2), (1, 1, 3), 2)]))
_op("take_along_axis_first", lambda m, x, i: m.take_along_axis(x, i, axis=0),
    _along([((3, 4), (2, 4), 0), ((3, 4), (5, 1), 0)]))
_op("take_along_axis_flat", lambda m, x, i: m.take_along_axis(x, i, axis=None),
    lambda rng, dt: [(rand(rng, (3, 4), dt), _idx(rng, 12, (5,)))])


def _dyn(specs):
    """samples of (x, start) with starts in range for slice sizes `sizes` on `axes`."""
    def samples(rng, dt):
        out = []
        for xs, axes, sizes in specs:
            st = [rng.integers(0, xs[a] - sizes[a] + 1) for a in axes]
            out.append((rand(rng, xs, dt), np.array(st, dtype=np.int32)))
        return out
    return samples


_op("slice_dynamic", lambda m, x, s: m.slice(x, s, (0, 2), (2, 3, 2)),
    _dyn([((4, 3, 5), (0, 2), (2, 3, 2))]))
_op("slice_dynamic_partial", lambda m, x, s: m.slice(x, s, (1,), (1, 2, 2)),
    _dyn([((3, 4, 2), (1,), (1, 2, 2))]))
_op("slice_dynamic_neg_axis", lambda m, x, s: m.slice(x, s[0], (-1,), (3, 2)),
    _dyn([((3, 5), (1,), (3, 2))]))

# -- updates ------------------------------------------------------------------------------


def _xv(*specs):
    """samples of (x, value): value shapes given beside x's."""
    def samples(rng, dt):
        return [(rand(rng, xs, dt), rand(rng, vs, dt)) for xs, vs in specs]
    return samples


def _set_basic(idx):
    def fn(m, x, v):
        y = _copy(m, x)
        y[idx] = v
        return y
    return fn


_op("setitem_int", _set_basic(1), _xv(((3, 4), (4,)), ((3, 4), ()), ((2, 3, 2), (1, 3, 2))))
_op("setitem_slice", _set_basic((slice(1, 3), slice(None, None, -1))),
    _xv(((4, 3), (2, 3)), ((3, 2), (2,)), ((3, 3, 2), (2, 1, 2))))
_op("setitem_none", _set_basic((None, 0)), _xv(((3, 4), (1, 4)), ((2, 2), ())))
_op("setitem_ellipsis", _set_basic((Ellipsis, slice(None, None, 2))),
    _xv(((3, 4), (3, 2)), ((5,), (1,))))
_op("setitem_strided_none", _set_basic((slice(None, None, 2), None, 1)),
    _xv(((3, 4), (2, 1)), ((5, 2), (3, 1))))


def _set_idx(make):
    def fn(m, x, v, *ind):
        y = _copy(m, x)
        y[make(*ind)] = v
        return y
    return fn


def _xvu(*specs):
    """samples (x, value, unique index arrays...): spec = (x shape, value shape,
    [(axis size, count, index shape)])."""
    def samples(rng, dt):
        out = []
        for xs, vs, ispecs in specs:
            ind = tuple(_uniq(rng, n, k).reshape(s) for n, k, s in ispecs)
            out.append((rand(rng, xs, dt), rand(rng, vs, dt)) + ind)
        return out
    return samples


_SCATTER = dict(grad=False)
_op("setitem_array", _set_idx(lambda i: i),
    _xvu(((5, 3), (3, 3), [(5, 3, (3,))]), ((5, 3), (3,), [(5, 3, (3,))]),
         ((4,), (), [(4, 2, (2, 1))])), **_SCATTER)
_op("setitem_int_array", _set_idx(lambda i: (0, slice(None), i)),
    _xvu(((2, 3, 4), (3, 2), [(4, 2, (2,))])), **_SCATTER)
_op("setitem_arrays", _set_idx(lambda i, j: (i, j)),
    _xvu(((4, 3, 2), (3, 2), [(4, 3, (3,)), (3, 3, (3,))])), **_SCATTER)
_op("setitem_slice_array", _set_idx(lambda i: (slice(1, 3), i)),
    _xvu(((3, 4, 2), (2, 2, 2), [(4, 2, (2,))])), **_SCATTER)
_op("setitem_array_none", _set_idx(lambda i: (i, slice(None), None)),
    _xvu(((3, 4, 2), (2, 1, 4, 2), [(3, 2, (2,))])), **_SCATTER)


def _mask_samples(rng, dt):
    x = rand(rng, (3, 4), dt)
    return [(x, rng.random((3, 4)) > 0.5, rand(rng, (12,), dt)),
            (rand(rng, (3, 4), dt), rng.random((3,)) > 0.5, rand(rng, (3, 4), dt)),
            (rand(rng, (2, 3), dt), rng.random((2, 3)) > 0.5, rand(rng, (), dt))]


def _set_mask(m, x, mask, v):
    y = _copy(m, x)
    y[mask] = v
    return y


_op("setitem_mask", _set_mask, _mask_samples, dtypes=REAL)


def _at(op, make):
    def fn(m, x, v, *ind):
        return getattr(x.at[make(*ind)], op)(v)
    return fn


def _xvi(*specs, low=-2.0, high=2.0):
    """samples (x, value, index arrays with repeats...): spec = (x shape, value shape,
    [(axis size, index shape)])."""
    def samples(rng, dt):
        return [(rand(rng, xs, dt), rand(rng, vs, dt, low, high))
                + tuple(_idx(rng, n, s) for n, s in ispecs) for xs, vs, ispecs in specs]
    return samples


_AT_SPECS = (((5, 3), (6, 3), [(5, (6,))]), ((4,), (2, 3), [(4, (2, 3))]),
             ((3, 4, 2), (2, 2), [(4, (2,))]))
for _name in ["add", "subtract", "maximum", "minimum", "multiply"]:
    _op(f"at_{_name}", _at(_name, lambda i: i),
        _xvi(*_AT_SPECS[:2]), dtypes=REAL, **_SCATTER)
_op("at_add_mix", _at("add", lambda i: (0, slice(None), i)),
    _xvi(((2, 3, 4), (3, 5), [(4, (5,))])), dtypes=DTYPES, **_SCATTER)
_op("at_maximum_axis1", _at("maximum", lambda i: (slice(None), i)),
    _xvi(((3, 4, 2), (3, 5, 2), [(4, (5,))])), dtypes=REAL, **_SCATTER)
def _nonzero_values(samples):
    # an integer division by zero casts inf to an int: platform-defined
    def f(rng, dt):
        return [(x, np.where(v == 0, np.ones_like(v), v)) + tuple(rest)
                for x, v, *rest in samples(rng, dt)]
    return f


_op("at_divide", _at("divide", lambda i: i),
    _nonzero_values(_xvi(*_AT_SPECS[:2], low=0.5, high=2.0)), **_SCATTER)
_op("at_add_basic", _at("add", lambda: slice(1, 3)), _xv(((4, 3), (2, 3)), ((3,), ())),
    dtypes=DTYPES, **_SCATTER)
_op("at_multiply_basic", _at("multiply", lambda: (0, slice(None, None, -1))),
    _xv(((3, 4), (4,))), dtypes=REAL, **_SCATTER)


def _put_samples(rng, dt):
    # distinct positions along the axis: duplicate writes have no defined winner
    i1 = np.stack([rng.permutation(4)[:2] for _ in range(3)]).astype(np.int32)
    i2 = rng.permutation(6)[:3].astype(np.int32) - 6
    return [(rand(rng, (3, 4), dt), i1, rand(rng, (3, 2), dt)),
            (rand(rng, (3, 4), dt), i1[:1], rand(rng, (3, 2), dt)),
            (rand(rng, (2, 3), dt), i2, rand(rng, (3,), dt))]


_op("put_along_axis", lambda m, x, i, v: m.put_along_axis(x, i, v, axis=1 if i.ndim == 2
                                                           else None), _put_samples)


def _su_samples(rng, dt):
    return [(rand(rng, (4, 3, 5), dt), rand(rng, (2, 3, 2), dt),
             np.array([rng.integers(0, 3), rng.integers(0, 4)], dtype=np.int32)),
            (rand(rng, (4, 3, 5), dt), rand(rng, (3, 2), dt),
             np.array([rng.integers(0, 4), rng.integers(0, 4)], dtype=np.int32))]


_op("slice_update", lambda m, x, u, s: m.slice_update(x, u, s, (0, 2)), _su_samples)
