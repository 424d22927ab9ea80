"""I/O against upstream, beyond test_io_conformance: the order of the names `load` hands
back (upstream's comes from its C++ hash table), for files written by either library;
save targets with odd extensions; `format=` naming the wrong format; text-mode files."""

import os
import random
import string

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.core.test_io import _gguf_file
from tests.core.test_io_conformance import CORRUPT

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

FORMATS = ["npz", "safetensors", "gguf"]


def _keys(n, seed):
    rng = random.Random(seed)
    chars = string.ascii_letters + string.digits + "._"
    keys = ["".join(rng.choice(chars) for _ in range(rng.randint(1, 24))) for _ in range(n)]
    # names of real models too, and a non-ASCII one
    keys += [f"model.layers.{i}.mlp.up_proj.weight" for i in range(n // 4)] + ["välue"]
    return list(dict.fromkeys(keys))


def _write(m, fmt, path, keys, positional=0):
    arrays = {k: m.full((2,), i, dtype=m.float16) for i, k in enumerate(keys)}
    if fmt == "npz":
        m.savez(path, *[m.ones(1)] * positional, **arrays)
    elif fmt == "safetensors":
        m.save_safetensors(path, arrays, {k: str(i) for i, k in enumerate(keys)})
    else:
        m.save_gguf(path, arrays, {k: m.array(i) for i, k in enumerate(keys)})
    return f"{path}.{fmt}"


def _order(m, path, fmt):
    if fmt == "npz":
        r = m.load(path)
        return list(r), [float(v[0].item()) for v in r.values()]
    r, md = m.load(path, return_metadata=True)
    return list(r), [float(v[0].item()) for v in r.values()], list(md)


@pytest.mark.parametrize("n", [1, 6, 14, 40, 300])
@pytest.mark.parametrize("fmt", FORMATS)
def test_key_order_like_upstream(tmp_path, fmt, n):
    """Names (arrays and metadata) come back in upstream's order, whoever wrote the file."""
    keys = _keys(n, n)
    positional = 3 if fmt == "npz" else 0
    ufile = _write(mlx, fmt, str(tmp_path / "u"), keys, positional)
    efile = _write(mx, fmt, str(tmp_path / "e"), keys, positional)
    want = _order(mlx, ufile, fmt)
    assert _order(mx, ufile, fmt) == want
    assert _order(mx, efile, fmt) == want
    assert _order(mlx, efile, fmt) == want


@pytest.mark.parametrize("ggml_type, nbytes", [(8, 34), (2, 18), (3, 20), (0, 128)])
def test_gguf_quantized_key_order(tmp_path, ggml_type, nbytes):
    """Quantized tensors load as three names each, in upstream's order."""
    names = [f"blk.{i}.{n}.weight" for i in range(5) for n in ("attn_q", "ffn_up")]
    path = str(tmp_path / "q.gguf")
    _gguf_file(path, [(n, (32,), ggml_type, bytes(nbytes)) for n in names + ["tok_embd"]])
    assert list(mx.load(path)) == list(mlx.load(path))


def _outcome(fn):
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return "error", e
    if isinstance(r, dict):
        return "ok", [(k, str(v.dtype), v.shape, np.array(v).tobytes()) for k, v in r.items()]
    return "ok", (str(r.dtype), r.shape, np.array(r).tobytes())


def _same(got, want):
    if want[0] == "error":
        assert got[0] == "error", f"upstream raised {want[1]!r}, Ember returned"
        assert isinstance(got[1], type(want[1])), (got[1], want[1])
        w = str(want[1])
        if w.startswith("["):
            assert str(got[1]).split("]")[0] == w.split("]")[0], (got[1], want[1])
        return
    assert got[0] == "ok", f"Ember raised {got[1]!r}, upstream returned"
    assert got[1] == want[1]


SAVERS = {
    "save": lambda m, p: m.save(p, m.arange(3)),
    "savez": lambda m, p: m.savez(p, m.arange(3)),
    "savez_compressed": lambda m, p: m.savez_compressed(p, a=m.arange(3)),
    "save_safetensors": lambda m, p: m.save_safetensors(p, {"a": m.arange(3)}),
    "save_gguf": lambda m, p: m.save_gguf(p, {"a": m.arange(3)}),
}


@pytest.mark.parametrize("ext", ["", ".txt", ".NPY", ".npz", ".gguf", ".npy.npy", "."])
@pytest.mark.parametrize("saver", list(SAVERS))
def test_save_extension_handling(tmp_path, saver, ext):
    """Which name the file gets (the format's extension appended unless already there)."""
    out = {}
    for m in (mlx, mx):
        d = tmp_path / m.__name__
        d.mkdir()
        SAVERS[saver](m, str(d / f"x{ext}"))
        out[m] = sorted(os.listdir(d))
        (name,) = out[m]
        assert _outcome(lambda: mx.load(str(d / name))) == _outcome(
            lambda: mlx.load(str(d / name)))
    assert out[mx] == out[mlx]


@pytest.mark.parametrize("as_fmt", ["npy", "npz", "safetensors", "gguf", "NPY", "bin"])
@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors", "gguf"])
def test_format_overrides_extension(tmp_path, fmt, as_fmt):
    """`format=` decides how the file is read, a wrong one failing as upstream fails."""
    path = str(tmp_path / f"x.{fmt}")
    if fmt == "npy":
        mx.save(path, mx.arange(3))
    else:
        SAVERS["savez" if fmt == "npz" else f"save_{fmt}"](mx, str(tmp_path / "x"))
    _same(_outcome(lambda: mx.load(path, format=as_fmt)),
          _outcome(lambda: mlx.load(path, format=as_fmt)))


@pytest.mark.parametrize("saver", list(SAVERS))
def test_text_mode_file_target(tmp_path, saver):
    """A file opened in text mode: upstream's error type."""
    got = {}
    for m in (mlx, mx):
        with open(tmp_path / f"{m.__name__}.bin", "w") as f:
            got[m] = _outcome(lambda: SAVERS[saver](m, f))
    _same(got[mx], got[mlx])


def _start(msg):
    """The part of a message compared: up to the first number, 35 characters at most."""
    cut = next((i for i, ch in enumerate(msg) if ch.isdigit()), len(msg))
    return msg[:min(cut, 35)]


# Ember's words differ from upstream's: upstream's JSON parser's own errors, and GGUF
# headers cut short (Ember's reads stop at the first missing byte)
WORDED_DIFFERENTLY = {"bad_json.safetensors", "no_dtype.safetensors", "int_metadata.safetensors",
                      "bad_kv_type.gguf",
                      "many_kv.gguf", "text_member.npz", "cut_member.npz", "cut30.gguf",
                      "cut60.gguf"}


@pytest.mark.parametrize("name", sorted(set(CORRUPT) - WORDED_DIFFERENTLY))
def test_corrupt_file_messages_start_like_upstream(tmp_path, name):
    data = CORRUPT[name]
    p = tmp_path / name
    p.write_bytes(data(tmp_path) if callable(data) else data)
    msgs = []
    for m in (mlx, mx):
        with pytest.raises(Exception) as e:  # noqa: PT011 - the types: test_io_conformance
            r = m.load(str(p))
            m.eval(*(r.values() if isinstance(r, dict) else [r]))
        msgs.append(str(e.value))
    assert msgs[1].startswith(_start(msgs[0]).rstrip(".")), msgs
