"""Shape ops: reshaping, broadcasting, transposition, joining and splitting, padding,
flips and rolls, diagonals."""

import math
import operator

import numpy as np

from ember.core import dtypes as D
from ember.core.array import array, fresh, node, nodes
from ember.core.ops._base import (
    as_operand,
    binding_error,
    broadcast_pair,
    broadcast_shapes,
    resolve,
    to_device,
)
from ember.core.primitives.shape import (
    Broadcast,
    Concatenate,
    Contiguous,
    Diagonal,
    DiagonalAdjoint,
    Flip,
    Pad,
    Reshape,
    Roll,
    Split,
    Stack,
    Transpose,
    Unstack,
)

__all__ = ["reshape", "flatten", "unflatten", "squeeze", "expand_dims", "transpose",
           "permute_dims", "matrix_transpose", "swapaxes", "moveaxis", "broadcast_to",
           "broadcast_arrays", "broadcast_shapes", "concatenate", "concat", "stack", "split",
           "unstack", "repeat", "tile", "pad", "flip", "roll", "atleast_1d", "atleast_2d",
           "atleast_3d", "diagonal", "diag", "trace", "contiguous"]

_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1
_OOB = "Axis {} is out of bounds for array with {} dimensions."
_INVALID = "Invalid axis {} for array with {} dimensions."


# -- helpers ---------------------------------------------------------------------------

def apply(prim, *xs):
    """The node (or nodes, for multi-output primitives) of shape primitive `prim` over
    arrays `xs` of one dtype."""
    x = xs[0]
    shape = prim.out_shape([y._shape for y in xs])
    if prim.multi:
        return nodes(shape, [x._dtype] * len(shape), prim, xs, x._stream)
    return node(shape, x._dtype, prim, xs, x._stream)


def _reshaped(a, shape, s):
    """reshape for a shape already checked to hold a's size."""
    if shape == a._shape:
        return fresh(a)
    return node(shape, a._dtype, Reshape(shape), (a,), s)


def _transposed(a, axes, s):
    """transpose for a permutation already checked."""
    if axes == tuple(range(len(axes))):
        return fresh(a)
    return node(tuple(a._shape[i] for i in axes), a._dtype, Transpose(axes), (a,), s)


def _arr(a, s, op):
    """`a` as an array on the device of stream `s`; upstream's binding takes arrays only."""
    if not isinstance(a, array):
        if op == "split":
            raise binding_error(op, _SPLIT_SIG)
        raise TypeError(f"{op}(): incompatible function arguments. The array argument must be "
                        f"an array, got {type(a).__name__}.")
    if a._stream.device is not s.device:
        return to_device(a, s)
    return a


def _listed(a, s, op):
    """An array of a variadic argument: upstream casts each one in C++, where a non-array
    fails (a RuntimeError, not its binding's TypeError)."""
    if not isinstance(a, array):
        raise RuntimeError(f"[{op}] Expected an array, got {type(a).__name__}.")
    return _arr(a, s, op)


def _int(v, op, what="axis"):
    """An int argument as upstream's binding takes it: anything with __index__ (bools too)
    that fits in an int32; a TypeError otherwise."""
    if type(v) is not int:
        if not hasattr(v, "__index__"):
            raise TypeError(f"[{op}] Expected an integer {what}, got {type(v).__name__}.")
        try:
            v = operator.index(v)
        except TypeError:
            raise TypeError(f"[{op}] Expected an integer {what}, got {type(v).__name__}.") \
                from None
    if not _INT32_MIN <= v <= _INT32_MAX:
        raise TypeError(f"[{op}] The {what} {v} does not fit in 32 bits.")
    return v


def _is_int(v):
    # (arrays have __index__ too, but one with dimensions is a sequence of ints)
    return type(v) is int or (hasattr(v, "__index__") and not getattr(v, "ndim", 0))


def _axis(axis, n, op, msg=_OOB):
    """Axis normalised to [0, n); IndexError (as upstream) when out of range."""
    if type(axis) is not int or axis < -n or axis >= n:
        axis = _int(axis, op)
        if axis < -n or axis >= n:
            raise IndexError(f"[{op}] " + msg.format(axis, n))
    return axis + n if axis < 0 else axis


