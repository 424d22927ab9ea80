"""The array: a lazy graph node, and its Python protocol.

An array is shape + dtype + either data (a torch tensor in its storage dtype) or a recipe
(primitive, inputs, and for multi-output primitives its siblings). Ops build nodes;
`ember.core.transforms.eval` turns recipes into data.
"""

import gc
import sys

import numpy as np

from ember.core import _backend as B
from ember.core import device as dev
from ember.core import dtypes as D
from ember.core._backend import memory as _mem

_new = object.__new__
_CONVERT_ERR = "[convert] Only length-1 arrays can be converted to Python scalars."


class array:
    """An N-dimensional array object."""

    __slots__ = ("_shape", "_dtype", "_data", "_prim", "_inputs", "_siblings", "_stream",
                 "_copies", "_exported", "_read", "__weakref__")

    def __init__(self, val, dtype=None):
        if dtype is not None and not isinstance(dtype, D.Dtype):
            raise TypeError("__init__(): incompatible function arguments. The dtype must be "
                            f"a Dtype, got {type(dtype).__name__}.")
        src = _construct(val, dtype, dev.resolve(None))
        if src is val and src._data is None:  # a lazy array: share its node, do not clone it
            from ember.core.ops import _identity
            src = _identity(src)
        _become(self, src)

    # -- properties -------------------------------------------------------------------
    @property
    def shape(self):
        """The shape of the array as a Python tuple."""
        return self._shape

    @property
    def dtype(self):
        """The array's Dtype."""
        return self._dtype

    @property
    def ndim(self):
        """The array's dimension."""
        return len(self._shape)

    @property
    def size(self):
        """Number of elements in the array."""
        n = 1
        for d in self._shape:
            n *= d
        return n

    @property
    def itemsize(self):
        """The size of the array's datatype in bytes."""
        return self._dtype.size

    @property
    def nbytes(self):
        """The number of bytes in the array."""
        return self.size * self._dtype.size

    def __len__(self):
        if not self._shape:
            raise TypeError("len() 0-dimensional array.")
        return self._shape[0]

    # -- evaluation and conversion ----------------------------------------------------
    def _tensor(self):
        """The evaluated tensor (evaluating this array if needed)."""
        if self._data is None:
            from ember.core.transforms.eval import evaluate
            evaluate([self])
        return self._data

    def item(self):
        """The value of a one-element array as a Python scalar."""
        if self.size != 1:
            raise ValueError(_CONVERT_ERR)
        return _py_scalar(self._tensor().reshape(()), self._dtype)

    def tolist(self):
        """The array as (nested) Python lists of Python scalars."""
        if not self._shape:
            return self.item()
        return B.to_numpy(self._tensor(), self._dtype).tolist()

    def __array__(self, dtype=None, copy=None):
        # (upstream ignores dtype and copy; numpy casts and copies the result itself)
        if self._dtype is D.bfloat16:
            raise TypeError("bfloat16 arrays cannot be converted to NumPy.")
        h = B.to_numpy(self._tensor(), self._dtype)
        nd = _NUMPY_LONGLONG.get(self._dtype)
        return h if nd is None else h.view(nd)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        t = _exact_tensor(self)
        kw = {}
        if stream is not None and t.is_cuda:  # (on the CPU upstream ignores the stream)
            kw["stream"] = stream
        if max_version is not None:
            kw["max_version"] = max_version
        if dl_device is not None:
            kw["dl_device"] = dl_device
        if copy is not None:
            kw["copy"] = copy
        return t.__dlpack__(**kw)

    def __dlpack_device__(self):
        kind, index = self._tensor().__dlpack_device__()
        return (int(kind), int(index))

    def __bytes__(self):
        return _host_numpy(self).tobytes()  # (in C order)

    def __bool__(self):
        if self.size != 1:
            raise ValueError(_CONVERT_ERR)
        return bool(self.item())

    def __int__(self):
        if self.size != 1:
            raise ValueError(_CONVERT_ERR)
        return int(self.item())  # (a complex value raises TypeError, as upstream's does)

    def __float__(self):
        if self.size != 1:
            raise ValueError(_CONVERT_ERR)
        return float(self.item())

    def __complex__(self):
        if self.size != 1:
            raise ValueError(_CONVERT_ERR)
        return complex(self.item())

    def __index__(self):
        if self._shape or self._dtype.kind not in "ui":
            raise TypeError("Only 0-dimensional integer arrays can be converted to an index.")
        return self.item()

    def __iter__(self):
        if not self._shape:
            raise TypeError("iter() 0-dimensional array.")
        return ArrayIterator(self)

    def __repr__(self):
        from ember.core._format import format_array
        return format_array(self)

    __str__ = __repr__

    def __format__(self, spec):
        if not self._shape:
            return format(self.item(), spec)
        if spec:
            raise TypeError("unsupported format string passed to mx.array.__format__")
        return repr(self)

    def __array_namespace__(self, api_version=None):
        if api_version is not None:
            raise ValueError("Explicitly specifying api_version is not yet implemented.")
        import ember.core
        return ember.core

    # -- pickling and copies --------------------------------------------------------------
    def __getstate__(self):
        return (_host_numpy(self), self._dtype._rank)

    def __setstate__(self, state):
        try:
            data, rank = state
            dt = D._BY_RANK[rank]
            if not isinstance(data, np.ndarray):
                raise TypeError
        except (TypeError, ValueError, KeyError, IndexError):
            raise TypeError("__setstate__(): incompatible function arguments. The state must "
                            "be (numpy array, dtype index).") from None
        if dt is D.bfloat16:
            data = (np.asarray(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
        _become(self, _construct(np.asarray(data), dt, dev.resolve(None)))

    def __copy__(self):
        return fresh(self)

    def __deepcopy__(self, memo):
        a = self.__copy__()
        memo[id(self)] = a
        return a


# upstream's 64-bit integers come out of `__array__` as C `long long` (numpy's 'q' and 'Q'
# characters, which print their dtype), as from its buffer
_NUMPY_LONGLONG = {D.int64: np.dtype(np.longlong), D.uint64: np.dtype(np.ulonglong)}


class ArrayIterator:
    """A helper object to iterate over the 1st dimension of an array."""

    __slots__ = ("_array", "_items", "_i")

    def __init__(self, a):
        self._array = a
        self._items = None
        self._i = 0

    def __iter__(self):
        return self

    def __next__(self):
        a = self._array
        if self._i >= a._shape[0]:
            raise StopIteration
        if self._items is None:  # one multi-output node for all the rows
            from ember.core.ops import unstack
            self._items = unstack(a, axis=0)
        r = self._items[self._i]
        self._i += 1
        return r


def _become(a, src):
    a._shape = src._shape
    a._dtype = src._dtype
    a._data = src._data
    a._prim = src._prim
    a._inputs = src._inputs
    a._siblings = None
    a._stream = src._stream
    a._copies = None
    if src._siblings is not None:
        # a multi-output node: share it through an identity so siblings stay consistent
        from ember.core.ops import _identity
        _become(a, _identity(src))


# >0 while a transform (grad, jvp, vmap, compile) is tracing a function
TRACING = [0]
# >0 while grad, jvp, vjp or vmap (not compile) runs a function on its tracers: code with
# fused nodes that have no rules of their own takes its composite path then
TRANSFORMING = [0]


def fresh(a):
    """A new array object with `a`'s value: what an op that changes nothing returns, so that
    a later in-place write to `a` (which rebinds the object) leaves the result alone.
    While tracing, `a` may be a tracer: the result must stay a node that reads it."""
    b = _new(array)
    if a._data is None or TRACING[0]:  # share the recipe's result rather than run it twice
        from ember.core.ops import _identity
        _become(b, _identity(a, a._stream))
    else:
        _become(b, a)
    return b


def snapshot(a):
    """A new array holding `a`'s current value, so that `a` can be given a new value that
    depends on its old one (in-place operators, `__setitem__`)."""
    b = _new(array)
    b._shape = a._shape
    b._dtype = a._dtype
    b._data = a._data
    b._prim = a._prim
    b._inputs = a._inputs
    b._stream = a._stream
    b._copies = a._copies
    sib = a._siblings
    b._siblings = None
    if sib is not None:
        sib = tuple(b if s is a else s for s in sib)
        for s in sib:
            s._siblings = sib
    a._siblings = None
    a._copies = None
    return b


def overwrite(a, fn):
    """Give `a` the value `fn(old)`, where `old` holds its current value (in-place operators,
    `__setitem__`). Like upstream replacing an array's descriptor: lazy arrays that already
    read `a` keep reading the old value."""
    old = snapshot(a)
    new = fn(old)
    if sys.getrefcount(a) > _PLAIN_REFS and getattr(a, "_read", False):
        _redirect(a, old)
    _become(a, new)
    return a


# references to `a` inside `overwrite` when only the caller's variable holds it; more mean
# something else might: a lazy consumer, found then by the (slow) referrer scan below. An
# array that no node has ever taken as an input (`_read` unset: set where nodes are made)
# has no consumer to redirect, whatever holds it: no scan (an accumulator in a list).
_PLAIN_REFS = 5


def _redirect(a, old):
    tuples = [t for t in gc.get_referrers(a) if type(t) is tuple]
    if not tuples:
        return
    ids = {id(t) for t in tuples}
    for o in gc.get_referrers(*tuples):
        if type(o) is array and id(o._inputs) in ids:
            o._inputs = tuple(old if x is a else x for x in o._inputs)


def node(shape, dtype, prim, inputs, stream):
    """A new lazy array (the hot path of every op)."""
    a = _new(array)
    a._shape = shape
    a._dtype = dtype
    a._data = None
    a._prim = prim
    a._inputs = inputs
    a._siblings = None
    a._stream = stream
    a._copies = None
    for x in inputs:
        x._read = True
    return a


def nodes(shapes, dtypes, prim, inputs, stream):
    """The outputs of a multi-output primitive: siblings sharing one recipe (`node`
    inlined: a compiled train step has one output per parameter and optimizer slot)."""
    outs = []
    for sh, dt in zip(shapes, dtypes):
        a = _new(array)
        a._shape = sh
        a._dtype = dt
        a._data = None
        a._prim = prim
        a._inputs = inputs
        a._stream = stream
        a._copies = None
        outs.append(a)
    sib = tuple(outs)
    for a in outs:
        a._siblings = sib
    for x in inputs:
        x._read = True
    return outs


def leaf(t, dtype, stream):
    """An evaluated array around tensor `t` (already in the storage dtype for `dtype`)."""
    a = _new(array)
    a._shape = tuple(t.shape)
    a._dtype = dtype
    a._data = t
    a._prim = None
    a._inputs = ()
    a._siblings = None
    a._stream = stream
    a._copies = None
    if _MEM_TRACKING[0]:
        _mem.track(t)
    return a


_MEM_TRACKING = _mem.TRACKING


def _py_scalar(t, dtype):
    v = t.item()
    k = dtype.kind
    if k == "b":
        return bool(v)
    if k == "u":
        return int(v) & ((1 << (8 * dtype.size)) - 1)
    if k == "i":
        return int(v)
    if k == "c":
        return complex(v)
    return float(v)


# torch dtypes that hold exactly the unsigned dtypes Ember stores widened
_EXACT_TORCH = {d: t for t, d in B.FROM_TORCH.items() if d in (D.uint16, D.uint32, D.uint64)}


def _exact_tensor(a):
    """a's tensor in a torch dtype of exactly a's dtype (for DLPack)."""
    t = a._tensor()
    td = _EXACT_TORCH.get(a._dtype)
    if td is None:
        return t
    return t.view(td) if a._dtype is D.uint64 else t.to(td)


# -- construction from Python values -------------------------------------------------

_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def scalar_dtype(v):
    """MLX's dtype for a Python scalar (bool, int, float, complex)."""
    if isinstance(v, bool):
        return D.bool_
    if isinstance(v, int):
        return D.int32 if _INT32_MIN <= v <= _INT32_MAX else D.int64
    if isinstance(v, float):
        return D.float32
    if isinstance(v, complex):
        return D.complex64
    raise TypeError(f"Unsupported scalar type {type(v).__name__}.")


def _construct(val, dtype, s):
    """An array (evaluated, or lazy when built from arrays) for `array(val, dtype)`."""
    if isinstance(val, array):
        if dtype is not None and dtype is not val._dtype:
            from ember.core.ops import astype
            return astype(val, dtype)
        return val
    if isinstance(val, (bool, int, float, complex)):
        dt = dtype or scalar_dtype(val)
        _check_int(val)
        if dt is D.bool_ and isinstance(val, complex):
            val = val.real  # upstream casts a complex scalar to bool by its real part
        return leaf(_scalar_tensor(val, dt, s.tdevice), dt, s)
    if isinstance(val, (list, tuple)):
        return _from_sequence(val, dtype, s)
    if val is None:
        raise TypeError("__init__(): incompatible function arguments. The following "
                        "argument types are supported:\n    1. __init__(self: array, val: "
                        "scalar | list | tuple | DLPackCompatible | array, dtype: Dtype | "
                        "None = None)")
    if isinstance(val, (np.ndarray, np.generic)):
        return _from_numpy(val, dtype, s)
    mlx_array = getattr(val, "__mlx_array__", None)
    if mlx_array is not None:
        return _construct(mlx_array(), dtype, s)
    if hasattr(val, "__dlpack__") and hasattr(val, "__dlpack_device__"):
        return from_dlpack_value(val, dtype, s)
    if isinstance(val, (bytes, bytearray, memoryview)):
        return _from_numpy(np.frombuffer(val, np.uint8) if not isinstance(val, memoryview)
                           else np.asarray(val), dtype, s)
    if hasattr(val, "__array__") and not isinstance(val, str):
        return _from_numpy(np.asarray(val), dtype, s)
    raise ValueError(f"Invalid type {_type_name(val)} received in array initialization.")


def _type_name(v):
    t = type(v)
    return t.__name__ if t.__module__ in ("builtins", "numpy") else f"{t.__module__}.{t.__name__}"


def _check_int(v):
    if type(v) is int and not _INT64_MIN <= v <= _INT64_MAX:
        raise RuntimeError(f"[array] Python int {v} is out of the range of int64.")


def _scalar_tensor(v, dt, tdev):
    import torch  # noqa: F401 - (the backend owns torch; this builds one scalar tensor)
    td = B.TORCH[dt]
    k = dt.kind
    if k in "ui":
        if isinstance(v, complex):
            v = v.real
        if isinstance(v, float):  # as C casts it on the host: out of range -> INT_MIN
            t = torch.tensor(v, dtype=torch.float64)  # (uint64 as an array of it is cast)
            return (_cast(t, dt) if dt is D.uint64 else B.to_storage(t, dt)).to(tdev)
        v = int(v)
        if k == "u":
            v &= (1 << (8 * dt.size)) - 1
            if dt is D.uint64 and v >= 2 ** 63:
                v -= 2 ** 64
        else:
            bits = 8 * dt.size
            v = ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))
    elif k == "b":
        v = bool(v)
    elif k == "f" and isinstance(v, complex):
        v = v.real
    if td is torch.float16 and v != v and torch.device(tdev).type == "cpu":
        # upstream's CPU float16 NaN: 0x7D00 with the sign kept (as `half_nans` casts)
        bits = -0x300 if np.signbit(v) else 0x7D00
        return torch.tensor(bits, dtype=torch.int16, device=tdev).view(torch.float16)
    return torch.tensor(v, dtype=td, device=tdev)


