"""The torch side of exported functions: torch objects inside primitive parameters, and
output shapes of a kernel for new input shapes (shapeless imports), found by running
it on meta tensors, which carry shapes but no data."""

import torch

from ember.core._backend import TORCH

DEVICE_TYPE = torch.device
DTYPE_TYPE = torch.dtype
_TORCH_DTYPES = {str(t): t for t in set(TORCH.values()) | {
    torch.complex128, torch.uint16, torch.uint32, torch.uint64}}


def dtype_name(t):
    return str(t)


def dtype_of(name):
    return _TORCH_DTYPES[name]


def kernel_shapes(kernel, prim, shapes, dtypes):
    """Output shapes of `kernel` for inputs of `shapes` and Ember `dtypes`, or None when
    the kernel needs the data to know them."""
    ts = [torch.empty(sh, dtype=TORCH[dt], device="meta") for sh, dt in zip(shapes, dtypes)]
    try:
        with torch.inference_mode():
            r = kernel(prim, *ts)
    except Exception:  # noqa: BLE001 - any failure means: not computable without data
        return None
    if isinstance(r, (tuple, list)):
        return [tuple(t.shape) for t in r]
    return [tuple(r.shape)]