def _shifted(axis, n, op, msg):
    """_axis, for ops whose message names a negative axis after adding the rank to it."""
    axis = _int(axis, op)
    if axis < 0:
        axis += n
    if not 0 <= axis < n:
        raise IndexError(f"[{op}] " + msg.format(axis, n))
    return axis


def _ints(seq, op, what="axis"):
    if _is_int(seq):
        return (_int(seq, op, what),)
    try:
        return tuple(_int(v, op, what) for v in seq)
    except TypeError as e:
        if str(e).startswith(f"[{op}]"):
            raise
        raise TypeError(f"[{op}] Expected an int or a sequence of ints.") from None


def _fmt(shape):
    return "(" + ",".join(str(d) for d in shape) + ")"


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _promote(xs, s):
    """xs cast to their common dtype."""
    dt = xs[0]._dtype
    for x in xs[1:]:
        if x._dtype is not dt:
            dt = D.promote_types(dt, x._dtype)
    if all(x._dtype is dt for x in xs):
        return xs
    from ember.core.ops.elementwise import astype
    return [astype(x, dt, s) for x in xs]


# -- reshaping -------------------------------------------------------------------------

_M64 = (1 << 64) - 1
_RESHAPE_SIG = ("reshape(a: array, /, shape: Sequence[int], *, stream: StreamOrDevice = None) "
                "-> array")
_UNFLATTEN_SIG = ("unflatten(a: array, /, axis: int, shape: Sequence[int], *, stream: "
                  "StreamOrDevice = None) -> array")
_BROADCAST_SIG = ("broadcast_to(a: scalar | array, /, shape: Sequence[int], *, stream: "
                  "StreamOrDevice = None) -> array")
_SPLIT_SIG = ("split(a: array, /, indices_or_sections: int | Sequence[int], axis: int = 0, *, "
              "stream: StreamOrDevice = None) -> array")


def _not_sequence(v):
    return isinstance(v, (str, bytes)) or not hasattr(v, "__iter__") or (
        isinstance(v, array) and v.ndim == 0)


def _bound_int(v):
    """v as upstream's binding converts an int (bools and __index__ types too), else None."""
    if type(v) is int:
        return v
    if isinstance(v, float) or not hasattr(v, "__index__"):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def _dims(shape, op, sig):
    """A shape argument as upstream's binding converts it: a sequence of int32s."""
    if _not_sequence(shape):
        raise binding_error(op, sig)
    dims = []
    for d in shape:
        if type(d) is not int:
            d = _bound_int(d)
            if d is None:
                raise binding_error(op, sig)
        if d < _INT32_MIN or d > _INT32_MAX:
            raise OverflowError(f"Integer value {d} is outside the supported range "
                                f"[-2147483648, 2147483647].")
        dims.append(d)
    return dims


def _infer_shape(shape, size, op):
    dims = _dims(shape, "reshape", _RESHAPE_SIG)
    # upstream multiplies the known dimensions as size_t and divides the size by that product
    # for the inferred one: the shape in its error message is the one after inference
    known, infer = 1, -1
    for i, d in enumerate(dims):
        if d == -1:
            if infer >= 0:
                raise ValueError(f"[{op}] Reshape can only infer one dimension.")
            infer = i
        else:
            known = known * d & _M64
    if infer >= 0:
        if known == 0:
            raise ValueError(f"[{op}] Cannot infer the shape of an empty array")
        dims[infer] = size // known
    shape = tuple(dims)
    if any(d < 0 for d in shape) or _prod(shape) != size:
        raise ValueError(f"[{op}] Cannot reshape array of size {size} into shape {_fmt(shape)}.")
    return shape


def reshape(a, /, shape, *, stream=None):
    s = resolve(stream)
    if type(a) is not array or a._stream.device is not s.device:
        a = _arr(a, s, "reshape")
    # (2.0, 3) compares equal to (2, 3) but upstream refuses it
    if type(shape) is not tuple or shape != a._shape \
            or not all(type(d) is int for d in shape):
        shape = _infer_shape(shape, a.size, "reshape")
        if shape == a._shape:
            return fresh(a)
    else:
        return fresh(a)
    return node(shape, a._dtype, Reshape(shape), (a,), s)


