"""Every save/load entry point against upstream, side by side: each file is written by
both libraries, each file is read by both, and every result (keys, dtypes, shapes, bits,
metadata) or error (type, and the bracketed op that starts the message) must match what
upstream does with its own file."""

import io
import json
import os
import pathlib
import struct
import zipfile

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import dtype_name, np_of, sample_of

# upstream's savez leaves a ZipFile behind on a failed target, which complains whenever
# it is collected
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ALL = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
       "float16", "bfloat16", "float32", "float64", "complex64"]
GGUF = ["float16", "float32", "int8", "int16", "int32"]
# what each format writes in upstream; the rest must fail the same way
DTYPES = {"npy": ALL, "npz": ALL, "npz_compressed": ALL,
          "safetensors": [d for d in ALL if d != "float64"], "gguf": GGUF}
EXT = {"npy": "npy", "npz": "npz", "npz_compressed": "npz", "safetensors": "safetensors",
       "gguf": "gguf"}
# 0-d, empty, contiguous, transposed and sliced (both non-contiguous)
LAYOUTS = [((), None), ((2, 0, 3), None), ((3, 4), None), ((4, 6), "T"), ((4, 6), "slice")]


def _sample(shape, dt, seed=0):
    return sample_of(np.random.default_rng(seed), shape, dt)


def _make(m, x, dt, view=None):
    a = m.array(x).astype(getattr(m, dt))  # numpy float64 would become float32
    return a.T if view == "T" else a[::2, 1:] if view == "slice" else a


def _arrays(m, dt):
    return [_make(m, _sample(s, dt, i), dt, v) for i, (s, v) in enumerate(LAYOUTS)]


def _save(m, fmt, file, arrays, metadata=None):
    if fmt == "npy":
        return m.save(file, arrays[0])
    if fmt.startswith("npz"):
        fn = m.savez_compressed if fmt == "npz_compressed" else m.savez
        return fn(file, *arrays[:2], **{f"k{i}": a for i, a in enumerate(arrays[2:])})
    named = {f"t{i}": a for i, a in enumerate(arrays)}
    fn = m.save_safetensors if fmt == "safetensors" else m.save_gguf
    return fn(file, named) if metadata is None else fn(file, named, metadata)


def _norm(v):
    if isinstance(v, (mx.array, mlx.array)):
        return ("array", dtype_name(v), tuple(v.shape), np_of(v).tobytes())
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v).__name__, [_norm(x) for x in v]
    return v


def _outcome(fn):
    try:
        return "ok", _norm(fn())
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return "error", e


def _same(got, want):
    """Ember's outcome `got` matches upstream's `want`: equal results, or an error that is
    an instance of upstream's type and names the same op when upstream names one."""
    if want[0] == "error":
        assert got[0] == "error", f"upstream raised {want[1]!r}, Ember returned"
        assert isinstance(got[1], type(want[1])), (got[1], want[1])
        w = str(want[1])
        if w.startswith("[") and not w.startswith("[json."):
            assert str(got[1]).split("]")[0] == w.split("]")[0], (got[1], want[1])
        return
    assert got[0] == "ok", f"Ember raised {got[1]!r}, upstream returned"
    assert got[1] == want[1]


def _both_write(tmp_path, fn):
    """Writes with each library into its own folder; their outcomes and file paths."""
    out = {}
    for m in (mlx, mx):
        d = tmp_path / m.__name__
        d.mkdir()
        out[m] = _outcome(lambda: fn(m, d)), d
    return out


# -- every dtype and layout, written by each side, read by each side ---------------------

