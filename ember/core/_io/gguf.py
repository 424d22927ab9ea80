"""The GGUF format (versions 2 and 3, little-endian): header, key/value metadata, tensor
infos (dims innermost first), then aligned tensor data.

Q4_0, Q4_1 and Q8_0 tensors load as upstream's affine triples (packed uint32 weight,
float16 scales and biases, group size 32); Q2_K, Q4_K, Q6_K and BF16 are dequantized to
float16, as upstream does. Ember also reads I64 and F64 tensors, which upstream refuses.
Q4_K follows the format (llama.cpp): each 32-value half of a 64-value chunk has its own
scale and min, where upstream reuses the first half's for the second."""

import struct

import numpy as np

from ember.core import dtypes as D
from ember.core._io import Cursor, FormatError, lazy, lazy_multi, raw_numpy
from ember.core.array import array

MAGIC = b"GGUF"
ALIGN = 32
# metadata value types
_U8, _I8, _U16, _I16, _U32, _I32, _F32, _BOOL, _STR, _ARR, _U64, _I64, _F64 = range(13)
_NP = {_U8: "<u1", _I8: "<i1", _U16: "<u2", _I16: "<i2", _U32: "<u4", _I32: "<i4",
       _F32: "<f4", _BOOL: "<u1", _U64: "<u8", _I64: "<i8", _F64: "<f8"}
_META_TYPE = {D.uint8: _U8, D.int8: _I8, D.uint16: _U16, D.int16: _I16, D.uint32: _U32,
              D.int32: _I32, D.float32: _F32, D.bool_: _BOOL, D.uint64: _U64, D.int64: _I64}
# tensor types: code -> (elements per block, bytes per block, how it loads)
_PLAIN = {0: D.float32, 1: D.float16, 24: D.int8, 25: D.int16, 26: D.int32, 27: D.int64,
          28: D.float64}
_BLOCKS = {30: (1, 2, "bf16_f16"), 2: (32, 18, "q4_0"), 3: (32, 20, "q4_1"),
           8: (32, 34, "q8_0"), 10: (256, 84, "q2_k"), 12: (256, 144, "q4_k"),
           14: (256, 210, "q6_k")}
_SAVE = {D.float32: 0, D.float16: 1, D.int8: 24, D.int16: 25, D.int32: 26}


def _bad(src, what):
    return FormatError(f"[load_gguf] Invalid GGUF file {src.name}: {what}.")


def read(src, s):
    """(arrays, metadata) of the file: arrays lazy."""
    src.op = "load_gguf"
    c = Cursor(src)
    if src.size < 24 or c.take(4) != MAGIC:
        raise FormatError(f"[load_gguf] gguf_init failed: {src.name} is not a GGUF file "
                          f"(bad magic or too short).")
    version, n_tensors, n_kv = c.unpack("<IQQ")
    if version not in (2, 3):
        raise _bad(src, f"unsupported version {version}")
    meta = {}
    for _ in range(n_kv):
        key = _string(c)
        (t,) = c.unpack("<I")
        meta[key] = _value(c, t, src)
    align = meta.get("general.alignment")
    align = int(align.item()) if isinstance(align, array) and align.ndim == 0 else ALIGN
    if align <= 0 or align & (align - 1):
        raise _bad(src, f"alignment {align} is not a power of two")
    infos = []
    for _ in range(n_tensors):
        name = _string(c)
        (nd,) = c.unpack("<I")
        if nd > 8:
            raise _bad(src, f"tensor {name!r} has {nd} dimensions")
        dims = c.unpack(f"<{nd}Q")
        t, off = c.unpack("<IQ")
        infos.append((name, tuple(reversed(dims)), t, off))
    base = c.pos + (-c.pos % align)
    out = {}
    for name, shape, t, off in infos:
        _tensor(out, src, s, name, shape, t, base + off)
    return out, meta


