"""Indexing: `a[idx]`, `a[idx] = v`, `a.at[idx].add(v)`, take, take_along_axis,
put_along_axis and dynamic slices.

Basic indices (ints, slices, None, Ellipsis) become one Slice node (a torch view); integer
arrays add one Gather over the sliced array. Advanced-index placement follows numpy once
the Ellipsis is expanded into full slices (as upstream does: an Ellipsis that stands for no
dims does not separate two advanced indices).
"""

import operator

import numpy as np

from ember.core import _backend as B
from ember.core import dtypes as D
from ember.core.array import array, const, fresh, node
from ember.core.ops._base import as_array, binding_error, broadcast_pair, resolve, weak_dtype
from ember.core.ops.reduce import array_arg
from ember.core.primitives import elementwise as E
from ember.core.primitives import index as P

__all__ = ["getitem", "setitem", "ArrayAt", "take", "take_along_axis", "put_along_axis",
           "slice", "slice_update"]

_pyslice = slice
_FULL = P.FULL
_INT32 = 2 ** 31
_WRAP_PRIM = E.UNARY["wrap"]()
_NP_INT = (np.integer,)


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# -- node builders (also used by the primitives' transforms) ---------------------------

def _key_shape(shape, key):
    out = []
    ax = 0
    for k in key:
        if k is None:
            out.append(1)
        elif type(k) is int:
            ax += 1
        else:
            out.append(len(range(*_pyslice(*k).indices(shape[ax]))))
            ax += 1
    out.extend(shape[ax:])
    return tuple(out)


def _slice(x, key, flip):
    return node(_key_shape(x._shape, key), x._dtype, P.Slice(key, flip), (x,), x._stream)


def _slice_update(x, u, key, flip):
    if u._dtype is not x._dtype:
        from ember.core.ops.elementwise import astype
        u = astype(u, x._dtype)
    return node(x._shape, x._dtype, P.SliceUpdate(key, flip), (x, u), x._stream)


def _index_shape(idx):
    shape = ()
    for i in idx:
        if i._shape != shape:
            shape = broadcast_pair(shape, i._shape, "broadcast_shapes")
    return shape


def _gather_shape(shape, idx, axes, pos):
    rem = [d for i, d in enumerate(shape) if i not in axes]
    return tuple(rem[:pos]) + _index_shape(idx) + tuple(rem[pos:])


def _gather(x, idx, axes, pos):
    idx = tuple(idx)
    shape = _gather_shape(x._shape, idx, axes, pos)
    return node(shape, x._dtype, P.Gather(tuple(axes), pos), (x,) + idx, x._stream)


def _scatter(x, u, idx, axes, pos, mode, flipped=False):
    if u._dtype is not x._dtype:
        from ember.core.ops.elementwise import astype
        u = astype(u, x._dtype)
    if mode in ("max", "min") and x._dtype is D.uint64 and not flipped:
        # the int64 storage compares signed: with the top bit flipped on both sides the
        # comparison is the unsigned one
        from ember.core.ops.elementwise import bitwise_xor
        top = const(1 << 63, D.uint64, x._stream)
        y = _scatter(bitwise_xor(x, top), bitwise_xor(u, top), idx, axes, pos, mode, True)
        return bitwise_xor(y, top)
    y = node(x._shape, x._dtype, P.Scatter(tuple(axes), pos, mode), (x, u) + tuple(idx),
             x._stream)
    if mode in ("add", "prod") and x._dtype in B.WRAP:
        y = node(y._shape, y._dtype, _WRAP_PRIM, (y,), y._stream)
    return y


def _gather_axis(x, idx, axis):
    shape = []
    for d in range(x.ndim):
        shape.append(idx._shape[d] if d == axis else
                     broadcast_pair((x._shape[d],), (idx._shape[d],), "broadcast_shapes")[0])
    return node(tuple(shape), x._dtype, P.GatherAxis(axis), (x, idx), x._stream)


def _axis_update_shape(xshape, ishape, ushape, axis):
    shape = []
    for d in range(len(xshape)):
        dims = (ishape[d], ushape[d]) if d == axis else (xshape[d], ishape[d], ushape[d])
        n = 1
        for v in dims:
            n = broadcast_pair((n,), (v,), "broadcast_shapes")[0]
        shape.append(n)
    return tuple(shape)


def _scatter_axis(x, idx, u, axis, mode):
    if u._dtype is not x._dtype:
        from ember.core.ops.elementwise import astype
        u = astype(u, x._dtype)
    t = _axis_update_shape(x._shape, idx._shape, u._shape, axis)
    shape = t[:axis] + (x._shape[axis],) + t[axis + 1:]
    return node(shape, x._dtype, P.ScatterAxis(axis, mode), (x, idx, u), x._stream)


def _dynamic_slice(x, start, axes, sizes):
    return node(tuple(sizes), x._dtype, P.DynamicSlice(tuple(axes), tuple(sizes)),
                (x, start), x._stream)


def _dynamic_slice_update(x, u, start, axes, sizes):
    if u._dtype is not x._dtype:
        from ember.core.ops.elementwise import astype
        u = astype(u, x._dtype)
    return node(x._shape, x._dtype, P.DynamicSliceUpdate(tuple(axes), tuple(sizes)),
                (x, u, start), x._stream)


def _masked_scatter(x, mask, src, batched):
    if src._dtype is not x._dtype:
        from ember.core.ops.elementwise import astype
        src = astype(src, x._dtype)
    return node(x._shape, x._dtype, P.MaskedScatter(batched), (x, mask, src), x._stream)


def _masked_gather(g, mask, shape, batched):
    return node(tuple(shape), g._dtype, P.MaskedGather(tuple(shape), batched), (g, mask),
                g._stream)


# -- parsing an index -----------------------------------------------------------------

