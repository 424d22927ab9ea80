"""Creation ops: constants, ranges, identity-like matrices, grids and windows; and the
small ops that clip, compare or clean whole arrays (clip, isclose, allclose, array_equal,
nan_to_num)."""

import math
import operator

import numpy as np

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import (
    _check_int,
    _construct,
    array,
    fresh,
    from_dlpack_value,
    node,
    scalar_dtype,
)
from ember.core.ops._base import as_array, as_operand, binding_error, resolve, to_device
from ember.core.primitives.creation import Arange, Eye, Full, Linspace, NanToNum, Tri, Window

__all__ = ["full", "zeros", "ones", "empty", "zeros_like", "ones_like", "empty_like",
           "full_like", "arange", "linspace", "eye", "identity", "tri", "tril", "triu",
           "meshgrid", "clip", "isclose", "allclose", "array_equal", "nan_to_num", "asarray",
           "from_dlpack", "hamming", "hanning", "bartlett", "blackman"]

_F32 = D.float32
_PY = (bool, int, float, complex)
_INT32_MAX = 2 ** 31 - 1
_INT64 = 2 ** 63


# -- argument checks -------------------------------------------------------------------

def _shape(shape, op):
    """shape as upstream's binding reads it: a Python int, or a sequence (not a str) of
    objects with `__index__`; None is refused by the binding itself, and anything else
    fails its C++ conversion (a RuntimeError, std::bad_cast)."""
    if type(shape) is tuple:
        for d in shape:
            if type(d) is not int:
                break
        else:
            return _check_dims(shape)
    elif isinstance(shape, int):
        if not -_INT32_MAX - 1 <= shape <= _INT32_MAX:
            if not -_INT64 <= shape < _INT64:
                raise _bad_shape()
            raise OverflowError(f"Shape dimension {shape} is outside the supported range "
                                "[-2147483648, 2147483647]. MLX currently uses 32-bit "
                                "integers for shape dimensions.")
        return _check_dims((int(shape),))
    elif shape is None:
        raise binding_error(op, _SIGS[op])
    if isinstance(shape, (str, bytes, dict)) or not hasattr(shape, "__len__") \
            or not hasattr(shape, "__getitem__"):
        raise _bad_shape()
    try:
        return _check_dims(tuple(operator.index(d) for d in shape))
    except (TypeError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith("[full]"):
            raise
        raise _bad_shape() from None


def _bad_shape():
    return RuntimeError("[full] Shape must be an int or a sequence of integers.")


def _check_dims(shape):
    # every dim converted (to int64, then checked against int32) before any is checked
    for d in shape:
        if not -_INT32_MAX - 1 <= d <= _INT32_MAX:
            if not -_INT64 <= d < _INT64:
                raise _bad_shape()
            raise OverflowError(f"Integer value {d} is outside the supported range "
                                f"[-2147483648, 2147483647].")
    for d in shape:
        if d < 0:
            raise ValueError("[full] Negative dimensions not allowed.")
    return shape


def _dtype(dtype, op):
    if dtype is not None and not isinstance(dtype, D.Dtype):
        raise TypeError(f"{op}(): dtype must be a Dtype, got {type(dtype).__name__}.")
    return dtype


def _int(v, op, what):
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, (np.integer, array)) and not isinstance(v, bool):
            return _int32(int(v), op, what)
        raise TypeError(f"{op}(): {what} must be an int, got {type(v).__name__}.")
    return _int32(v, op, what)


def _int32(v, op, what):
    if not -2 ** 31 <= v < 2 ** 31:  # (upstream's binding takes int32s)
        raise TypeError(f"{op}(): {what} {v} does not fit in 32 bits.")
    return v


def _bool_int(v, dt):
    """A Python int beside a bool dtype as upstream makes it: C-cast to int32, wrapping."""
    if dt is D.bool_ and type(v) is not bool and isinstance(v, int):
        _check_int(v)
        return (v + 2 ** 31) % 2 ** 32 - 2 ** 31
    return v


