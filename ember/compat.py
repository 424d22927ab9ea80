"""Run MLX programs on Ember: `ember.compat.install()` registers the `mlx.*` module names.

    python -m ember.compat script.py [args...]

Nothing is registered when upstream MLX is already imported, so the two never mix.
"""

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys
import types

# mlx module name -> Ember module providing it
_MODULES = {"mlx.core": "ember.core", "mlx.utils": "ember.utils", "mlx.nn": "ember.nn",
            "mlx.optimizers": "ember.optimizers"}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `mlx.<a>.<b>` as the module `ember.<a>.<b>` itself. Without it the path
    finder would load the Ember file a second time under the mlx name: a copy with its
    own globals (random state, classes that fail isinstance) that also replaces the
    original as an attribute of its package."""

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("mlx.") or name in _MODULES:
            return None
        target = "ember." + name[4:]
        if target not in sys.modules and importlib.util.find_spec(target) is None:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        module = importlib.import_module("ember." + spec.name[4:])
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        # the import system sets __spec__ to the alias's spec: the module keeps its own
        module.__spec__ = module.__spec__.loader_state


def install():
    """Alias `mlx`, `mlx.core`, `mlx.utils`, `mlx.nn`, `mlx.optimizers` and their submodules
    to Ember."""
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
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
    return True


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m ember.compat script.py [args...]", file=sys.stderr)
        return 2
    install()
    sys.argv = argv
    # as `python script.py`: the script's directory first on the path, for its siblings
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