def _int_like(v):
    """v as a Python int if it is an integer scalar index (not bool), else None."""
    if isinstance(v, _NP_INT):
        return int(v)
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu":
        return int(v)
    return None


def _ellipses():
    return ValueError("An index can only have a single ellipsis (...)")


def _many_ellipses(items):
    return sum(it is Ellipsis for it in items) > 1


def _bad_type(v):
    if type(v) is tuple:
        return ValueError("Cannot index mlx array using the given type yet")
    return ValueError("Cannot index mlx array using the given type.")


def _index_array(v, s, sole, op="gather"):
    """An index that is an array (or list): checked integral, on stream s."""
    if type(v) is not array:
        if isinstance(v, list):
            v = array(v)
        elif not isinstance(v, array):
            raise _bad_type(v)
    if v._stream.device is not s.device:
        v = as_array(v, s)
    k = v._dtype.kind
    if k == "b":
        raise ValueError("boolean indices are not yet supported" if sole
                         else "[Gather] Boolean indices not supported.")
    if k not in "iu" and op == "gather":  # (a scatter checks them later)
        raise ValueError("[gather] Got indices with invalid dtype. Indices must be integral.")
    return v


def _slice_bound(v):
    if v is None or type(v) is int:
        if v is not None and not -_INT32 <= v < _INT32:
            raise ValueError("Slice indices must be 32-bit integers.")
        return v
    i = _int_like(v)
    if i is None:
        raise ValueError("Slice indices must be integers or None.")
    return _slice_bound(i)


def _norm_slice(sl, n):
    """(positive-step (start, stop, step), count, reversed?, unit step?) for Python slice
    `sl` on an axis of size n."""
    start, stop, step = _slice_bound(sl.start), _slice_bound(sl.stop), _slice_bound(sl.step)
    if step == 0:
        raise ValueError("[slice] Slice step cannot be zero.")
    start, stop, step = _pyslice(start, stop, step).indices(n)
    count = len(range(start, stop, step))
    unit = step == 1
    if count == 0:
        return (0, 0, 1), 0, False, unit
    if step > 0:
        if start == 0 and step == 1 and count == n:
            return _FULL, n, False, unit
        return (start, start + (count - 1) * step + 1, step), count, False, unit
    last = start + (count - 1) * step
    return (last, start + 1, -step), count, count > 1, unit


class _Index:
    """A parsed index: the Slice key over the basic part (`sub` is its output shape), the
    integer arrays and the dims of `sub` they index, where their broadcast dims go (`pos`),
    and, for scatters, each non-indexed dim of `sub` as (item number, kind) so that
    upstream's update layout can be rebuilt (`_update_order`)."""

    __slots__ = ("key", "flip", "sub", "arrays", "dims", "pos", "oob", "trivial", "rem",
                 "array_items", "none_only", "ints", "zero", "has_none")


def _parse(a, idx, s, op="gather"):
    items = idx if type(idx) is tuple else (idx,)
    shape = a._shape
    nd = len(shape)
    sole = type(idx) is not tuple
    kinds = []
    used = 0
    ell = False
    scalars = False
    for it in items:
        t = type(it)
        if t is int:
            kinds.append(("i", it))
            used += 1
        elif t is _pyslice:
            kinds.append(("s", it))
            used += 1
        elif it is None:
            kinds.append(("n", None))
        elif it is Ellipsis:
            if ell:
                raise _ellipses()
            ell = True
            kinds.append(("e", None))
        elif t is array or isinstance(it, (array, list)):
            kinds.append(("a", it))
            used += 1
        elif t is np.ndarray and not it.ndim:
            # upstream takes a 0-d numpy array through `__index__` once the index has
            # passed its other checks: numpy's TypeError for a bool or a float one
            kinds.append(("x", it))
            scalars = True
            used += 1
        else:
            i = _int_like(it)
            if i is None or isinstance(it, (bool, np.bool_)):
                # (upstream counts the ellipses before it looks at the items)
                raise _ellipses() if _many_ellipses(items) else _bad_type(idx)
            kinds.append(("i", i))
            used += 1
    if used > nd:  # (checked before the index arrays' dtypes, as upstream does)
        if sole:
            raise ValueError("too many indices for array: array is 0-dimensional")
        raise ValueError(f"Too many indices for array with {nd} dimensions.")
    if scalars:
        kinds = [("i", operator.index(v)) if k == "x" else (k, v) for k, v in kinds]
    kinds = [(k, _index_array(v, s, sole, op)) if k == "a" else (k, v) for k, v in kinds]
    p = _Index()
    key = []
    flips = []
    sub = []
    arrays = []
    dims = []
    adv = []
    rem = []
    array_items = []
    first = None
    oob = False
    ints = []
    zero = []
    ax = 0
    j = 0
    for kind, v in kinds:
        if kind == "s":
            k, count, rev, unit = _norm_slice(v, shape[ax])
            if rev:
                flips.append(len(sub))
            key.append(k)
            rem.append((j, "s" if unit else "k"))
            sub.append(count)
            ax += 1
        elif kind == "i":
            n = shape[ax]
            if v < 0:
                v += n
            if not 0 <= v < n:
                oob = True
                zero.append(ax)
                v = 0
            ints.append(ax)
            if first is None:
                first = len(sub)
            adv.append(j)
            key.append(v)
            ax += 1
        elif kind == "n":
            key.append(None)
            rem.append((j, "n"))
            sub.append(1)
        elif kind == "a":
            if first is None:
                first = len(sub)
            adv.append(j)
            array_items.append(j)
            arrays.append(v)
            dims.append(len(sub))
            key.append(_FULL)
            sub.append(shape[ax])
            ax += 1
        else:
            for _ in range(nd - used):
                key.append(_FULL)
                rem.append((j, "s"))
                sub.append(shape[ax])
                ax += 1
                j += 1
            continue
        j += 1
    for d in shape[ax:]:
        rem.append((j, "s"))
        sub.append(d)
        j += 1
    while key and key[-1] == _FULL:
        key.pop()
    p.key = tuple(key)
    p.flip = tuple(f - len(sub) for f in flips)
    p.sub = tuple(sub)
    p.arrays = arrays
    p.dims = tuple(dims)
    p.oob = oob
    p.trivial = all(k == _FULL for k in key)
    p.rem = rem
    p.array_items = array_items
    # a bare None: upstream broadcasts an update to the array's shape as is
    p.none_only = idx is None
    p.ints = ints
    p.zero = zero
    p.has_none = any(kind == "n" for kind, _ in kinds)
    if arrays and adv[-1] - adv[0] + 1 == len(adv):
        p.pos = first
    else:
        p.pos = 0
    return p


