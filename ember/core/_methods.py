"""The array's operators and op methods, bound once all op families are loaded.

Operators take what upstream's take: arrays, Python scalars (weakly typed), numpy arrays
and scalars (converted to the array's dtype, as upstream converts them) and objects with
`__mlx_array__`. In-place operators give the same Python object the new value. The buffer
protocol (memoryview, numpy) is bound here too.
"""

import ctypes
import inspect
import sys

import numpy as np

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import _construct, _host_numpy, _type_name, array, fresh, overwrite
from ember.core.ops import elementwise as E
from ember.core.ops._base import check_int64

_SCALARS = (bool, int, float, complex)
_NUMPY = (np.ndarray, np.generic)
_BUFFERS = (bytes, bytearray, memoryview)


def _operand(other, self, what, dunder=None):
    """`other` as an operand of operator `dunder` (`what` in messages) on array `self`."""
    if isinstance(other, _SCALARS) or isinstance(other, array):
        return other
    if isinstance(other, _NUMPY):
        if other.dtype.kind not in "biufc" and other.dtype.name != "bfloat16":
            # strings, objects: not array-like for upstream either
            raise ValueError(f"Cannot perform {what} on an mlx.core.array and "
                             f"{type(other).__name__}")
        return _construct(other, self._dtype, self._stream)
    mlx_array = getattr(other, "__mlx_array__", None)
    if mlx_array is not None:
        return mlx_array()
    if isinstance(other, _BUFFERS) or hasattr(other, "__dlpack__"):
        # upstream takes DLPack and buffer-protocol objects too, in the array's dtype
        return _construct(other, self._dtype, self._stream)
    if other is None:  # refused by upstream's binding, as any non-array-like type
        raise TypeError(f"{dunder or what}(): incompatible function arguments. The operand "
                        "must be a scalar, an array or an array-like, got NoneType.")
    raise ValueError(f"Cannot perform {what} on an mlx.core.array and {_type_name(other)}")


def _binop(fn, what, dunder=None):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, what, dunder)
        return fn(self, other)
    return op


def _rbinop(fn, what, dunder=None):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, what, dunder)
        return fn(other, self)
    return op


def _ibinop(fn, what, dunder=None):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, f"inplace {what}", dunder)
        return overwrite(self, lambda old: fn(old, other))
    return op


def _no_floats(self, other, what):
    # upstream's bitwise operators check their operands (a Python float or complex
    # included) before the op, with a message of their own; a Python int too wide for
    # int64 fails its conversion before that
    if type(other) is int:
        check_int64(other)
    if self._dtype.kind in "fc" or isinstance(other, (float, complex)) or \
            isinstance(other, array) and other._dtype.kind in "fc":
        raise ValueError(f"Floating point types not allowed {what}.")


def _bitwise(fn, what, dunder=None):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, what, dunder)
        _no_floats(self, other, f"with {what}")
        return fn(self, other)
    return op


def _ibitwise(fn, what, dunder=None):
    # (upstream's in-place xor says "not allowed bitwise xor", without "with")
    said = what if dunder == "__ixor__" else f"with {what}"

    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, f"inplace {what}", dunder)
        _no_floats(self, other, said)
        return overwrite(self, lambda old: fn(old, other))
    return op


def _matmul(a, b, dunder="__matmul__"):
    if not isinstance(b, array):
        raise TypeError(f"{dunder}(): incompatible function arguments. The operand must be "
                        f"an mlx.core.array, got {type(b).__name__}.")
    return O.matmul(a, b)


def _itruediv(self, other):
    if type(other) is not array:  # a bad operand is reported first, as upstream does
        other = _operand(other, self, "inplace division", "__itruediv__")
    if self._dtype.kind not in "fc":
        raise ValueError("In place division cannot cast to non-floating point type.")
    return overwrite(self, lambda old: E.divide(old, other))


_BINARY = {
    "add": (E.add, "addition"), "sub": (E.subtract, "subtraction"),
    "mul": (E.multiply, "multiplication"), "truediv": (E.divide, "division"),
    "floordiv": (E.floor_divide, "floor division"), "mod": (E.remainder, "modulus"),
    "pow": (E.power, "power"), "and": (E.bitwise_and, "bitwise and"),
    "or": (E.bitwise_or, "bitwise or"), "xor": (E.bitwise_xor, "bitwise xor"),
    "lshift": (E.left_shift, "left shift"), "rshift": (E.right_shift, "right shift"),
}

