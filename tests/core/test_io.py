"""load / save / savez / savez_compressed / save_safetensors / save_gguf against upstream:
files written by each side load in the other for every dtype each format supports, GGUF
quantized tensors load as upstream's triples, safetensors loads lazily, corrupt files
raise ValueError naming the file, and failed saves leave nothing behind."""

import io
import json
import os
import pathlib
import struct

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import dtype_name, np_of, sample_of

RNG = np.random.default_rng(5)
ALL = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
       "float16", "float32", "float64", "bfloat16", "complex64"]
SAFETENSORS = [d for d in ALL if d != "float64"]  # upstream cannot write or read F64
GGUF = ["float32", "float16", "int8", "int16", "int32"]
SHAPES = [(), (0,), (3,), (2, 0, 3), (4, 5), (2, 3, 4)]


def _sample(shape, dt):
    return sample_of(RNG, shape, dt)


def _pair(shape, dt):
    x = _sample(shape, dt)
    e, m = mx.array(x), mlx.array(x)
    if dt == "bfloat16":
        e, m = e.astype(mx.bfloat16), m.astype(mlx.bfloat16)
    return e, m


def _same(e, m):
    """Exactly equal: shape, dtype and every bit (NaNs equal). `e` is what one side
    loaded (an Ember array, or an upstream one reading Ember's file)."""
    assert isinstance(e, (mx.array, mlx.array)), type(e)
    assert tuple(e.shape) == tuple(m.shape), (e.shape, m.shape)
    assert dtype_name(e) == dtype_name(m), (e.dtype, m.dtype)
    np.testing.assert_array_equal(np_of(e), np_of(m))


def _same_dict(e, m):
    assert set(e) == set(m), (sorted(e), sorted(m))
    for k in m:
        if isinstance(m[k], (mx.array, mlx.array)):
            _same(e[k], m[k])
        else:
            assert e[k] == m[k], (k, e[k], m[k])


# -- both directions, every dtype ------------------------------------------------------

@pytest.mark.parametrize("dt", ALL)
def test_npy_both_ways(tmp_path, dt):
    for i, shape in enumerate(SHAPES):
        e, m = _pair(shape, dt)
        mx.save(str(tmp_path / f"e{i}.npy"), e)
        mlx.save(str(tmp_path / f"m{i}.npy"), m)
        _same(mlx.load(str(tmp_path / f"e{i}.npy")), m)
        _same(mx.load(str(tmp_path / f"m{i}.npy")), m)
        if dt != "bfloat16":  # numpy reads what we write
            np.testing.assert_array_equal(np.load(tmp_path / f"e{i}.npy"), np_of(e))


def test_npy_layouts(tmp_path):
    # a transposed (non-contiguous) array, numpy's Fortran order and big-endian files
    e, m = _pair((3, 4, 5), "float32")
    mx.save(tmp_path / "t.npy", mx.transpose(e, (2, 0, 1)))
    mlx.save(str(tmp_path / "u.npy"), mlx.transpose(m, (2, 0, 1)))  # upstream: fortran_order
    _same(mlx.load(str(tmp_path / "t.npy")), mlx.transpose(m, (2, 0, 1)))
    _same(mx.load(tmp_path / "u.npy"), mlx.transpose(m, (2, 0, 1)))
    for x in [np.asfortranarray(_sample((3, 4, 2), "int64")), np.arange(6, dtype=">i4"),
              np.asfortranarray(np.arange(12, dtype=">f8").reshape(3, 4)),
              (np.arange(4) + 1j).astype(">c8")]:
        np.save(tmp_path / "n.npy", x)
        got = mx.load(str(tmp_path / "n.npy"))
        if x.dtype.kind != "c":  # upstream swaps big-endian complex64 as one 8-byte number
            _same(got, mlx.load(str(tmp_path / "n.npy")))
        np.testing.assert_array_equal(np.array(got), x)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_both_ways(tmp_path, compressed):
    e_save = mx.savez_compressed if compressed else mx.savez
    m_save = mlx.savez_compressed if compressed else mlx.savez
    pairs = {dt: _pair((2, 3), dt) for dt in ALL}
    e_save(str(tmp_path / "e"), pairs["int8"][0], **{k: v[0] for k, v in pairs.items()})
    m_save(str(tmp_path / "m"), pairs["int8"][1], **{k: v[1] for k, v in pairs.items()})
    want = {"arr_0": pairs["int8"][1], **{k: v[1] for k, v in pairs.items()}}
    _same_dict(mlx.load(str(tmp_path / "e.npz")), want)
    _same_dict(mx.load(str(tmp_path / "m.npz")), want)
    import zipfile
    with zipfile.ZipFile(tmp_path / "e.npz") as z:
        kinds = {i.compress_type for i in z.infolist()}
    assert kinds == {zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED}
    np.testing.assert_array_equal(np.load(tmp_path / "e.npz")["int32"], np_of(pairs["int32"][0]))