def _post(p):
    """The rem dims that upstream's scatter keeps as dims of its update slices: unit-step
    slices after the last array and the last strided slice (it indexes the others)."""
    last_a = p.array_items[-1]
    last_k = max((j for j, k in p.rem if k == "k"), default=-1)
    return [i for i, (j, k) in enumerate(p.rem) if k == "s" and j > last_a and j > last_k]


def _update_order(p, nb):
    """Upstream's layout of a scatter update, as a permutation of the gather layout
    (rem[:pos] + B + rem[pos:]): ints do not count as array indices; the dims of unit-step
    slices after the last array and the last strided slice go last; arrays separated by a
    slice or None put their dims first, else they go where the first array is."""
    rem = p.rem
    first_a, last_a = p.array_items[0], p.array_items[-1]
    post = _post(p)
    postset = set(post)
    lead = [i for i in range(len(rem)) if i not in postset]
    split = any(first_a < j < last_a for j, k in rem)
    at = 0 if split else sum(1 for i in lead if rem[i][0] < first_a)
    # gather-layout position of every dim: rem dim i and B dim b
    gpos = [i if i < p.pos else i + nb for i in range(len(rem))]
    bdims = list(range(p.pos, p.pos + nb))
    return [gpos[i] for i in lead[:at]] + bdims + [gpos[i] for i in lead[at:]] + \
        [gpos[i] for i in post]


def _oob_error(a, idx):
    if type(idx) is not tuple and not a._shape[0]:  # (upstream takes along axis 0)
        return ValueError("[take] Cannot do a non-empty take from an empty axis.")
    return ValueError(f"[getitem] Index {idx!r} is out of bounds for array with shape "
                      f"{_fmt(a._shape)}.")


# -- getitem ----------------------------------------------------------------------------

def getitem(a, idx):
    s = resolve(None)
    if a._stream.device is not s.device:
        a = as_array(a, s)
    t = type(idx)
    if t is int:
        shape = a._shape
        if not shape:
            raise ValueError("too many indices for array: array is 0-dimensional")
        n = shape[0]
        i = idx + n if idx < 0 else idx
        if not 0 <= i < n:
            raise _oob_error(a, idx)
        return node(shape[1:], a._dtype, P.Slice((i,), ()), (a,), s)
    if t is array and a._shape and idx._dtype.kind in "iu" and idx._stream is s:
        shape = a._shape
        if shape[0] == 0 and idx.size:  # (upstream indexes with one array by take)
            raise ValueError("[take] Cannot do a non-empty take from an empty axis.")
        return node(idx._shape + shape[1:], a._dtype, P.Gather((0,), 0), (a, idx), s)
    basic = _basic_key(a._shape, idx)
    if basic is not None:
        key, shape = basic
        return node(shape, a._dtype, P.Slice(key, ()), (a,), s) if key else fresh(a)
    p = _parse(a, idx, s)
    if p.oob:
        raise _oob_error(a, idx)
    x = fresh(a) if p.trivial else node(p.sub, a._dtype, P.Slice(p.key, p.flip), (a,), s)
    if not p.arrays:
        return x
    shape = _gather_shape(p.sub, p.arrays, p.dims, p.pos)
    if _prod(shape) == 0 or _prod(p.sub) == 0:
        return _empty_gather(x, shape, p.dims)
    return node(shape, a._dtype, P.Gather(p.dims, p.pos), (x,) + tuple(p.arrays), s)


def _basic_key(shape, idx):
    """(Slice key, output shape) of an index made of in-range ints and unit-step slices with
    int or None bounds (the common case), or None to take the general path."""
    t = type(idx)
    if t is _pyslice:
        items = (idx,)
    elif t is tuple:
        items = idx
    else:
        return None
    if len(items) > len(shape):
        return None
    key = []
    out = []
    for n, it in zip(shape, items):
        t = type(it)
        if t is int:
            i = it + n if it < 0 else it
            if not 0 <= i < n:
                return None
            key.append(i)
        elif t is _pyslice and it.step is None:
            b, e = it.start, it.stop
            if not ((b is None or type(b) is int and -_INT32 <= b < _INT32)
                    and (e is None or type(e) is int and -_INT32 <= e < _INT32)):
                return None
            b, e, _ = it.indices(n)
            if e <= b:
                key.append((0, 0, 1))
                out.append(0)
            elif b == 0 and e == n:
                key.append(_FULL)
                out.append(n)
            else:
                key.append((b, e, 1))
                out.append(e - b)
        else:
            return None
    out.extend(shape[len(items):])
    while key and key[-1] == _FULL:
        key.pop()
    return tuple(key), tuple(out)


def _empty_gather(x, shape, dims=(0,)):
    rest = [d for i, d in enumerate(x._shape) if i not in dims]
    if _prod(shape) and _prod(rest):
        raise ValueError("[gather] If the input is empty, either the indices must be empty or "
                         "the total slice size must be 0.")
    from ember.core.ops.creation import zeros
    return zeros(shape, x._dtype)


# -- setitem and array.at ---------------------------------------------------------------