# upstream has no reflected bitwise or shift operators (nor divmod): `2 & a` raises TypeError
_NO_REFLECTED = ("and", "or", "xor", "lshift", "rshift")

for _name, (_fn, _what) in _BINARY.items():
    if _name in _NO_REFLECTED:
        setattr(array, f"__{_name}__", _bitwise(_fn, _what, f"__{_name}__"))
        setattr(array, f"__i{_name}__", _ibitwise(_fn, _what, f"__i{_name}__"))
        continue
    setattr(array, f"__{_name}__", _binop(_fn, _what, f"__{_name}__"))
    setattr(array, f"__r{_name}__", _rbinop(_fn, _what, f"__r{_name}__"))
    setattr(array, f"__i{_name}__", _ibinop(_fn, _what, f"__i{_name}__"))
array.__itruediv__ = _itruediv


def __pow__(self, other, *mod):  # noqa: N807 - pow(a, b, mod) reaches it with a modulus
    if mod:
        raise TypeError("__pow__(): incompatible function arguments. A modulus is not "
                        "supported.")
    if type(other) is not array:
        other = _operand(other, self, "power", "__pow__")
    return E.power(self, other)


array.__pow__ = __pow__
array.__div__ = array.__truediv__
array.__rdiv__ = array.__rtruediv__
array.__matmul__ = lambda self, other: _matmul(self, other)
# (no __rmatmul__ upstream: `2 @ a` is Python's own TypeError)


def __imatmul__(self, other):  # noqa: N807
    return overwrite(self, lambda old: _matmul(old, other, "__imatmul__"))


array.__imatmul__ = __imatmul__


def _compare(fn, what, dunder):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, what, dunder)
        return fn(self, other)
    return op


def _equality(fn, negate, dunder):
    def op(self, other):
        if type(other) is not array:
            try:
                other = _operand(other, self, "equality", dunder)
            except ValueError:  # not array-like: never equal
                return negate
        return fn(self, other)
    return op


array.__eq__ = _equality(E.equal, False, "__eq__")
array.__ne__ = _equality(E.not_equal, True, "__ne__")
array.__lt__ = _compare(E.less, "less than", "__lt__")
array.__le__ = _compare(E.less_equal, "less than or equal", "__le__")
array.__gt__ = _compare(E.greater, "greater than", "__gt__")
array.__ge__ = _compare(E.greater_equal, "greater than or equal", "__ge__")
array.__hash__ = object.__hash__  # by identity, as upstream's (which is not id(a))


def __neg__(self):  # noqa: N807
    return E.negative(self)


def __pos__(self):  # noqa: N807
    return fresh(self)  # a new object, as upstream's: `b = +a; a += 1` leaves b alone


def __abs__(self):  # noqa: N807
    return E.abs(self)


def __invert__(self):  # noqa: N807
    k = self._dtype.kind
    if k == "b":
        return E.logical_not(self)
    if k in "fc":
        raise ValueError("Floating point types not allowed with bitwise inversion.")
    return E.bitwise_invert(self)


array.__neg__ = __neg__
array.__pos__ = __pos__
array.__abs__ = __abs__
array.__invert__ = __invert__


def _incompatible(name, sig, args, kwargs):
    """Upstream's binding error for arguments that do not fit `sig`, or None if they do."""
    try:
        sig.bind(*args, **kwargs)
    except TypeError as err:
        return TypeError(f"{name}(): incompatible function arguments. "
                         f"{str(err).capitalize()}.")
    return None


def _method(name, npos):
    # bound by name at call time, so families loaded later (or replaced) are found; at most
    # `npos` positional arguments, as upstream's method takes (the rest are keyword-only)
    P = inspect.Parameter
    sig = inspect.signature(getattr(O, name))
    no_dtype = name in ("cumsum", "cumprod")  # (the methods take no dtype upstream)
    rest = [p for p in list(sig.parameters.values())[1:] if p.name != "dtype" or not no_dtype]
    rest = [p.replace(kind=P.POSITIONAL_OR_KEYWORD if i < npos else P.KEYWORD_ONLY)
            for i, p in enumerate(rest)]
    sig = sig.replace(parameters=[P("self", P.POSITIONAL_ONLY)] + rest)

    def method(self, *args, **kwargs):
        # (the op itself takes more than the method: more positions, a dtype)
        if len(args) <= npos and not (no_dtype and "dtype" in kwargs):
            try:
                return getattr(O, name)(self, *args, **kwargs)
            except TypeError:
                err = _incompatible(name, sig, (self, *args), kwargs)
                if err is None:
                    raise
        raise _incompatible(name, sig, (self, *args), kwargs)
    method.__name__ = name
    method.__qualname__ = f"array.{name}"
    method.__signature__ = sig  # what help() and inspect show
    return method