def const(v, dt, stream):
    """A cached evaluated 0-d array for Python scalar `v` as dtype `dt` on `stream`."""
    key = (v, type(v), dt, stream)
    if v == 0 and type(v) is float:  # -0.0 == 0.0, but they are different constants
        key = (str(v), float, dt, stream)
    a = _SCALARS.get(key)
    if a is None:
        if len(_SCALARS) > 4096:
            _SCALARS.clear()
        a = _SCALARS[key] = leaf(_scalar_tensor(v, dt, stream.tdevice), dt, stream)
    return a


_SCALARS = {}


# -- numpy, DLPack ---------------------------------------------------------------------

def _numpy_dtype(npd):
    if npd.kind in "biufc" and npd.isnative:
        if npd.name == "float64":
            return D.float32  # upstream converts float64 input to float32
        d = B.FROM_NUMPY.get(npd)
        if d is not None:
            return d
    if npd.name == "bfloat16":
        return D.bfloat16
    raise RuntimeError(f"[array] Unsupported numpy dtype {npd}.")


def _from_numpy(a, dtype, s):
    a = np.asarray(a)
    if a.dtype == np.uint64 and dtype is not None and dtype.kind in "fc":
        a = a.astype(np.float64)  # (its int64 storage would read values from 2^63 negative)
    src = _numpy_dtype(a.dtype)
    if a.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    elif a.dtype == np.float64:
        src = D.float64  # parse exactly, then cast to the dtype asked for (or float32)
        dtype = dtype or D.float32
    t = B.from_numpy(a, src)
    dt = dtype or src
    if dt is not src:
        t = _cast(t, dt)
    if s.is_gpu:
        return leaf(t.to(s.tdevice), dt, s)
    if a.size and t.data_ptr() == a.ctypes.data:
        t = t.clone()  # an array owns its data: later writes to `a` must not show
    return leaf(t, dt, s)