@pytest.mark.parametrize("dt", SAFETENSORS)
def test_safetensors_both_ways(tmp_path, dt):
    pairs = {f"t{i}": _pair(s, dt) for i, s in enumerate(SHAPES)}
    meta = {"format": "mlx", "note": "ü ünïcode"}
    mx.save_safetensors(str(tmp_path / "e"), {k: v[0] for k, v in pairs.items()}, meta)
    mlx.save_safetensors(str(tmp_path / "m"), {k: v[1] for k, v in pairs.items()}, meta)
    want = {k: v[1] for k, v in pairs.items()}
    for path, loader in [("e", mlx.load), ("m", mx.load)]:
        arrays, md = loader(str(tmp_path / f"{path}.safetensors"), return_metadata=True)
        _same_dict(arrays, want)
        assert md == meta


def test_safetensors_float64_and_no_metadata(tmp_path):
    # upstream refuses to write F64, and so does Ember; Ember reads it (upstream does not)
    x = _sample((3, 2), "float64")
    _both_raise(lambda m: m.save_safetensors(tmp_path / m.__name__, {"x": m.array(x, m.float64)}),
                RuntimeError, match=r"^\[save_safetensors\] received invalid dtype")
    assert not (tmp_path / f"{mx.__name__}.safetensors").exists()
    _write_st(tmp_path / "f.safetensors", {"x": {"dtype": "F64", "shape": [3, 2],
                                                 "data_offsets": [0, 48]}}, x.tobytes())
    out, md = mx.load(str(tmp_path / "f.safetensors"), return_metadata=True)
    np.testing.assert_array_equal(np.array(out["x"]), x)
    assert md == {} and out["x"].dtype == mx.float64
    mlx.save_safetensors(str(tmp_path / "n.safetensors"), {"x": mlx.array([1.0])})
    assert mx.load(str(tmp_path / "n.safetensors"), return_metadata=True)[1] == \
        mlx.load(str(tmp_path / "n.safetensors"), return_metadata=True)[1]


def test_safetensors_f8_bytes(tmp_path):
    _write_st(tmp_path / "f8.safetensors",
              {"x": {"dtype": "F8_E4M3", "shape": [3], "data_offsets": [0, 3]}}, b"\x38\x40\x44")
    _same_dict(mx.load(str(tmp_path / "f8.safetensors")),
               mlx.load(str(tmp_path / "f8.safetensors")))


@pytest.mark.parametrize("dt", GGUF)
def test_gguf_both_ways(tmp_path, dt):
    pairs = {f"blk.{i}.w": _pair(s, dt) for i, s in enumerate(SHAPES)}
    mx.save_gguf(str(tmp_path / "e"), {k: v[0] for k, v in pairs.items()}, {})
    # (+ 0: upstream refuses to write an empty array made from numpy, "not row-major")
    mlx.save_gguf(str(tmp_path / "m"), {k: v[1] + 0 for k, v in pairs.items()}, {})
    want = {k: v[1] for k, v in pairs.items()}
    _same_dict(mlx.load(str(tmp_path / "e.gguf")), want)
    _same_dict(mx.load(str(tmp_path / "m.gguf")), want)