# name: how many arguments upstream's method takes by position
_METHODS = {"abs": 0, "all": 2, "any": 2, "argmax": 2, "argmin": 2, "conj": 0, "cos": 0,
            "cummax": 1, "cummin": 1, "cumprod": 1, "cumsum": 1, "diag": 1, "diagonal": 4,
            "exp": 0, "flatten": 2, "log": 0, "log10": 0, "log1p": 0, "log2": 0,
            "logcumsumexp": 1, "logsumexp": 2, "max": 2, "mean": 2, "min": 2, "moveaxis": 2,
            "prod": 2, "reciprocal": 0, "round": 1, "rsqrt": 0, "sin": 0, "split": 2,
            "sqrt": 0, "square": 0, "squeeze": 1, "sum": 2, "swapaxes": 2, "view": 1,
            "astype": 2}
for _name, _npos in _METHODS.items():
    setattr(array, _name, _method(_name, _npos))


def var(self, axis=None, keepdims=False, ddof=0, *, correction=None, stream=None):
    return O.var(self, axis, keepdims, ddof if correction is None else correction,
                 stream=stream)


def std(self, axis=None, keepdims=False, ddof=0, *, correction=None, stream=None):
    return O.std(self, axis, keepdims, ddof if correction is None else correction,
                 stream=stream)


# (plain functions: Python reports their bad arguments, in its own words)
array.var = var
array.std = std


def _dims(args, op):
    """The shape or axes of a method's `*args`, as upstream's binding reads them: a first
    list or tuple is the whole of it (the rest is ignored), else every argument is one int."""
    if args:
        first = args[0]
        if isinstance(first, (list, tuple)) or len(args) == 1 and hasattr(first, "__len__"):
            return first  # (an array: the op checks it)
    for v in args:
        if type(v) is not int:  # (no bools, numpy ints or None either)
            raise RuntimeError(f"[{op}] Expected ints or one sequence of ints.")
    return args


def reshape(self, *shape, stream=None):
    return O.reshape(self, _dims(shape, "reshape"), stream=stream)


def transpose(self, *axes, stream=None):
    axes = _dims(axes, "transpose")
    return O.transpose(self, axes if len(axes) else None, stream=stream)


def _mT(self):  # noqa: N802 - upstream's name
    if self.ndim < 2:
        raise ValueError("[matrix_transpose] Input array must have at least 2 dimensions.")
    return O.swapaxes(self, -1, -2)


array.reshape = reshape
array.transpose = transpose
array.T = property(lambda self: O.transpose(self), doc="Equivalent to self.transpose().")
array.mT = property(_mT, doc="self.transpose() with the last two axes swapped.")
array.real = property(lambda self: E.real(self), doc="The real part of a complex array.")
array.imag = property(lambda self: E.imag(self), doc="The imaginary part of a complex array.")


def __getitem__(self, idx):  # noqa: N807
    return O.getitem(self, idx)


def __setitem__(self, idx, value):  # noqa: N807
    if value is None:  # refused by upstream's binding before the index is looked at
        raise TypeError("__setitem__(): incompatible function arguments. The value must be "
                        "a scalar, an array or an array-like, got None.")
    overwrite(self, lambda old: O.setitem(old, idx, value))


array.__getitem__ = __getitem__
array.__setitem__ = __setitem__
array.at = property(lambda self: O.ArrayAt(self), doc="Used to apply updates at the given "
                    "indices.")


# -- the buffer protocol ---------------------------------------------------------------
# Upstream's array exports its memory (memoryview, bytearray; numpy tries the buffer before
# `__array__`). A Python class gets a C buffer slot from `__buffer__` only on Python 3.12+,
# so on CPython the slot is filled through ctypes. A ctypes callback cannot leave a Python
# exception set: when evaluating the array fails, the consumer sees a SystemError (numpy
# then falls back to `__array__`, which raises the error itself). Nor can one run while the
# consumer has an exception set, as numpy does when it releases a buffer it refused: so
# there is no release callback, and the buffer's owner (`obj`) is a new array object with
# `a`'s value that holds the exported memory until the consumer lets it go.