def _cast(t, dt):
    """Storage tensor t (any dtype) as dtype `dt`, with C casting semantics."""
    if t.is_complex() and dt.kind != "c":
        t = t.real
    from ember.core._backend import kernels as K
    if dt.kind == "u" and dt.size >= 4 and t.is_floating_point() and not t.is_cuda:
        return K.float_to_unsigned(t, dt.size)
    out = B.to_storage(t, dt)
    return K.half_nans(t, out) if dt.kind == "f" and dt.size == 2 else out


def from_dlpack_value(x, dtype, s, copy=None):
    """An array of DLPack-compatible `x`; copy=False shares its memory or raises."""
    from ember.core._backend.kernels_creation import tensor_from_dlpack
    t = tensor_from_dlpack(x)
    src = B.FROM_TORCH.get(t.dtype)
    if src is None:
        raise RuntimeError(f"[array] Unsupported DLPack dtype {t.dtype}.")
    if src is D.float64 and dtype is None:
        dtype = D.float32  # as numpy input: float64 comes in as float32
    dt = dtype or src
    out = _cast(t, dt).to(s.tdevice)
    shared = out.data_ptr() == t.data_ptr() and out.numel() > 0
    if copy is False and not shared and out.numel():
        raise ValueError("[convert] Cannot import the array without a copy.")
    if shared and copy is not False:
        out = out.clone()
    return leaf(out, dt, s)