def _weak(dt, v):
    """The dtype a Python scalar `v` takes next to dtype `dt` (MLX's weak typing), checking
    that an int fits an integer dtype."""
    if isinstance(v, bool):
        return dt
    if isinstance(v, int):
        if dt is D.bool_:
            return scalar_dtype(v)
        if dt.kind in "ui" and dt is not D.uint64:
            info = D.iinfo(dt)
            if not info.min <= v <= info.max:
                raise ValueError(f"Converting {v} to {dt.name} would result in overflow.")
        return dt
    if isinstance(v, float):
        return dt if dt.kind == "f" else _F32
    return D.complex64


_TAIL = "*, stream: StreamOrDevice = None) -> array"
_SHAPE = "shape: int | Sequence[int], "
_LIKE = "dtype: Dtype | None = None, " + _TAIL
_CLOSE = ("(a: array, b: array, /, rtol: float = 1e-05, atol: float = 1e-08, *, equal_nan: "
          "bool = False, stream: StreamOrDevice = None) -> array")
# the signatures upstream's bindings quote when they refuse a non-array
_SIGS = {
    "zeros_like": f"zeros_like(a: array, /, {_LIKE}",
    "ones_like": f"ones_like(a: array, /, {_LIKE}",
    "full_like": f"full_like(a: array, vals: scalar | array, {_LIKE}",
    "clip": ("clip(a: array, /, a_min: scalar | array | None, a_max: scalar | array | None, "
             + _TAIL),
    "isclose": "isclose" + _CLOSE,
    "allclose": "allclose" + _CLOSE,
    "linspace": ("linspace(start: scalar, stop: scalar, num: int | None = 50, endpoint: bool = "
                 "True, dtype: Dtype | None = float32, stream: StreamOrDevice = None) -> array"),
    "tril": f"tril(x: array, k: int = 0, {_TAIL}",
    "triu": f"triu(x: array, k: int = 0, {_TAIL}",
    "zeros": f"zeros({_SHAPE}dtype: Dtype | None = float32, {_TAIL}",
    "ones": f"ones({_SHAPE}dtype: Dtype | None = float32, {_TAIL}",
    "full": f"full({_SHAPE}vals: scalar | array, dtype: Dtype | None = None, {_TAIL}",
}


def _array_arg(a, op, what="a"):
    if not isinstance(a, array):
        if op in _SIGS:
            raise binding_error(op, _SIGS[op])
        raise TypeError(f"{op}(): {what} must be an array, got {type(a).__name__}.")
    return a


def _value_array(v, dtype, s):
    """A non-scalar fill value as an array: numpy values take `dtype`, arrays keep theirs."""
    if v is None:
        raise TypeError("Expected a scalar or an array, got None.")
    if isinstance(v, (list, tuple)):
        raise ValueError(f"Invalid type {type(v).__name__} received in array initialization.")
    if isinstance(v, array):
        return v if v._stream.device is s.device else to_device(v, s)
    return _construct(v, dtype, s)


# -- constants ---------------------------------------------------------------------------

def full(shape, vals, dtype=None, *, stream=None):
    """An array of shape `shape` filled with `vals` (a scalar, or an array broadcast)."""
    s = resolve(stream)
    shape = _shape(shape, "full")
    if isinstance(vals, _PY):
        _check_int(vals)
        vals = _bool_int(vals, dtype)
        dt = scalar_dtype(vals) if dtype is None else _weak(_dtype(dtype, "full"), vals)
        return node(shape, dt, Full(shape, vals, dt, s.tdevice), (), s)
    # as upstream, an array's own dtype wins over `dtype`
    v = _value_array(vals, _dtype(dtype, "full"), s)
    return O.broadcast_to(v, shape, stream=s)


def zeros(shape, dtype=_F32, *, stream=None):
    """An array of zeros."""
    s = resolve(stream)
    dt = _F32 if dtype is None else _dtype(dtype, "zeros")
    shape = _shape(shape, "zeros")
    return node(shape, dt, Full(shape, False if dt is D.bool_ else 0, dt, s.tdevice), (), s)


def ones(shape, dtype=_F32, *, stream=None):
    """An array of ones."""
    s = resolve(stream)
    dt = _F32 if dtype is None else _dtype(dtype, "ones")
    shape = _shape(shape, "ones")
    return node(shape, dt, Full(shape, True if dt is D.bool_ else 1, dt, s.tdevice), (), s)