def flatten(a, /, start_axis=0, end_axis=-1, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "flatten")
    n = a.ndim
    if n == 0:
        return _reshaped(a, (1,), s)
    st, en = _int(start_axis, "flatten"), _int(end_axis, "flatten")
    # as upstream: the start clamped from below only, the end from above only
    st = max(st + n if st < 0 else st, 0)
    en = min(en + n if en < 0 else en, n - 1)
    if st > en:
        raise ValueError("[flatten] start_axis must be less than or equal to end_axis")
    sh = a._shape
    return _reshaped(a, sh[:st] + (_prod(sh[st:en + 1]),) + sh[en + 1:], s)


def unflatten(a, /, axis, shape, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "unflatten")
    ax = _shifted(axis, a.ndim, "unflatten", "Invalid axes {} for array with {} dimensions.")
    shape = tuple(_dims(shape, "unflatten", _UNFLATTEN_SIG))
    if not shape:
        raise ValueError("[unflatten] Shape to unflatten to cannot be empty.")
    size = a._shape[ax]
    if shape.count(-1) > 1:
        raise ValueError("[Unflatten] Can only infer one dimension.")
    if -1 in shape:
        known = _prod(d for d in shape if d != -1) & _M64  # (as upstream: a size_t product)
        if known:
            shape = tuple(size // known if d == -1 else d for d in shape)
    if any(d < 0 for d in shape) or _prod(shape) != size:
        raise ValueError(f"[Unflatten] Cannot unflatten axis {ax} with size {size} into shape "
                         f"{_fmt(shape)}.")
    return _reshaped(a, a._shape[:ax] + shape + a._shape[ax + 1:], s)


def squeeze(a, /, axis=None, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "squeeze")
    sh = a._shape
    if axis is None:
        return _reshaped(a, tuple(d for d in sh if d != 1), s)
    given = _ints(axis, "squeeze")
    axes = [_axis(ax, a.ndim, "squeeze") for ax in given]
    if len(set(axes)) != len(axes):
        raise ValueError("[squeeze] Received duplicate axes.")
    for ax, named in zip(axes, given):  # (the message names the axis as given)
        if sh[ax] != 1:
            raise ValueError(f"[squeeze] Cannot squeeze axis {named} with size {sh[ax]} which is "
                             "not equal to 1.")
    return _reshaped(a, tuple(d for i, d in enumerate(sh) if i not in axes), s)


def expand_dims(a, /, axis, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "expand_dims")
    if type(axis) is int:
        n = len(a._shape) + 1
        if not -n <= axis < n:
            _axis(axis, n, "expand_dims")
        ax = axis + n if axis < 0 else axis
        return _reshaped(a, a._shape[:ax] + (1,) + a._shape[ax:], s)
    axes = _ints(axis, "expand_dims")
    out_n = a.ndim + len(axes)
    axes = sorted(_axis(ax, out_n, "expand_dims") for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError("[expand_dims] Received duplicate axes.")
    shape = list(a._shape)
    for ax in axes:
        shape.insert(ax, 1)
    return _reshaped(a, tuple(shape), s)


def atleast_1d(*arys, stream=None):
    return _atleast(arys, 1, stream)


def atleast_2d(*arys, stream=None):
    return _atleast(arys, 2, stream)


def atleast_3d(*arys, stream=None):
    return _atleast(arys, 3, stream)


def _atleast(arys, k, stream):
    s = resolve(stream)
    op = f"atleast_{k}d"
    out = []
    for a in arys:
        a = _listed(a, s, op)
        sh = a._shape
        if len(sh) < k:
            if k == 3 and len(sh) == 2:
                sh = sh + (1,)
            elif k == 3 and len(sh) == 1:
                sh = (1,) + sh + (1,)
            else:
                sh = (1,) * (k - len(sh)) + sh
            a = _reshaped(a, sh, s)
        else:
            a = fresh(a)
        out.append(a)
    return out[0] if len(out) == 1 else out


# -- transposition ---------------------------------------------------------------------

_PERMS = {}  # (axes as given, ndim) -> the checked permutation, for plain int tuples


def transpose(a, /, axes=None, *, stream=None):
    s = resolve(stream)
    if type(a) is not array or a._stream.device is not s.device:
        a = _arr(a, s, "transpose")
    n = len(a._shape)
    if axes is None:
        axes = tuple(range(n - 1, -1, -1))
    elif type(axes) is tuple and (axes, n) in _PERMS and all(type(v) is int for v in axes):
        axes = _PERMS[axes, n]  # ((1.0, 0) finds (1, 0): only plain ints take the cache)
    elif _is_int(axes):
        raise _int_axes("transpose")
    else:
        given = axes
        axes = _ints(axes, "transpose")
        if len(axes) != n:
            raise ValueError(f"[transpose] Received {len(axes)} axes for array with {n} "
                             "dimensions.")
        axes = tuple(_shifted(ax, n, "transpose", "Invalid axis ({}) for array with {} "
                              "dimensions.") for ax in axes)
        if len(set(axes)) != n:
            raise ValueError("[transpose] Repeat axes not allowed.")
        if type(given) is tuple and all(type(v) is int for v in given):
            if len(_PERMS) > 1024:
                _PERMS.clear()
            _PERMS[given, n] = axes
    if axes == tuple(range(n)):
        return fresh(a)
    shape = tuple(a._shape[i] for i in axes)
    return node(shape, a._dtype, Transpose(axes), (a,), s)


def permute_dims(a, /, axes=None, *, stream=None):
    if axes is not None and _is_int(axes):
        raise _int_axes("permute_dims")
    return transpose(a, axes, stream=stream)


def _int_axes(op):
    # upstream's axes are a sequence: its binding refuses a lone int
    return binding_error(op, f"{op}(a: array, /, axes: Sequence[int] | None = None, *, "
                         "stream: StreamOrDevice = None) -> array")


def matrix_transpose(a, /, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "matrix_transpose")
    n = a.ndim
    if n < 2:
        raise ValueError("[matrix_transpose] Input array must have at least 2 dimensions.")
    return _transposed(a, tuple(range(n - 2)) + (n - 1, n - 2), s)


def moveaxis(a, /, source, destination, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "moveaxis")
    n = a.ndim
    src = _axis(source, n, "moveaxis", _INVALID)
    dst = _axis(destination, n, "moveaxis", _INVALID)
    order = [i for i in range(n) if i != src]
    order.insert(dst, src)
    return _transposed(a, tuple(order), s)


def swapaxes(a, /, axis1, axis2, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "swapaxes")
    n = a.ndim
    i = _axis(axis1, n, "swapaxes", _INVALID)
    j = _axis(axis2, n, "swapaxes", _INVALID)
    order = list(range(n))
    order[i], order[j] = order[j], order[i]
    return _transposed(a, tuple(order), s)


# -- broadcasting ----------------------------------------------------------------------

def broadcast_to(a, /, shape, *, stream=None):
    s = resolve(stream)
    if type(a) is not array:
        a = as_operand(a, s)
    elif a._stream.device is not s.device:
        a = to_device(a, s)
    # ((2.0, 3) equals (2, 3) but upstream refuses it)
    if type(shape) is not tuple or not all(type(d) is int for d in shape):
        shape = tuple(_dims(shape, "broadcast_to", _BROADCAST_SIG))
    if shape == a._shape:
        return fresh(a)
    for d in shape:
        if d < 0:
            raise ValueError("[broadcast_to] Negative dimensions not allowed.")
        if d > _INT32_MAX:
            _dims(shape, "broadcast_to", _BROADCAST_SIG)  # (raises upstream's OverflowError)
    # (upstream's words, without the op's name, where the shapes broadcast to another one)
    if broadcast_pair(a._shape, shape, "broadcast_shapes") != shape:
        raise ValueError(f"Cannot broadcast array of shape {_fmt(a._shape)} "
                         f"into shape {_fmt(shape)}.")
    return node(shape, a._dtype, Broadcast(shape), (a,), s)


def broadcast_arrays(*arrays, stream=None):
    s = resolve(stream)
    xs = [_listed(a, s, "broadcast_arrays") for a in arrays]
    if not xs:
        return []
    shape = broadcast_shapes(*[x._shape for x in xs])
    return [broadcast_to(x, shape, stream=s) for x in xs]


# -- joining and splitting -------------------------------------------------------------

def _array_list(arrays, s, op):
    if isinstance(arrays, array) and arrays.ndim:
        return list(unstack(arrays, stream=s))  # upstream takes it as a sequence of arrays
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{op}(): incompatible function arguments. The arrays must be a list "
                        f"or tuple of arrays, got {type(arrays).__name__}.")
    return [_arr(x, s, op) for x in arrays]


def concatenate(arrays, axis=0, *, stream=None):
    s = resolve(stream)
    xs = _array_list(arrays, s, "concatenate")
    if not xs:
        raise ValueError("[concatenate] No arrays provided for concatenation")
    if axis is None:
        xs = [_reshaped(x, (x.size,), s) for x in xs]
        axis = 0
    if len(xs) == 1:  # (upstream checks no axis against a single array)
        _int(axis, "concatenate")
        return fresh(xs[0])
    n = xs[0].ndim
    ax = _axis(axis, n, "concatenate")  # against the first array, before the others' ranks
    for x in xs[1:]:
        if x.ndim != n:
            raise ValueError("[concatenate] All the input arrays must have the same number of "
                             f"dimensions. However, got arrays with dimensions {n} and "
                             f"{x.ndim}.")
    ref = xs[0]._shape
    for x in xs[1:]:
        sh = x._shape
        if sh[:ax] != ref[:ax] or sh[ax + 1:] != ref[ax + 1:]:
            shapes = ", ".join(_fmt(y._shape) for y in xs)
            raise ValueError("[concatenate] All the input array dimensions must match exactly "
                             "except for the concatenation axis. However, the provided shapes "
                             f"are {shapes}, and the concatenation axis is {ax}.")
    xs = _promote(xs, s)
    shape = ref[:ax] + (sum(x._shape[ax] for x in xs),) + ref[ax + 1:]
    return node(shape, xs[0]._dtype, Concatenate(ax), tuple(xs), s)


def concat(arrays, axis=0, *, stream=None):
    if not isinstance(arrays, array):
        _array_list(arrays, resolve(stream), "concat")  # (its binding names itself)
    return concatenate(arrays, axis, stream=stream)


def stack(arrays, axis=0, *, stream=None):
    s = resolve(stream)
    xs = _array_list(arrays, s, "stack")
    if not xs:
        raise ValueError("[stack] No arrays provided for stacking")
    ref = xs[0]._shape
    for x in xs[1:]:
        if x._shape != ref:
            raise ValueError("[stack] All arrays must have the same shape")
    ax = _axis(0 if axis is None else axis, len(ref) + 1, "stack")
    xs = _promote(xs, s)
    shape = ref[:ax] + (len(xs),) + ref[ax:]
    if len(xs) == 1:
        return _reshaped(xs[0], shape, s)
    return node(shape, xs[0]._dtype, Stack(ax), tuple(xs), s)


def _split_arg(ios):
    """indices_or_sections as upstream's binding takes it: an int32, or a sequence of them."""
    k = _bound_int(ios)
    if k is not None:
        if _INT32_MIN <= k <= _INT32_MAX:
            return k
        raise binding_error("split", _SPLIT_SIG)
    if _not_sequence(ios):
        raise binding_error("split", _SPLIT_SIG)
    points = []
    for i in ios:
        i = _bound_int(i)
        if i is None or not _INT32_MIN <= i <= _INT32_MAX:
            raise binding_error("split", _SPLIT_SIG)
        points.append(i)
    return points


def split(a, /, indices_or_sections, axis=0, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "split")
    ios = _split_arg(indices_or_sections)
    if _bound_int(axis) is None:
        raise binding_error("split", _SPLIT_SIG)
    ax = _axis(axis, a.ndim, "split")
    n = a._shape[ax]
    if type(ios) is int:
        k = ios
        if k <= 0:
            raise ValueError(f"[split] num_splits must be positive and non-zero but got {k}.")
        if n % k:
            # upstream's message (no op prefix) names the axis as given
            raise ValueError("Array split does not result in sub arrays with equal size: "
                             f"attempting {k} splits along axis {axis} for shape "
                             f"{_fmt(a._shape)}.")
        m = n // k
        bounds = tuple((i * m, (i + 1) * m) for i in range(k))
    else:
        points = [0]
        for i in ios:
            points.append(min(max(i + n if i < 0 else i, 0), n))
        points.append(n)
        bounds = tuple((points[i], max(points[i], points[i + 1]))
                       for i in range(len(points) - 1))
    if len(bounds) == 1:
        return [a]
    return apply(Split(ax, bounds), a)


def unstack(x, /, *, axis=0, stream=None):
    s = resolve(stream)
    x = _arr(x, s, "unstack")
    ax = _axis(axis, x.ndim, "unstack")
    if x._shape[ax] == 0:
        return ()
    return tuple(apply(Unstack(ax), x))


def repeat(array, repeats, axis=None, *, stream=None):  # noqa: A002 - upstream's name
    s = resolve(stream)
    x = _arr(array, s, "repeat")
    r = _int(repeats, "repeat", "number of repeats")
    ax = 0 if axis is None else _axis(axis, x.ndim, "repeat")  # checked before the repeats
    if r < 0:
        raise ValueError("[repeat] Number of repeats cannot be negative")
    if axis is None:
        x = _reshaped(x, (x.size,), s)
    if r == 1:
        return fresh(x)
    sh = x._shape
    # each element followed by its copies: a broadcast along a new axis after `ax`
    wide = sh[:ax + 1] + (r,) + sh[ax + 1:]
    y = _reshaped(x, sh[:ax + 1] + (1,) + sh[ax + 1:], s)
    y = node(wide, y._dtype, Broadcast(wide), (y,), s)
    return _reshaped(y, sh[:ax] + (sh[ax] * r,) + sh[ax + 1:], s)


def tile(a, reps, /, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "tile")
    reps = _ints(reps, "tile", "number of repetitions")
    n = max(a.ndim, len(reps))
    sh = (1,) * (n - a.ndim) + a._shape
    reps = (1,) * (n - len(reps)) + reps
    if any(r < 0 for r in reps):
        raise ValueError("[broadcast_to] Negative dimensions not allowed.")  # (upstream's)
    if all(r == 1 for r in reps):
        return _reshaped(a, sh, s)
    split_shape, tiled, out = [], [], []
    for r, d in zip(reps, sh):
        if r != 1 and d != 1:
            split_shape += [1, d]
            tiled += [r, d]
        else:
            split_shape.append(d)
            tiled.append(r * d)
        out.append(r * d)
    y = _reshaped(a, tuple(split_shape), s)
    y = node(tuple(tiled), y._dtype, Broadcast(tuple(tiled)), (y,), s)
    return _reshaped(y, tuple(out), s)


# -- padding ---------------------------------------------------------------------------

_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _pad_widths(pw, n):
    bad = TypeError("[pad] pad_width must be an int, a tuple of one or two ints, or a list "
                    "of (before, after) pairs.")
    if isinstance(pw, np.ndarray) and pw.ndim and pw.dtype.kind in "biu" \
            or isinstance(pw, array) and pw.dtype.kind in "biu":
        pw = pw.tolist()  # (an array of ints is a sequence or an int as upstream reads it)
    if _is_int(pw):
        pairs = [(_int(pw, "pad"),) * 2]
    elif isinstance(pw, (list, tuple)):
        if all(_is_int(v) for v in pw):
            if len(pw) > 2:
                raise bad
            pairs = [(_int(pw[0], "pad"), _int(pw[-1], "pad"))] if pw else []
        elif all(isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0])
                 and _is_int(v[1]) for v in pw):
            pairs = [(_int(lo, "pad"), _int(hi, "pad")) for lo, hi in pw]
        else:
            raise bad
    else:
        raise bad
    if len(pairs) == 1:
        pairs = pairs * n
    elif len(pairs) != n:
        raise ValueError(f"Invalid number of padding sizes passed to pad with axes of "
                         f"size {n}")  # (upstream's words, without the op's name)
    for i, (lo, hi) in enumerate(pairs):
        for side, w in (("low", lo), ("high", hi)):
            if w < 0:
                raise ValueError(f"Invalid {side} padding size ({w}) passed to pad for "
                                 f"axis {i}. Padding sizes must be non-negative")
    return tuple(pairs)


