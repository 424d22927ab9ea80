"""Public op functions, one module per family (mirroring `primitives/`).

Every module here that does not start with an underscore is a family; its public names
(`__all__`, or every public function) become ops.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from ember.core.ops._base import as_array, broadcast_shapes, resolve, to_device  # noqa: F401
from ember.core.ops.creation import *  # noqa: F401,F403
from ember.core.ops.elementwise import *  # noqa: F401,F403
from ember.core.ops.elementwise import apply_binary, apply_unary, astype  # noqa: F401
from ember.core.ops.misc import _identity, stop_gradient  # noqa: F401
from ember.core.ops.reduce import apply_reduce  # noqa: F401

__all__ = []
# used across families, but not part of mlx.core's namespace
_INTERNAL = {"apply_binary", "apply_unary", "binary_args", "getitem", "setitem"}


def _export_families():
    g = globals()
    for info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):  # noqa: F405
        if info.name.startswith("_"):
            continue
        mod = _importlib.import_module(f"{__name__}.{info.name}")
        names = getattr(mod, "__all__", None)
        if names is None:
            names = [n for n, v in vars(mod).items() if not n.startswith("_") and callable(v)
                     and getattr(v, "__module__", None) == mod.__name__]
        for n in names:
            g[n] = getattr(mod, n)
            if n not in _INTERNAL:
                __all__.append(n)


_export_families()
