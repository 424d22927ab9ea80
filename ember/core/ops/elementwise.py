"""Elementwise ops: the unary and binary families, where, and their composites."""

import inspect

import numpy as np

from ember.core import dtypes as D
from ember.core._backend import WRAP
from ember.core.array import _new as _anew
from ember.core.array import array, const, fresh, node
from ember.core.device import _CURRENT
from ember.core.ops._base import (
    PROMOTE,
    as_array,
    binding_error,
    broadcast_pair,
    check_int64,
    resolve,
    to_device,
    weak_dtype,
)
from ember.core.primitives import elementwise as E
from ember.core.primitives.misc import AsType, AsTypeU64

_F32 = D.float32
# ops whose result can leave the width of a narrow unsigned dtype
_WRAPPING = {"add", "subtract", "multiply", "negative", "left_shift", "power",
             "bitwise_invert", "square", "floor_divide", "remainder"}
_WRAP_PRIM = E.UNARY["wrap"]()


def astype(a, dtype, stream=None):
    s = resolve(stream)
    a = as_array(a, s)
    if not isinstance(dtype, D.Dtype):
        raise TypeError("astype(): incompatible function arguments. The dtype must be a "
                        f"Dtype, got {type(dtype).__name__}.")
    if a._dtype is dtype:
        return fresh(a)
    return _cast(a, dtype, s)


def _cast(a, dtype, s):
    cls = AsTypeU64 if a._dtype is D.uint64 and dtype.kind in "fc" else AsType
    return node(a._shape, dtype, cls(dtype), (a,), s)


def _unary_dtype(rule, dt, op):
    if rule == "same":
        return dt
    if rule == "float":
        return dt if dt.kind in "fc" else _F32
    if rule == "bool":
        return D.bool_
    if rule == "real":
        return _F32 if dt is D.complex64 else dt
    raise AssertionError(rule)


def apply_unary(prim, x, s=None):
    """A node of unary primitive `prim` over x, casting x as the op's dtype rule needs."""
    s = s or x._stream
    out = _unary_dtype(prim.rule, x._dtype, prim.op)
    if prim.rule == "float" and out is not x._dtype:
        x = astype(x, out, s)
    y = node(x._shape, out, prim, (x,), s)
    if out in WRAP and prim.op in _WRAPPING:
        y = node(y._shape, out, _WRAP_PRIM, (y,), s)
    return y


_NO_COMPLEX = {"floor", "ceil", "trunc", "sigmoid", "erf", "erfinv", "expm1"}
_INF_SIGNS = {"isposinf": float("inf"), "isneginf": float("-inf")}
# upstream binds these with `a: array`: no scalars, sequences or numpy arrays
_ARRAY_ONLY = {"trunc", "positive"}
_NO_BOOL = {"negative"}
_INT_ONLY = {"bitwise_invert"}


def _unary_fast(op, rule):
    """dtypes for which the op needs no cast, check or wrap: output dtype is the input's
    (or bool)."""
    ok = set(D.ALL) - set(WRAP)
    if rule == "float":
        ok = {d for d in ok if d.kind in "fc"}
    elif rule == "real":
        ok.discard(D.complex64)
    if op in _NO_COMPLEX:
        ok.discard(D.complex64)
    if op in _NO_BOOL:
        ok.discard(D.bool_)
    if op in _INT_ONLY:
        ok = {d for d in ok if d.kind in "uib"}
    if op in _INF_SIGNS:
        ok.discard(D.complex64)
    if op in E.UNSIGNED_UNARY:
        ok.discard(D.uint64)
    return frozenset(ok)


def _sig(*names):
    # upstream's: the operands positional-only, the stream keyword-only (the functions
    # themselves also take the stream by position, as Ember's own rules call them)
    P = inspect.Parameter
    return inspect.Signature([P(n, P.POSITIONAL_ONLY) for n in names]
                             + [P("stream", P.KEYWORD_ONLY, default=None)])


_UNARY_SIG = _sig("a")
_PLAIN_UNARY_SIG = inspect.signature(lambda a, stream=None: None)
_BINARY_SIG = _sig("a", "b")
# ops whose upstream signature is plain (a, b, stream=None): the function's own
_PLAIN_SIG = {"add", "subtract", "multiply", "divide", "floor_divide", "remainder", "equal",
              "not_equal", "less", "less_equal", "greater", "greater_equal", "bitwise_and",
              "bitwise_or", "bitwise_xor", "bitwise_invert", "left_shift", "right_shift",
              "isfinite", "isinf", "isnan", "isneginf", "isposinf"}


