import subprocess
import sys
import textwrap


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