# -- nested sequences -------------------------------------------------------------------

_SCALAR_KIND = {bool: 1, int: 2, float: 4, complex: 8}
_SEQ = (list, tuple)


def _leaf_kind(t):
    k = _SCALAR_KIND.get(t)
    if k is None:
        for base in (bool, int, float, complex):  # subclasses too (numpy's float64 is one)
            if issubclass(t, base):
                return _SCALAR_KIND[base]
    return k


def _kinds_dtype(kinds, big):
    if kinds & 8:
        return D.complex64
    if kinds & 4:
        return D.float32
    if kinds & 2:
        return D.int64 if big else D.int32
    if kinds & 1:
        return D.bool_
    return None


def _from_sequence(val, dtype, s):
    shape = []
    level = [val]
    while True:
        n = len(level[0])
        for seq in level:
            if len(seq) != n:
                raise _ragged(val)
        shape.append(n)
        children = [x for seq in level for x in seq] if len(level) > 1 else list(level[0])
        if not children:
            return _from_scalars([], shape, dtype or D.float32, s)
        types = set(map(type, children))
        seqs = [t for t in types if issubclass(t, _SEQ)]
        if not seqs:
            break
        if len(seqs) != len(types):
            if any(issubclass(t, array) or hasattr(t, "__mlx_array__") for t in types):
                return _from_arrays(val, dtype, s)
            raise _ragged(val)
        level = children
    kinds = 0
    has_arrays = False
    for t in types:
        k = _leaf_kind(t)
        if k is None:
            if issubclass(t, array) or hasattr(t, "__mlx_array__"):
                has_arrays = True
                continue
            bad = next(c for c in children if type(c) is t)
            raise _ragged(val, ValueError(f"Invalid type {_type_name(bad)} received in array "
                                          "initialization."))
        kinds |= k
    if has_arrays:
        return _from_arrays(val, dtype, s)
    big = False
    if kinds & 2:
        ints = children if kinds == 2 or kinds == 3 else \
            [c for c in children if isinstance(c, int)]
        lo, hi = min(ints), max(ints)
        if lo < _INT64_MIN or hi > _INT64_MAX:
            raise RuntimeError("[array] A Python int is out of the range of int64.")
        big = lo < _INT32_MIN or hi > _INT32_MAX
        if dtype is not None and kinds <= 3:
            _check_list_ints(lo, hi, dtype)
    inferred = _kinds_dtype(kinds, big)
    return _from_scalars(children, shape, dtype or inferred, s, inferred)


