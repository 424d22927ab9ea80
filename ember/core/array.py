"""The array: a lazy graph node, and its Python protocol.

An array is shape + dtype + either data (a torch tensor in its storage dtype) or a recipe
(primitive, inputs, and for multi-output primitives its siblings). Ops build nodes;
`ember.core.transforms.eval` turns recipes into data.
"""

import numbers

import numpy as np

from ember.core import _backend as B
from ember.core import device as dev
from ember.core import dtypes as D

_new = object.__new__


class array:
    __slots__ = ("_shape", "_dtype", "_data", "_prim", "_inputs", "_siblings", "_stream",
                 "_copies", "__weakref__")

    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __init__(self, val, dtype=None):
        s = dev.resolve(None)
        if isinstance(val, array):
            src = val
            if dtype is not None and dtype is not val._dtype:
                from ember.core.ops import astype
                src = astype(val, dtype)
            _become(self, src)
            return
        t, dt = _to_tensor(val, dtype, s)
        self._shape = tuple(t.shape)
        self._dtype = dt
        self._data = t
        self._prim = None
        self._inputs = ()
        self._siblings = None
        self._stream = s
        self._copies = None

    # -- properties -------------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    @property
    def dtype(self):
        return self._dtype

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def size(self):
        n = 1
        for d in self._shape:
            n *= d
        return n

    @property
    def itemsize(self):
        return self._dtype.size

    @property
    def nbytes(self):
        return self.size * self._dtype.size

    def __len__(self):
        if not self._shape:
            raise TypeError("len() 0-dimensional array.")
        return self._shape[0]

    def __hash__(self):
        return id(self)

    # -- evaluation and conversion ----------------------------------------------------
    def _tensor(self):
        """The evaluated tensor (evaluating this array if needed)."""
        if self._data is None:
            from ember.core.transforms.eval import evaluate
            evaluate([self])
        return self._data

    def item(self):
        if self.size != 1:
            raise ValueError("[item] item can only be called on arrays of size 1.")
        return _py_scalar(self._tensor().reshape(()), self._dtype)

    def tolist(self):
        if not self._shape:
            return self.item()
        a = B.to_numpy(self._tensor(), self._dtype)
        return a.tolist()

    def __array__(self, dtype=None, copy=None):
        a = B.to_numpy(self._tensor(), self._dtype)
        if dtype is not None:
            a = a.astype(dtype)
        return a

    def __dlpack__(self, stream=None, **kw):
        return self._tensor().__dlpack__(**({"stream": stream} if stream is not None else {}))

    def __dlpack_device__(self):
        return self._tensor().__dlpack_device__()

    def __bool__(self):
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        return bool(self.item())

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __index__(self):
        if self._dtype.kind not in "uib" or self.size != 1:
            raise TypeError("Only integer scalar arrays can be converted to a scalar index.")
        return int(self.item())

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d array")
        from ember.core.ops import unstack
        return iter(unstack(self, 0)) if self._shape[0] else iter(())

    def __repr__(self):
        from ember.core._format import format_array
        return format_array(self)

    __str__ = __repr__

    def __getstate__(self):
        return {"data": np.asarray(self), "dtype": self._dtype.name}

    def __setstate__(self, state):
        a = array(state["data"], D._by_name(state["dtype"]))
        _become(self, a)

    def __copy__(self):
        a = _new(array)
        _become(a, self)
        return a

    def __deepcopy__(self, memo):
        return self.__copy__()


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
    return a


def nodes(shapes, dtypes, prim, inputs, stream):
    """The outputs of a multi-output primitive: siblings sharing one recipe."""
    outs = tuple(node(sh, dt, prim, inputs, stream) for sh, dt in zip(shapes, dtypes))
    for o in outs:
        o._siblings = outs
    return list(outs)


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
    return a


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


# -- construction from Python values -------------------------------------------------

def scalar_dtype(v):
    """MLX's dtype for a Python scalar (bool, int, float, complex)."""
    if isinstance(v, bool):
        return D.bool_
    if isinstance(v, int):
        return D.int32 if -(2 ** 31) <= v < 2 ** 31 else D.int64
    if isinstance(v, float):
        return D.float32
    if isinstance(v, complex):
        return D.complex64
    raise TypeError(f"Unsupported scalar type {type(v).__name__}.")