def _operand(v, dtype, s, weak=True):
    """An update value as an array on stream s: Python scalars take `dtype` as weakly typed
    scalars do (`weak`) or exactly, ints after upstream's range check."""
    if isinstance(v, (bool, int, float, complex)):
        if type(v) is int:
            _check_int(v, dtype)
            if dtype is D.bool_ and not weak:  # (through int32, as upstream converts it)
                v = bool(v & 0xFFFFFFFF)
        return const(v, weak_dtype(dtype, v) if weak else dtype, s)
    if isinstance(v, array):
        return as_array(v, s)
    if isinstance(v, (np.ndarray, np.generic)):  # (converted to the array's dtype)
        return as_array(v, s, dtype)
    raise ValueError(f"Invalid type {type(v).__name__} received in array initialization.")


def _cast(v, dtype, s):
    if v._dtype is not dtype:
        from ember.core.ops.elementwise import astype
        v = astype(v, dtype, s)
    return v


def _value(v, dtype, s):
    """An update value as an array of `dtype` on stream s."""
    return _cast(_operand(v, dtype, s, weak=False), dtype, s)


def _check_int(v, dtype):
    # upstream converts a Python int through int64, then checks an integer dtype's range
    if not -(1 << 63) <= v < (1 << 63):
        raise RuntimeError(f"Cannot convert {v} to an integer of 64 bits.")
    if dtype.kind not in "ui" or dtype is D.uint64:  # (a negative int wraps into uint64)
        return
    bits = 8 * dtype.size
    lo, hi = (0, (1 << bits) - 1) if dtype.kind == "u" else (-(1 << bits - 1), (1 << bits - 1) - 1)
    if not lo <= v <= hi:
        raise ValueError(f"Converting {v} to {dtype.name} would result in overflow.")


def _fit(v, shape, msg=None):
    """v reshaped (dropping extra leading 1-dims) so it broadcasts to `shape`."""
    vs = v._shape
    if len(vs) > len(shape):
        extra = len(vs) - len(shape)
        if any(d != 1 for d in vs[:extra]):
            if msg is None:
                broadcast_pair(vs, shape, "broadcast_shapes")  # raises when they cannot
                msg = f"Cannot broadcast array of shape {_fmt(vs)} into shape {_fmt(shape)}."
            raise ValueError(msg)
        from ember.core.ops.shape import reshape
        v = reshape(v, vs[extra:])
        vs = v._shape
    if vs != shape:
        try:
            ok = broadcast_pair(vs, shape, "broadcast_shapes") == shape
        except ValueError:
            if msg is not None:
                raise ValueError(msg) from None
            raise
        if not ok:
            raise ValueError(msg or f"Cannot broadcast array of shape {_fmt(vs)} into shape "
                             f"{_fmt(shape)}.")
    return v


def _fit_basic(p, v, shape, msg=None):
    if p.none_only:
        _check_broadcast(v, shape)
        return v
    return _fit(v, p.sub, msg)


def _check_int_update(vs, shape, key, lone, zero):
    """upstream's check of update shape `vs` for an index of ints and slices (no None): the
    update's leading 1s beyond the array's rank dropped, then (unless the index is a lone
    int) a 1 inserted at each int axis, counted from the end, that the update reaches; it
    must then broadcast to the indexed region with the int axes kept (size 0 when out of
    range)."""
    nd = len(shape)
    ints = [ax for ax, k in enumerate(key) if type(k) is int]
    if not ints:
        return
    vs = list(vs)
    while len(vs) > nd and vs[0] == 1:
        del vs[0]
    if not lone:
        for ax in reversed(ints):
            back = nd - ax
            if len(vs) >= back:
                vs.insert(len(vs) - back + 1, 1)
    target = []
    for ax, n in enumerate(shape):
        k = key[ax] if ax < len(key) else _FULL
        if type(k) is int:
            target.append(0 if ax in zero else 1)
        else:
            target.append(n if k == _FULL else len(range(*k)))
    vs, target = tuple(vs), tuple(target)
    if vs != target and broadcast_pair(vs, target, "broadcast_shapes") != target:
        raise ValueError(f"Cannot broadcast array of shape {_fmt(vs)} into shape "
                         f"{_fmt(target)}.")


def _check_broadcast(v, shape):
    # upstream's broadcast_to: the shapes must broadcast, and to `shape` itself
    if v._shape != shape and broadcast_pair(v._shape, shape, "broadcast_shapes") != shape:
        raise ValueError(f"Cannot broadcast array of shape {_fmt(v._shape)} into shape "
                         f"{_fmt(shape)}.")


def _at_misfit(vs, target):
    """upstream's error for an at[] update of shape vs that does not fit `target`: leading
    1s beyond its rank dropped, then broadcast_to's checks."""
    while len(vs) > len(target) and vs[0] == 1:
        vs = vs[1:]
    broadcast_pair(vs, target, "broadcast_shapes")  # raises when they cannot broadcast
    return ValueError(f"Cannot broadcast array of shape {_fmt(vs)} into shape "
                      f"{_fmt(target)}.")


def _is_index(idx, a, s):
    """idx is a lone integer array indexing axis 0 of a (the fast scatter path)."""
    return type(idx) is array and a._shape and idx._dtype.kind in "iu" and idx._stream is s


def _is_mask(idx):
    if type(idx) is array or isinstance(idx, array):
        return idx._dtype is D.bool_
    if isinstance(idx, np.ndarray):
        return idx.dtype == np.bool_ and idx.ndim > 0  # (a 0-d one is read as a scalar)
    if isinstance(idx, list):
        flat = idx
        while flat and isinstance(flat[0], list):
            flat = flat[0]
        return bool(flat) and isinstance(flat[0], (bool, np.bool_))
    return False


def _has_mask(idx):
    return type(idx) is tuple and any(_is_mask(i) for i in idx)