# Upstream converts a sequence of only Python ints (and bools) to an integer or bool dtype
# int by int through a C integer type: a C int for the types narrower than 32 bits (which
# then wrap), the dtype's own type for the 32- and 64-bit ones (uint64 read through int64).
# A value out of that type's range fails the conversion. (A single int, or a sequence with
# floats, is cast instead, and wraps.)
_LIST_INT_RANGE = {D.int32: (_INT32_MIN, _INT32_MAX), D.uint32: (0, 2 ** 32 - 1),
                   D.uint64: (0, _INT64_MAX)}
for _d in (D.bool_, D.int8, D.int16, D.uint8, D.uint16):
    _LIST_INT_RANGE[_d] = (_INT32_MIN, _INT32_MAX)


def _check_list_ints(lo, hi, dt):
    r = _LIST_INT_RANGE.get(dt)
    if r is not None and not r[0] <= lo <= hi <= r[1]:
        bad = lo if lo < r[0] else hi
        raise RuntimeError(f"[array] Cannot convert the Python int {bad} in a sequence to "
                           f"{dt.name}.")


_PARSE = {D.bool_: np.bool_, D.int32: np.int64, D.int64: np.int64, D.float32: np.float64,
          D.complex64: np.complex128}


def _from_scalars(flat, shape, dt, s, inferred=None):
    """An array of shape `shape` from the flat list of Python scalars `flat`."""
    parsed = np.array(flat, dtype=_PARSE[inferred or D.float32]).reshape(shape)
    src = {np.dtype(np.bool_): D.bool_, np.dtype(np.int64): D.int64,
           np.dtype(np.float64): D.float64, np.dtype(np.complex128): D.complex64}[parsed.dtype]
    t = _cast(B.from_numpy(parsed, src), dt)
    return leaf(t.to(s.tdevice), dt, s)


