"""ember.core: MLX's array API (mlx.core) on PyTorch's ATen kernels."""

from ember.core import _methods  # noqa: F401  (binds the array's operators and methods)
from ember.core import dtypes as _dtypes
from ember.core.array import array
from ember.core.device import (
    Device,
    DeviceType,
    Stream,
    StreamContext,
    cpu,
    default_device,
    default_stream,
    device_count,
    device_info,
    gpu,
    is_available,
    new_stream,
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
    signedinteger,
    uint8,
    uint16,
    uint32,
    uint64,
    unsignedinteger,
)
from ember.core.ops import *  # noqa: F401,F403
from ember.core.transforms.autodiff import grad, jvp, value_and_grad, vjp
from ember.core.transforms.eval import async_eval, eval
from ember.core.transforms.vmap import vmap

__version__ = "0.32.4"


def result_type(*arrays_and_dtypes):
    out = None
    for x in arrays_and_dtypes:
        if isinstance(x, array):
            d = x.dtype
        elif isinstance(x, Dtype):
            d = x
        else:
            raise ValueError("[result_type] Inputs must be arrays or dtypes.")
        out = d if out is None else _dtypes.promote_types(out, d)
    return out


def can_cast(from_, to):
    d = from_.dtype if isinstance(from_, array) else from_
    return _dtypes.promote_types(d, to) is to