def _make_unary(op):
    prim = E.UNARY[op]()
    unsigned = E.UNSIGNED_UNARY[op]() if op in E.UNSIGNED_UNARY else None
    fast = _unary_fast(op, prim.rule)
    to_bool = prim.rule == "bool"
    current = _CURRENT

    def f(a, /, stream=None):
        if stream is None and type(a) is array and current and a._dtype in fast \
                and a._stream is current[-1]:
            y = _anew(array)
            y._shape = a._shape
            y._dtype = D.bool_ if to_bool else a._dtype
            y._data = None
            y._prim = prim
            y._inputs = (a,)
            y._siblings = None
            y._stream = a._stream
            y._copies = None
            a._read = True
            return y
        s = resolve(stream)
        if type(a) is not array or a._stream.device is not s.device:
            a = _array_only(a, s, op) if op in _ARRAY_ONLY else _operand(a, s)
        dt = a._dtype
        if dt is D.complex64 and op in _INF_SIGNS:
            # upstream compares with the infinity (a complex one: an imaginary part of 0)
            return equal(a, _INF_SIGNS[op], s)
        if dt is D.complex64 and op in _NO_COMPLEX:
            raise ValueError(f"[{op}] Not supported for complex64.")
        if dt is D.bool_ and op in _NO_BOOL:
            raise ValueError(f"[{op}] Not supported for bool, use logical_not instead.")
        if op in _INT_ONLY and dt.kind not in "uib":
            raise ValueError(f"[{op}] Bitwise inverse only allowed on integer types.")
        return apply_unary(unsigned if dt is D.uint64 and unsigned else prim, a, s)

    f.__name__ = op
    f.__qualname__ = op
    if op == "conjugate":
        f.__signature__ = inspect.signature(lambda a, *, stream=None: None)
    elif op not in _PLAIN_SIG:
        f.__signature__ = _UNARY_SIG
    else:  # upstream's documented signature (its binding takes `a` by position only)
        f.__signature__ = _PLAIN_UNARY_SIG
    return f


abs = _make_unary("abs")  # noqa: A001 - MLX names
negative = _make_unary("negative")
sign = _make_unary("sign")
square = _make_unary("square")
floor = _make_unary("floor")
ceil = _make_unary("ceil")
trunc = _make_unary("trunc")
exp = _make_unary("exp")
expm1 = _make_unary("expm1")
log = _make_unary("log")
log2 = _make_unary("log2")
log10 = _make_unary("log10")
log1p = _make_unary("log1p")
sqrt = _make_unary("sqrt")
rsqrt = _make_unary("rsqrt")
reciprocal = _make_unary("reciprocal")
sin = _make_unary("sin")
cos = _make_unary("cos")
tan = _make_unary("tan")
arcsin = _make_unary("arcsin")
arccos = _make_unary("arccos")
arctan = _make_unary("arctan")
sinh = _make_unary("sinh")
cosh = _make_unary("cosh")
tanh = _make_unary("tanh")
arcsinh = _make_unary("arcsinh")
arccosh = _make_unary("arccosh")
arctanh = _make_unary("arctanh")
sigmoid = _make_unary("sigmoid")
erf = _make_unary("erf")
erfinv = _make_unary("erfinv")
conjugate = _make_unary("conjugate")
conj = conjugate
real = _make_unary("real")
imag = _make_unary("imag")
logical_not = _make_unary("logical_not")
bitwise_invert = _make_unary("bitwise_invert")
isnan = _make_unary("isnan")
isinf = _make_unary("isinf")
isposinf = _make_unary("isposinf")
isneginf = _make_unary("isneginf")
isfinite = _make_unary("isfinite")
asin, acos, atan = arcsin, arccos, arctan
asinh, acosh, atanh = arcsinh, arccosh, arctanh