def _tensor(out, src, s, name, shape, t, at):
    dt = _PLAIN.get(t)
    if dt is not None:
        n = dt.size
        for d in shape:
            n *= d
        _in_file(src, name, at, n)
        out[name] = lazy(src, at, shape, dt, s)
        return
    if t not in _BLOCKS:
        raise FormatError(f"[load_gguf] Tensor {name!r} of {src.name} has the GGUF type {t}, "
                          f"which Ember cannot load.")
    per, nb, kind = _BLOCKS[t]
    if not shape or shape[-1] % per:
        raise _bad(src, f"tensor {name!r} of shape {shape} is not made of whole blocks")
    size = 1
    for d in shape:
        size *= d
    nbytes = size // per * nb
    if kind in ("q4_0", "q4_1", "q8_0"):
        bits = 8 if kind == "q8_0" else 4
        # upstream drops the last 7 characters (meant to be ".weight") of any name that
        # long, whatever they are; files and code written for it depend on these names
        prefix = name[:-7] if len(name) >= 7 else name
        lead = shape[:-1]
        shapes = (lead + (shape[-1] * bits // 32,), lead + (shape[-1] // 32,),
                  lead + (shape[-1] // 32,))
        _in_file(src, name, at, nbytes)
        w, sc, bi = lazy_multi(src, at, nbytes, shapes, (D.uint32, D.float16, D.float16), s,
                               kind)
        out[name], out[prefix + ".scales"], out[prefix + ".biases"] = w, sc, bi
    else:
        _in_file(src, name, at, nbytes)
        out[name] = lazy(src, at, shape, D.float16, s, kind=kind, nbytes=nbytes)


def _in_file(src, name, at, nbytes):
    if at > src.size:
        raise FormatError(f"[load_gguf] Tensor '{name}' has a data offset past the end of "
                          f"the file {src.name}. Perhaps an incomplete download or corrupt "
                          f"file?")
    if at + nbytes > src.size:
        raise FormatError(f"[load_gguf] Tensor '{name}' extends past the end of the file "
                          f"{src.name}. Perhaps an incomplete download or corrupt file?")


def _string(c):
    (n,) = c.unpack("<Q")
    if n > c.src.size:
        raise _bad(c.src, "string longer than the file")
    return c.take(n).decode("utf-8", errors="replace")


def _value(c, t, src):
    if t == _STR:
        return _string(c)
    if t == _ARR:
        et, n = c.unpack("<IQ")
        if et == _STR:
            return [_string(c) for _ in range(n)]
        if et == _ARR:
            raise FormatError(f"[load_gguf] {src.name}: only one level of nested arrays can "
                              f"be loaded.")
        return _numbers(c, et, n, src)
    return _numbers(c, t, None, src)


def _numbers(c, t, n, src):
    fmt = _NP.get(t)
    if fmt is None:
        raise _bad(src, f"unknown metadata type {t}")
    k = 1 if n is None else n
    np_dt = np.dtype(fmt)
    if k * np_dt.itemsize > src.size:
        raise _bad(src, "metadata array longer than the file")
    a = np.frombuffer(c.take(k * np_dt.itemsize), np_dt).copy()
    if t == _BOOL:
        a = a != 0
    return array(a.reshape(()) if n is None else a)


# -- writing ------------------------------------------------------------------------

def check(arrays, metadata):
    """Raise as upstream does for what save_gguf cannot write, before anything is written."""
    for a in arrays.values():
        if a.dtype not in _SAVE:
            raise RuntimeError(f"[save_gguf] dtype {a.dtype.name} is not supported")
    for k, v in metadata.items():
        if not isinstance(k, str):
            raise RuntimeError("[save_gguf] Metadata keys must be strings.")
        if isinstance(v, str):
            continue
        if isinstance(v, (list, tuple)):  # upstream takes any sequence of strings
            if not all(isinstance(x, str) for x in v):
                raise RuntimeError("[save_gguf] Metadata lists must hold only strings.")
            continue
        if not isinstance(v, array):
            raise RuntimeError("[save_gguf] Metadata values must be arrays, strings or lists "
                               "of strings.")
        if v.ndim > 1:
            raise RuntimeError("[save_gguf] Cannot save arrays with more than one dimension.")
        if v.size == 0:
            raise RuntimeError("[save_gguf] Cannot save empty arrays.")
        if v.dtype not in _META_TYPE:
            raise ValueError(f"[save_gguf] array type {v.dtype.name} not support for metadata.")


def _pack_str(x):
    b = x.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(v):
    if isinstance(v, str):
        return struct.pack("<I", _STR) + _pack_str(v)
    if isinstance(v, (list, tuple)):
        return struct.pack("<IIQ", _ARR, _STR, len(v)) + b"".join(_pack_str(x) for x in v)
    t = _META_TYPE[v.dtype]
    data = raw_numpy(v).tobytes()
    if v.ndim == 0:
        return struct.pack("<I", t) + data
    return struct.pack("<IIQ", _ARR, t, v.size) + data


def write(f, arrays, metadata):
    parts = [MAGIC, struct.pack("<IQQ", 3, len(arrays), len(metadata))]
    for k, v in metadata.items():
        parts.append(_pack_str(k) + _pack_value(v))
    off = 0
    for k, a in arrays.items():
        dims = tuple(reversed(a.shape))
        parts.append(_pack_str(k) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims,
                                                _SAVE[a.dtype], off))
        off += a.nbytes + (-a.nbytes % ALIGN)
    # padding goes before each tensor's data, none after the last (nor after the header
    # when there are no tensors): byte for byte what upstream writes
    head = b"".join(parts)
    f.write(head)
    pos = len(head)
    for a in arrays.values():
        f.write(b"\0" * (-pos % ALIGN))
        pos += -pos % ALIGN + a.nbytes
        f.write(memoryview(raw_numpy(a)).cast("B"))
