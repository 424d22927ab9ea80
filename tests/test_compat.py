import os
import pathlib
import subprocess
import sys
import textwrap

import ember


def test_mlx_program_runs_unchanged(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import mlx.core as mx
        from mlx.utils import tree_flatten
        w = mx.array([1.0, 2.0])
        g = mx.grad(lambda w: (w * w).sum())(w)
        print(type(w).__module__, g.tolist(), len(tree_flatten({"a": [w, w]})))
    """))
    out = subprocess.run([sys.executable, "-m", "ember.compat", str(script)],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["ember.core.array", "[2.0,", "4.0]", "2"]


def test_submodules_are_the_ember_modules(tmp_path):
    """`import mlx.<pkg>.<sub>` gives the Ember module itself, not a second copy of its
    file (which would have its own globals and replace the original in its package)."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import sys
        import ember.core.random
        import mlx.core as mx
        import mlx.core.random as r
        import mlx.nn as nn
        import mlx.optimizers as optim
        from mlx.nn.layers.base import Module
        from mlx.optimizers.optimizers import Adam
        from mlx.optimizers.schedulers import cosine_decay
        checks = [r is ember.core.random, mx.random is ember.core.random,
                  r.__spec__.name == "ember.core.random", Module is nn.Module,
                  Adam is optim.Adam, cosine_decay is optim.cosine_decay,
                  sys.modules["mlx.nn.layers.base"] is sys.modules["ember.nn.layers.base"]]
        try:
            import mlx.core.no_such_module  # noqa: F401
        except ModuleNotFoundError as e:
            checks.append(e.name == "mlx.core.no_such_module")
        print(all(checks), checks)
    """))
    out = subprocess.run([sys.executable, "-m", "ember.compat", str(script)],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "True", out


def test_script_imports_its_siblings(tmp_path):
    """As with `python script.py`, the script's directory comes first on sys.path."""
    (tmp_path / "sibling_mod.py").write_text("VALUE = 42\n")
    script = tmp_path / "prog.py"
    script.write_text("import sibling_mod\nprint(sibling_mod.VALUE)\n")
    # (ember found from any directory, however this run found it)
    root = str(pathlib.Path(ember.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = subprocess.run([sys.executable, "-m", "ember.compat", str(script)], env=env,
                         capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.split() == ["42"]
