"""The model benchmark checks itself: at a tiny size every model runs its step in every
framework, and Ember, upstream MLX and torch compute the same forward output from the same
weights (for the gpt train step also the same loss, gradients and updated model)."""

import json

import numpy as np
import pytest

from benchmarks import models as M

TINY = dict(B=2, S=8, T=4, D=16, H=2, L=1)
OUT_SHAPE = {"transformer": (2, 4, 16), "cnn": (2, 1024), "mlp": (2, 16), "rnn": (2, 8, 32),
             "gpt": (2, 8, M.VOCAB)}


def _frameworks(device):
    try:
        import mlx.core as mlx
    except ImportError:
        return ["ember", "torch"]
    return M.FRAMEWORKS if device == "cpu" or mlx.is_available(mlx.gpu) else ["ember", "torch"]


def _check_same(model, device):
    # perturbed so that no two parameters are alike (norms start at ones and zeros): a
    # parameter loaded into the wrong place changes the output
    rng = np.random.default_rng(1)
    params = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32)
              for k, v in M.init_params(model, TINY).items()}
    cases = {fw: M.make_case(fw, model, TINY, device, params) for fw in _frameworks(device)}
    out = {fw: c.forward() for fw, c in cases.items()}
    ref = out["ember"]
    assert ref.shape == OUT_SHAPE[model]
    assert np.isfinite(ref).all() and ref.std() > 1e-3
    # float32 sums in different orders; on the GPU, TF32 matmuls (on by default in Ember
    # and upstream MLX, as in MLX_ENABLE_TF32) against torch's full float32
    tol = 1e-5 if device == "cpu" else 3e-3
    atol = tol * np.abs(ref).max()
    for fw, y in out.items():
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=atol, err_msg=fw)
    if model == "gpt":
        loss, grads = cases["ember"].loss_and_grads()
        assert np.isfinite(loss) and loss > 1.0
        for fw, c in cases.items():
            l_fw, g_fw = c.loss_and_grads()
            np.testing.assert_allclose(l_fw, loss, rtol=10 * tol, err_msg=fw)
            assert sorted(g_fw) == sorted(grads) == sorted(params)
            for k, g in grads.items():
                np.testing.assert_allclose(g_fw[k], g, rtol=1e-3,
                                           atol=max(1e-6, 3 * tol * np.abs(g).max()),
                                           err_msg=f"{fw} {k}")
    for c in cases.values():
        c.step()
        c.sync()
    if model == "gpt":
        # one AdamW step moved every framework's model the same way
        after = {fw: c.forward() for fw, c in cases.items()}
        assert np.abs(after["ember"] - ref).max() > 1e-4
        for fw, y in after.items():
            np.testing.assert_allclose(y, after["ember"], rtol=1e-4, atol=atol, err_msg=fw)


@pytest.mark.parametrize("model", M.MODELS)
def test_same_forward_cpu(model):
    _check_same(model, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("model", M.MODELS)
def test_same_forward_gpu(model):
    _check_same(model, "gpu")


def test_cli_one_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(M.SIZES, "tiny", TINY)
    monkeypatch.setitem(M.STEPS, "tiny", (0, 1))
    out = tmp_path / "r.json"
    M.main(["--sizes", "tiny", "--json", str(out)])
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["results"]
    assert [r["model"] for r in rows] == M.MODELS
    for r in rows:
        for fw in _frameworks("cpu"):
            assert r[fw] > 0
        assert f"| {r['model']} | tiny |" in text
    assert "ember / torch" in text


def test_cli_rejects_unknown_names():
    with pytest.raises(SystemExit):
        M.main(["--models", "resnet"])