def test_gguf_metadata_both_ways(tmp_path):
    e_meta, m_meta = {"s": "text ü", "l": ["a", "bb", ""], "empty": []}, {}
    m_meta.update(e_meta)
    for dt in ["bool_", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64",
               "int64", "float32"]:
        for shape in [(), (3,)]:
            e, m = _pair(shape, dt)
            e_meta[f"{dt}{shape}"], m_meta[f"{dt}{shape}"] = e, m
    w = _pair((2, 3), "float32")
    mx.save_gguf(str(tmp_path / "e.gguf"), {"w": w[0]}, e_meta)
    mlx.save_gguf(str(tmp_path / "m.gguf"), {"w": w[1]}, m_meta)
    for path, loader in [("e", mlx.load), ("m", mx.load)]:
        arrays, md = loader(str(tmp_path / f"{path}.gguf"), return_metadata=True)
        _same_dict(arrays, {"w": w[1]})
        _same_dict(md, m_meta)
    mx.save_gguf(str(tmp_path / "n.gguf"), {"w": w[0]})  # metadata is optional
    _same_dict(mlx.load(str(tmp_path / "n.gguf"), return_metadata=True)[1], {})


def test_gguf_bytes_and_tuple_metadata_like_upstream(tmp_path):
    # one tensor and one key (upstream orders several by hash): the same bytes, with no
    # padding after the last tensor nor after a header that no tensor follows
    for i, (shape, dt, meta) in enumerate([((), "float32", {}), ((3,), "int8", {"k": "v"}),
                                           ((5, 7), "float16", {}), (None, None, {"k": "v"})]):
        e, m = _pair(shape, dt) if shape is not None else (None, None)
        mx.save_gguf(str(tmp_path / f"e{i}.gguf"), {} if e is None else {"t": e}, meta)
        mlx.save_gguf(str(tmp_path / f"m{i}.gguf"), {} if m is None else {"t": m + 0}, meta)
        assert (tmp_path / f"e{i}.gguf").read_bytes() == (tmp_path / f"m{i}.gguf").read_bytes()
    # upstream takes a tuple of strings as it takes a list
    for m in (mx, mlx):
        m.save_gguf(str(tmp_path / f"t_{m.__name__}.gguf"), {}, {"k": ("a", "b"), "e": ()})
        assert m.load(str(tmp_path / f"t_{m.__name__}.gguf"), return_metadata=True)[1] == {
            "k": ["a", "b"], "e": []}
    with pytest.raises(RuntimeError):
        mx.save_gguf(str(tmp_path / "bad"), {}, {"k": ("a", 1)})


# -- GGUF quantized tensors (written by hand: upstream's writer is unquantized only) ------

