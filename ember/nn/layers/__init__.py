"""The layers of `ember.nn`, one family per module; each module's `__all__` is exported."""

import importlib as _importlib
import pkgutil as _pkgutil

__all__ = []


def _export_families():
    g = globals()
    for info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = _importlib.import_module(f"{__name__}.{info.name}")
        # the family modules themselves are public too (`nn.upsample.upsample_linear`)
        g[info.name] = mod
        __all__.append(info.name)
        for n in mod.__all__:
            g[n] = getattr(mod, n)
            __all__.append(n)


_export_families()
