"""compile, enable_compile, disable_compile.

A compiled function takes trees (lists, tuples, dicts) of arrays and constants (numbers,
strings, None), as upstream checks on every call. Graph capture, simplification and
fusion are not built yet: a compiled call runs the function as written, which gives the
same results, random state included (the state a function draws from is the global one,
whether or not it is listed in `inputs`/`outputs`). Compilation is on unless the
environment sets MLX_DISABLE_COMPILE (to anything); enable_compile() overrides that.
"""

import functools
import os

from ember.core.array import array
from ember.core.transforms.graph import signature_error

__all__ = ["compile", "enable_compile", "disable_compile"]

_SIG = ("compile(fun: Callable[P, R], inputs: object | None = None, outputs: object | None "
        "= None, shapeless: bool = False) -> Callable[P, R]")

_ENABLED = ["MLX_DISABLE_COMPILE" not in os.environ]

_CONSTANTS = (int, float, str, type(None))
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python


def _type_name(t):
    if t.__flags__ & _HEAP_TYPE and t.__module__ != "builtins":
        return f"{t.__module__}.{t.__qualname__}"
    return t.__name__


def _check(tree):
    if isinstance(tree, (array,) + _CONSTANTS):
        return
    if isinstance(tree, (list, tuple)):
        for x in tree:
            _check(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            _check(x)
    else:
        raise ValueError("[compile] Function arguments must be trees of arrays or constants "
                         "(floats, ints, strings, or None), but received type "
                         f"{_type_name(type(tree))}.")


def _run_compiled(fun, args, kwargs):
    """A call with compilation enabled (where graph compilation will take over)."""
    return fun(*args, **kwargs)


def compile(fun, inputs=None, outputs=None, shapeless=False):
    if not callable(fun) or not isinstance(shapeless, bool):
        kw = {k: v for k, v in (("inputs", inputs), ("outputs", outputs),
                                ("shapeless", shapeless)) if v is not None and v is not False}
        raise signature_error("compile", _SIG, (fun,), kw)

    @functools.wraps(fun)
    def compiled(*args, **kwargs):
        _check(args)
        _check(kwargs)
        if not _ENABLED[0]:
            return fun(*args, **kwargs)
        return _run_compiled(fun, args, kwargs)

    return compiled


def enable_compile():
    """Globally enable compilation. This will override the environment variable
    ``MLX_DISABLE_COMPILE`` if set."""
    _ENABLED[0] = True


def disable_compile():
    """Globally disable compilation. Setting the environment variable
    ``MLX_DISABLE_COMPILE`` can also be used to disable compilation."""
    _ENABLED[0] = False