def _gguf_file(path, tensors, kv=(), align=32):
    """tensors: (name, shape (numpy order), ggml type, raw bytes)."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, (t, v) in kv:
        head += s(k) + struct.pack("<I", t) + v
    data, off = b"", 0
    for name, shape, t, raw in tensors:
        dims = shape[::-1]
        head += s(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, t, off)
        raw += b"\0" * (-len(raw) % align)
        data += raw
        off += len(raw)
    head += b"\0" * (-len(head) % align)
    pathlib.Path(path).write_bytes(head + data)


def _blocks(nblocks, nbytes, half_at):
    """Random blocks whose float16 fields (at byte offsets `half_at`) are finite."""
    b = RNG.integers(0, 256, (nblocks, nbytes), dtype=np.uint8)
    for at in half_at:
        b[:, at:at + 2] = (RNG.standard_normal((nblocks, 1)) * 0.05).astype(
            np.float16).view(np.uint8)
    return b


QTYPES = {"Q4_0": (2, 32, 18, [0]), "Q4_1": (3, 32, 20, [0, 2]), "Q8_0": (8, 32, 34, [0]),
          "Q2_K": (10, 256, 84, [80, 82]), "Q4_K": (12, 256, 144, [0, 2]),
          "Q6_K": (14, 256, 210, [208]), "BF16": (30, 1, 2, [])}


@pytest.mark.parametrize("q", list(QTYPES))
def test_gguf_quantized_like_upstream(tmp_path, q):
    t, per, nb, halves = QTYPES[q]
    tensors = []
    # names: upstream strips the last 7 characters of names that long ("tok_embd" -> "t")
    for name, shape in [("blk.0.ffn.weight", (3, 2 * 256)), ("tok_embd", (512,)),
                        ("x.weight", (2, 2, 256)), ("emb", (256,))]:
        n = int(np.prod(shape))
        raw = _blocks(n // per, nb, halves).tobytes()
        if q == "BF16":
            raw = (RNG.standard_normal(n).astype(np.float32).view(np.uint32) >> 16).astype(
                np.uint16).tobytes()
        tensors.append((name, shape, t, raw))
    tensors.append(("plain", (4,), 0, np.arange(4, dtype=np.float32).tobytes()))
    _gguf_file(tmp_path / "q.gguf", tensors)
    e, m = mx.load(str(tmp_path / "q.gguf")), mlx.load(str(tmp_path / "q.gguf"))
    if q != "Q4_K":
        _same_dict(e, m)
        return
    # upstream's Q4_K reuses each 64-value chunk's first scale/min for its second half;
    # Ember follows the format: equal to upstream on first halves, to the format on all
    assert set(e) == set(m)
    for name, shape, _, raw in tensors[:-1]:
        got, want = np_of(e[name]), np_of(m[name])
        assert e[name].dtype == mx.float16 and got.shape == want.shape
        np.testing.assert_array_equal(got.reshape(-1, 2, 32)[:, 0], want.reshape(-1, 2, 32)[:, 0])
        np.testing.assert_allclose(got.reshape(-1), _q4_k_reference(raw), rtol=1e-3, atol=1e-3)


def _q4_k_reference(raw):
    """llama.cpp's dequantize_row_q4_K, in numpy."""
    b = np.frombuffer(raw, np.uint8).reshape(-1, 144)
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
    dmin = b[:, 2:4].copy().view(np.float16).astype(np.float32)
    s = b[:, 4:16].astype(np.int32)
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)], 1)
    mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], 1)
    out = np.empty((len(b), 256), np.float32)
    for j in range(8):
        qs = b[:, 16 + 32 * (j // 2): 48 + 32 * (j // 2)]
        q = (qs & 15) if j % 2 == 0 else (qs >> 4)
        out[:, 32 * j:32 * j + 32] = d * sc[:, j:j + 1] * q - dmin * mn[:, j:j + 1]
    return out.reshape(-1)


def test_gguf_q4_0_dequantizes_to_the_format(tmp_path):
    # the triple means what the GGUF block means: w = d * (q - 8)
    b = _blocks(8, 18, [0])
    _gguf_file(tmp_path / "q.gguf", [("a.weight", (2, 128), 2, b.tobytes())])
    e = mx.load(str(tmp_path / "q.gguf"))
    w = mlx.dequantize(mlx.array(np.array(e["a.weight"])), mlx.array(np.array(e["a.scales"])),
                       mlx.array(np.array(e["a.biases"])), group_size=32, bits=4)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)
    q = np.concatenate([b[:, 2:] & 0xF, b[:, 2:] >> 4], 1).astype(np.float32)
    np.testing.assert_allclose(np.array(w).reshape(8, 32), d * (q - 8), rtol=1e-3, atol=1e-3)


def test_gguf_layout_alignment_and_errors(tmp_path):
    kv = [("general.alignment", (4, struct.pack("<I", 64))),
          ("arr", (9, struct.pack("<IQ", 0, 0)))]
    _gguf_file(tmp_path / "a.gguf", [("w", (2, 3), 0, np.ones(6, np.float32).tobytes()),
                                     ("v", (5,), 26, np.arange(5, dtype=np.int32).tobytes())],
               kv, align=64)
    e = mx.load(str(tmp_path / "a.gguf"), return_metadata=True)
    m = mlx.load(str(tmp_path / "a.gguf"), return_metadata=True)
    _same_dict(e[0], m[0])
    _same_dict(e[1], m[1])
    # a type upstream cannot load (Q5_0): both raise
    _gguf_file(tmp_path / "b.gguf", [("w", (32,), 6, b"\0" * 22)])
    with pytest.raises(RuntimeError):
        mlx.load(str(tmp_path / "b.gguf"))
    with pytest.raises(ValueError, match="b.gguf"):
        mx.load(str(tmp_path / "b.gguf"))


# -- laziness ---------------------------------------------------------------------------

def _write_st(path, header, data):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(h)) + h + data)


