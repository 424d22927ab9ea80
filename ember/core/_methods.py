"""The array's operators and op methods, bound once all op families are loaded."""

import ember.core.ops as O
from ember.core.array import _become, array
from ember.core.ops import elementwise as E


def _binop(fn):
    def op(self, other):
        try:
            return fn(self, other)
        except TypeError:
            return NotImplemented
    return op


def _rbinop(fn):
    def op(self, other):
        try:
            return fn(other, self)
        except TypeError:
            return NotImplemented
    return op


def _ibinop(fn):
    def op(self, other):
        _become(self, fn(self, other))
        return self
    return op


_BINARY = {
    "add": E.add, "sub": E.subtract, "mul": E.multiply, "truediv": E.divide,
    "floordiv": E.floor_divide, "mod": E.remainder, "pow": E.power, "matmul": None,
    "and": None, "or": None, "xor": E.bitwise_xor, "lshift": E.left_shift,
    "rshift": E.right_shift,
}


def _and(a, b):
    return E.bitwise_and(a, b)


def _or(a, b):
    return E.bitwise_or(a, b)


def _matmul(a, b):
    return O.matmul(a, b)


_BINARY["and"], _BINARY["or"], _BINARY["matmul"] = _and, _or, _matmul

for _name, _fn in _BINARY.items():
    setattr(array, f"__{_name}__", _binop(_fn))
    setattr(array, f"__r{_name}__", _rbinop(_fn))
    setattr(array, f"__i{_name}__", _ibinop(_fn))

array.__eq__ = _binop(E.equal)
array.__ne__ = _binop(E.not_equal)
array.__lt__ = _binop(E.less)
array.__le__ = _binop(E.less_equal)
array.__gt__ = _binop(E.greater)
array.__ge__ = _binop(E.greater_equal)
array.__neg__ = lambda self: E.negative(self)
array.__pos__ = lambda self: self
array.__abs__ = lambda self: E.abs(self)
array.__invert__ = lambda self: (E.logical_not(self) if self._dtype.kind == "b"
                                 else E.bitwise_invert(self))
array.__hash__ = lambda self: id(self)


def __divmod__(self, other):  # noqa: N807
    return E.divmod(self, other)


def __rdivmod__(self, other):  # noqa: N807
    return E.divmod(other, self)


array.__divmod__ = __divmod__
array.__rdivmod__ = __rdivmod__


def _method(name):
    def method(self, *args, **kwargs):
        return getattr(O, name)(self, *args, **kwargs)
    method.__name__ = name
    return method


_METHODS = ["abs", "all", "any", "argmax", "argmin", "conj", "cos", "cummax", "cummin",
            "cumprod", "cumsum", "diag", "diagonal", "exp", "expm1", "flatten", "log",
            "log10", "log1p", "log2", "logcumsumexp", "logsumexp", "max", "maximum", "mean",
            "min", "minimum", "moveaxis", "prod", "reciprocal", "round", "rsqrt", "sin",
            "split", "sqrt", "square", "squeeze", "std", "sum", "swapaxes", "var", "view",
            "astype", "conjugate", "unflatten"]
for _name in _METHODS:
    setattr(array, _name, _method(_name))


def reshape(self, *shape, stream=None):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return O.reshape(self, shape, stream=stream)


def transpose(self, *axes, stream=None):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return O.transpose(self, axes if axes else None, stream=stream)


array.reshape = reshape
array.transpose = transpose
array.T = property(lambda self: O.transpose(self))
array.real = property(lambda self: E.real(self))
array.imag = property(lambda self: E.imag(self))


def __getitem__(self, idx):  # noqa: N807
    return O.getitem(self, idx)


def __setitem__(self, idx, value):  # noqa: N807
    _become(self, O.setitem(self, idx, value))


array.__getitem__ = __getitem__
array.__setitem__ = __setitem__
array.at = property(lambda self: O.ArrayAt(self))
