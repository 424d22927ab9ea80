"""Memory statistics and limits (mx.get_active_memory and friends).

When the default device is the GPU they are torch's caching allocator's figures; on the
CPU, where torch keeps none, Ember tallies the buffers behind arrays itself and caches
large buffers for reuse (see `_backend/memory.py`).
"""

import operator

from ember.core import device as dev
from ember.core._backend import memory as M
from ember.core.array import array
from ember.core.transforms.graph import signature_error

__all__ = ["get_active_memory", "get_peak_memory", "reset_peak_memory", "get_cache_memory",
           "get_memory_limit", "set_memory_limit", "set_cache_limit", "set_wired_limit",
           "clear_cache", "get_array_buffer_size"]

_SIZE_MAX = 2 ** 64 - 1
_limits = {}  # "memory", "cache", "wired" -> bytes (set or defaulted on first use)


def _on_gpu():
    return dev.default_device().type is dev.gpu


def _cpu_stats():
    M.start_tracking(array)


def get_active_memory():
    if _on_gpu():
        return M.gpu_active()
    _cpu_stats()
    return M.cpu_active()


def get_peak_memory():
    if _on_gpu():
        return M.gpu_peak()
    _cpu_stats()
    return M.cpu_peak()


def reset_peak_memory():
    if _on_gpu():
        M.gpu_reset_peak()
    else:
        _cpu_stats()
        M.cpu_reset_peak()


def get_cache_memory():
    if _on_gpu():
        return M.gpu_cache()
    return M.cpu_cache()


def clear_cache():
    if _on_gpu():
        from ember.core._backend import eager_graphs
        eager_graphs.clear()  # (the replayed evaluations' memory pools are cache too)
        M.gpu_clear_cache()
    M.cpu_clear_cache()


def _default_limit():
    # as upstream: the device's memory on a GPU, 4/5 of the RAM on the CPU
    return M.gpu_total() if _on_gpu() else M.system_memory() * 4 // 5


def _limit(key):
    v = _limits.get(key)
    if v is None:
        v = _limits[key] = 0 if key == "wired" else _default_limit()
    return v


def _set(name, key, limit):
    try:
        v = operator.index(limit)
    except TypeError:
        v = -1
    if not 0 <= v <= _SIZE_MAX:  # (a size_t, as upstream's binding takes)
        raise signature_error(name, f"{name}(limit: int) -> int", (limit,), {})
    prev = _limit(key)
    _limits[key] = v
    return prev


def get_memory_limit():
    return _limit("memory")


def set_memory_limit(limit):
    prev = _set("set_memory_limit", "memory", limit)
    if _on_gpu():
        M.gpu_set_limit(_limits["memory"])
    return prev


def set_cache_limit(limit):
    prev = _set("set_cache_limit", "cache", limit)
    M.cpu_set_cache_limit(_limits["cache"])
    return prev


def set_wired_limit(limit):
    # wiring memory is a Metal notion: without Metal upstream checks the argument,
    # ignores it and reports the previous limit as 0
    _set("set_wired_limit", "wired", limit)
    return 0


def get_array_buffer_size(*args):
    from ember.core.transforms.eval import _arrays_of
    tensors = []
    for a in _arrays_of(args):
        if a._data is None:
            raise ValueError("[get_array_buffer_size] Arrays must be evaluated before "
                             "querying buffer size.")
        tensors.append(a._data)
    return M.buffer_bytes(tensors)
