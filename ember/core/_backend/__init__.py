"""The only place that imports torch: dtype and device maps, streams, memory.

Kernels live in `kernels.py` beside this file and are registered per primitive class.
"""

import os

import numpy as np
import torch

from ember.core import dtypes as D

if torch.cuda.is_available():
    _tf32 = os.environ.get("MLX_ENABLE_TF32", "1") != "0"
    torch.backends.cuda.matmul.allow_tf32 = _tf32
    torch.backends.cudnn.allow_tf32 = _tf32

# Storage dtypes: torch has no arithmetic for uint16/32/64, so those are held widened
# (uint16 -> int32, uint32/uint64 -> int64) and wrapped back to their width after ops.
TORCH = {
    D.bool_: torch.bool, D.uint8: torch.uint8, D.uint16: torch.int32, D.uint32: torch.int64,
    D.uint64: torch.int64, D.int8: torch.int8, D.int16: torch.int16, D.int32: torch.int32,
    D.int64: torch.int64, D.float16: torch.float16, D.float32: torch.float32,
    D.float64: torch.float64, D.bfloat16: torch.bfloat16, D.complex64: torch.complex64,
}
# dtypes whose storage is wider than their width: the mask that wraps them
WRAP = {D.uint16: 0xFFFF, D.uint32: 0xFFFFFFFF}

FROM_TORCH = {
    torch.bool: D.bool_, torch.uint8: D.uint8, torch.int8: D.int8, torch.int16: D.int16,
    torch.int32: D.int32, torch.int64: D.int64, torch.float16: D.float16,
    torch.float32: D.float32, torch.float64: D.float64, torch.bfloat16: D.bfloat16,
    torch.complex64: D.complex64, torch.complex128: D.complex64,
    torch.uint16: D.uint16, torch.uint32: D.uint32, torch.uint64: D.uint64,
}

NUMPY = {
    D.bool_: np.bool_, D.uint8: np.uint8, D.uint16: np.uint16, D.uint32: np.uint32,
    D.uint64: np.uint64, D.int8: np.int8, D.int16: np.int16, D.int32: np.int32,
    D.int64: np.int64, D.float16: np.float16, D.float32: np.float32, D.float64: np.float64,
    D.complex64: np.complex64,
}
FROM_NUMPY = {np.dtype(v): k for k, v in NUMPY.items()}
FROM_NUMPY[np.dtype(np.float64)] = D.float64
FROM_NUMPY[np.dtype(np.complex128)] = D.complex64

CPU = torch.device("cpu")
# kernels run without torch's autograd bookkeeping: Ember differentiates its own graph
inference_mode = torch.inference_mode
# the guard behind inference_mode, without its Python context manager (a few µs per eval)
inference_guard = torch._C._InferenceMode
Tensor = torch.Tensor


def torch_device(is_gpu, index):
    return torch.device("cuda", index) if is_gpu else CPU


_gpu_count = None


def gpu_count():
    global _gpu_count
    if _gpu_count is None:
        _gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return _gpu_count


def _cpu_name():
    """The CPU's model name, as upstream reports it (Linux's /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "cpu"


def device_info(is_gpu, index):
    if not is_gpu:
        import platform
        return {"architecture": platform.machine(), "device_name": _cpu_name()}
    p = torch.cuda.get_device_properties(index)
    return {"architecture": f"sm_{p.major}{p.minor}", "device_name": p.name,
            "memory_size": p.total_memory, "max_recommended_working_set_size": p.total_memory}


def default_torch_stream(index):
    return torch.cuda.default_stream(index)


def new_torch_stream(index):
    return torch.cuda.Stream(index)


def synchronize_all():
    n = gpu_count()
    if n == 1:  # (torch.cuda.synchronize enters a device context first: slow per step)
        torch.cuda._lazy_init()
        torch._C._cuda_synchronize()
    elif n:
        for i in range(n):
            torch.cuda.synchronize(i)


def synchronize_stream(ts):
    ts.synchronize()


def to_storage(t, dtype):
    """A torch tensor in Ember's storage dtype for `dtype`, wrapping narrow unsigned types."""
    td = TORCH[dtype]
    if t.dtype is not td:
        if t.dtype in (torch.uint16, torch.uint32, torch.uint64):
            t = t.to(torch.int64)
        t = t.to(td)
    m = WRAP.get(dtype)
    if m is not None:
        t = t & m
    return t


def from_numpy(a, dtype):
    """A tensor holding numpy array `a` as Ember dtype `dtype` (None: infer)."""
    if a.dtype == np.uint16:
        a = a.astype(np.int32)
    elif a.dtype in (np.uint32, np.uint64):
        a = a.astype(np.int64) if a.dtype == np.uint32 else a.view(np.int64)
    elif a.dtype == np.complex128:
        a = a.astype(np.complex64)
    elif a.dtype.kind not in "biufc":
        raise ValueError(f"[array] Unsupported numpy dtype {a.dtype}.")
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = a.copy()  # (np.ascontiguousarray would turn 0-d arrays 1-d)
    t = torch.from_numpy(a)
    s = to_storage(t, dtype)
    # an array owns its memory, as upstream's copies do: later writes to `a` must not show
    return s.clone() if s is t else s


def to_numpy(t, dtype):
    """A numpy array of tensor `t` holding Ember dtype `dtype` (bfloat16 comes back as float32)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if dtype is D.bfloat16:
        return t.float().numpy()
    a = t.resolve_conj().numpy()
    npd = NUMPY[dtype]
    if a.dtype != npd:
        a = a.astype(npd) if dtype is not D.uint64 else a.view(np.uint64)
    return a