empty = zeros  # upstream's empty is zeros


def zeros_like(a, /, dtype=None, *, stream=None):
    """An array of zeros with a's shape (and dtype, unless given)."""
    a = _array_arg(a, "zeros_like")
    return zeros(a._shape, dtype or a._dtype, stream=stream)


def ones_like(a, /, dtype=None, *, stream=None):
    """An array of ones with a's shape (and dtype, unless given)."""
    a = _array_arg(a, "ones_like")
    return ones(a._shape, dtype or a._dtype, stream=stream)


empty_like = zeros_like


def full_like(a, vals, dtype=None, *, stream=None):
    """An array with a's shape filled with `vals`, of `dtype` (default: a's dtype)."""
    a = _array_arg(a, "full_like")
    s = resolve(stream)
    dt = _dtype(dtype, "full_like") or a._dtype
    if isinstance(vals, _PY):
        _check_int(vals)
        vals = _bool_int(vals, dt)
        _weak(dt, vals)
        return node(a._shape, dt, Full(a._shape, vals, dt, s.tdevice), (), s)
    v = _value_array(vals, None, s)
    if v._dtype is not dt:
        v = O.astype(v, dt, s)
    return O.broadcast_to(v, O.broadcast_shapes(a._shape, v._shape), stream=s)


# -- ranges ---------------------------------------------------------------------------------

_MISSING = object()


def _real(v, what):
    if isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise TypeError(f"arange(): {what} must be an int or a float, got {type(v).__name__}.")


def arange(*args, start=_MISSING, stop=_MISSING, step=None, dtype=None, stream=None):
    """arange(stop) | arange(start, stop[, step]): values in [start, stop) every step.

    As upstream: int32 unless a bound is a float (float32) or does not fit int32 (int64);
    the increment is dtype(start + step) - dtype(start)."""
    pos = list(args)
    stop_step = False  # the overload arange(stop, step, dtype)
    if len(pos) >= 3 and (isinstance(pos[-1], D.Dtype) or len(pos) == 4):
        if dtype is not None:
            raise TypeError("arange(): got multiple values for argument 'dtype'")
        dtype = pos.pop()
        stop_step = len(pos) == 2
    if len(pos) > 3:
        raise TypeError(f"arange(): takes at most 4 positional arguments ({len(args)} given)")
    if stop_step:
        start, stop, step = 0, pos[0], pos[1]
    elif len(pos) == 1 and stop is _MISSING:
        if start is not _MISSING:
            raise TypeError("arange(): got multiple values for argument 'start'")
        stop = pos[0]
    else:
        for name, v in zip(("start", "stop", "step"), pos):
            if name == "start":
                if start is not _MISSING:
                    raise TypeError("arange(): got multiple values for argument 'start'")
                start = v
            elif name == "stop":
                if stop is not _MISSING:
                    raise TypeError("arange(): got multiple values for argument 'stop'")
                stop = v
            else:
                step = v
    if stop is _MISSING:
        raise TypeError("arange(): missing required argument 'stop'")
    if stop is None:
        if start is _MISSING or start is None:
            raise TypeError("arange(): missing required argument 'stop'")
        start, stop = _MISSING, start
    given = [_real(stop, "stop")]
    if start is not _MISSING:
        given.append(_real(start, "start"))
    if step is not None:
        given.append(_real(step, "step"))
    start = 0 if start is _MISSING else given[1]
    stop = given[0]
    step = 1 if step is None else given[-1]
    _dtype(dtype, "arange")
    if dtype is None:
        if any(isinstance(v, float) for v in given):
            dtype = _F32
        elif all(isinstance(v, bool) for v in given):
            dtype = D.bool_
        else:
            big = any(not -(2 ** 31) <= v < 2 ** 31 for v in given)
            dtype = D.int64 if big else D.int32
    if dtype is D.bool_:
        raise ValueError("bool not supported for arange.")
    if step == 0:
        raise ValueError("[arange] step must be nonzero.")
    n = _arange_len(start, stop, step)
    s = resolve(stream)
    return node((n,), dtype, Arange(start, step, n, dtype, s.tdevice), (), s)