def _replace(a, idx, value, s):
    """`a[None] = v` and `a[...] = v`: upstream gives `a` the update broadcast to its shape,
    in the update's own dtype (a Python scalar weakly typed against a's, numpy converted to
    a's)."""
    v = _operand(value, a._dtype, s)
    if idx is None:
        _check_broadcast(v, a._shape)
    else:
        v = _fit(v, a._shape)
    if v._shape == a._shape:
        return fresh(v)
    from ember.core.ops.shape import broadcast_to
    return broadcast_to(v, a._shape, stream=s)


def _whole(a, idx):
    """idx written as upstream reads it: on a 0-d array a tuple of None and ... means `...`
    (one ..., as anywhere)"""
    if type(idx) is tuple and not a._shape and all(i is None or i is Ellipsis for i in idx):
        if _many_ellipses(idx):
            raise _ellipses()
        return Ellipsis
    return idx


def setitem(a, idx, value):
    s = resolve(None)
    a = as_array(a, s)
    try:
        idx = _whole(a, idx)
    except ValueError:
        _value(value, a._dtype, s)  # (a value that does not convert is reported first)
        raise
    if idx is None or idx is Ellipsis:
        return _replace(a, idx, value, s)
    t = type(idx)
    if t is bool or t is np.bool_ or (
            t is np.ndarray and not a._shape and not idx.ndim and idx.dtype == np.bool_):
        # a 0-d mask: all or nothing (a 0-d numpy one only on a 0-d array: elsewhere upstream
        # reads it as an integer, which fails)
        return _masked_setitem(a, array(bool(idx)), value, s)
    basic = _basic_key(a._shape, (idx,) if type(idx) is int else idx)
    if basic is not None:
        key, shape = basic
        v = _value(value, a._dtype, s)
        if v._shape and type(idx) is not _pyslice:
            _check_int_update(v._shape, a._shape, key, type(idx) is int, ())
        v = _fit(v, shape)
        return node(a._shape, a._dtype, P.SliceUpdate(key, ()), (a, v), s)
    if _is_index(idx, a, s):
        v = _fit(_value(value, a._dtype, s), idx._shape + a._shape[1:])
        if not a._shape[0]:
            _check_fits(a._shape, idx._shape, (0,))
        if not idx.size:
            return a
        return _scatter(a, v, (idx,), (0,), 0, None)
    if _is_mask(idx):
        return _masked_setitem(a, idx, value, s)
    if _has_mask(idx):
        setitem(a, _masks_as_ints(idx), value)  # upstream checks these as integer indices
        raise SystemError("[setitem] Boolean masks can not be combined with other indices.")
    idx = _lists_as_arrays(idx)  # (a list that is no index is reported before the value)
    v = _value(value, a._dtype, s)
    p = _parse(a, idx, s, "scatter")
    if p.ints and v._shape and not p.arrays and not p.has_none:
        _check_int_update(v._shape, a._shape, p.key, type(idx) is not tuple, p.zero)
    if p.oob and not p.arrays and not p.has_none:  # upstream writes an empty slice
        return a
    if not p.arrays:
        v = _fit_basic(p, v, a._shape)
        if p.oob:
            return a
        return node(a._shape, a._dtype, P.SliceUpdate(p.key, p.flip), (a, v), s)
    v = _scatter_update(p, v)
    return _scatter_into(a, p, v, None, s)


def _scatter_update(p, v):
    """The update v checked against upstream's scatter layout and transposed into the
    gather layout that the Scatter primitive takes."""
    shape = _gather_shape(p.sub, p.arrays, p.dims, p.pos)
    nb = len(shape) - (len(p.sub) - len(p.dims))
    order = _update_order(p, nb)
    ushape = tuple(shape[i] for i in order)
    v = _fit(v, ushape)
    if order != sorted(order) and v.ndim:
        from ember.core.ops.shape import reshape, transpose
        n = len(order)
        if v.ndim < n:
            v = reshape(v, (1,) * (n - v.ndim) + v._shape)
        inv = [0] * n
        for i, o in enumerate(order):
            inv[o] = i
        v = transpose(v, inv)
    return v


def _check_fits(shape, ishape, dims):
    """upstream's scatter takes a slice of 1 along each indexed axis: an axis of size 0 has
    no room for it, even with no indices"""
    if any(shape[d] == 0 for d in dims):
        ushape = ishape + tuple(1 if i in dims else n for i, n in enumerate(shape))
        raise ValueError(f"[scatter] Updates with shape {_fmt(ushape)} are too large for "
                         f"array with shape {_fmt(shape)}.")


def _check_room(shape, p):
    """upstream's scatter takes a slice of 1 along each axis that it indexes (ints, arrays
    and the slices it does not keep, see `_post`): an axis of size 0 has no room for it."""
    axes = []  # the axis of `shape` under each dim of p.sub (None for a new one)
    ax = 0
    for k in p.key:
        if type(k) is not int:
            axes.append(None if k is None else ax)
        ax += k is not None
    axes.extend(range(ax, ax + len(p.sub) - len(axes)))
    rem_dims = [d for d in range(len(p.sub)) if d not in p.dims]
    post = _post(p)
    kept = {rem_dims[i] for i in post}
    indexed = set(p.ints)
    indexed.update(axes[d] for d in range(len(p.sub)) if d not in kept and axes[d] is not None)
    if all(shape[ax] for ax in indexed):
        return
    gshape = _gather_shape(p.sub, p.arrays, p.dims, p.pos)
    nb = len(gshape) - len(rem_dims)
    lead = [gshape[i] for i in _update_order(p, nb)][:len(gshape) - len(post)]
    sizes = {axes[d]: p.sub[d] for d in kept}
    tail = [1 if ax in indexed else sizes.get(ax, n) for ax, n in enumerate(shape)]
    raise ValueError(f"[scatter] Updates with shape {_fmt(lead + tail)} are too large for "
                     f"array with shape {_fmt(shape)}.")