def test_safetensors_is_lazy(tmp_path, monkeypatch):
    p = tmp_path / "x.safetensors"
    header = {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
              "y": {"dtype": "BF16", "shape": [2], "data_offsets": [12, 16]}}
    _write_st(p, header, np.arange(3, dtype=np.float32).tobytes() + b"\x80\x3f\x00\x40")
    from ember.core._io.read import Source
    reads = []
    orig = Source.readinto
    data_at = p.stat().st_size - 16
    monkeypatch.setattr(Source, "readinto", lambda s, o, b: (reads.append(o), orig(s, o, b)))
    e, m = mx.load(str(p)), mlx.load(str(p))
    assert all(o < data_at for o in reads)  # the header only: no tensor bytes read yet
    reads.clear()
    # the data is read when evaluated: a change to the file after `load` shows up, as upstream
    _write_st(p, header, np.full(3, 7, np.float32).tobytes() + b"\x80\x3f\x00\x40")
    _same_dict(e, m)
    assert len(reads) == 2 and np_of(e["x"]).tolist() == [7, 7, 7]
    assert e["y"].dtype == mx.bfloat16 and np_of(e["y"]).tolist() == [1.0, 2.0]


def test_lazy_survives_rename_and_delete(tmp_path):
    p = tmp_path / "x.safetensors"
    mx.save_safetensors(str(p), {"x": mx.arange(4)})
    x = mx.load(str(p))["x"]
    os.remove(p)
    assert np_of(x).tolist() == [0, 1, 2, 3]


# -- file-like objects, paths, extensions -------------------------------------------------

def test_file_like_objects(tmp_path):
    e, m = _pair((2, 3), "bfloat16")
    for fmt, e_save, m_save in [
            ("npy", lambda f: mx.save(f, e), lambda f: mlx.save(f, m)),
            ("npz", lambda f: mx.savez(f, a=e), lambda f: mlx.savez(f, a=m)),
            ("safetensors", lambda f: mx.save_safetensors(f, {"a": e}, {"k": "v"}),
             lambda f: mlx.save_safetensors(f, {"a": m}, {"k": "v"}))]:
        be, bm = io.BytesIO(), io.BytesIO()
        e_save(be)
        m_save(bm)
        be.seek(0)
        bm.seek(0)
        got_m = mlx.load(be, format=fmt)
        got_e = mx.load(bm, format=fmt)
        be.close()  # file-like objects are read at load time
        if fmt == "npy":
            _same(got_e, got_m)
        else:
            _same_dict(got_e, got_m)
    # a named binary file: the format comes from its name
    with open(tmp_path / "f.safetensors", "wb") as f:
        mx.save_safetensors(f, {"a": e})
    with open(tmp_path / "f.safetensors", "rb") as f:
        got = mx.load(f)
    _same(got["a"], m)
    # GGUF through a file-like object (upstream only takes paths)
    b = io.BytesIO()
    mx.save_gguf(b, {"a": mx.ones((2, 3))}, {"k": "v"})
    b.seek(0)
    arrays, md = mx.load(b, format="gguf", return_metadata=True)
    assert md == {"k": "v"} and np_of(arrays["a"]).tolist() == [[1] * 3] * 2