def _arange_len(start, stop, step):
    if isinstance(step, float) and math.isinf(step) and math.isfinite(start) \
            and math.isfinite(stop):
        return 1 if (stop - start) * step > 0 else 0
    try:
        real = (stop - start) / step
    except OverflowError:
        real = float(stop - start) / float(step)
    if math.isnan(real) or math.isinf(real):
        raise ValueError("[arange] Cannot compute length.")
    n = max(0, math.ceil(real))
    if n > _INT32_MAX:
        raise ValueError("[arange] Maximum size exceeded.")
    return n


def _scalar_value(v, op, what):
    if isinstance(v, (bool, int, float)):
        return float(v)
    if isinstance(v, (np.integer, np.floating)) or isinstance(v, array) and v.size == 1 \
            and v.dtype.kind != "c":
        return float(v)
    raise TypeError(f"{op}(): {what} must be a real scalar, got {type(v).__name__}.")


def linspace(start, stop, num=50, endpoint=True, dtype=_F32, stream=None):
    """`num` evenly spaced values over [start, stop] (or [start, stop) without the
    endpoint)."""
    start = _scalar_value(start, "linspace", "start")
    stop = _scalar_value(stop, "linspace", "stop")
    num = _int(num, "linspace", "num")
    if endpoint is not True and endpoint is not False:
        raise binding_error("linspace", _SIGS["linspace"])
    if num < 0:
        raise ValueError(f"[linspace] number of samples, {num}, must be non-negative.")
    dt = _F32 if dtype is None else _dtype(dtype, "linspace")
    compute = D.float64 if dt is D.float64 else _F32
    if compute is _F32:  # upstream makes float32 arrays of start and stop
        start, stop = float(np.float32(start)), float(np.float32(stop))
    div = max(num - 1 if endpoint else num, 1)
    s = resolve(stream)
    return node((num,), dt, Linspace(start, stop, num, float(div), compute, dt, s.tdevice),
                (), s)


# -- matrices --------------------------------------------------------------------------------

def eye(n, m=None, k=0, dtype=_F32, *, stream=None):
    """An n x m matrix with ones on diagonal k and zeros elsewhere."""
    n = _int(n, "eye", "n")
    m = n if m is None else _int(m, "eye", "m")
    k = _int(k, "eye", "k")
    if n < 0 or m < 0:
        raise ValueError("[eye] N and M must be positive integers.")
    dt = _F32 if dtype is None else _dtype(dtype, "eye")
    s = resolve(stream)
    return node((n, m), dt, Eye(n, m, k, False, dt, s.tdevice), (), s)


def identity(n, dtype=_F32, *, stream=None):
    """The n x n identity matrix."""
    return eye(n, n, 0, dtype, stream=stream)


def tri(n, m=None, k=0, dtype=None, *, stream=None):
    """An n x m matrix with ones at and below diagonal k and zeros elsewhere."""
    n = max(_int(n, "tri", "n"), 0)
    m = n if m is None else max(_int(m, "tri", "m"), 0)
    k = _int(k, "tri", "k")
    dt = _F32 if dtype is None else _dtype(dtype, "tri")
    s = resolve(stream)
    return node((n, m), dt, Eye(n, m, k, True, dt, s.tdevice), (), s)


def _triangle(x, k, upper, stream, op):
    x = _array_arg(x, op, "x")
    if isinstance(k, float) or not hasattr(k, "__index__") and not isinstance(k, array):
        raise TypeError(f"{op}(): k must be an int, got {type(k).__name__}.")
    k = _int32(int(k), op, "k")
    if x.ndim < 2:
        raise ValueError(f"[{op}] array must be at least 2-D")
    s = resolve(stream)
    if x._stream.device is not s.device:
        x = to_device(x, s)
    return node(x._shape, x._dtype, Tri(k, upper), (x,), s)


def tril(x, k=0, *, stream=None):
    """x with the entries above diagonal k of its last two axes zeroed."""
    return _triangle(x, k, False, stream, "tril")


def triu(x, k=0, *, stream=None):
    """x with the entries below diagonal k of its last two axes zeroed."""
    return _triangle(x, k, True, stream, "triu")