def _scatter_into(a, p, v, mode, s):
    ishape = _index_shape(p.arrays)
    if 0 in a._shape:
        _check_room(a._shape, p)
    _check_index_dtypes(p.arrays)
    if p.oob or _prod(ishape) == 0:  # (upstream writes outside the array)
        return a
    if p.trivial:
        return _scatter(a, v, p.arrays, p.dims, p.pos, mode)
    sub = node(p.sub, a._dtype, P.Slice(p.key, p.flip), (a,), s)
    new = _scatter(sub, v, p.arrays, p.dims, p.pos, mode)
    return node(a._shape, a._dtype, P.SliceUpdate(p.key, p.flip), (a, new), s)


def _masked_setitem(a, mask, value, s):
    if not isinstance(mask, array):
        mask = array(mask)
    mask = as_array(mask, s)
    v = _value(value, a._dtype, s)
    k = mask.ndim
    if k > a.ndim:
        raise ValueError("[masked_scatter] The mask cannot have more dimensions than the target.")
    if mask._shape != a._shape[:k]:
        raise ValueError(f"[masked_scatter] The boolean mask should have the same shape as the "
                         f"beginning of the indexed array but the mask has shape "
                         f"{_fmt(mask._shape)} and the array has shape {_fmt(a._shape)}")
    tail = a._shape[k:]
    r = len(tail)
    if v.ndim > r + 1:
        raise ValueError(f"[masked_scatter] Value array shape must be broadcastable with the "
                         f"last {r} dimensions of the input.")
    from ember.core.ops.shape import broadcast_to, reshape
    if v.ndim == r + 1:
        src_shape = (v._shape[0],) + tail
    else:
        src_shape = (_prod(mask._shape),) + tail
        v = reshape(v, (1,) * (r + 1 - v.ndim) + v._shape)
    if v._shape != src_shape:
        if broadcast_pair(v._shape, src_shape, "broadcast_shapes") != src_shape:
            raise ValueError(f"[broadcast_shapes] Shapes {_fmt(v._shape)} and "
                             f"{_fmt(src_shape)} cannot be broadcast.")
        v = broadcast_to(v, src_shape)
    return _masked_scatter(a, mask, v, False)


_AT_MODES = {"add": "add", "subtract": "add", "multiply": "prod", "divide": "prod",
             "maximum": "max", "minimum": "min"}
_NO_INDEX = object()


def _at(a, idx, value, op):
    s = resolve(None)
    a = as_array(a, s)
    if idx is _NO_INDEX:
        raise ValueError(f"[ArrayAt] Index the array before calling {op}: a.at[idx].{op}(v).")
    if value is None:  # refused by upstream's binding
        raise TypeError(f"{op}(): incompatible function arguments. The value must be a scalar, "
                        "an array or an array-like, got None.")
    if _is_mask(idx) or _has_mask(idx):
        # upstream checks the update as for integer indices, then fails in the scatter
        _at(a, _masks_as_ints(idx), value, op)
        raise SystemError("[ArrayAt] Boolean masks are not supported.")
    v = _operand(value, a._dtype, s)
    from ember.core.ops import elementwise as EW
    idx = _whole(a, idx)
    if idx is None or idx is Ellipsis:
        # upstream applies the plain op to the whole array, which promotes: an int array
        # divided by 2 gives float32
        vs = v._shape
        while idx is Ellipsis and vs and vs[0] == 1:
            vs = vs[1:]  # (an ellipsis first drops the update's leading 1s)
        if vs != v._shape:
            from ember.core.ops.shape import reshape
            v = reshape(v, vs)
        _check_broadcast(v, a._shape)
        return getattr(EW, op)(a, v, s)
    mode = _AT_MODES[op]
    if _is_index(idx, a, s):
        v = _fit(_at_value(v, op, a._dtype, s), idx._shape + a._shape[1:])
        if not a._shape[0]:
            _check_fits(a._shape, idx._shape, (0,))
        if not idx.size:
            return a
        return _scatter(a, v, (idx,), (0,), 0, mode)
    p = _parse(a, idx, s, "scatter")
    if p.arrays:
        _index_shape(p.arrays)  # (index arrays that do not broadcast are reported first)
    v = _at_value(v, op, a._dtype, s)
    if p.ints and v._shape and not p.arrays and not p.has_none:
        _check_int_update(v._shape, a._shape, p.key, type(idx) is not tuple, p.zero)
    if p.oob and not p.arrays and not p.has_none:
        return a
    if not p.arrays:
        shape = p.sub
        try:
            v = _fit(v, shape)
        except ValueError:
            if type(idx) is not tuple:  # a lone int keeps its axis (as 1) in upstream's
                raise _at_misfit(v._shape, shape if len(shape) == a.ndim else (1,) + shape)
            if all(type(i) is _pyslice or i is Ellipsis for i in idx):
                raise _at_misfit(v._shape, shape)
            raise
        if p.oob:
            return a
        x = fresh(a) if p.trivial else node(shape, a._dtype, P.Slice(p.key, p.flip), (a,), s)
        new = _COMBINE[mode](x, v, s)
        return node(a._shape, a._dtype, P.SliceUpdate(p.key, p.flip), (a, new), s)
    v = _scatter_update(p, v)
    return _scatter_into(a, p, v, mode, s)


def _at_value(v, op, dtype, s):
    """The update of an at[] op as what the scatter combines: negated for subtract, inverted
    for divide, in the array's dtype."""
    from ember.core.ops import elementwise as EW
    if op in ("subtract", "divide"):
        v = EW.negative(v, s) if op == "subtract" else EW.reciprocal(v, s)
    return _cast(v, dtype, s)


def _lists_as_arrays(idx):
    if type(idx) is list:
        return array(idx)
    if type(idx) is tuple and list in map(type, idx):
        return tuple(array(i) if type(i) is list else i for i in idx)
    return idx


