"""Reductions: sum, prod, max, min, all, any, mean, var, std, argmax, argmin, logsumexp,
softmax."""

from ember.core import dtypes as D
from ember.core.array import array, fresh, node
from ember.core.ops._base import as_array, binding_error, index_arg, resolve
from ember.core.primitives.reduce import ArgReduce, LogSumExp, Reduce, Softmax, Var

__all__ = ["sum", "prod", "max", "min", "all", "any", "mean", "var", "std", "argmax",
           "argmin", "logsumexp", "softmax"]

_F32 = D.float32
# sum and prod accumulate small integers and bools in int32/uint32, as upstream does
_ACCUM = {D.bool_: D.int32, D.int8: D.int32, D.int16: D.int32, D.uint8: D.uint32,
          D.uint16: D.uint32}
_FLOAT = frozenset(d for d in D.ALL if d.kind in "fc")
_ALL_AXES = [tuple(range(n)) for n in range(33)]


# -- argument checks -------------------------------------------------------------------

_AXES = "axis: None | int | Sequence[int] = None"
_KEEP = "keepdims: bool = False"
_SCAN = "axis: int | None = None, *, reverse: bool = False, inclusive: bool = True"
_TAIL = "stream: StreamOrDevice = None) -> array"
# upstream binds these with `a: array` (no conversion of scalars, lists or numpy arrays), so
# its binding refuses anything else with the signature
_SIGS = {op: f"{op}(a: array, /, {_AXES}, {_KEEP}, *, {_TAIL}"
         for op in ("sum", "prod", "max", "min", "all", "any", "mean", "logsumexp", "median")}
_SIGS.update({op: f"{op}(a: array, /, {_AXES}, {_KEEP}, ddof: int = 0, *, {_TAIL}"
              for op in ("var", "std")})
_SIGS.update({op: f"{op}(a: array, /, axis: None | int = None, {_KEEP}, *, {_TAIL}"
              for op in ("argmax", "argmin")})
_SIGS.update({op: f"{op}(a: array, /, {_SCAN}, dtype: Dtype | None = None, {_TAIL}"
              for op in ("cumsum", "cumprod")})
_SIGS.update({op: f"{op}(a: array, /, {_SCAN}, {_TAIL}"
              for op in ("cummax", "cummin", "logcumsumexp")})
_SIGS["softmax"] = f"softmax(a: array, /, {_AXES}, *, precise: bool = False, {_TAIL}"
_SIGS["take"] = f"take(a: array, /, indices: int | array, axis: int | None = None, *, {_TAIL}"
_SIGS["take_along_axis"] = ("take_along_axis(a: array, /, indices: array, axis: int | None = "
                            f"-1, *, {_TAIL}")


def array_arg(a, s, op):
    """a (an array, as upstream requires) on the device of stream s."""
    if not isinstance(a, array):
        raise binding_error(op, _SIGS[op])
    return as_array(a, s)


def int_arg(v, op, what="axis"):
    """v as an int (anything with __index__ but floats), else a TypeError."""
    if type(v) is int:
        return v
    return index_arg(v, lambda name: _refused(
        name, f"[{name}] Expected an integer {what}, got {type(v).__name__}."), op)


def _refused(op, message):
    # upstream's binding refuses the argument with the op's signature
    return binding_error(op, _SIGS[op]) if op in _SIGS else TypeError(message)


def _bad_axis(axis, ndim, op):
    # upstream's words: mean (and var and std, which go through it) has its own message
    if op in ("mean", "var", "std"):
        return IndexError(f"[mean] axis {axis} is out of bounds for array with {ndim} "
                          "dimensions.")
    return IndexError(f"Invalid axis {axis} for array with {ndim} dimensions.")


