"""Run MLX programs on Ember: `ember.compat.install()` registers the `mlx.*` module names.

    python -m ember.compat script.py [args...]

Nothing is registered when upstream MLX is already imported, so the two never mix.
"""

import importlib
import runpy
import sys
import types

# mlx module name -> Ember module providing it
_MODULES = {"mlx.core": "ember.core", "mlx.utils": "ember.utils", "mlx.nn": "ember.nn",
            "mlx.optimizers": "ember.optimizers"}


def install():
    """Alias `mlx`, `mlx.core`, `mlx.utils` (and nn/optimizers where present) to Ember."""
    if "mlx" in sys.modules and not getattr(sys.modules["mlx"], "__ember__", False):
        return False
    pkg = sys.modules.get("mlx") or types.ModuleType("mlx")
    pkg.__ember__ = True
    pkg.__path__ = []
    sys.modules["mlx"] = pkg
    for name, target in _MODULES.items():
        try:
            mod = importlib.import_module(target)
        except ImportError:
            continue
        sys.modules[name] = mod
        setattr(pkg, name.split(".", 1)[1], mod)
    return True


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m ember.compat script.py [args...]", file=sys.stderr)
        return 2
    install()
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