def _pad_value(v, dt):
    """Python scalar `v` as the storage value of dtype `dt` (None: let astype convert it)."""
    k = dt.kind
    if type(v) is int and not -2 ** 63 <= v < 2 ** 63:
        raise RuntimeError(f"[pad] Cannot convert {v} to a 64-bit integer.")  # (as upstream)
    if k == "b":
        # upstream converts an int to bool through its low 32 bits
        return bool(v & 0xFFFFFFFF) if isinstance(v, int) else bool(v)
    if k == "c":
        with np.errstate(over="ignore"):
            return complex(np.complex64(v))
    if isinstance(v, complex):
        v = v.real
    if k == "f":
        with np.errstate(over="ignore"):
            if dt is D.float16:
                # (a NaN through astype, whose half NaN has upstream's bits)
                return float(np.float16(v)) if v == v else None
            return float(v) if dt is D.float64 else float(np.float32(v))
    bits = 8 * dt.size
    if isinstance(v, int):  # bools and ints convert exactly, or not at all
        v = int(v)
        lo, hi = (0, 2 ** bits - 1) if k == "u" else (-2 ** (bits - 1), 2 ** (bits - 1) - 1)
        if dt is D.uint64:
            lo, hi = -2 ** 63, 2 ** 64 - 1
        if not lo <= v <= hi:
            # (upstream's words, without the op's name)
            raise ValueError(f"Converting {v} to {dt.name} would result in overflow.")
    else:  # a float: a float32 first, as upstream makes it an array of one
        with np.errstate(over="ignore"):
            v = float(np.float32(v))
        if math.isfinite(v) and abs(v) < 2 ** 31:
            v = int(v)
        elif dt is D.uint32:  # (upstream's cast goes through int64: 0 where that fails)
            v = int(v) if math.isfinite(v) and abs(v) < 2 ** 63 else 0
        else:
            return None
    v &= (1 << bits) - 1
    if k == "i" and v >= 1 << (bits - 1) or dt is D.uint64 and v >= 1 << 63:
        v -= 1 << bits
    return v


