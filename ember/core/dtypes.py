"""MLX's dtypes, categories and promotion rules.

Dtype objects are singletons so that identity comparison (`is`) works on the hot path.
"""

import enum


class DtypeCategory(enum.Enum):
    complexfloating = 0
    floating = 1
    inexact = 2
    signedinteger = 3
    unsignedinteger = 4
    integer = 5
    number = 6
    generic = 7

    def __repr__(self):
        return f"DtypeCategory.{self.name}"

    __str__ = __repr__


# kind letters: b bool, u unsigned, i signed, f float, c complex
class Dtype:
    __slots__ = ("name", "size", "kind", "_rank")

    def __init__(self, name, size, kind, rank):
        self.name = name
        self.size = size
        self.kind = kind
        self._rank = rank

    def __repr__(self):
        return f"mlx.core.{self.name}"

    __str__ = __repr__

    def __hash__(self):
        return hash(("Dtype", self.name))

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = Dtype("bool", 1, "b", 0)
uint8 = Dtype("uint8", 1, "u", 1)
uint16 = Dtype("uint16", 2, "u", 2)
uint32 = Dtype("uint32", 4, "u", 3)
uint64 = Dtype("uint64", 8, "u", 4)
int8 = Dtype("int8", 1, "i", 5)
int16 = Dtype("int16", 2, "i", 6)
int32 = Dtype("int32", 4, "i", 7)
int64 = Dtype("int64", 8, "i", 8)
float16 = Dtype("float16", 2, "f", 9)
float32 = Dtype("float32", 4, "f", 10)
float64 = Dtype("float64", 8, "f", 11)
bfloat16 = Dtype("bfloat16", 2, "f", 12)
complex64 = Dtype("complex64", 8, "c", 13)

ALL = (bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
       float16, float32, float64, bfloat16, complex64)
_NAMES = {d.name: d for d in ALL}
_NAMES["bool_"] = bool_


def _by_name(name):
    return _NAMES[name]


complexfloating = DtypeCategory.complexfloating
floating = DtypeCategory.floating
inexact = DtypeCategory.inexact
signedinteger = DtypeCategory.signedinteger
unsignedinteger = DtypeCategory.unsignedinteger
integer = DtypeCategory.integer
number = DtypeCategory.number
generic = DtypeCategory.generic

_KIND_CATEGORY = {"b": generic, "u": unsignedinteger, "i": signedinteger,
                  "f": floating, "c": complexfloating}
# the category tree: child -> parent
_PARENT = {complexfloating: inexact, floating: inexact, inexact: number,
           signedinteger: integer, unsignedinteger: integer, integer: number,
           number: generic, generic: None}


def is_floating(d):
    return d.kind == "f"


def is_inexact(d):
    return d.kind in "fc"


def is_integral(d):
    return d.kind in "ui"


def _promote(a, b):
    if a is b:
        return a
    ka, kb = a.kind, b.kind
    if ka == "b":
        return b
    if kb == "b":
        return a
    if ka == "c" or kb == "c":
        return complex64
    if ka == "f" and kb == "f":
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.size > b.size else b
    if ka == "f":
        return a
    if kb == "f":
        return b
    if ka == kb:
        return a if a.size > b.size else b
    u, i = (a, b) if ka == "u" else (b, a)
    if u is uint64:
        return float32
    return {1: int8, 2: int16, 4: int32, 8: int64}[max(2 * u.size, i.size)]


_PROMOTE = {(a, b): _promote(a, b) for a in ALL for b in ALL}


def promote_types(a, b):
    return _PROMOTE[a, b]


def issubdtype(a, b):
    """`issubdtype(arg1, arg2)`: whether arg1 is a subtype of arg2 (dtypes or categories)."""
    if isinstance(a, Dtype) and isinstance(b, Dtype):
        return a is b
    if isinstance(b, Dtype):
        return False
    cat = _KIND_CATEGORY[a.kind] if isinstance(a, Dtype) else a
    while cat is not None:
        if cat is b:
            return True
        cat = _PARENT[cat]
    return False


_ISDTYPE_KINDS = {
    "bool": lambda d: d.kind == "b",
    "signed integer": lambda d: d.kind == "i",
    "unsigned integer": lambda d: d.kind == "u",
    "integral": lambda d: d.kind in "ui",
    "real floating": lambda d: d.kind == "f",
    "complex floating": lambda d: d.kind == "c",
    "numeric": lambda d: d.kind != "b",
}


def isdtype(dtype, kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, Dtype):
            if k is dtype:
                return True
        elif isinstance(k, str):
            if k not in _ISDTYPE_KINDS:
                raise ValueError(f"[isdtype] Unknown dtype kind '{k}'.")
            if _ISDTYPE_KINDS[k](dtype):
                return True
        else:
            raise TypeError("[isdtype] kind must be a Dtype, a string or a tuple of those.")
    return False


class finfo:
    """Machine limits for floating-point dtypes."""

    def __init__(self, dtype):
        import numpy as np
        if isinstance(dtype, DtypeCategory) or not is_inexact(dtype):
            raise ValueError(f"[finfo] dtype {dtype} is not inexact.")
        # complex64 reports its component type, as upstream does
        self.dtype = dtype = float32 if dtype is complex64 else dtype
        if dtype is bfloat16:
            self.bits, self.eps = 16, 2.0 ** -7
            self.max, self.smallest_normal = 3.3895313892515355e38, 1.1754943508222875e-38
        else:
            fi = np.finfo({float16: np.float16, float32: np.float32, float64: np.float64}[dtype])
            self.bits = fi.bits
            self.eps, self.max = float(fi.eps), float(fi.max)
            self.smallest_normal = float(fi.smallest_normal)
        self.min = -self.max

    def __repr__(self):
        return f"finfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype.name})"


class iinfo:
    """Machine limits for integer dtypes."""

    def __init__(self, dtype):
        if isinstance(dtype, DtypeCategory) or not is_integral(dtype):
            raise ValueError(f"[iinfo] dtype {dtype} is not integral.")
        self.dtype = dtype
        bits = 8 * dtype.size
        if dtype.kind == "u":
            self.min, self.max = 0, 2 ** bits - 1
        else:
            self.min, self.max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype.name})"