def meshgrid(*arrays, sparse=False, indexing="xy", stream=None):
    """Coordinate grids from 1-D coordinate arrays ('xy': Cartesian, 'ij': matrix
    indexing)."""
    if not isinstance(sparse, bool):
        raise TypeError(f"meshgrid(): sparse must be a bool, got {type(sparse).__name__}.")
    if not isinstance(indexing, str):
        raise TypeError(f"meshgrid(): indexing must be a str, got {type(indexing).__name__}.")
    if indexing not in ("xy", "ij"):
        raise ValueError("[meshgrid] Invalid indexing value. Valid values are 'xy' and 'ij'.")
    for a in arrays:
        if not isinstance(a, array):
            raise RuntimeError(f"[meshgrid] Expected arrays, got {type(a).__name__}.")
    s = resolve(stream)  # (checked by upstream's binding, however many arrays)
    n = len(arrays)
    if n < 2:
        return tuple(arrays)
    flat = [O.reshape(a, (a.size,), stream=s) for a in arrays]
    sizes = [a.shape[0] for a in flat]
    if indexing == "xy":
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, a in enumerate(flat):
        pos = (1 - i if i < 2 else i) if indexing == "xy" else i
        shape = [1] * n
        shape[pos] = a.shape[0]
        y = O.reshape(a, tuple(shape), stream=s)
        if not sparse:
            y = O.broadcast_to(y, tuple(sizes), stream=s)
        out.append(y)
    return tuple(out)


# -- windows --------------------------------------------------------------------------------

def _window(kind, m, stream):
    m = _int(m, kind, "M")
    s = resolve(stream)
    return node((max(m, 0),), _F32, Window(kind, m, s.tdevice), (), s)


def hamming(M, *, stream=None):  # noqa: N803 - the upstream argument name
    """The Hamming window of M points."""
    return _window("hamming", M, stream)


def hanning(M, *, stream=None):  # noqa: N803
    """The Hanning window of M points."""
    return _window("hanning", M, stream)


def bartlett(M, *, stream=None):  # noqa: N803
    """The Bartlett (triangular) window of M points."""
    return _window("bartlett", M, stream)


def blackman(M, *, stream=None):  # noqa: N803
    """The Blackman window of M points."""
    return _window("blackman", M, stream)


# -- clip, comparisons, cleaning --------------------------------------------------------------

def clip(a, /, a_min, a_max, *, stream=None):
    """a with its values limited to [a_min, a_max] (either may be None)."""
    a = _array_arg(a, "clip")
    if a_min is None and a_max is None:
        raise ValueError("At most one of a_min and a_max may be None")
    # numpy bounds take a's own dtype (not that of a after clipping from below)
    dt = a._dtype
    if a_min is not None:
        a = O.maximum(a, _bool_int(_numpy_as(a_min, dt, stream), dt), stream)
    if a_max is not None:
        a = O.minimum(a, _bool_int(_numpy_as(a_max, dt, stream), dt), stream)
    return a


def _numpy_as(v, dt, stream):
    """A numpy value beside an array of dtype dt converted to dt, as upstream's binary
    ops convert them (np.float64, a subclass of float, stays a weakly typed scalar)."""
    if isinstance(v, (np.ndarray, np.generic)) and not isinstance(v, (int, float, complex)):
        return as_array(v, resolve(stream), dt)
    return v


def isclose(a, b, /, rtol=1e-05, atol=1e-08, *, equal_nan=False, stream=None):
    """Elementwise abs(a - b) <= atol + rtol * abs(b); equal infinities are close, NaNs
    only with equal_nan."""
    a = _array_arg(a, "isclose")
    b = _array_arg(b, "isclose", "b")
    s = resolve(stream)
    # as upstream, the tolerances are float32 arrays (not weakly typed scalars)
    rhs = O.add(as_array(atol, s, _F32), O.multiply(as_array(rtol, s, _F32), O.abs(b, s), s), s)
    out = O.less_equal(O.abs(O.subtract(a, b, s), s), rhs, s)
    if a._dtype.kind in "fc" or b._dtype.kind in "fc":
        any_inf = O.logical_or(O.isinf(a, s), O.isinf(b, s), s)
        both = O.logical_and(any_inf, O.equal(a, b, s), s)
        out = O.logical_or(O.logical_and(out, O.logical_not(any_inf, s), s), both, s)
        if equal_nan:
            out = O.logical_or(out, O.logical_and(O.isnan(a, s), O.isnan(b, s), s), s)
    return out