def _from_arrays(val, dtype, s):
    """A lazy array stacked from a nested sequence holding arrays (differentiable)."""
    import ember.core.ops as O

    def collect(v, kinds, dts):
        for x in v:
            if isinstance(x, _SEQ):
                collect(x, kinds, dts)
            elif isinstance(x, array):
                dts.append(x._dtype)
            elif hasattr(x, "__mlx_array__"):
                dts.append(x.__mlx_array__()._dtype)
            else:
                k = _leaf_kind(type(x))
                if k is None:
                    raise _ragged(val, ValueError(f"Invalid type {_type_name(x)} received in "
                                                  "array initialization."))
                kinds[0] |= k
                if k == 2 and not _INT32_MIN <= x <= _INT32_MAX:
                    _check_int(x)
                    kinds[1] = True

    kinds, dts = [0, False], []
    collect(val, kinds, dts)
    dt = dtype
    if dt is None:
        dt = _kinds_dtype(kinds[0], kinds[1])
        for d in dts:
            dt = d if dt is None else D._PROMOTE[dt, d]

    def build(v):
        items = []
        for x in v:
            if isinstance(x, _SEQ):
                x = build(x)
            elif hasattr(x, "__mlx_array__") and not isinstance(x, array):
                x = x.__mlx_array__()
            elif not isinstance(x, array):
                _check_int(x)
                x = leaf(_scalar_tensor(x, dt, s.tdevice), dt, s)
            if x._dtype is not dt:
                x = O.astype(x, dt, s)
            items.append(x)
        shapes = {x._shape for x in items}
        if len(shapes) > 1:
            raise _ragged(val)
        return O.stack(items, 0, stream=s)

    return build(val)