_FORMATS = {D.bool_: b"?", D.uint8: b"B", D.uint16: b"H", D.uint32: b"I", D.uint64: b"Q",
            D.int8: b"b", D.int16: b"h", D.int32: b"i", D.int64: b"q", D.float16: b"e",
            D.float32: b"f", D.float64: b"d", D.bfloat16: b"bfloat16", D.complex64: b"Zf"}
_FORMATS = {d: ctypes.c_char_p(f) for d, f in _FORMATS.items()}  # alive as long as the class
# PyBUF_* request flags
_FORMAT, _ND, _STRIDES, _C_ONLY, _F_ONLY, _ANY_ORDER = 0x4, 0x8, 0x18, 0x20, 0x40, 0x80
_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p),
                ("len", ctypes.c_ssize_t), ("itemsize", ctypes.c_ssize_t),
                ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_void_p), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p)]


def _host_memory(a, flags):
    """`_host_numpy(a)`, copied where the consumer needs a contiguity it lacks."""
    h = _host_numpy(a)
    if flags & _F_ONLY:
        ok, order = h.flags.f_contiguous, "F"
    elif flags & _ANY_ORDER:
        ok, order = h.flags.c_contiguous or h.flags.f_contiguous, "C"
    else:  # without strides, the consumer reads the memory as row-major
        ok = h.flags.c_contiguous or (flags & _STRIDES) == _STRIDES and not flags & _C_ONLY
        order = "C"
    if not ok:
        h = h.copy(order)
    return h


def _c_strides(h):
    """Row-major strides of `h` (numpy gives an empty array strides of its own)."""
    out, n = [], h.itemsize
    for d in reversed(h.shape):
        out.append(n)
        n *= d
    return out[::-1]


def _get_buffer(a, view_ptr, flags):
    try:
        h = _host_memory(a, flags)
        v = _PyBuffer.from_address(view_ptr)
        shape = (ctypes.c_ssize_t * h.ndim)(*h.shape)
        strides = (ctypes.c_ssize_t * h.ndim)(*_c_strides(h) if h.flags.c_contiguous
                                              else h.strides)
        v.buf = h.ctypes.data
        v.len = h.nbytes
        v.itemsize = h.itemsize
        v.readonly = 0
        v.ndim = h.ndim
        v.format = ctypes.cast(_FORMATS[a._dtype], ctypes.c_void_p).value if flags & _FORMAT \
            else None
        nd = h.ndim and (flags & _ND) == _ND
        v.shape = ctypes.addressof(shape) if nd else None
        v.strides = ctypes.addressof(strides) if nd and (flags & _STRIDES) == _STRIDES else None
        v.suboffsets = v.internal = None
        owner = fresh(a)
        owner._exported = (h, shape, strides)
        _incref(owner)
        v.obj = id(owner)
        return 0
    except BaseException:  # noqa: BLE001 - see above: it cannot be raised from here
        return -1


_GET_BUFFER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_void_p,
                               ctypes.c_int)(_get_buffer)


def _install_buffer_slots(cls):
    """Point the type's getbuffer slot at the callback above, once its layout is checked to
    be CPython's PyTypeObject (tp_name, tp_basicsize, then tp_as_buffer at word 20)."""
    if sys.implementation.name != "cpython":
        return
    words = (ctypes.c_ssize_t * 21).from_address(id(cls))
    if words[4] != cls.__basicsize__ or not words[20] or \
            ctypes.string_at(words[3]) != cls.__name__.encode():
        return
    procs = (ctypes.c_void_p * 2).from_address(words[20])
    if (procs[0] is None and procs[1] is None) or hasattr(cls, "__release_buffer__"):
        procs[0] = ctypes.cast(_GET_BUFFER, ctypes.c_void_p).value
        procs[1] = None


if sys.version_info >= (3, 12):
    # upstream's type lists the methods there: they go through the slot set below (which
    # replaces the one these assignments make)
    array.__buffer__ = lambda self, flags, /: memoryview(self)
    array.__release_buffer__ = lambda self, view, /: None
_install_buffer_slots(array)