def norm_axes(axis, ndim, op):
    """Reduction axes as a sorted tuple of non-negative ints (None: all axes)."""
    if axis is None:
        return _ALL_AXES[ndim] if ndim < 33 else tuple(range(ndim))
    if type(axis) is int:
        if -ndim <= axis < ndim:
            return (axis % ndim,)
        raise _bad_axis(axis, ndim, op)
    out = []
    bad = None
    for a in _as_sequence(axis):
        a = int_arg(a, op)
        if -ndim <= a < ndim:
            out.append(a % ndim)
        elif bad is None:
            bad = a  # raised once every axis has converted, as upstream's binding does first
    if bad is not None:
        raise _bad_axis(bad, ndim, op)
    if len(set(out)) != len(out):
        raise ValueError("Duplicate axes detected in reduction.")
    out.sort()
    return tuple(out)


def _as_sequence(axis):
    if isinstance(axis, (str, bytes)) or not hasattr(axis, "__iter__") \
            or isinstance(axis, array) and axis.ndim == 0:
        return (axis,)
    return axis


def check_bool(v, op, what):
    if v is not True and v is not False:
        raise _refused(op, f"[{op}] Expected a bool for {what}, got {type(v).__name__}.")
    return v


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _float(a, s):
    if a._dtype in _FLOAT:
        return a
    from ember.core.ops.elementwise import astype
    return astype(a, _F32, s)


# -- sum, prod, max, min, all, any, mean -------------------------------------------------

def apply_reduce(prim, x, s=None):
    """A node of Reduce primitive `prim` over x (axes already checked)."""
    op = prim.op
    if op == "all" or op == "any":
        dt = D.bool_
    elif op == "sum" or op == "prod":
        dt = _ACCUM.get(x._dtype, x._dtype)
    else:
        dt = x._dtype
    return node(_reduced_shape(x._shape, prim.axes, prim.keepdims), dt, prim, (x,),
                s or x._stream)


# (op, axis, keepdims, dtype, shape) -> (primitive, output shape, output dtype), for
# axis None or an int: the common calls skip the argument normalisation
_PLANS = {}


def _plan(op, a, axis, keepdims):
    axes = norm_axes(axis, len(a._shape), op)
    if not axes:
        return None
    if (op == "max" or op == "min") and 0 in a._shape:
        for i in axes:
            if a._shape[i] == 0:
                raise ValueError(f"[{op}] Cannot {op} reduce over axis {i} with size 0.")
    dt = a._dtype
    if op == "all" or op == "any":
        out = D.bool_
    elif op == "sum" or op == "prod":
        out = _ACCUM.get(dt, dt)
    else:
        out = dt
    return Reduce(op, axes, keepdims, dt), _reduced_shape(a._shape, axes, keepdims), out


def _reduce(op, a, axis, keepdims, stream):
    s = resolve(stream)
    if type(a) is not array or a._stream.device is not s.device:
        a = array_arg(a, s, op)
    if keepdims is not False and keepdims is not True:
        check_bool(keepdims, op, "keepdims")
    if axis is None or type(axis) is int:
        key = (op, axis, keepdims, a._dtype, a._shape)
        plan = _PLANS.get(key, False)
        if plan is False:
            plan = _plan(op, a, axis, keepdims)
            if len(_PLANS) > 8192:
                _PLANS.clear()
            _PLANS[key] = plan
    else:
        plan = _plan(op, a, axis, keepdims)
    if plan is None:  # over no axes
        if op == "all" or op == "any":
            from ember.core.ops.elementwise import astype
            return astype(a, D.bool_, s)
        return fresh(a)
    return node(plan[1], plan[2], plan[0], (a,), s)


def sum(a, /, axis=None, keepdims=False, *, stream=None):  # noqa: A001 - MLX names
    return _reduce("sum", a, axis, keepdims, stream)


def prod(a, /, axis=None, keepdims=False, *, stream=None):
    return _reduce("prod", a, axis, keepdims, stream)


def max(a, /, axis=None, keepdims=False, *, stream=None):  # noqa: A001
    return _reduce("max", a, axis, keepdims, stream)


def min(a, /, axis=None, keepdims=False, *, stream=None):  # noqa: A001
    return _reduce("min", a, axis, keepdims, stream)