def pad(a, pad_width, mode="constant", constant_values=0, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "pad")
    widths = _pad_widths(pad_width, a.ndim)
    if not isinstance(mode, str):
        raise TypeError(f"[pad] Expected a str mode, got {type(mode).__name__}.")
    if mode not in _PAD_MODES:
        raise ValueError(f"Invalid padding mode ({mode}) passed to pad")  # (upstream's words)
    if not any(lo or hi for lo, hi in widths):
        return fresh(a)
    dt = a._dtype
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(a._shape, widths))
    if mode != "constant":
        for i, (d, (lo, hi)) in enumerate(zip(a._shape, widths)):
            if d == 0 and (lo or hi):
                if mode != "edge":
                    raise ValueError(f"[pad] Cannot pad empty axis {i} using mode '{mode}'.")
                from ember.core.ops.creation import zeros
                return zeros(shape, dt, stream=s)
        return node(shape, dt, Pad(widths, mode), (a,), s)
    v = constant_values
    if isinstance(v, (bool, int, float, complex)):
        value = _pad_value(v, dt)
        if value is not None:
            return node(shape, dt, Pad(widths, "constant", value), (a,), s)
    if isinstance(v, (list, tuple)):
        raise ValueError(f"Invalid type {type(v).__name__} received in array initialization.")
    from ember.core.ops._base import as_array
    from ember.core.ops.elementwise import astype
    c = astype(as_array(v, s), dt, s)
    if c.size == 0:
        return node(shape, dt, Pad(widths, "constant", _pad_value(0, dt)), (a,), s)
    if c.ndim:  # upstream fills with the first element
        c = _reshaped(c, (c.size,), s)
        if c.size > 1:
            c = apply(Split(0, ((0, 1),)), c)[0]
        c = _reshaped(c, (), s)
    return node(shape, dt, Pad(widths, "constant"), (a, c), s)


