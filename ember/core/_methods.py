"""The array's operators and op methods, bound once all op families are loaded.

Operators take what upstream's take: arrays, Python scalars (weakly typed), numpy arrays
and scalars (converted to the array's dtype, as upstream converts them) and objects with
`__mlx_array__`. In-place operators give the same Python object the new value.
"""

import inspect

import numpy as np

import ember.core.ops as O
from ember.core.array import _construct, _type_name, array, overwrite
from ember.core.ops import elementwise as E

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
    # included) before the op, with a message of their own
    if self._dtype.kind in "fc" or isinstance(other, (float, complex)) or \
            isinstance(other, array) and other._dtype.kind in "fc":
        raise ValueError(f"Floating point types not allowed with {what}.")


def _bitwise(fn, what, dunder=None):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, what, dunder)
        _no_floats(self, other, what)
        return fn(self, other)
    return op


def _ibitwise(fn, what, dunder=None):
    def op(self, other):
        if type(other) is not array:
            other = _operand(other, self, f"inplace {what}", dunder)
        _no_floats(self, other, what)
        return overwrite(self, lambda old: fn(old, other))
    return op


def _matmul(a, b):
    if not isinstance(b, array):
        raise TypeError(f"__matmul__(): expected an mlx.core.array, got {type(b).__name__}")
    return O.matmul(a, b)


def _rmatmul(a, b):
    if not isinstance(a, array):
        raise TypeError(f"__rmatmul__(): expected an mlx.core.array, got {type(a).__name__}")
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
array.__div__ = array.__truediv__
array.__rdiv__ = array.__rtruediv__
array.__matmul__ = lambda self, other: _matmul(self, other)
array.__rmatmul__ = lambda self, other: _rmatmul(other, self)


def __imatmul__(self, other):  # noqa: N807
    return overwrite(self, lambda old: _matmul(old, other))


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
array.__hash__ = lambda self: id(self)


def __neg__(self):  # noqa: N807
    return E.negative(self)


def __pos__(self):  # noqa: N807
    return self


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


def _method(name, npos):
    # bound by name at call time, so families loaded later (or replaced) are found; at most
    # `npos` positional arguments, as upstream's method takes (the rest are keyword-only)
    def method(self, *args, **kwargs):
        if len(args) > npos:
            raise TypeError(f"{name}(): incompatible function arguments. It takes at most "
                            f"{npos} positional argument{'s' * (npos != 1)} after the array, "
                            f"got {len(args)}.")
        return getattr(O, name)(self, *args, **kwargs)
    method.__name__ = name
    method.__qualname__ = f"array.{name}"
    # what help() and inspect show: the op's parameters after the array
    P = inspect.Parameter
    sig = inspect.signature(getattr(O, name))
    rest = [p for p in list(sig.parameters.values())[1:] if p.name != "dtype" or
            name not in ("cumsum", "cumprod")]  # (the methods take no dtype upstream)
    rest = [p.replace(kind=P.POSITIONAL_OR_KEYWORD if i < npos else P.KEYWORD_ONLY)
            for i, p in enumerate(rest)]
    method.__signature__ = sig.replace(parameters=[P("self", P.POSITIONAL_ONLY)] + rest)
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


array.var = var
array.std = std


def reshape(self, *shape, stream=None):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return O.reshape(self, shape, stream=stream)


def transpose(self, *axes, stream=None):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return O.transpose(self, axes if axes else None, stream=stream)


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