def all(a, /, axis=None, keepdims=False, *, stream=None):  # noqa: A001
    return _reduce("all", a, axis, keepdims, stream)


def any(a, /, axis=None, keepdims=False, *, stream=None):  # noqa: A001
    return _reduce("any", a, axis, keepdims, stream)


def mean(a, /, axis=None, keepdims=False, *, stream=None):
    s = resolve(stream)
    if type(a) is not array or a._stream.device is not s.device:
        a = array_arg(a, s, "mean")
    if a._dtype in _FLOAT and a._dtype is not D.complex64:
        return _reduce("mean", a, axis, keepdims, s)
    axes = norm_axes(axis, a.ndim, "mean")
    check_bool(keepdims, "mean", "keepdims")
    if a._dtype is D.complex64:  # over no axes too: upstream's x * 1 changes NaNs
        return node(_reduced_shape(a._shape, axes, keepdims), a._dtype,
                    Reduce("mean", axes, keepdims, a._dtype), (a,), s)
    if not axes:
        return _float(a, s)
    # integers: upstream sums in the integer accumulator (wrapping), then scales
    from ember.core.ops.elementwise import astype, multiply
    n = 1
    for i in axes:
        n *= a._shape[i]
    total = astype(_reduce("sum", a, axes, keepdims, s), _F32, s)
    return multiply(total, 1.0 / n if n else float("nan"), stream=s)


# -- var, std ----------------------------------------------------------------------------

def _var(a, axis, keepdims, ddof, stream, sqrt):
    op = "std" if sqrt else "var"
    s = resolve(stream)
    a = array_arg(a, s, op)
    axes = norm_axes(axis, a.ndim, op)
    check_bool(keepdims, op, "keepdims")
    ddof = int_arg(ddof, op, "ddof")
    if a._dtype.kind in "iu":
        return _int_var(a, axes, keepdims, ddof, s, sqrt)
    a = _float(a, s)
    dt = _F32 if a._dtype is D.complex64 else a._dtype
    return node(_reduced_shape(a._shape, axes, keepdims), dt, Var(axes, keepdims, ddof, sqrt),
                (a,), s)


def _int_var(a, axes, keepdims, ddof, s, sqrt):
    """var of integers as upstream's: around their mean in float32 from the (wrapping)
    integer sum, the sum of squares times 1/n for ddof 0, else over max(n - ddof, 0)."""
    from ember.core.ops import elementwise as E
    n = 1
    for i in axes:
        n *= a._shape[i]
    d = E.subtract(E.astype(a, _F32, s), mean(a, axes, True, stream=s), stream=s)
    r = sum(E.multiply(d, d, stream=s), axes, keepdims, stream=s)
    if ddof == 0 or n <= ddof:
        r = E.multiply(r, 1.0 / n if n and ddof == 0 else float("inf"), stream=s)
    else:
        r = E.divide(r, float(n - ddof), stream=s)
    return E.sqrt(r, stream=s) if sqrt else r


