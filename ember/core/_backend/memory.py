"""Memory accounting: torch's caching allocator on CUDA, a buffer tally and a cache of
large buffers on the CPU.

torch's CPU allocator keeps no statistics, so CPU buffers are tallied here: every tensor
that becomes an array's data (a leaf, or a kernel's output during eval) is reported to
`track`, which counts its storage once (views share it) until the last tracked tensor
on that storage dies. Tracking starts the first time a memory statistic is asked for, so
that programs which never ask pay only a flag test; at that point the arrays alive are
counted by a walk of the garbage collector's objects.
"""

import gc
import math
import os
import threading
import weakref

import torch

# set once any statistic is asked for; the array and eval paths test it before `track`
TRACKING = [False]

_live = {}        # storage address -> [bytes, number of tracked tensors on it]
_stats = [0, 0]   # active bytes, peak bytes


class _Ref(weakref.ref):
    __slots__ = ("key",)


# id -> weak reference: they must stay alive for their callbacks to run (not a set: weak
# references compare by their referents, and tensors do not compare to booleans)
_refs = {}


def _dead(ref):
    _refs.pop(id(ref), None)
    rec = _live.get(ref.key)
    if rec is not None:
        rec[1] -= 1
        if rec[1] == 0:
            del _live[ref.key]
            _stats[0] -= rec[0]


def track(t):
    """Count tensor `t`'s storage (CPU only) until `t` dies."""
    if t.is_cuda:
        return
    st = t.untyped_storage()
    n = st.nbytes()
    if not n:
        return
    key = st.data_ptr()
    rec = _live.get(key)
    if rec is None:
        _live[key] = [n, 1]
        a = _stats[0] = _stats[0] + n
        if a > _stats[1]:
            _stats[1] = a
    else:
        rec[1] += 1
    r = _Ref(t, _dead)
    r.key = key
    _refs[id(r)] = r


def start_tracking(array_type):
    """Turn tracking on, counting the data of the arrays alive now."""
    if TRACKING[0]:
        return
    TRACKING[0] = True
    seen = set()
    for o in gc.get_objects():
        if type(o) is array_type:
            t = o._data
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                track(t)


def cpu_active():
    return _stats[0]


def cpu_peak():
    return _stats[1]


def cpu_reset_peak():
    _stats[1] = _stats[0]


# -- CPU: a cache of large buffers ----------------------------------------------------
# glibc serves allocations of 32 MB and more (past its largest mmap threshold) with fresh
# mappings and unmaps them on free, so every large output paid a page fault per 4 KB
# page: a 32 MB copy took 14 ms where the copying takes 1.5. The CPU kernels that can
# write into a given buffer take large outputs from here instead. A buffer is free again
# when nothing but the cache holds its storage (torch counts the references), so nothing
# can see it being reused.

CACHE_MIN = 16 << 20  # (smaller buffers glibc keeps and reuses itself)
_pool = {}  # bytes -> [UntypedStorage], oldest first
_pool_lock = threading.Lock()
# bytes of free buffers kept: set_cache_limit's, else an eighth of the RAM (upstream's CPU
# build caches nothing, so a default as large as its limit would surprise)
cache_limit = [None]


def _free(st):
    return torch._C._storage_Use_Count(st._cdata) == 1


def cpu_empty(shape, dtype):
    """An uninitialised contiguous CPU tensor; a reused buffer when it is large."""
    n = math.prod(shape) * dtype.itemsize
    if n < CACHE_MIN or cache_limit[0] == 0:
        return torch.empty(shape, dtype=dtype)
    with _pool_lock:
        bufs = _pool.setdefault(n, [])
        for st in bufs:
            if _free(st):
                return torch.empty(0, dtype=dtype).set_(st, 0, shape)
        try:
            t = torch.empty(shape, dtype=dtype)
        except RuntimeError:  # out of memory: give the free buffers back first
            _drop(0)
            t = torch.empty(shape, dtype=dtype)
        bufs.append(t.untyped_storage())
        limit = cache_limit[0]
        _drop(system_memory() // 8 if limit is None else limit)
        return t


def cpu_out(shape, dtype, device):
    """A cached buffer for a large CPU output (a kernel's `out=`), else None: small
    outputs and other devices allocate as usual."""
    if device.type == "cpu" and math.prod(shape) * dtype.itemsize >= CACHE_MIN:
        return cpu_empty(shape, dtype)
    return None


def _drop(keep):
    """Release free buffers, oldest first, until at most `keep` bytes of them remain."""
    free = [(n, st) for n, bufs in _pool.items() for st in bufs if _free(st)]
    total = sum(n for n, _ in free)
    for n, st in free:
        if total <= keep:
            break
        _pool[n].remove(st)
        total -= n


def cpu_set_cache_limit(limit):
    with _pool_lock:
        cache_limit[0] = limit
        if limit == 0:  # (buffers in use are let go too: they are freed as usual)
            _pool.clear()
        else:
            _drop(limit)


def cpu_cache():
    with _pool_lock:
        return sum(n for n, bufs in _pool.items() for st in bufs if _free(st))


def cpu_clear_cache():
    with _pool_lock:
        _drop(0)


def buffer_bytes(tensors):
    """Allocated bytes of the distinct storages behind `tensors`."""
    seen = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[(t.device, st.data_ptr())] = st.nbytes()
    return sum(seen.values())


# -- CUDA: torch's caching allocator ---------------------------------------------------

def gpu_active():
    return torch.cuda.memory_allocated()


def gpu_peak():
    return torch.cuda.max_memory_allocated()


def gpu_reset_peak():
    torch.cuda.reset_peak_memory_stats()


def gpu_cache():
    return torch.cuda.memory_reserved() - torch.cuda.memory_allocated()


def gpu_clear_cache():
    torch.cuda.empty_cache()


def gpu_total():
    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory


def gpu_set_limit(limit):
    """Make torch's allocator refuse to grow past `limit` bytes on the current GPU."""
    total = gpu_total()
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total))


def system_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0