def _ragged(val, err=None):
    """The error upstream reports for nested sequence `val` that does not make an array.
    Upstream takes the shape from the first item at each depth, then checks the items depth
    first: a sequence too deep is an "extra dimension", a wrong length or a scalar where a
    sequence belongs a "non-uniform length" (so is an array of the wrong shape)."""
    shape = []
    x = val
    while isinstance(x, _SEQ):
        shape.append(len(x))
        if not x:
            break
        x = x[0]
    else:
        x = _array_item(x)
        if x is not None:
            shape.extend(x._shape)

    def walk(seq, i):
        if i >= len(shape):
            raise ValueError("Initialization encountered extra dimension.")
        if len(seq) != shape[i]:
            raise ValueError("Initialization encountered non-uniform length.")
        for x in seq:
            if isinstance(x, _SEQ):
                walk(x, i + 1)
                continue
            a = _array_item(x)
            if a is None and _leaf_kind(type(x)) is None:
                raise ValueError(f"Invalid type {_type_name(x)} received in array "
                                 "initialization.")
            if (a._shape if a is not None else ()) != tuple(shape[i + 1:]):
                raise ValueError("Initialization encountered non-uniform length.")

    walk(val, 0)
    return err or ValueError("Initialization encountered non-uniform length.")


def _array_item(x):
    if isinstance(x, array):
        return x
    return x.__mlx_array__() if hasattr(x, "__mlx_array__") else None


def _host_numpy(a):
    """A numpy array over `a`'s memory, or a copy where Ember stores the dtype widened
    (bfloat16 as its bits, in uint16)."""
    t = a._tensor()
    if a._dtype is D.bfloat16:
        return t.detach().cpu().view(B.TORCH[D.int16]).numpy().view(np.uint16)
    if a._dtype in (D.uint16, D.uint32) or t.is_conj() or t.is_neg():
        return B.to_numpy(t, a._dtype)
    h = t.detach().cpu().numpy()
    return h.view(np.uint64) if a._dtype is D.uint64 else h