def allclose(a, b, /, rtol=1e-05, atol=1e-08, *, equal_nan=False, stream=None):
    """Whether every element of a is close to b (see isclose): a bool scalar array."""
    _array_arg(a, "allclose")
    _array_arg(b, "allclose", "b")
    return O.all(isclose(a, b, rtol, atol, equal_nan=equal_nan, stream=stream), stream=stream)


def array_equal(a, b, *, equal_nan=False, stream=None):
    """Whether a and b have the same shape and equal values: a bool scalar array."""
    s = resolve(stream)
    if type(b) is int and isinstance(a, array):
        O.elementwise.check_int_scalar(b, a._dtype)
    if type(a) is int and isinstance(b, array):
        O.elementwise.check_int_scalar(a, b._dtype)
    if isinstance(a, array) and not isinstance(b, array):
        b = _numpy_as(b, a._dtype, s)
    elif isinstance(b, array) and not isinstance(a, array):
        a = _numpy_as(a, b._dtype, s)
    a = as_operand(a, s)
    b = as_operand(b, s)
    if a._shape != b._shape:
        return full((), False, stream=s)
    eq = O.equal(a, b, s)
    if equal_nan and (a._dtype.kind in "fc" or b._dtype.kind in "fc"):
        eq = O.logical_or(eq, O.logical_and(O.isnan(a, s), O.isnan(b, s), s), s)
    return O.all(eq, stream=s)


def _rounded(v, dt):
    """Python float `v` rounded to dtype dt (overflowing to inf, as a cast does)."""
    return array(v, dt).item() if dt is not D.float64 else float(v)


def nan_to_num(a, nan=0, posinf=None, neginf=None, *, stream=None):
    """a with NaN replaced by `nan` and infinities by `posinf` / `neginf` (default: the
    largest finite values of a's dtype)."""
    s = resolve(stream)
    a = as_operand(a, s)
    dt = a._dtype
    if dt.kind not in "fc":
        return fresh(a)
    if dt in (D.float64, D.complex64) and (posinf is None or neginf is None):
        # (upstream has no largest value of these types to put in)
        raise ValueError(f"[nan_to_num] Does not yet support given type: {dt.name}.")
    fdt = _F32 if dt is D.complex64 else dt
    nan = _rounded(_scalar_value(nan, "nan_to_num", "nan"), fdt)
    info = D.finfo(fdt)
    posinf = info.max if posinf is None else _rounded(
        _scalar_value(posinf, "nan_to_num", "posinf"), fdt)
    neginf = info.min if neginf is None else _rounded(
        _scalar_value(neginf, "nan_to_num", "neginf"), fdt)
    return node(a._shape, dt, NanToNum(nan, posinf, neginf), (a,), s)


# -- from other containers ----------------------------------------------------------------

def asarray(a, dtype=None, *, copy=None):
    """`a` as an array. copy=True always copies, copy=False never does (raising when it
    would have to), None copies only when needed."""
    _dtype(dtype, "asarray")
    s = resolve(None)
    if isinstance(a, array):
        if dtype is not None and dtype is not a._dtype:
            if copy is False:
                raise ValueError("Unable to avoid copy while creating an array as requested.")
            return O.astype(a, dtype, s)
        return array(a) if copy else a
    if copy is False:
        if isinstance(a, (np.ndarray, np.generic)) or hasattr(a, "__dlpack__"):
            return from_dlpack_value(np.asarray(a) if isinstance(a, np.generic) else a,
                                     dtype, s, copy=False)
        raise ValueError("Unable to avoid copy while creating an array as requested.")
    return array(a, dtype)


def from_dlpack(x, /, *, copy=None):
    """An array of an object implementing __dlpack__ (sharing its memory unless copy)."""
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"from_dlpack(): expected a DLPack-compatible object, got "
                        f"{type(x).__name__}.")
    if isinstance(x, array):
        return array(x) if copy else x
    return from_dlpack_value(x, None, resolve(None), copy=copy)
