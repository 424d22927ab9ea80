"""Launching Triton kernels without Triton's per-call argument binding.

`fn[grid](*args, **meta)` binds and specializes every argument on every call (tens of
microseconds). A `Launcher` goes through it the first time per key -- the caller's key
must hold everything Triton specializes on: sizes and strides that may be 1 or multiples
of 16, dtypes, pointer alignment -- and later calls the compiled kernel's launcher
directly with the cached constants. While a Triton launch hook is installed (a profiler),
every launch takes Triton's own path, which feeds it.
"""

import os

import torch

_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
MAX_KEYS = 1024  # launch entries kept per kernel
_KNOBS = []  # Triton's knobs, imported at the first launch (importing Triton is slow)


def interpreting():
    """Whether Triton's interpreter runs kernels (`TRITON_INTERPRET=1`: on the CPU, in the
    tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def hooks_on():
    """Whether a Triton launch hook (a profiler) is installed."""
    if not _KNOBS:
        try:
            from triton import knobs
        except ImportError:  # pragma: no cover - older Triton, or none
            knobs = None
        _KNOBS.append(knobs)
    k = _KNOBS[0]
    h = k.runtime.launch_enter_hook if k is not None else None
    return h is not None and bool(getattr(h, "calls", True))


def constexprs(fn, meta):
    """The constexpr arguments in the kernel's parameter order (defaults filled in), as
    Triton's own launch passes them after the runtime arguments."""
    return tuple(meta[p.name] if p.name in meta else p.default
                 for p in fn.params if p.is_constexpr)


def aligned(t):
    return t.data_ptr() % 16 == 0


_SMS = {}  # device index -> multiprocessor count


def device_sms(t):
    """(device index, multiprocessor count) of a CUDA tensor's device (the count looked
    up once per device)."""
    dev = t.device.index if t.device.index is not None else torch.cuda.current_device()
    sms = _SMS.get(dev)
    if sms is None:
        sms = _SMS[dev] = torch.cuda.get_device_properties(dev).multi_processor_count
    return dev, sms


class Launcher:
    """launch(key, grid, args, meta, opts, device_index) runs `fn` on `args`."""

    __slots__ = ("fn", "cache")

    def __init__(self, fn):
        self.fn, self.cache = fn, {}

    def __call__(self, key, grid, args, meta, opts, dev):
        hit = self.cache.get(key)
        if hit is not None and not hooks_on():
            run, function, packed, consts = hit
            run(grid[0], grid[1], grid[2], _raw_stream(dev), function, packed, None, None,
                None, *args, *consts)
            return
        kernel = self.fn[grid](*args, **meta, **opts)
        if _raw_stream is not None and hasattr(kernel, "packed_metadata"):
            if len(self.cache) >= MAX_KEYS:  # shapes that keep changing (a growing cache)
                self.cache.clear()
            self.cache[key] = (kernel.run, kernel.function, kernel.packed_metadata,
                               constexprs(self.fn, meta))