def test_paths_and_extensions(tmp_path):
    a = mx.arange(3)
    cases = [(mx.save, mlx.save, (a,), ".npy"), (mx.savez, mlx.savez, (a,), ".npz"),
             (mx.save_safetensors, mlx.save_safetensors, ({"a": a},), ".safetensors"),
             (mx.save_gguf, mlx.save_gguf, ({"a": a}, {}), ".gguf")]
    for e_fn, m_fn, args, ext in cases:
        for stem in ["plain", "dotted.bin"]:
            e_fn(str(tmp_path / f"e_{stem}"), *args)
            m_args = [{k: mlx.array(np.array(v)) for k, v in x.items()} if isinstance(x, dict)
                      else mlx.array(np.array(x)) for x in args]
            m_fn(str(tmp_path / f"m_{stem}"), *m_args)
        e_fn(pathlib.Path(tmp_path / f"p{ext}"), *args)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"{s}_{stem}{ext}" for s in "em" for stem in ["plain", "dotted.bin"]
         for _, _, _, ext in cases] + [f"p{ext}" for *_, ext in cases])
    assert np_of(mx.load(tmp_path / "p.npy")).tolist() == [0, 1, 2]


def test_stream_argument(tmp_path):
    mx.save(str(tmp_path / "a.npy"), mx.arange(3))
    x = mx.load(str(tmp_path / "a.npy"), stream=mx.cpu)
    assert np_of(x).tolist() == [0, 1, 2]
    y = mx.load(str(tmp_path / "a.npy"), stream=mx.default_stream(mx.default_device()))
    assert np_of(y + 1).tolist() == [1, 2, 3]


# -- errors -------------------------------------------------------------------------------

def _both_raise(fn, exc_mlx, exc_ember=None, match=None):
    with pytest.raises(exc_mlx):
        fn(mlx)
    with pytest.raises(exc_ember or exc_mlx, match=match):
        fn(mx)


def test_load_argument_errors(tmp_path):
    mx.save(str(tmp_path / "a.npy"), mx.arange(3))
    p = str(tmp_path / "a.npy")
    (tmp_path / "noext").write_bytes(b"")
    _both_raise(lambda m: m.load(str(tmp_path / "noext")), ValueError)
    _both_raise(lambda m: m.load(p, format="foo"), ValueError, match="Unknown file format")
    _both_raise(lambda m: m.load(str(tmp_path / "a.foo")), ValueError)
    _both_raise(lambda m: m.load(p, return_metadata=True), ValueError, match="metadata")
    _both_raise(lambda m: m.load(str(tmp_path / "missing.npy")), RuntimeError)
    _both_raise(lambda m: m.load(123), ValueError)
    _both_raise(lambda m: m.load(p, format=3), TypeError)
    _both_raise(lambda m: m.load(None), TypeError)
    for flag in (1, 0, None, "yes", np.bool_(True)):  # a bool only
        _both_raise(lambda m, flag=flag: m.load(p, return_metadata=flag), TypeError)


def test_load_text_mode_file(tmp_path):
    # a file opened in text mode is refused as upstream does, not decoded
    writers = {"npy": lambda m, f: m.save(f, m.arange(3)),
               "npz": lambda m, f: m.savez(f, a=m.arange(3)),
               "safetensors": lambda m, f: m.save_safetensors(f, {"a": m.arange(3)}),
               "gguf": lambda m, f: m.save_gguf(f, {"a": m.ones(3)})}
    for fmt, write in writers.items():
        p = str(tmp_path / f"a.{fmt}")
        write(mlx, p)
        for m in (mlx, mx):
            for kw in ({}, {"format": fmt}):
                with open(p) as f, pytest.raises(ValueError, match="Input must be a") as info:
                    m.load(f, **kw)
                assert not isinstance(info.value, UnicodeError)