@pytest.mark.parametrize("dt", ALL)
@pytest.mark.parametrize("fmt", list(DTYPES))
def test_write_and_cross_load(tmp_path, fmt, dt):
    ext = EXT[fmt]
    meta = {"k": "v"} if fmt == "safetensors" else None
    w = _both_write(tmp_path, lambda m, d: _save(m, fmt, str(d / f"a.{ext}"),
                                                 _arrays(m, dt), meta))
    _same(w[mx][0], w[mlx][0])
    if w[mlx][0][0] == "error":
        assert not os.listdir(w[mx][1])  # nothing half-written
        return
    ufile, efile = str(w[mlx][1] / f"a.{ext}"), str(w[mx][1] / f"a.{ext}")
    kw = {} if ext in ("npy", "npz") else {"return_metadata": True}
    want = _outcome(lambda: mlx.load(ufile, **kw))
    assert want[0] == "ok"
    for m, f in ((mx, ufile), (mx, efile), (mlx, efile)):
        _same(_outcome(lambda: m.load(f, **kw)), want)


# -- paths, file objects and load arguments -----------------------------------------------

# Ember reads and writes GGUF through file objects too, where upstream takes only paths
EMBER_ONLY = {("gguf", "file"), ("gguf", "file_format"), ("gguf", "bytesio")}
TARGETS = ["str", "str_no_ext", "pathlib", "pathlib_no_ext", "file", "bytesio"]


def _target(kind, path, ext):
    """Calls save with the file given as `kind`; the file it should land in."""
    base = path / "p"
    if kind == "file":
        return open(base.with_suffix("." + ext), "wb")
    if kind == "bytesio":
        return io.BytesIO()
    t = base if kind.endswith("no_ext") else base.with_suffix("." + ext)
    return t if kind.startswith("pathlib") else str(t)


@pytest.mark.parametrize("kind", TARGETS)
@pytest.mark.parametrize("fmt", list(DTYPES))
def test_save_targets(tmp_path, fmt, kind):
    ext = EXT[fmt]

    def write(m, d):
        t = _target(kind, d, ext)
        _save(m, fmt, t, _arrays(m, "float32"))
        if isinstance(t, io.IOBase):
            data = t.getvalue() if isinstance(t, io.BytesIO) else None
            t.close()
            if data is not None:
                (d / f"p.{ext}").write_bytes(data)
    w = _both_write(tmp_path, write)
    if (fmt, kind) in EMBER_ONLY:
        assert w[mlx][0][0] == "error"
        _save(mlx, fmt, str(w[mlx][1] / f"p.{ext}"), _arrays(mlx, "float32"))
    else:
        _same(w[mx][0], w[mlx][0])
    if w[mlx][0][0] == "ok" or (fmt, kind) in EMBER_ONLY:
        want = _outcome(lambda: mlx.load(str(w[mlx][1] / f"p.{ext}")))
        _same(_outcome(lambda: mx.load(str(w[mx][1] / f"p.{ext}"))), want)


def _read_with(how, m, path, fmt):
    if how == "path":
        return m.load(path)
    if how == "pathlib":
        return m.load(pathlib.Path(path))
    if how == "format":
        return m.load(path, format=fmt)
    if how == "format_positional":
        return m.load(path, fmt)
    if how.startswith("metadata"):
        return m.load(path, fmt, how == "metadata") if how != "metadata_kw" else \
            m.load(path, return_metadata=True)
    if how in ("no_ext", "other_ext"):
        other = path.rsplit(".", 1)[0] + ("" if how == "no_ext" else ".bin")
        pathlib.Path(other).write_bytes(pathlib.Path(path).read_bytes())
        return m.load(other, format=fmt)
    if how == "bytesio":
        return m.load(io.BytesIO(pathlib.Path(path).read_bytes()), format=fmt)
    with open(path, "rb") as f:
        return m.load(f) if how == "file" else m.load(f, format=fmt)


READS = ["path", "pathlib", "format", "format_positional", "metadata", "metadata_false",
         "metadata_kw", "file", "file_format", "bytesio", "no_ext", "other_ext"]


