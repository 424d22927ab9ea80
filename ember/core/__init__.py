"""ember.core: MLX's array API (mlx.core) on PyTorch's ATen kernels."""

import math as _math

from ember.core import (  # noqa: E402,I001  (submodules)
    _methods,  # noqa: F401  (binds the array's operators and methods)
    cuda,
    distributed,
    fast,
    fft,
    linalg,
    metal,
    random,
)
from ember.core import dtypes as _dtypes
from ember.core._format import (
    PrintOptions,
    _PrintOptionsContext,  # noqa: F401
    get_printoptions,
    printoptions,
    set_printoptions,
)
from ember.core.array import ArrayIterator, array
from ember.core.device import (
    Device,
    DeviceType,
    Stream,
    StreamContext,
    ThreadLocalStream,
    clear_streams,
    cpu,
    default_device,
    default_stream,
    device_count,
    device_info,
    gpu,
    is_available,
    new_stream,
    new_thread_local_stream,
    new_thread_unsafe_stream,
    set_default_device,
    set_default_stream,
    stream,
    synchronize,
)
from ember.core.dtypes import (
    Dtype,
    DtypeCategory,
    bfloat16,
    bool_,
    can_cast,
    complex64,
    complexfloating,
    finfo,
    float16,
    float32,
    float64,
    floating,
    generic,
    iinfo,
    inexact,
    int8,
    int16,
    int32,
    int64,
    integer,
    isdtype,
    issubdtype,
    number,
    result_type,
    signedinteger,
    uint8,
    uint16,
    uint32,
    uint64,
    unsignedinteger,
)
from ember.core.ops import *  # noqa: F401,F403
from ember.core.transforms.autodiff import grad, jvp, value_and_grad, vjp
from ember.core.transforms.compile import compile, disable_compile, enable_compile
from ember.core.transforms.custom import checkpoint, custom_function
from ember.core.transforms.eval import async_eval, eval
from ember.core.transforms.vmap import vmap

__version__ = "0.32.4"

e = _math.e
pi = _math.pi
inf = _math.inf
nan = _math.nan
euler_gamma = 0.5772156649015329
newaxis = None


class ArrayLike:
    """Any Python object which has an ``__mlx_array__`` method that returns an array."""

    __slots__ = ("obj",)

    def __init__(self, obj, /):
        self.obj = obj


class _ArrayNamespaceInfo:
    """What the array API standard asks a namespace to report about itself."""

    # the dtypes the array API standard knows (float16 and bfloat16 are not among them)
    _DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
               "uint64", "float32", "complex64", "float64")

    def capabilities(self):
        return {"boolean indexing": False, "data-dependent shapes": False, "max dimensions": 10}

    def default_device(self):
        return default_device()

    def devices(self):
        return tuple(Device(t) for t in (gpu, cpu) if is_available(Device(t)))

    def _check(self, device):
        if device is not None and not isinstance(device, Device):
            raise TypeError("Expected a mlx Device")

    def default_dtypes(self, *, device=None):
        self._check(device)
        return {"real floating": float32, "complex floating": complex64, "integral": int32,
                "indexing": int32}

    def dtypes(self, *, device=None, kind=None):
        self._check(device)
        table = {n: _dtypes._by_name(n) for n in self._DTYPES}
        if kind is None:
            return table
        kinds = kind if isinstance(kind, tuple) else (kind,)
        try:
            return {n: d for n, d in table.items() if isdtype(d, kinds)}
        except ValueError:
            raise ValueError(f"Unsupported dtype kind: {kinds}") from None


def __array_namespace_info__():  # noqa: N807 - the array API's name
    return _ArrayNamespaceInfo()

matrix_norm = linalg.norm  # the same function, as upstream