def _check_index_dtypes(arrays):
    # a scatter checks its indices' dtype only once the update fits
    for i in arrays:
        if i._dtype.kind not in "iu":
            raise ValueError("[scatter] Got indices with invalid dtype. Indices must be "
                             "integral.")


def _masks_as_ints(idx):
    """idx with its boolean arrays (and lists of bools) read as integer indices."""
    if type(idx) is tuple:
        return tuple(_masks_as_ints(i) if _is_mask(i) else i for i in idx)
    if isinstance(idx, np.ndarray):
        return idx.astype(np.int32)
    from ember.core.ops.elementwise import astype
    return astype(idx if isinstance(idx, array) else array(idx), D.int32)


def _combine(name):
    def f(x, v, s):
        from ember.core.ops import elementwise as EW
        if name == "prod" and x._dtype is D.bool_:
            return EW.logical_and(x, v, s)
        fn = {"add": EW.add, "prod": EW.multiply, "max": EW.maximum, "min": EW.minimum}[name]
        return fn(x, v, s)
    return f


_COMBINE = {m: _combine(m) for m in ("add", "prod", "max", "min")}


class ArrayAt:
    """`a.at[idx]`: updates of `a` at `idx` that, unlike `a[idx] += v`, combine repeated
    indices (each returns a new array)."""

    __slots__ = ("_a", "_idx")

    def __init__(self, a, idx=_NO_INDEX):
        self._a = a
        self._idx = idx

    def __getitem__(self, idx):
        return ArrayAt(self._a, idx)

    def add(self, value):
        return _at(self._a, self._idx, value, "add")

    def subtract(self, value):
        return _at(self._a, self._idx, value, "subtract")

    def multiply(self, value):
        return _at(self._a, self._idx, value, "multiply")

    def divide(self, value):
        return _at(self._a, self._idx, value, "divide")

    def maximum(self, value):
        return _at(self._a, self._idx, value, "maximum")

    def minimum(self, value):
        return _at(self._a, self._idx, value, "minimum")


# -- take, take_along_axis, put_along_axis ---------------------------------------------

def _axis_arg(axis, op):
    if isinstance(axis, (int, np.integer)):
        return int(axis)
    raise TypeError(f"{op}(): incompatible function arguments: axis must be an int or None.")


def take(a, /, indices, axis=None, *, stream=None):
    s = resolve(stream)
    a = array_arg(a, s, "take")
    if axis is not None:
        axis = _axis_arg(axis, "take")
        nd = a.ndim
        if not -nd <= axis < nd:
            raise IndexError(f"[take] Received invalid axis {axis} for array with {nd} "
                             "dimensions.")
        axis %= nd
    if isinstance(indices, int):  # (numpy ints are refused by upstream's binding, below)
        i = int(indices)
        if not -2 ** 31 <= i < 2 ** 31:  # upstream's int32 cast of it fails
            raise RuntimeError(f"[take] Index {i} does not fit in 32 bits.")
        if a.size == 0:
            raise ValueError("[take] Cannot do a non-empty take from an array with zero "
                             "elements.")
        n = a.size if axis is None else a._shape[axis]
        # upstream slices [i, i + 1) and counts a negative end from the back: -n .. -2
        # index from the end, while -1 (an empty slice) fails as out-of-range indices do
        if -n <= i < -1:
            i += n
        if not 0 <= i < n:
            raise ValueError(f"[squeeze] Cannot squeeze axis {axis or 0} with size 0 which "
                             "is not equal to 1.")
        if axis is None:
            key = tuple(int(c) for c in np.unravel_index(i, a._shape)) if a._shape else ()
        else:
            key = (_FULL,) * axis + (i,)
        return _slice(a, key, ())
    if not isinstance(indices, array):
        raise binding_error("take", "take(a: array, /, indices: int | array, axis: int | None "
                            "= None, *, stream: StreamOrDevice = None) -> array")
    idx = as_array(indices, s)
    if idx._dtype is D.bool_:
        raise ValueError("[Gather] Boolean indices not supported.")
    if idx._dtype.kind not in "iu":
        raise ValueError("[gather] Got indices with invalid dtype. Indices must be integral.")
    if axis is None:
        if a.ndim != 1:
            from ember.core.ops.shape import reshape
            a = reshape(a, (a.size,))
        axis = 0
    if a._shape[axis] == 0 and idx.size:
        raise ValueError("[take] Cannot do a non-empty take from an empty axis.")
    return _gather(a, (idx,), (axis,), axis)


def _along_args(a, indices, axis, op, s):
    if not isinstance(indices, array):
        raise TypeError(f"{op}(): incompatible function arguments: indices must be an array.")
    idx = as_array(indices, s)
    if axis is None:
        from ember.core.ops.shape import reshape
        a = reshape(a, (a.size,))
        if idx.ndim != 1:
            raise ValueError(f"[{op}] Indices of dimension {idx.ndim} does not match array of "
                             "dimension 1.")
        return a, idx, 0
    axis = _axis_arg(axis, op)
    nd = a.ndim
    if not -nd <= axis < nd:
        raise IndexError(f"[{op}] Axis {axis} is out of bounds for array with {nd} dimensions.")
    if idx.ndim != nd:
        raise ValueError(f"[{op}] Indices of dimension {idx.ndim} does not match array of "
                         f"dimension {nd}.")
    return a, idx, axis % nd


def _drop(shape, axis):
    return shape[:axis] + shape[axis + 1:]


def take_along_axis(a, /, indices, axis=-1, *, stream=None):
    s = resolve(stream)
    a = array_arg(a, s, "take_along_axis")
    a, idx, axis = _along_args(a, indices, axis, "take_along_axis", s)
    rest = broadcast_pair(_drop(a._shape, axis), _drop(idx._shape, axis), "broadcast_shapes")
    shape = rest[:axis] + (idx._shape[axis],) + rest[axis:]  # (other index dtypes: at eval)
    if a._shape[axis] == 0 and _prod(shape):
        from ember.core.ops.creation import zeros
        return zeros(shape, a._dtype)
    return node(shape, a._dtype, P.GatherAxis(axis), (a, idx), s)


