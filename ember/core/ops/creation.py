"""Creation ops: constants, ranges, identity-like matrices."""

import math

from ember.core import dtypes as D
from ember.core.array import array, node, scalar_dtype
from ember.core.ops._base import as_array, check_dtype, norm_shape, resolve
from ember.core.primitives.creation import Arange, Full


def full(shape, vals, dtype=None, *, stream=None):
    s = resolve(stream)
    shape = norm_shape(shape, "full")
    check_dtype(dtype, "full")
    if isinstance(vals, (bool, int, float, complex)):
        dt = dtype or scalar_dtype(vals)
        return node(shape, dt, Full(shape, vals, dt, s.tdevice), (), s)
    from ember.core.ops.elementwise import astype
    from ember.core.ops.shape import broadcast_to
    v = as_array(vals, s)
    if dtype is not None:
        v = astype(v, dtype, s)
    return broadcast_to(v, shape, stream=s)


def zeros(shape, dtype=D.float32, *, stream=None):
    return full(shape, False if dtype is D.bool_ else 0, dtype or D.float32, stream=stream)


def ones(shape, dtype=D.float32, *, stream=None):
    return full(shape, True if dtype is D.bool_ else 1, dtype or D.float32, stream=stream)


def _like(a, stream):
    if not isinstance(a, array):
        raise TypeError("Expected an array.")
    return a


def zeros_like(a, /, *, stream=None):
    a = _like(a, stream)
    return zeros(a._shape, a._dtype, stream=stream)


def ones_like(a, /, *, stream=None):
    a = _like(a, stream)
    return ones(a._shape, a._dtype, stream=stream)


def full_like(a, /, fill_value, dtype=None, *, stream=None):
    a = _like(a, stream)
    return full(a._shape, fill_value, dtype or a._dtype, stream=stream)


def arange(*args, dtype=None, stream=None, **kw):
    """arange(stop) / arange(start, stop[, step]), MLX's signature and dtype inference."""
    start, stop, step = _arange_args(args, kw)
    s = resolve(stream)
    check_dtype(dtype, "arange")
    floaty = any(isinstance(v, float) for v in (start, stop, step))
    dt = dtype or (D.float32 if floaty else D.int32)
    if step == 0:
        raise ValueError("[arange] Cannot compute length.")
    for v in (start, stop, step):
        if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
            raise ValueError("[arange] Cannot compute length.")
    n = max(0, math.ceil((stop - start) / step))
    if dt is D.bool_:
        raise ValueError("[arange] Cannot use bool dtype.")
    return node((n,), dt, Arange(start, stop, step, dt, s.tdevice), (), s)


def _arange_args(args, kw):
    names = ("start", "stop", "step")
    vals = dict(zip(names if len(args) > 1 else ("stop",), args))
    vals.update(kw)
    if "stop" not in vals:
        if "start" in vals:
            vals["stop"], vals["start"] = vals["start"], 0
        else:
            raise TypeError("arange() missing required argument 'stop'")
    start, stop, step = vals.get("start", 0), vals["stop"], vals.get("step", 1)
    for v in (start, stop, step):
        if not isinstance(v, (int, float)):
            raise TypeError("[arange] Expected int or float arguments.")
    return start, stop, 1 if step is None else step