@pytest.mark.parametrize("how", READS)
@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors", "gguf"])
def test_load_arguments(tmp_path, fmt, how):
    path = str(tmp_path / f"a.{fmt}")
    _save(mlx, fmt, path, _arrays(mlx, "float16"), {"k": "v"} if fmt != "npy" else None)
    got = _outcome(lambda: _read_with(how, mx, path, fmt))
    if (fmt, how) in EMBER_ONLY:
        _same(got, _outcome(lambda: _read_with("path", mlx, path, fmt)))
        return
    _same(got, _outcome(lambda: _read_with(how, mlx, path, fmt)))


# -- metadata ------------------------------------------------------------------------------

GGUF_META = {
    "str": "hello", "unicode": "välue ✓", "list_of_str": ["a", "b", "c"], "empty_list": [],
    "tuple_of_str": ("a", "b"),
    **{f"scalar_{d}": ("array", (), d) for d in ALL},
    **{f"vector_{d}": ("array", (3,), d) for d in ALL},
    "matrix": ("array", (2, 2), "float32"), "empty_array": ("array", (0,), "int32"),
    "int": 3, "float": 1.5, "bool": True, "none": None, "bytes": b"xy", "dict": {"a": "b"},
    "list_of_int": [1, 2], "mixed_list": ["a", 1], "nested_list": [["a"]],
    "numpy": np.ones(3, np.float32),
}


@pytest.mark.parametrize("name", list(GGUF_META))
def test_gguf_metadata_values(tmp_path, name):
    v = GGUF_META[name]

    def write(m, d):
        val = _make(m, _sample(v[1], v[2]), v[2]) if isinstance(v, tuple) and \
            v[:1] == ("array",) else v
        m.save_gguf(str(d / "m.gguf"), {"w": m.ones((2, 2))}, {"key": val})
    w = _both_write(tmp_path, write)
    _same(w[mx][0], w[mlx][0])
    if w[mlx][0][0] == "ok":
        want = _outcome(lambda: mlx.load(str(w[mlx][1] / "m.gguf"), return_metadata=True))
        for m, d in ((mx, w[mlx][1]), (mx, w[mx][1]), (mlx, w[mx][1])):
            _same(_outcome(lambda: m.load(str(d / "m.gguf"), return_metadata=True)), want)


ST_META = {"none": None, "empty": {}, "one": {"a": "b"}, "unicode": {"ké": "välue"},
           "int_value": {"a": 1}, "int_key": {1: "a"}, "none_value": {"a": None},
           "list_value": {"a": ["b"]}, "list": [("a", "b")], "str": "ab"}


@pytest.mark.parametrize("name", list(ST_META))
def test_safetensors_metadata(tmp_path, name):
    md = ST_META[name]
    w = _both_write(tmp_path, lambda m, d: _save(m, "safetensors", str(d / "m.safetensors"),
                                                 [m.ones(2)], md))
    _same(w[mx][0], w[mlx][0])
    if w[mlx][0][0] == "ok":
        want = _outcome(lambda: mlx.load(str(w[mlx][1] / "m.safetensors"),
                                         return_metadata=True))
        for m, d in ((mx, w[mlx][1]), (mx, w[mx][1]), (mlx, w[mx][1])):
            _same(_outcome(lambda: m.load(str(d / "m.safetensors"), return_metadata=True)),
                  want)


# -- bad arguments ---------------------------------------------------------------------------

def _p(d, name="x"):
    return str(d / name)


