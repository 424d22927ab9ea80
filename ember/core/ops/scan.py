"""Scans: cumsum, cumprod, cummax, cummin, logcumsumexp."""

from ember.core import dtypes as D
from ember.core._backend import WRAP
from ember.core.array import array, node
from ember.core.ops._base import binding_error, resolve
from ember.core.ops.reduce import _SIGS, array_arg
from ember.core.primitives import elementwise as E
from ember.core.primitives.scan import Scan

__all__ = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]

_WRAP_PRIM = E.UNARY["wrap"]()
_FLOAT = frozenset(d for d in D.ALL if d.kind in "fc")


def _index(v, op):
    """An int as upstream's binding takes it (bools and __index__ objects, no floats)."""
    if isinstance(v, float) or not hasattr(v, "__index__"):
        raise binding_error(op, _SIGS[op])
    try:
        return v.__index__()
    except TypeError:
        raise binding_error(op, _SIGS[op]) from None


def _scan(op, a, axis, reverse, inclusive, stream, dtype=None):
    s = resolve(stream)
    if type(a) is not array or a._stream.device is not s.device:
        a = array_arg(a, s, op)
    if reverse is not False and reverse is not True or \
            inclusive is not False and inclusive is not True or \
            dtype is not None and not isinstance(dtype, D.Dtype):
        raise binding_error(op, _SIGS[op])
    if dtype is not None:
        from ember.core.ops.elementwise import astype
        a = astype(a, dtype, s)
    if axis is None:
        from ember.core.ops.shape import reshape
        a = reshape(a, (-1,), stream=s)
        ax = 0
    else:
        ax = axis if type(axis) is int else _index(axis, op)
        ndim = len(a._shape)
        if not -ndim <= ax < ndim:
            raise IndexError(f"[{op}] Axis {ax} is out of bounds for array with {ndim} "
                             "dimensions.")
        ax %= ndim
    dt = a._dtype
    if op == "logcumsumexp" and dt not in _FLOAT:
        from ember.core.ops.elementwise import astype
        a = astype(a, D.float32, s)
        dt = D.float32
    out = D.int32 if op == "cumsum" and dt is D.bool_ else dt
    y = node(a._shape, out, Scan(op, ax, reverse, inclusive, dt), (a,), s)
    if out in WRAP and (op == "cumsum" or op == "cumprod"):
        y = node(y._shape, out, _WRAP_PRIM, (y,), s)
    return y


def cumsum(a, /, axis=None, *, reverse=False, inclusive=True, dtype=None, stream=None):
    return _scan("cumsum", a, axis, reverse, inclusive, stream, dtype)


def cumprod(a, /, axis=None, *, reverse=False, inclusive=True, dtype=None, stream=None):
    return _scan("cumprod", a, axis, reverse, inclusive, stream, dtype)


def cummax(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
    return _scan("cummax", a, axis, reverse, inclusive, stream)


def cummin(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
    return _scan("cummin", a, axis, reverse, inclusive, stream)


def logcumsumexp(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
    return _scan("logcumsumexp", a, axis, reverse, inclusive, stream)