def round(a, /, decimals=0, stream=None):  # noqa: A001
    if not isinstance(decimals, (int, np.integer)) or not -2 ** 31 <= decimals < 2 ** 31:
        raise TypeError("round(): incompatible function arguments. decimals must be an "
                        f"int32, got {decimals!r}.")
    s = resolve(stream)
    a = _operand(a, s)
    if a._dtype.kind in "uib":
        d = int(decimals)
        if d == 0:
            return fresh(a)
        # as upstream: scaled in float32, rounded, scaled back and cast to the dtype (so
        # round(15, -1) is 20, and a uint8 result wraps)
        scale = np.float32(10.0 ** d)
        r = apply_unary(E.Round(0), multiply(astype(a, _F32, s), float(scale), s), s)
        return astype(multiply(r, float(np.float32(1) / scale), s), a._dtype, s)
    d = int(decimals)
    if d == 0:
        return apply_unary(E.Round(0), a, s)
    # as upstream: scaled in the array's own dtype, rounded, and scaled back by the
    # reciprocal (so float16 overflows as it does, and round(88.7, 1) is 88.70000458)
    scale = np.float32(10.0 ** d)
    r = apply_unary(E.Round(0), multiply(a, float(scale), s), s)
    return multiply(r, float(np.float32(1) / scale), s)


def positive(a, /, stream=None):
    return _array_only(a, resolve(stream), "positive")


def _array_only(a, s, op):
    if not isinstance(a, array):
        raise binding_error(op, f"{op}(a: array, /, *, stream: StreamOrDevice = None) -> array")
    return as_array(a, s)


def degrees(a, /, stream=None):
    a = _operand(a, resolve(stream))
    if a._dtype.kind not in "fc":
        a = astype(a, _F32, stream)
    return multiply(a, 57.29577951308232, stream)


def radians(a, /, stream=None):
    a = _operand(a, resolve(stream))
    if a._dtype.kind not in "fc":
        a = astype(a, _F32, stream)
    return multiply(a, 0.017453292519943295, stream)


# -- binary --------------------------------------------------------------------------

def binary_args(a, b, s, op):
    """Both operands as arrays of one promoted dtype on stream s, with MLX's weak
    typing of Python scalars."""
    ta, tb = type(a), type(b)
    if ta is array and tb is array:
        dt = PROMOTE[a._dtype, b._dtype]
    elif ta is array and tb in (int, float, bool, complex):
        dt = weak_dtype(a._dtype, b)
        if tb is int and (dt in _NARROW_INTS or not -0x80000000 <= b <= 0x7FFFFFFF):
            _check_fits(b, dt, a._dtype)
        b = const(b, dt, s)
    elif tb is array and ta in (int, float, bool, complex):
        dt = weak_dtype(b._dtype, a)
        if ta is int and (dt in _NARROW_INTS or not -0x80000000 <= a <= 0x7FFFFFFF):
            _check_fits(a, dt, b._dtype)
        a = const(a, dt, s)
    else:
        if not isinstance(a, array) and not isinstance(b, array):
            a = _operand(a, s)
            b = _operand(b, s)
        elif not isinstance(a, array):
            a = _operand(a, s, b._dtype)
        elif not isinstance(b, array):
            b = _operand(b, s, a._dtype)
        dt = PROMOTE[a._dtype, b._dtype]
    if a._stream.device is not s.device:
        a = to_device(a, s)
    if b._stream.device is not s.device:
        b = to_device(b, s)
    if a._dtype is not dt:
        a = _cast(a, dt, s)
    if b._dtype is not dt:
        b = _cast(b, dt, s)
    return a, b, dt


# integer dtypes a weakly typed Python int must fit (upstream wraps into 64-bit ones)
_NARROW_INTS = {d: (-(1 << (8 * d.size - 1)), (1 << (8 * d.size - 1)) - 1) if d.kind == "i"
                else (0, (1 << (8 * d.size)) - 1)
                for d in (D.int8, D.int16, D.int32, D.uint8, D.uint16, D.uint32)}


def check_int_scalar(v, strong):
    """Refuse Python int `v` beside an array of dtype `strong` as upstream does: outside
    int64, or outside the (narrow) integer dtype it takes."""
    dt = weak_dtype(strong, v)
    if dt in _NARROW_INTS or not -0x80000000 <= v <= 0x7FFFFFFF:
        _check_fits(v, dt, strong)


def _check_fits(v, dt, strong):
    check_int64(v)
    if dt not in _NARROW_INTS:
        return
    lo, hi = _NARROW_INTS[dt]
    # with a bool array upstream C-casts the int (through int64) to int32: it wraps
    if not lo <= v <= hi and strong is not D.bool_:
        raise ValueError(f"Converting {v} to {dt.name} would result in overflow.")


