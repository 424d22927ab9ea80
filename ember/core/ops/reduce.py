"""Reductions."""

from ember.core import dtypes as D
from ember.core.array import node
from ember.core.ops._base import as_array, norm_axes, resolve
from ember.core.primitives.reduce import Reduce

# sum and prod accumulate small integers and bools in int32/uint32, as upstream does
_ACCUM = {D.bool_: D.int32, D.int8: D.int32, D.int16: D.int32, D.uint8: D.uint32,
          D.uint16: D.uint32}


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def apply_reduce(prim, x, s=None):
    s = s or x._stream
    op = prim.op
    if op in ("all", "any"):
        dt = D.bool_
    elif op in ("sum", "prod"):
        dt = _ACCUM.get(x._dtype, x._dtype)
    else:
        dt = x._dtype
    return node(_reduced_shape(x._shape, prim.axes, prim.keepdims), dt, prim, (x,), s)


def _reduce(op, a, axis, keepdims, stream):
    s = resolve(stream)
    a = as_array(a, s)
    axes = norm_axes(axis, a.ndim, op)
    if op in ("max", "min") and a.size == 0 and any(a.shape[i] == 0 for i in axes):
        raise ValueError(f"[{op}] Cannot {op} reduce zero size array.")
    if not axes:
        if op in ("all", "any"):
            from ember.core.ops.elementwise import astype
            return astype(a, D.bool_, s)
        if op in ("sum", "prod") and a._dtype in _ACCUM:
            from ember.core.ops.elementwise import astype
            return astype(a, _ACCUM[a._dtype], s)
        return a
    return apply_reduce(Reduce(op, axes, bool(keepdims)), a, s)


def sum(a, /, axis=None, keepdims=False, *, stream=None):  # noqa: A001
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
    a = as_array(a, s)
    axes = norm_axes(axis, a.ndim, "mean")
    n = 1
    for i in axes:
        n *= a.shape[i]
    from ember.core.ops.elementwise import astype, multiply
    if a._dtype.kind not in "fc":
        a = astype(a, D.float32, s)
    total = _reduce("sum", a, axes, keepdims, s)
    return multiply(total, 1.0 / n if n else float("nan"), stream=s)