BAD = {
    "save_list": lambda m, d: m.save(_p(d), [1, 2]),
    "save_numpy": lambda m, d: m.save(_p(d), np.ones(2)),
    "save_int_file": lambda m, d: m.save(3, m.ones(2)),
    "save_missing_folder": lambda m, d: m.save(_p(d, "no/x"), m.ones(2)),
    "savez_list": lambda m, d: m.savez(_p(d), [1, 2]),
    "savez_numpy": lambda m, d: m.savez(_p(d), a=np.ones(2)),
    "savez_dict": lambda m, d: m.savez(_p(d), {"a": m.ones(2)}),
    "savez_int_file": lambda m, d: m.savez(3, m.ones(2)),
    "savez_missing_folder": lambda m, d: m.savez(_p(d, "no/x"), m.ones(2)),
    "savez_compressed_missing_folder": lambda m, d: m.savez_compressed(_p(d, "no/x"),
                                                                       m.ones(2)),
    "savez_duplicate": lambda m, d: m.savez(_p(d), m.ones(2), arr_0=m.ones(2)),
    "savez_compressed_int": lambda m, d: m.savez_compressed(_p(d), a=3),
    "safetensors_list": lambda m, d: m.save_safetensors(_p(d), [m.ones(2)]),
    "safetensors_int_key": lambda m, d: m.save_safetensors(_p(d), {1: m.ones(2)}),
    "safetensors_numpy": lambda m, d: m.save_safetensors(_p(d), {"a": np.ones(2)}),
    "safetensors_int_file": lambda m, d: m.save_safetensors(3, {"a": m.ones(2)}),
    "safetensors_missing_folder": lambda m, d: m.save_safetensors(_p(d, "no/x"),
                                                                  {"a": m.ones(2)}),
    "gguf_list": lambda m, d: m.save_gguf(_p(d), [m.ones(2)]),
    "gguf_int_key": lambda m, d: m.save_gguf(_p(d), {1: m.ones(2)}),
    "gguf_numpy": lambda m, d: m.save_gguf(_p(d), {"a": np.ones(2)}),
    "gguf_metadata_list": lambda m, d: m.save_gguf(_p(d), {"a": m.ones(2)}, [("a", "b")]),
    "gguf_metadata_int_key": lambda m, d: m.save_gguf(_p(d), {"a": m.ones(2)}, {1: "b"}),
    "gguf_metadata_str": lambda m, d: m.save_gguf(_p(d), {"a": m.ones(2)}, "ab"),
    "gguf_int_file": lambda m, d: m.save_gguf(3, {"a": m.ones(2)}),
    "gguf_missing_folder": lambda m, d: m.save_gguf(_p(d, "no/x"), {"a": m.ones(2)}),
    "load_int": lambda m, d: m.load(3),
    "load_none": lambda m, d: m.load(None),
    "load_unknown_format": lambda m, d: m.load(_p(d, "a.npy"), format="xyz"),
    "load_format_int": lambda m, d: m.load(_p(d, "a.npy"), format=3),
    "load_format_dot": lambda m, d: m.load(_p(d, "a.npy"), format=".npy"),
    "load_no_extension": lambda m, d: m.load(_p(d, "a")),
    "load_metadata_npy": lambda m, d: m.load(_p(d, "a.npy"), return_metadata=True),
    "load_metadata_npz": lambda m, d: m.load(_p(d, "a.npz"), return_metadata=True),
    "load_metadata_int": lambda m, d: m.load(_p(d, "a.npy"), return_metadata=1),
    **{f"load_missing_{e}": (lambda m, d, e=e: m.load(_p(d, f"no.{e}")))
       for e in ("npy", "npz", "safetensors", "gguf")},
    **{f"load_folder_{e}": (lambda m, d, e=e: m.load(_p(d, f"dir.{e}")))
       for e in ("npy", "npz", "safetensors", "gguf")},
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments(tmp_path, name):
    def run(m, d):
        mx.save(_p(d, "a.npy"), mx.arange(3))
        (d / "a").write_bytes((d / "a.npy").read_bytes())
        mx.savez(_p(d, "a.npz"), a=mx.arange(3))
        for e in ("npy", "npz", "safetensors", "gguf"):
            os.mkdir(_p(d, f"dir.{e}"))
        return BAD[name](m, d)
    w = _both_write(tmp_path, run)
    assert w[mlx][0][0] == "error"
    _same(w[mx][0], w[mlx][0])


# -- corrupt and truncated files ------------------------------------------------------------

def _st(head, data=b""):
    h = json.dumps(head).encode()
    return struct.pack("<Q", len(h)) + h + data


def _npy(text, data=b""):
    h = text.encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def _gguf(version=3, n_tensors=0, n_kv=0, rest=b""):
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + rest + b"\0" * 64


def _zip(**members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for k, v in members.items():
            z.writestr(k.replace("_", "."), v)
    return b.getvalue()


def _good(fmt):
    def make(d):
        p = str(d / f"good.{fmt}")
        _save(mlx, fmt, p, [mlx.arange(64, dtype=mlx.float32)] * 3)
        return pathlib.Path(p).read_bytes()
    return make


CORRUPT = {
    "empty.npy": b"", "empty.npz": b"", "empty.safetensors": b"", "empty.gguf": b"",
    "garbage.npy": b"garbage" * 20, "garbage.npz": b"garbage" * 20,
    "garbage.safetensors": b"garbage" * 20, "garbage.gguf": b"garbage" * 20,
    "bad_json.safetensors": struct.pack("<Q", 5) + b"{abc}",
    "long_header.safetensors": b"\xff" * 8 + b"{}",
    "not_a_dict.safetensors": _st([1, 2]),
    "unknown_dtype.safetensors": _st({"a": {"dtype": "X9", "shape": [1],
                                            "data_offsets": [0, 1]}}, b"\0"),
    "wrong_offsets.safetensors": _st({"a": {"dtype": "F32", "shape": [2],
                                            "data_offsets": [0, 4]}}, b"\0" * 8),
    "past_end.safetensors": _st({"a": {"dtype": "F32", "shape": [4],
                                       "data_offsets": [0, 16]}}, b"\0" * 8),
    "no_dtype.safetensors": _st({"a": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "int_metadata.safetensors": _st({"__metadata__": {"a": 1}}),
    "unicode_descr.npy": _npy("{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }\n",
                              b"\0" * 16),
    "object.npy": _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n",
                       b"\0" * 8),
    "short_data.npy": _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n",
                           b"\0" * 8),
    "bad_magic.gguf": b"GGUX" + b"\0" * 60,
    "bad_kv_type.gguf": _gguf(n_kv=1, rest=struct.pack("<Q", 1) + b"k" +
                              struct.pack("<I", 99)),
    "many_kv.gguf": _gguf(n_kv=1000),
    "zip_header_only.npz": b"PK\x03\x04" + b"\0" * 40,
    "text_member.npz": _zip(x_txt=b"hello"),
    "cut_member.npz": _zip(y_npy=_npy("{'descr': '<f4', 'fortran_order': False, "
                                      "'shape': (4,), }\n", b"\0" * 8)),
    **{f"cut{c}.{f}": (lambda d, f=f, c=c: _good(f)(d)[:c])
       for f in ("npy", "npz", "safetensors", "gguf") for c in (4, 10, 30, 60, -1, -8)},
}


@pytest.mark.parametrize("name", list(CORRUPT))
def test_corrupt_files(tmp_path, name):
    """Ember raises a ValueError naming the file, of upstream's type and op."""
    data = CORRUPT[name]
    p = tmp_path / name
    p.write_bytes(data(tmp_path) if callable(data) else data)

    def load(m):
        r = m.load(str(p))
        m.eval(*(r.values() if isinstance(r, dict) else [r]))
        return r
    want = _outcome(lambda: load(mlx))
    with pytest.raises(ValueError, match=name) as got:
        load(mx)
    if want[0] == "error":
        _same(("error", got.value), want)


@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors", "gguf"])
def test_nameless_file_object_needs_a_format(tmp_path, fmt):
    """A file object without a name and no `format=`: upstream's AttributeError."""
    path = str(tmp_path / f"a.{fmt}")
    _save(mlx, fmt, path, _arrays(mlx, "float32"), None)
    data = pathlib.Path(path).read_bytes()
    got = _outcome(lambda: mx.load(io.BytesIO(data)))
    _same(got, _outcome(lambda: mlx.load(io.BytesIO(data))))
    assert str(got[1]) == "'_io.BytesIO' object has no attribute 'name'"