def _not_integer(op, a, b, dt, s):
    # upstream names the operands' dtypes (right_shift's after promoting both), a Python
    # scalar's as the array it becomes: a float one is float32 beside a complex array
    if op == "right_shift":
        da = db = dt
    else:
        da, db = _given_dtype(a, b, s), _given_dtype(b, a, s)
    return RuntimeError(f"[{op}] Only allowed on integer or boolean types but got types "
                        f"{da.name} and {db.name}.")


def _given_dtype(v, other, s):
    if isinstance(v, array):
        return v._dtype
    if isinstance(other, array) and type(v) in (int, float, bool, complex):
        if type(v) is float and other._dtype is D.complex64:
            return _F32
        return weak_dtype(other._dtype, v)
    return as_array(v, s, _scalar_like(v, other._dtype) if isinstance(other, array)
                    else None)._dtype


def _scalar_like(v, other):
    """The dtype upstream gives a non-array operand beside an array of dtype `other`."""
    if isinstance(v, (int, float, complex)):
        # a subclass of a Python scalar (np.float64, np.bool_ is not one) is weakly typed
        return weak_dtype(other, v)
    if isinstance(v, (np.generic, np.ndarray)):
        # other numpy values, of any shape, are converted to the array's dtype
        return other
    return None


def _operand(v, s, other=None):
    """A non-array operand of a binary op as an array; `other` is the dtype of the array
    operand, if there is one."""
    if isinstance(v, (list, tuple)) or isinstance(v, np.ndarray) and \
            v.dtype.kind not in "biufc" and v.dtype.name != "bfloat16":
        # upstream takes scalars and numeric array-likes as operands: a sequence is neither
        raise ValueError(f"Invalid type {type(v).__name__} received in array initialization.")
    return as_array(v, s, None if other is None else _scalar_like(v, other))


def apply_binary(prim, a, b, s=None):
    s = s or a._stream
    rule = prim.rule
    dt = a._dtype
    if rule == "float" and dt.kind not in "fc":
        a = astype(a, _F32, s)
        b = astype(b, _F32, s)
        dt = _F32
    shape = a._shape if a._shape == b._shape else broadcast_pair(a._shape, b._shape)
    out = D.bool_ if rule == "bool" else dt
    y = node(shape, out, prim, (a, b), s)
    if out in WRAP and prim.op in _WRAPPING:
        y = node(shape, out, _WRAP_PRIM, (y,), s)
    return y


_NO_COMPLEX_BIN = {"remainder": "Complex type not supported.",
                   "arctan2": "Not supported for complex64.",
                   "floor_divide": None}


def _fast_dtypes(op, rule):
    """dtypes for which two same-shape, same-dtype arrays need no casts or checks."""
    ok = set(D.ALL) - set(WRAP)
    if rule == "float":
        ok = {d for d in ok if d.kind in "fc"}
    elif rule == "int":
        ok = {d for d in ok if d.kind in ("ui" if "shift" in op else "uib")}
    if op in _NO_COMPLEX_BIN:
        ok.discard(D.complex64)
    if op in E.UNSIGNED:
        ok.discard(D.uint64)
    return frozenset(ok)


def _truth(v):
    if type(v) is int:
        check_int64(v)
        return v != 0
    if isinstance(v, (np.generic, np.ndarray)) and not isinstance(v, float) \
            and v.dtype.kind in "biufc":
        return np.asarray(v) != 0
    return v


