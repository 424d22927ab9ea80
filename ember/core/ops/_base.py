"""Helpers shared by the op families: argument normalisation, axes, broadcasting."""

import functools
import operator
import sys

import numpy as np

from ember.core import device as dev
from ember.core import dtypes as D
from ember.core.array import array, const, node, scalar_dtype

_CURRENT = dev._CURRENT
_Stream = dev.Stream
_current_stream = dev.current_stream
_resolve = dev.resolve


def resolve(s):
    """The Stream an op named with `stream=` runs on (None, Stream, Device or DeviceType); for
    anything else the TypeError of the op's binding upstream."""
    if s is None:
        return _CURRENT[-1] if _CURRENT else _current_stream()
    if type(s) is _Stream:
        return s
    try:
        return _resolve(s)
    except TypeError as err:
        name = _op_name(sys._getframe(1))
        if name is None:
            raise
        raise TypeError(f"{name}(): incompatible function arguments. The stream must be a "
                        f"Stream, a Device or None, got {type(s).__name__}.") from err


def _op_name(frame):
    """The public op that `frame` runs in: the outermost of the calls inside ember.core
    that is a module's public function (or a generated one, whose `op` names it)."""
    name = None
    while frame is not None and frame.f_globals.get("__name__", "").startswith("ember.core"):
        code = frame.f_code
        fn = frame.f_globals.get(code.co_name)
        if not code.co_name.startswith("_") and getattr(fn, "__code__", None) is code:
            name = code.co_name
        elif isinstance(frame.f_locals.get("op"), str) and code.co_name == "f":
            name = frame.f_locals["op"]
        frame = frame.f_back
    return name


PROMOTE = D._PROMOTE
_SCALAR_TYPES = (bool, int, float, complex)


def index_arg(v, refuse, name):
    """v as an int the way upstream's bindings take one (bools and objects with __index__,
    not floats); the error `refuse(name)` otherwise."""
    if type(v) is int:
        return v
    if isinstance(v, float) or not hasattr(v, "__index__"):
        raise refuse(name)
    try:
        return operator.index(v)
    except TypeError:
        raise refuse(name) from None


def binding_error(name, signature):
    """The TypeError upstream's binding raises when an argument does not convert (without
    its last line, which names the types of one call)."""
    return TypeError(f"{name}(): incompatible function arguments. The following argument "
                     f"types are supported:\n    1. {signature}")


def as_array(x, s=None, dtype=None):
    """`x` as an array on stream `s` (Python scalars become cached constants)."""
    if type(x) is array:
        if s is not None and x._stream.device is not s.device:
            return to_device(x, s)
        return x
    if s is None:
        s = resolve(None)
    if isinstance(x, _SCALAR_TYPES):
        if type(x) is int:
            check_int64(x)
        return const(x, dtype or scalar_dtype(x), s)
    if isinstance(x, array):
        return x
    a = array(x) if dtype is None else array(x, dtype)
    return a if a._stream.device is s.device else to_device(a, s)


def as_operand(x, s):
    """`x` (a scalar or an array, as upstream's `scalar | array` arguments take: not a
    sequence) as an array on stream s."""
    if isinstance(x, (list, tuple)):
        raise ValueError(f"Invalid type {type(x).__name__} received in array initialization.")
    return as_array(x, s)


def check_int64(v):
    """Upstream's bindings convert a Python int through int64 (a wider one fails there)."""
    if not -0x8000000000000000 <= v <= 0x7FFFFFFFFFFFFFFF:
        raise RuntimeError(f"Cannot convert {v} to an integer of 64 bits.")


def to_device(x, s):
    """`x` copied to the device of stream `s`, once: the copy is cached on `x`."""
    from ember.core.primitives.misc import Copy
    copies = x._copies
    if copies is None:
        copies = x._copies = {}
    y = copies.get(s.device)
    if y is None:
        y = copies[s.device] = node(x._shape, x._dtype, Copy(s.tdevice), (x,), s)
    return y