def _infer_list_dtype(flat):
    kinds = 0
    big = False
    for v in flat:
        if isinstance(v, bool):
            kinds |= 1
        elif isinstance(v, numbers.Integral):
            kinds |= 2
            if not -(2 ** 31) <= int(v) < 2 ** 31:
                big = True
        elif isinstance(v, numbers.Real):
            kinds |= 4
        elif isinstance(v, numbers.Complex):
            kinds |= 8
        elif isinstance(v, array):
            return None
        else:
            raise ValueError(f"[array] Invalid type {type(v).__name__} in array initialization.")
    if kinds & 8:
        return D.complex64
    if kinds & 4:
        return D.float32
    if kinds & 2:
        return D.int64 if big else D.int32
    return D.bool_


def _flatten_nested(val):
    flat = []
    stack = [val]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        else:
            flat.append(v)
    return flat


def _to_tensor(val, dtype, stream):
    import torch
    tdev = stream.tdevice
    if isinstance(val, (bool, int, float, complex)) or isinstance(val, numbers.Number) \
            and not isinstance(val, np.generic):
        dt = dtype or scalar_dtype(val)
        return _scalar_tensor(val, dt, tdev), dt
    if isinstance(val, np.generic):
        val = np.asarray(val)
    if isinstance(val, np.ndarray):
        dt = dtype or _numpy_dtype(val.dtype)
        return B.from_numpy(val, dt).to(tdev), dt
    if isinstance(val, torch.Tensor):
        dt = dtype or B.FROM_TORCH[val.dtype]
        return B.to_storage(val.detach(), dt).to(tdev), dt
    if isinstance(val, (list, tuple)):
        flat = _flatten_nested(val)
        inferred = _infer_list_dtype(flat)
        if inferred is None:  # a list of arrays: stack them
            from ember.core.ops import stack
            stacked = stack([v if isinstance(v, array) else array(v) for v in val])
            if dtype is not None:
                stacked = stacked.astype(dtype)
            t = stacked._tensor()
            return t.to(tdev), stacked._dtype
        dt = dtype or inferred
        try:
            a = np.array(val, dtype=_np_parse_dtype(dt))
        except ValueError as e:
            raise ValueError(f"[array] Initialization from a ragged list: {e}") from None
        return B.from_numpy(a, dt).to(tdev), dt
    if hasattr(val, "__dlpack__"):
        t = torch.from_dlpack(val)
        dt = dtype or B.FROM_TORCH[t.dtype]
        return B.to_storage(t, dt).to(tdev), dt
    if hasattr(val, "__array__"):
        return _to_tensor(np.asarray(val), dtype, stream)
    raise ValueError(f"[array] Invalid type {type(val).__name__} received in array initialization.")


def _np_parse_dtype(dt):
    # parse Python lists with numpy at a dtype that holds every value exactly
    if dt is D.bfloat16 or dt is D.float16:
        return np.float32
    if dt.kind in "ui":
        return np.int64 if dt is not D.uint64 else np.uint64
    return B.NUMPY[dt]


def _numpy_dtype(npd):
    if npd.kind not in "biufc":
        raise ValueError(f"[array] Unsupported numpy dtype {npd}.")
    if npd.name == "bfloat16":
        return D.bfloat16
    return B.FROM_NUMPY[npd]


_SCALARS = {}


def _scalar_tensor(v, dt, tdev):
    import torch
    if dt.kind in "ui" and not isinstance(v, bool):
        v = int(v)
        if dt.kind == "u":
            v &= (1 << (8 * dt.size)) - 1
            if dt is D.uint64 and v >= 2 ** 63:
                v -= 2 ** 64
        else:
            bits = 8 * dt.size
            v = ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))
    elif dt.kind == "f" and isinstance(v, complex):
        v = v.real
    return torch.tensor(v, dtype=B.TORCH[dt], device=tdev)


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
