"""`make demo`'s job (examples/char_gpt.py) at a tiny size: it trains, evaluates, saves
atomically, resumes where it stopped and samples."""

import contextlib
import io
import json
import math
import os
import shutil

import numpy as np
import pytest

import ember.core as mx
from examples import char_gpt as cg

TINY = ["--steps", "24", "--batch", "8", "--context", "16", "--dims", "32", "--heads", "2",
        "--layers", "1", "--lr", "1e-2", "--corpus-mb", "0.05", "--eval-batches", "2",
        "--sample-len", "37", "--seed", "3"]


def run(out, *extra):
    """main() on TINY + extra flags; (summary, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        result = cg.main([*TINY, "--out", str(out), *extra])
    return result, stdout.getvalue(), stderr.getvalue()


def snapshot(out):
    """Every file under `out`, as bytes by relative path."""
    files = {}
    for root, _, names in os.walk(out):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, out)] = f.read()
    return files


def weights(out):
    meta = json.loads((out / cg.CHECKPOINT).read_text())
    return {k: np.array(v) for k, v in
            mx.load(str(out / meta["path"] / "model.safetensors")).items()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("char_gpt") / "run"
    return (out, *run(out))


def test_trains_evaluates_saves_and_samples(base):
    out, result, stdout, stderr = base
    losses = result["losses"]
    assert result["step"] == 24 and len(losses) == 24
    assert all(math.isfinite(v) for v in losses)
    vocab = json.loads((out / cg.CHECKPOINT).read_text())["vocab"]
    # starts near chance, and falls well below it
    assert abs(np.mean(losses[:2]) - math.log(len(vocab))) < 1.0
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.5
    # periodic and final held-out losses, printed
    assert [s for s, _ in result["val_losses"]] == [6, 12, 18, 24]
    assert result["val_losses"][-1][1] < result["val_losses"][0][1]
    assert stdout.count("val loss") == 4
    assert "step 1/24  loss" in stderr and "step 24/24  loss" in stderr and "tok/s" in stderr

    assert len(result["sample"]) == 37
    assert set(result["sample"]) <= set(vocab)
    assert result["sample"] in stdout


def test_checkpoint_layout(base):
    out, result, _, _ = base
    assert sorted(os.listdir(out)) == ["checkpoint.json", "ckpt-000024"]  # no temp files
    meta = json.loads((out / cg.CHECKPOINT).read_text())
    assert meta["step"] == 24 and meta["path"] == "ckpt-000024"
    assert sorted(os.listdir(out / meta["path"])) == ["model.safetensors",
                                                      "optimizer.safetensors"]
    # the weights load into a fresh model of the saved config
    model = cg.CharGPT(**meta["config"])
    model.load_weights(str(out / meta["path"] / "model.safetensors"))
    opt = mx.load(str(out / meta["path"] / "optimizer.safetensors"))
    assert int(np.array(opt["step"])) == 24


def test_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    flags = ["--steps", "32", "--eval-every", "8"]
    straight, _, _ = run(tmp_path / "straight", *flags)

    out = tmp_path / "interrupted"
    real = cg.save_checkpoint

    def save_then_die(*args):
        path = real(*args)
        if args[-1]["step"] == 24:
            raise KeyboardInterrupt
        return path
    monkeypatch.setattr(cg, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(out, *flags)
    monkeypatch.undo()
    assert json.loads((out / cg.CHECKPOINT).read_text())["step"] == 24
    saved = weights(out)

    resumed, stdout, _ = run(out, *flags, "--resume")
    assert "resuming at step 24" in stdout
    assert resumed["step"] == 32 and len(resumed["losses"]) == 8
    # the same parameters, optimizer state, schedule position and batches as the run that
    # was never stopped
    np.testing.assert_allclose(resumed["losses"], straight["losses"][24:], rtol=1e-5)
    a, b = weights(out), weights(tmp_path / "straight")
    assert a.keys() == b.keys() == saved.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-7)
    assert not all(np.array_equal(a[k], saved[k]) for k in a)
    assert sorted(os.listdir(out)) == ["checkpoint.json", "ckpt-000032"]


def test_resume_at_the_final_step_only_evaluates(base, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(base[0], out)
    saved = weights(out)
    result, _, _ = run(out, "--resume")
    assert result["step"] == 24 and result["losses"] == []
    assert result["val_losses"] == [(24, pytest.approx(base[1]["val_losses"][-1][1]))]
    after = weights(out)
    assert all(np.array_equal(after[k], saved[k]) for k in saved)
    assert sorted(os.listdir(out)) == ["checkpoint.json", "ckpt-000024.2"]


def _fail_second_save(monkeypatch):
    """mx.save_safetensors writes the weights, then dies half-way through the optimizer."""
    real, calls = mx.save_safetensors, []

    def flaky(path, arrays, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(b"\x00" * 10)
            raise OSError("disk full")
        real(path, arrays, metadata)
    monkeypatch.setattr(cg.mx, "save_safetensors", flaky)


def _fail_json(monkeypatch):
    def flaky(obj, f, **kw):
        f.write('{"step": ')
        raise OSError("disk full")
    monkeypatch.setattr(cg.json, "dump", flaky)


def _fail_commit(monkeypatch):
    real = os.replace

    def flaky(src, dst):
        if str(dst).endswith(cg.CHECKPOINT):
            raise OSError("power cut")
        real(src, dst)
    monkeypatch.setattr(cg.os, "replace", flaky)


@pytest.mark.parametrize("fail", [_fail_second_save, _fail_json, _fail_commit])
def test_failed_save_keeps_the_previous_checkpoint(base, tmp_path, monkeypatch, fail):
    out = tmp_path / "run"
    shutil.copytree(base[0], out)
    before = snapshot(out)
    fail(monkeypatch)
    with pytest.raises(OSError):
        run(out, "--resume", "--steps", "26")
    monkeypatch.undo()
    assert snapshot(out) == before  # same files, same bytes; no temp files left behind
    # and it still resumes
    result, _, _ = run(out, "--resume", "--steps", "26")
    assert result["step"] == 26


def test_corpus_is_the_stdlib_and_deterministic():
    text = cg.read_corpus(20000)
    assert len(text) == 20000 and text == cg.read_corpus(20000)
    assert "def " in text and "import " in text
    vocab = cg.build_vocab(text + "é")
    assert vocab[-1] == cg.UNK and "é" not in vocab and "\n" in vocab
    ids = cg.encode("a\néz", vocab)
    assert cg.decode(ids, vocab) == "a\n" + cg.UNK + "z"


def test_resume_without_checkpoint_fails(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint"):
        cg.main(["--resume", "--out", str(tmp_path)])


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(capsys):
    term = _Terminal()
    bar = cg.Progress(0, 3, stream=term)
    for step in (1, 2, 3):
        bar.update(step, 4.0 - step, 100)
    bar.message("val loss 1.0")
    bar.close()
    out = term.getvalue()
    assert out.startswith("\r[") and "step 1/3  loss 3.000" in out
    assert f"[{'#' * 24}] step 3/3  loss 1.000" in out and "tok/s" in out
    assert out.endswith("\r\033[K\n")  # line cleared for the message, then closed
    assert capsys.readouterr().out == "val loss 1.0\n"