def weak_dtype(strong, v):
    """Result dtype of an array of dtype `strong` combined with Python scalar `v`."""
    if isinstance(v, bool):
        return strong
    if isinstance(v, int):
        return D.int32 if strong is D.bool_ else strong
    if isinstance(v, float):
        return strong if strong.kind in "fc" else D.float32
    if isinstance(v, complex):
        return D.complex64
    raise TypeError(f"Unsupported scalar type {type(v).__name__}.")


@functools.lru_cache(maxsize=4096)
def _broadcast2(a, b, op):
    na, nb = len(a), len(b)
    n = max(na, nb)
    out = []
    for i in range(n):
        x = a[i - n + na] if i - n + na >= 0 else 1
        y = b[i - n + nb] if i - n + nb >= 0 else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"[{op}] Shapes {_fmt(a)} and {_fmt(b)} cannot be broadcast.")
    return tuple(out)


def _fmt(shape):
    return "(" + ",".join(str(d) for d in shape) + ")"


def broadcast_pair(a, b, op="broadcast_shapes"):
    if a == b:
        return a
    return _broadcast2(a, b, op)


def _shape_arg(s, first):
    if isinstance(s, np.ndarray):  # a sequence of ints to upstream's binding, if it is one
        if s.ndim != 1 or s.dtype.kind not in "iu":
            raise RuntimeError("[broadcast_shapes] Expected a shape as a sequence of ints.")
        return s.tolist()
    if not isinstance(s, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) for d in s):
        if first:  # (upstream's binding casts the first shape in C++, and that fails)
            raise RuntimeError("[broadcast_shapes] Expected a shape as a sequence of ints.")
        raise ValueError("[broadcast_shapes] Expects a sequence of shapes (tuple or list of "
                         "ints).")
    return s


def float_like(v):
    """Whether upstream's binding takes `v` for a float: what float() takes, but strings,
    complex numbers and arrays with dimensions."""
    return not isinstance(v, (str, bytes, complex)) and not getattr(v, "ndim", 0) and (
        hasattr(v, "__float__") or hasattr(v, "__index__"))


def broadcast_shapes(*shapes):
    if not shapes:
        raise ValueError("[broadcast_shapes] Must provide at least one shape.")
    shapes = [_shape_arg(s, i == 0) for i, s in enumerate(shapes)]
    out = tuple(shapes[0])
    for s in shapes[1:]:
        out = broadcast_pair(out, tuple(s), "broadcast_shapes")
    return out


def check_axis(axis, ndim, op):
    if not isinstance(axis, int) or isinstance(axis, bool):
        axis = _int(axis, op)
    if axis < -ndim or axis >= ndim:
        raise ValueError(f"[{op}] Axis {axis} is out of bounds for array with {ndim} dimensions.")
    return axis % ndim if ndim else 0


def _int(v, op):
    try:
        return int(v.__index__())
    except (AttributeError, TypeError):
        raise TypeError(f"[{op}] Expected an integer axis, got {type(v).__name__}.") from None


def norm_axes(axis, ndim, op):
    """Axes as a sorted tuple of non-negative ints (None: all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        return (check_axis(axis, ndim, op),)
    axes = tuple(check_axis(a, ndim, op) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"[{op}] Received duplicate axes.")
    return tuple(sorted(axes))


def norm_shape(shape, op):
    if isinstance(shape, int) or hasattr(shape, "__index__") and not isinstance(shape, array):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"[{op}] Shape must be an int or a sequence of ints.") from None
    for d in shape:
        if d < 0:
            raise ValueError(f"[{op}] Negative dimensions not allowed.")
    return shape


def check_dtype(dtype, op):
    if dtype is not None and not isinstance(dtype, D.Dtype):
        raise TypeError(f"[{op}] Expected a Dtype, got {type(dtype).__name__}.")
    return dtype