CORRUPT = {
    "npy": [b"", b"hello world", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}  \n",
            b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
            b"                 \n\0\0\0\0"],
    "npz": [b"", b"hello world", b"PK\x03\x04garbage"],
    "safetensors": [b"", b"\1\2", struct.pack("<Q", 500) + b"{}", struct.pack("<Q", 5) + b"{abc}",
                    struct.pack("<Q", 3) + b"[1]",
                    struct.pack("<Q", 56) + b'{"x":{"dtype":"F32","shape":[3],"data_offsets"'
                    b':[0,12]}}' + b"\0" * 4,
                    struct.pack("<Q", 55) + b'{"x":{"dtype":"F32","shape":[3],"data_offsets"'
                    b':[0,8]}}' + b"\0" * 12,
                    struct.pack("<Q", 54) + b'{"x":{"dtype":"Q9","shape":[3],"data_offsets"'
                    b':[0,3]}}' + b"\0" * 3],
    "gguf": [b"", b"hello world", b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + b"\0" * 8,
             b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" +
             struct.pack("<I", 99)],
}


@pytest.mark.parametrize("fmt", list(CORRUPT))
def test_corrupt_files_raise_value_error_naming_the_file(tmp_path, fmt):
    for i, data in enumerate(CORRUPT[fmt]):
        p = tmp_path / f"bad{i}.{fmt}"
        p.write_bytes(data)
        with pytest.raises(Exception):  # noqa: B017 - upstream raises too (its types vary)
            mlx.eval(mlx.load(str(p)))
        with pytest.raises(ValueError, match=f"bad{i}") as info:
            mx.eval(mx.load(str(p)))
        assert isinstance(info.value, RuntimeError)  # upstream's type for most of these


def test_mislabeled_file(tmp_path):
    mx.save_safetensors(str(tmp_path / "a.safetensors"), {"a": mx.ones(3)})
    os.rename(tmp_path / "a.safetensors", tmp_path / "a.npy")
    with pytest.raises(ValueError, match="a.npy"):
        mx.load(str(tmp_path / "a.npy"))
    with pytest.raises(ValueError, match="a.npy"):
        mx.load(str(tmp_path / "a.npy"), format="gguf")


def test_truncated_after_load_raises_at_eval(tmp_path):
    p = tmp_path / "a.npy"
    mx.save(str(p), mx.arange(100))
    x = mx.load(str(p))
    with open(p, "r+b") as f:
        f.truncate(64)
    with pytest.raises(ValueError, match="a.npy"):
        mx.eval(x)