def var(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    return _var(a, axis, keepdims, ddof, stream, False)


def std(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    return _var(a, axis, keepdims, ddof, stream, True)


# -- argmax, argmin ----------------------------------------------------------------------

def _arg(op, a, axis, keepdims, stream):
    s = resolve(stream)
    a = array_arg(a, s, op)
    check_bool(keepdims, op, "keepdims")
    ndim = a.ndim
    if axis is not None and type(axis) is not int:
        if isinstance(axis, (list, tuple)) or hasattr(axis, "__iter__"):
            raise binding_error(op, _SIGS[op])
        axis = int_arg(axis, op)
    if a.size == 0:
        raise ValueError(f"[{op}] Cannot {op} reduce zero size array.")
    if axis is None:
        if keepdims and not ndim:
            # upstream fails here, sizing the kept dims of a 0-d array as -1 of them
            raise ValueError("cannot create std::vector larger than max_size()")
        from ember.core.ops.shape import reshape
        flat = reshape(a, (-1,), stream=s)
        r = node((1,) if keepdims else (), D.uint32, ArgReduce(op, 0, keepdims, a._dtype),
                 (flat,), s)
        return reshape(r, (1,) * ndim, stream=s) if keepdims else r
    ax = axis
    if not -ndim <= ax < ndim:
        raise _bad_axis(ax, ndim, op)
    ax %= ndim
    return node(_reduced_shape(a._shape, (ax,), keepdims), D.uint32,
                ArgReduce(op, ax, keepdims, a._dtype), (a,), s)


def argmax(a, /, axis=None, keepdims=False, *, stream=None):
    return _arg("argmax", a, axis, keepdims, stream)


def argmin(a, /, axis=None, keepdims=False, *, stream=None):
    return _arg("argmin", a, axis, keepdims, stream)


# -- logsumexp, softmax ------------------------------------------------------------------

def _check_0d_axes(a, axis, op):
    # (every axis is converted first: a non-integer one is refused as upstream's binding does)
    if not a._shape and axis is not None and [int_arg(v, op) for v in _as_sequence(axis)]:
        raise ValueError(f"[{op}] Received non-empty axes for array with 0 dimensions.")


def logsumexp(a, /, axis=None, keepdims=False, *, stream=None):
    s = resolve(stream)
    a = array_arg(a, s, "logsumexp")
    _check_0d_axes(a, axis, "logsumexp")
    check_bool(keepdims, "logsumexp", "keepdims")
    if a.size == 0:  # (checked before the axes' values, after their types, as upstream)
        for v in () if axis is None else _as_sequence(axis):
            int_arg(v, "logsumexp")
        raise ValueError("[logsumexp] Received empty array.")
    axes = norm_axes(axis, a.ndim, "logsumexp")
    if a._dtype not in _FLOAT and axes and axes != (len(a._shape) - 1,):
        # but over the last axis, upstream composes it of ops in the integer dtype (the
        # shift by the max wraps around in unsigned types)
        from ember.core.ops import elementwise as E
        from ember.core.ops.shape import squeeze
        m = max(a, axes, True, stream=s)
        r = E.add(E.log(sum(E.exp(E.subtract(a, m, stream=s), stream=s), axes, True,
                            stream=s), stream=s), m, stream=s)
        return r if keepdims else squeeze(r, axes, stream=s)
    a = _float(a, s)
    if not axes:  # upstream's log(exp(x - x)) + x: -0.0 becomes 0.0
        from ember.core.ops.elementwise import add
        return add(a, 0.0, stream=s)
    return node(_reduced_shape(a._shape, axes, keepdims), a._dtype, LogSumExp(axes, keepdims),
                (a,), s)


def softmax(a, /, axis=None, *, precise=False, stream=None):
    s = resolve(stream)
    if type(a) is not array or a._stream.device is not s.device:
        a = array_arg(a, s, "softmax")
    if not a._shape:
        _check_0d_axes(a, axis, "softmax")
    if not a.size:
        # nothing to normalise: upstream returns a copy without looking at the axes' range
        if precise is not False and precise is not True:
            check_bool(precise, "softmax", "precise")
        try:
            norm_axes(axis, len(a._shape), "softmax")
        except (IndexError, ValueError):
            pass
        return fresh(a)
    axes = norm_axes(axis, len(a._shape), "softmax")
    if precise is not False and precise is not True:
        check_bool(precise, "softmax", "precise")
    dt = a._dtype
    if dt in _FLOAT:
        return node(a._shape, dt, Softmax(axes, precise), (a,), s)
    y = node(a._shape, _F32, Softmax(axes, precise), (_float(a, s),), s)
    if len(axes) == 1 and axes[0] == len(a._shape) - 1:
        return y
    # but for the last axis, upstream casts the result back to the input's dtype
    from ember.core.ops.elementwise import astype
    return astype(y, dt, s)