def _array_arg(a, s, op, signature):
    """`a` as an array on stream s: upstream's binding refuses anything else."""
    if not isinstance(a, array):
        raise binding_error(op, signature)
    return as_array(a, s)


def put_along_axis(a, /, indices, values, axis=None, *, stream=None):
    s = resolve(stream)
    a = _array_arg(a, s, "put_along_axis", "put_along_axis(a: array, /, indices: array, values: "
                   "array, axis: int | None = None, *, stream: StreamOrDevice = None) -> array")
    if not isinstance(values, array):
        raise TypeError("put_along_axis(): incompatible function arguments: values must be "
                        "an array.")
    shape0 = a._shape
    x, idx, ax = _along_args(a, indices, axis, "put_along_axis", s)
    if not x.size:  # upstream returns an empty array as is, whatever the values
        return fresh(a)
    v = _value(values, x._dtype, s)
    nd = x.ndim
    from ember.core.ops.shape import broadcast_to, reshape
    if v.ndim > nd:
        v = _strip(v, nd)
    if v.ndim < nd:
        v = reshape(v, (1,) * (nd - v.ndim) + v._shape)
    rest = broadcast_pair(_drop(x._shape, ax), _drop(idx._shape, ax), "broadcast_shapes")
    rest = broadcast_pair(rest, _drop(v._shape, ax), "broadcast_shapes")
    broadcast_pair((idx._shape[ax],), (v._shape[ax],), "broadcast_shapes")
    if idx._dtype.kind not in "iu":
        raise RuntimeError("[put_along_axis] Cannot scatter with indices type.")
    full = rest[:ax] + (x._shape[ax],) + rest[ax:]
    if x._shape != full:
        x = broadcast_to(x, full)
    if x._shape[ax] == 0:
        out = x
    else:
        out = node(full, x._dtype, P.ScatterAxis(ax, None), (x, idx, v), s)
    if axis is None:
        out = reshape(out, shape0)
    return out


def _strip(v, nd):
    from ember.core.ops.shape import reshape
    extra = v.ndim - nd
    if any(d != 1 for d in v._shape[:extra]):
        raise ValueError(f"[put_along_axis] Values of shape {_fmt(v._shape)} have too many "
                         "dimensions.")
    return reshape(v, v._shape[extra:])


# -- dynamic slices ---------------------------------------------------------------------

def _dynamic_args(a, start, axes, op, s):
    if not isinstance(start, array):
        raise TypeError(f"{op}(): incompatible function arguments: start_indices must be an "
                        "array.")
    start = as_array(start, s)
    nd = a.ndim
    # upstream's order of checks: the count of indices first, the axes last
    if nd == 0 and start.size:
        raise ValueError(f"[{op}] Invalid number of starting positions for array with "
                         "dimension 0.")
    if start.size != len(axes):
        raise ValueError(f"[{op}] Number of starting indices {start.size} does not match "
                         f"number of axes {len(axes)}.")
    if start.ndim > 1:
        raise ValueError(f"[{op}] array of starting indices must be zero or one dimensional "
                         f"but has dimension {start.ndim}.")
    if start._dtype.kind not in "iu":
        raise ValueError(f"[{op}] Start indices must be integers, got type "
                         f"{start._dtype.name}.")
    norm = []
    for ax in axes:
        ax = _axis_arg(ax, op)
        if not -nd <= ax < nd:
            raise IndexError(f"[{op}] Invalid axis {ax} for array with dimension {nd}.")
        norm.append(ax % nd)
    if len(set(norm)) != len(norm):
        raise ValueError(f"[{op}] Repeat axes not allowed.")
    return start, tuple(norm)


def slice(a, start_indices, axes, slice_size, *, stream=None):  # noqa: A001
    s = resolve(stream)
    a = _array_arg(a, s, "slice", "slice(a: array, start_indices: array, axes: Sequence[int], "
                   "slice_size: Sequence[int], *, stream: StreamOrDevice = None) -> array")
    start, axes = _dynamic_args(a, start_indices, axes, "slice", s)
    sizes = tuple(int(d) for d in slice_size)
    if len(sizes) != a.ndim:
        raise ValueError(f"[slice] Invalid slice size for array with {a.ndim} dimensions.")
    if any(not 0 <= d <= n for d, n in zip(sizes, a._shape)):
        raise ValueError(f"[slice] Invalid slice size {_fmt(sizes)} for array with shape "
                         f"{_fmt(a._shape)}.")
    return _dynamic_slice(a, start, axes, sizes)


def slice_update(a, update, start_indices, axes, *, stream=None):
    s = resolve(stream)
    a = _array_arg(a, s, "slice_update", "slice_update(a: array, update: array, start_indices: "
                   "array, axes: Sequence[int], *, stream: StreamOrDevice = None) -> array")
    if not isinstance(update, array):
        raise TypeError("slice_update(): incompatible function arguments: update must be an "
                        "array.")
    start, axes = _dynamic_args(a, start_indices, axes, "slice_update", s)
    u = _value(update, a._dtype, s)
    nd = a.ndim
    if u.ndim > nd:
        raise ValueError(f"[slice_update] The update array of shape {_fmt(u._shape)} has more "
                         f"dimensions than the array of shape {_fmt(a._shape)}.")
    off = nd - u.ndim
    sizes = tuple(min(u._shape[d - off], a._shape[d]) if d >= off else
                  (1 if d in axes else a._shape[d]) for d in range(nd))
    _fit(u, sizes)
    if a.size == 0:  # nothing to write (an int axis's size-1 window may not even fit)
        return a
    return _dynamic_slice_update(a, u, start, axes, sizes)