def test_save_argument_errors(tmp_path):
    d = str(tmp_path / "x")
    _both_raise(lambda m: m.save(d, np.ones(3)), TypeError)
    _both_raise(lambda m: m.save(3, m.ones(3)), ValueError)
    _both_raise(lambda m: m.savez(d, m.ones(2), arr_0=m.ones(2)), ValueError, match="arr_0")
    _both_raise(lambda m: m.savez(d, 1), RuntimeError)
    _both_raise(lambda m: m.save_safetensors(d, [m.ones(2)]), TypeError)
    _both_raise(lambda m: m.save_safetensors(d, {1: m.ones(2)}), RuntimeError)
    _both_raise(lambda m: m.save_safetensors(d, {"a": np.ones(2)}), RuntimeError)
    _both_raise(lambda m: m.save_safetensors(d, {"a": m.ones(2)}, {"k": 1}), ValueError)
    for dt in ["bool_", "uint8", "uint32", "int64", "float64", "bfloat16", "complex64"]:
        _both_raise(lambda m: m.save_gguf(d, {"a": m.ones(2, getattr(m, dt))}, {}),
                    RuntimeError, match="not supported")
    for v, exc in [(1, RuntimeError), (1.5, RuntimeError), ([1, 2], RuntimeError),
                   ("ones22", RuntimeError), ("empty", RuntimeError), ("float16", ValueError),
                   ("bfloat16", ValueError), ("complex64", ValueError)]:
        def fn(m, v=v):
            val = v
            if v == "ones22":
                val = m.ones((2, 2))
            elif v == "empty":
                val = m.array([], m.float32)
            if v in ("float16", "bfloat16", "complex64"):
                val = m.array(1, getattr(m, v))
            m.save_gguf(d, {}, {"k": val})
        _both_raise(fn, exc)
    _both_raise(lambda m: m.save(str(tmp_path / "no" / "dir.npy"), m.ones(2)), RuntimeError)
    # a missing target or a metadata that is no dict are argument types upstream refuses
    for save in (lambda m, f: m.save(f, m.ones(2)), lambda m, f: m.savez(f, m.ones(2)),
                 lambda m, f: m.savez_compressed(f, a=m.ones(2)),
                 lambda m, f: m.save_safetensors(f, {"a": m.ones(2)}),
                 lambda m, f: m.save_gguf(f, {"a": m.ones(2)}, {})):
        _both_raise(lambda m, save=save: save(m, None), TypeError)
    for meta in ([("k", "v")], "kv"):
        _both_raise(lambda m, meta=meta: m.save_safetensors(d, {"a": m.ones(2)}, meta),
                    TypeError)


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "w.gguf"
    with pytest.raises(RuntimeError):
        mx.save_gguf(str(target), {"a": mx.ones(2), "b": mx.ones(2, mx.int64)}, {})
    assert os.listdir(tmp_path) == []
    # a save that fails half-way keeps the old file and leaves no temporary behind
    mx.save_safetensors(str(tmp_path / "w.safetensors"), {"a": mx.arange(3)})
    import ember.core._io as eio
    from ember.core._io import safetensors as st
    calls = []

    def boom(a):
        calls.append(a)
        if len(calls) == 2:
            raise OSError("disk full")
        return eio.raw_numpy(a)
    monkeypatch.setattr(st, "raw_numpy", boom)
    with pytest.raises(OSError):
        mx.save_safetensors(str(tmp_path / "w.safetensors"), {"a": mx.ones(4), "b": mx.ones(5)})
    assert os.listdir(tmp_path) == ["w.safetensors"]
    assert np_of(mx.load(str(tmp_path / "w.safetensors"))["a"]).tolist() == [0, 1, 2]
    for e_save, ext in [(lambda p: mx.savez(p, mx.ones(2), arr_0=mx.ones(2)), ".npz"),
                        (lambda p: mx.save_safetensors(p, {"a": mx.ones(2)}, {"k": 1}),
                         ".safetensors")]:
        with pytest.raises(ValueError):
            e_save(str(tmp_path / "z"))
        assert not os.path.exists(tmp_path / f"z{ext}")
    assert os.listdir(tmp_path) == ["w.safetensors"]


@pytest.mark.parametrize("name", ["missing.npz", "missing.npy", "missing.safetensors",
                                  "missing.gguf"])
def test_unopenable_paths_raise_like_upstream(tmp_path, name):
    """A path that does not open: upstream's error type and words, by format."""
    path = str(tmp_path / name)
    got = []
    for m in (mlx, mx):
        with pytest.raises(Exception) as err:
            m.load(path)
        got.append((type(err.value), str(err.value)))
    assert got[1] == got[0]


@pytest.mark.parametrize("ext", ["npy", "npz", "safetensors", "gguf"])
def test_folder_raises_like_upstream(tmp_path, ext):
    """A folder opens but cannot be read: upstream's type (and op) for a short read."""
    path = tmp_path / f"a_folder.{ext}"
    path.mkdir()
    with pytest.raises(Exception) as want:
        mlx.load(str(path))
    with pytest.raises(type(want.value)) as got:
        mx.load(str(path))
    assert str(got.value).split("]")[0] == str(want.value).split("]")[0]
