"""mx.metal: Metal is never available here.

The memory functions are upstream's deprecated aliases of the top-level ones: they print
the same one-time notice and forward; captures do nothing, as in upstream's builds
without Metal.
"""

import sys as _sys

from ember.core.ops import memory as _memory

__all__ = ["is_available", "device_info", "start_capture", "stop_capture", "clear_cache",
           "get_active_memory", "get_cache_memory", "get_peak_memory", "reset_peak_memory",
           "set_cache_limit", "set_memory_limit", "set_wired_limit"]

_warned = set()


def _deprecated(name):
    if name not in _warned:
        _warned.add(name)
        print(f"mx.metal.{name} is deprecated and will be removed in a future version. "
              f"Use mx.{name} instead.", file=_sys.stderr)


def is_available():
    """Check if the Metal back-end is available."""
    return False


def device_info():
    _deprecated("device_info")
    return {}


def start_capture(path):
    """Start a Metal capture (nothing to capture without Metal)."""
    if not isinstance(path, str):  # (upstream's binding takes a str only)
        raise TypeError(f"start_capture(): path must be a str, got {type(path).__name__}.")


def stop_capture():
    """Stop a Metal capture."""


def clear_cache():
    _deprecated("clear_cache")
    _memory.clear_cache()


def get_active_memory():
    _deprecated("get_active_memory")
    return _memory.get_active_memory()


def get_cache_memory():
    _deprecated("get_cache_memory")
    return _memory.get_cache_memory()


def get_peak_memory():
    _deprecated("get_peak_memory")
    return _memory.get_peak_memory()


def reset_peak_memory():
    _deprecated("reset_peak_memory")
    _memory.reset_peak_memory()


def set_cache_limit(limit):
    _deprecated("set_cache_limit")
    return _memory.set_cache_limit(limit)


def set_memory_limit(limit):
    _deprecated("set_memory_limit")
    return _memory.set_memory_limit(limit)


def set_wired_limit(limit):
    _deprecated("set_wired_limit")
    return _memory.set_wired_limit(limit)