# -- flips and rolls -------------------------------------------------------------------

def flip(a, /, axis=None, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "flip")
    if axis is None:
        axes = tuple(range(a.ndim))
    else:
        axes = tuple(sorted({_axis(ax, a.ndim, "flip") for ax in _ints(axis, "flip")}))
    axes = tuple(ax for ax in axes if a._shape[ax] > 1)
    if not axes:
        return fresh(a)
    return node(a._shape, a._dtype, Flip(axes), (a,), s)


def roll(a, /, shift, axis=None, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "roll")
    shifts = _ints(shift, "roll", "shift")
    if axis is None:
        n = a.size
        k = sum(shifts) % n if n else 0
        if not k:
            return fresh(a)
        return node(a._shape, a._dtype, Roll((k,), None), (a,), s)
    axes = _ints(axis, "roll")
    if _is_int(axis):
        shifts, axes = (sum(shifts),), axes
    elif _is_int(shift):
        shifts = shifts * len(axes)
    elif len(shifts) < len(axes):
        raise ValueError(f"[roll] At least one shift value per axis is required, "
                         f"{len(shifts)} provided for {len(axes)} axes.")
    total = {}
    for k, ax in zip(shifts, axes):
        ax = _axis(ax, a.ndim, "roll", _INVALID)
        total[ax] = total.get(ax, 0) + k
    done = tuple(sorted((ax, k % a._shape[ax]) for ax, k in total.items()
                        if a._shape[ax] and k % a._shape[ax]))
    if not done:
        return fresh(a)
    prim = Roll(tuple(k for _, k in done), tuple(ax for ax, _ in done))
    return node(a._shape, a._dtype, prim, (a,), s)