def _make_binary(op):
    prim = E.BINARY[op]()
    unsigned = E.UNSIGNED[op]() if op in E.UNSIGNED else None
    rule = prim.rule
    fast = _fast_dtypes(op, rule)
    to_bool = rule == "bool"
    logical = op in ("logical_and", "logical_or")
    current = _CURRENT

    def f(a, b, stream=None):
        # fast path: two arrays of one dtype and shape on the current stream
        if stream is None and type(a) is array and type(b) is array and current:
            s = current[-1]
            dt = a._dtype
            if dt is b._dtype and dt in fast and a._stream is s and b._stream is s \
                    and a._shape == b._shape:
                y = _anew(array)
                y._shape = a._shape
                y._dtype = D.bool_ if to_bool else dt
                y._data = None
                y._prim = prim
                y._inputs = (a, b)
                y._siblings = None
                y._stream = s
                y._copies = None
                a._read = b._read = True
                return y
        s = resolve(stream)
        if logical:
            # a Python int or a numpy value is only truth here: it need not fit (or keep
            # its value in) the other operand's dtype
            a = _truth(a)
            b = _truth(b)
        x, y, dt = binary_args(a, b, s, op)
        if rule == "int" and dt.kind in "fc":
            raise _not_integer(op, a, b, dt, s)
        if dt is D.complex64 and op in _NO_COMPLEX_BIN and _NO_COMPLEX_BIN[op]:
            raise ValueError(f"[{op}] {_NO_COMPLEX_BIN[op]}")
        if op in ("left_shift", "right_shift") and dt is D.bool_:
            x = astype(x, D.uint8, s)
            y = astype(y, D.uint8, s)
        elif op in ("left_shift", "right_shift") and dt is D.uint32:
            # held in int64, whose kernels take the count modulo 64: upstream's is modulo 32
            y = bitwise_and(y, 31, s)
        if rule != "float":
            shape = x._shape if x._shape == y._shape else broadcast_pair(x._shape, y._shape)
            out = D.bool_ if rule == "bool" else x._dtype
            r = node(shape, out, unsigned if x._dtype is D.uint64 and unsigned else prim,
                     (x, y), s)
            if out in WRAP and op in _WRAPPING:
                r = node(shape, out, _WRAP_PRIM, (r,), s)
            return r
        return apply_binary(prim, x, y, s)

    f.__name__ = op
    f.__qualname__ = op
    if op not in _PLAIN_SIG:
        f.__signature__ = _BINARY_SIG
    return f


add = _make_binary("add")
subtract = _make_binary("subtract")
multiply = _make_binary("multiply")
divide = _make_binary("divide")
floor_divide = _make_binary("floor_divide")
remainder = _make_binary("remainder")
power = _make_binary("power")
maximum = _make_binary("maximum")
minimum = _make_binary("minimum")
arctan2 = _make_binary("arctan2")
atan2 = arctan2
logaddexp = _make_binary("logaddexp")
equal = _make_binary("equal")
not_equal = _make_binary("not_equal")
less = _make_binary("less")
less_equal = _make_binary("less_equal")
greater = _make_binary("greater")
greater_equal = _make_binary("greater_equal")
logical_and = _make_binary("logical_and")
logical_or = _make_binary("logical_or")
bitwise_and = _make_binary("bitwise_and")
bitwise_or = _make_binary("bitwise_or")
bitwise_xor = _make_binary("bitwise_xor")
left_shift = _make_binary("left_shift")
right_shift = _make_binary("right_shift")
bitwise_left_shift, bitwise_right_shift = left_shift, right_shift
pow = power  # noqa: A001


def logical_xor(a, b, stream=None):
    return not_equal(astype(a, D.bool_, stream), astype(b, D.bool_, stream), stream)


def divmod(a, b, stream=None):  # noqa: A001
    s = resolve(stream)
    x, y, dt = binary_args(a, b, s, "divmod")
    if dt is D.complex64:  # refused before the shapes are broadcast
        raise ValueError("[divmod] Complex type not supported.")
    return [floor_divide(x, y, s), remainder(x, y, s)]


def where(condition, x, y, stream=None):
    s = resolve(stream)
    x, y, dt = binary_args(x, y, s, "where")
    c = _operand(condition, s)
    if c._dtype is not D.bool_:
        c = astype(c, D.bool_, s)
    shape = broadcast_pair(broadcast_pair(c._shape, x._shape), y._shape)
    return node(shape, dt, _SELECT, (c, x, y), s)


_SELECT = E.Select()


# upstream's signatures for the hand-written ops above (they also take the stream by
# position, as Ember's own code calls them)
astype.__signature__ = inspect.signature(lambda a, dtype, /, *, stream=None: None)
round.__signature__ = inspect.signature(lambda a, /, decimals=0, stream=None: None)
for _f in (positive, degrees, radians):
    _f.__signature__ = _UNARY_SIG
logical_xor.__signature__ = _BINARY_SIG
where.__signature__ = inspect.signature(lambda condition, x, y, /, *, stream=None: None)
