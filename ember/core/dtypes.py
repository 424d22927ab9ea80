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
    """An object to hold the type of an array (one singleton per dtype)."""

    __slots__ = ("name", "size", "kind", "_rank")

    def __init__(self, *args, **kwargs):
        raise TypeError("mlx.core.Dtype: no constructor defined!")

    def __repr__(self):
        return f"mlx.core.{self.name}"

    __str__ = __repr__

    # singletons compared by identity: hashed by identity too, in C (dtype-keyed tables
    # are looked up on every op)
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __reduce__(self):
        return (_by_name, (self.name,))


def _dtype(name, size, kind, rank):
    d = object.__new__(Dtype)
    d.name, d.size, d.kind, d._rank = name, size, kind, rank
    return d


# the ranks are upstream's enum values (its pickles store them)
bool_ = _dtype("bool", 1, "b", 0)
uint8 = _dtype("uint8", 1, "u", 1)
uint16 = _dtype("uint16", 2, "u", 2)
uint32 = _dtype("uint32", 4, "u", 3)
uint64 = _dtype("uint64", 8, "u", 4)
int8 = _dtype("int8", 1, "i", 5)
int16 = _dtype("int16", 2, "i", 6)
int32 = _dtype("int32", 4, "i", 7)
int64 = _dtype("int64", 8, "i", 8)
float16 = _dtype("float16", 2, "f", 9)
float32 = _dtype("float32", 4, "f", 10)
float64 = _dtype("float64", 8, "f", 11)
bfloat16 = _dtype("bfloat16", 2, "f", 12)
complex64 = _dtype("complex64", 8, "c", 13)

ALL = (bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
       float16, float32, float64, bfloat16, complex64)
_NAMES = {d.name: d for d in ALL}
_NAMES["bool_"] = bool_
_BY_RANK = {d._rank: d for d in ALL}


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


def _dtype_of(x, op, what):
    if isinstance(x, Dtype):
        return x
    d = getattr(x, "_dtype", None)  # an array (arrays are defined above this module)
    if isinstance(d, Dtype):
        return d
    raise ValueError(f"[{op}] {what}")


def result_type(*arrays_and_dtypes):
    """The dtype that results from promoting the inputs (arrays or dtypes)."""
    if not arrays_and_dtypes:
        raise ValueError("[result_type] At least one array or dtype is required.")
    out = None
    for x in arrays_and_dtypes:
        d = _dtype_of(x, "result_type", "Inputs must be arrays or dtypes.")
        out = d if out is None else _PROMOTE[out, d]
    return out


def can_cast(from_, to):
    """Whether promoting `from_` (an array or dtype) with `to` gives back `to`."""
    d = _dtype_of(from_, "can_cast", "`from_` must be an array or a dtype.")
    if not isinstance(to, Dtype):
        raise TypeError(f"can_cast(): `to` must be a Dtype, got {type(to).__name__}.")
    return _PROMOTE[d, to] is to


def issubdtype(arg1, arg2):
    """Whether arg1 (a dtype or category) is a subtype of arg2 (a dtype or category)."""
    if not isinstance(arg1, (Dtype, DtypeCategory)):
        raise ValueError("[issubdtype] Received invalid type for first input.")
    if not isinstance(arg2, (Dtype, DtypeCategory)):
        raise ValueError("[issubdtype] Received invalid type for second input.")
    if isinstance(arg2, Dtype):
        return arg1 is arg2
    cat = _KIND_CATEGORY[arg1.kind] if isinstance(arg1, Dtype) else arg1
    while cat is not None:
        if cat is arg2:
            return True
        cat = _PARENT[cat]
    return False


_ISDTYPE_KINDS = {
    "bool": "b",
    "signed integer": "i",
    "unsigned integer": "u",
    "integral": "ui",
    "real floating": "f",
    "complex floating": "c",
    "numeric": "uifc",
}
_KIND_ERR = "[isdtype] `kind` must be a dtype, a string, or a tuple of dtypes and strings."


def isdtype(dtype, kind):
    """Whether `dtype` belongs to `kind`: a dtype, a kind string, or a tuple of those."""
    if not isinstance(dtype, Dtype):
        raise TypeError(f"isdtype(): dtype must be a Dtype, got {type(dtype).__name__}.")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, Dtype):
            if k is dtype:
                return True
        elif isinstance(k, str):
            letters = _ISDTYPE_KINDS.get(k)
            if letters is None:
                raise ValueError(f"[isdtype] Unknown data type kind: '{k}'.")
            if dtype.kind in letters:
                return True
        else:
            raise ValueError(_KIND_ERR)
    return False


# (bits, eps, max, smallest_normal) of each floating dtype
_FLOAT_INFO = {
    float16: (16, 2.0 ** -10, 65504.0, 2.0 ** -14),
    bfloat16: (16, 2.0 ** -7, 3.3895313892515355e38, 2.0 ** -126),
    float32: (32, 2.0 ** -23, 3.4028234663852886e38, 2.0 ** -126),
    float64: (64, 2.0 ** -52, 1.7976931348623157e308, 2.0 ** -1022),
}


class finfo:
    """Machine limits for floating-point dtypes."""

    __slots__ = ("dtype", "bits", "eps", "max", "min", "smallest_normal")

    def __init__(self, dtype, /):
        if not isinstance(dtype, Dtype):
            raise TypeError("__init__(): incompatible function arguments. Expected a Dtype, "
                            f"got {type(dtype).__name__}.")
        if not is_inexact(dtype):
            raise ValueError(f"[finfo] dtype {dtype.name} is not inexact.")
        # complex64 reports its component type, as upstream does
        self.dtype = dtype = float32 if dtype is complex64 else dtype
        self.bits, self.eps, self.max, self.smallest_normal = _FLOAT_INFO[dtype]
        self.min = -self.max

    def __repr__(self):
        return f"finfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype.name})"


class iinfo:
    """Machine limits for integer dtypes."""

    __slots__ = ("dtype", "min", "max")

    def __init__(self, dtype, /):
        if not isinstance(dtype, Dtype):
            raise TypeError("__init__(): incompatible function arguments. Expected a Dtype, "
                            f"got {type(dtype).__name__}.")
        if not is_integral(dtype):
            raise ValueError(f"[iinfo] Only integer types supported but {dtype.name} "
                             "was provided")
        self.dtype = dtype
        bits = 8 * dtype.size
        if dtype.kind == "u":
            self.min, self.max = 0, 2 ** bits - 1
        else:
            self.min, self.max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype.name})"