# -- diagonals -------------------------------------------------------------------------

def _diag_axes(a, axis1, axis2, op):
    # (the arguments' types first, as upstream's binding checks them before the op runs)
    axis1, axis2 = _int(axis1, op), _int(axis2, op)
    n = a.ndim
    if n < 2:
        raise ValueError(f"[{op}] Array must have at least two dimensions, but got {n} "
                         "dimensions.")
    a1 = _axis(axis1, n, op, "Invalid axis1 {} for array with {} dimensions.")
    a2 = _axis(axis2, n, op, "Invalid axis2 {} for array with {} dimensions.")
    if a1 == a2:
        raise ValueError(f"[{op}] axis1 and axis2 cannot be the same axis")
    return a1, a2


def diagonal(a, offset=0, axis1=0, axis2=1, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "diagonal")
    offset = _int(offset, "diagonal", "offset")
    a1, a2 = _diag_axes(a, axis1, axis2, "diagonal")
    return apply(Diagonal(offset, a1, a2), a)


def diag(a, /, k=0, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "diag")
    k = _int(k, "diag", "diagonal index")
    if a.ndim == 1:
        m = a._shape[0] + abs(k)
        return apply(DiagonalAdjoint(k, 0, 1, (m, m)), a)
    if a.ndim == 2:
        return apply(Diagonal(k, 0, 1), a)
    raise ValueError(f"[diag] array must be 1-D or 2-D, got array with {a.ndim} dimensions.")


def trace(a, /, offset=0, axis1=0, axis2=1, dtype=None, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "trace")
    offset = _int(offset, "trace", "offset")
    a1, a2 = _diag_axes(a, axis1, axis2, "trace")
    d = apply(Diagonal(offset, a1, a2), a)
    if dtype is not None:
        from ember.core.ops.elementwise import astype
        d = astype(d, dtype, s)
    from ember.core.ops.reduce import sum as _sum
    return _sum(d, axis=-1, stream=s)


def contiguous(a, /, allow_col_major=False, *, stream=None):
    s = resolve(stream)
    a = _arr(a, s, "contiguous")
    return node(a._shape, a._dtype, Contiguous(bool(allow_col_major)), (a,), s)
