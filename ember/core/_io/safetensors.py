"""The .safetensors format: an 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
tensor bytes (offsets relative to the end of the header). Tensors load lazily."""

import json
import struct

from ember.core import dtypes as D
from ember.core._io import Cursor, FormatError, lazy, raw_numpy

_CODES = {
    "BOOL": D.bool_, "U8": D.uint8, "U16": D.uint16, "U32": D.uint32, "U64": D.uint64,
    "I8": D.int8, "I16": D.int16, "I32": D.int32, "I64": D.int64, "F16": D.float16,
    "BF16": D.bfloat16, "F32": D.float32, "F64": D.float64, "C64": D.complex64,
}
_NAMES = {dt: c for c, dt in _CODES.items()}
# F64 loads (files written by other libraries have it) but, as upstream, does not save
_SAVE = set(_NAMES) - {D.float64}
# 8-bit floats have no mlx dtype: upstream hands back their bytes
_BYTES = {"F8_E4M3"}
# upstream calls a header length from here up invalid rather than cut short (Ember still
# reads such a header when the file holds it)
_LONGEST = 10 ** 8


def write(f, arrays, metadata):
    head = {}
    if metadata:
        head["__metadata__"] = dict(metadata)
    off = 0
    for k, a in arrays.items():
        if a.dtype not in _SAVE:
            raise RuntimeError("[save_safetensors] received invalid dtype.")
        n = a.nbytes
        head[k] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for a in arrays.values():
        f.write(memoryview(raw_numpy(a)).cast("B"))


def read(src, s):
    """(arrays, metadata) of the file: arrays lazy, metadata a dict of strings."""
    name = src.name
    (n,) = Cursor(src).unpack("<Q")
    src.op = "load_safetensors"
    if n > src.size - 8 and n >= _LONGEST:
        raise FormatError(f"[load_safetensors] Invalid json header length file {name}: it "
                          f"says {n} bytes, the file has {src.size}.")
    if n > src.size - 8:
        raise FormatError(f"[load_safetensors] The JSON header is {n} bytes long but the "
                          f"file {name} is only {src.size} bytes. Perhaps an incomplete "
                          f"download or corrupt file?")
    try:
        head = json.loads(src.read(8, n))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FormatError(f"[load_safetensors] Invalid json header in file {name}") from None
    if not isinstance(head, dict):
        raise FormatError(f"[load_safetensors] Invalid json metadata file {name}")
    meta = head.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(f"[load_safetensors] Invalid __metadata__ in file {name}: it must "
                          f"map strings to strings")
    base = 8 + n
    out = {}
    for k, info in head.items():
        try:
            code, shape, (b, e) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            ok = (isinstance(code, str) and all(type(d) is int and d >= 0 for d in shape)
                  and type(b) is int and type(e) is int and 0 <= b <= e)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise FormatError(f"[load_safetensors] Invalid entry for tensor '{k}' in file "
                              f"{name}")
        dtype = D.uint8 if code in _BYTES else _CODES.get(code)
        if dtype is None:
            raise FormatError(f"[safetensor] unsupported dtype {code} (tensor '{k}' in "
                              f"file {name})")
        size = 1
        for d in shape:
            size *= d
        if e - b != size * dtype.size:
            raise FormatError(f"[load_safetensors] Tensor '{k}' invalid data offsets "
                              f"({b}, {e}). Expecting {size * dtype.size} bytes (file "
                              f"{name}).")
        if base + e > src.size:
            raise FormatError(f"[load_safetensors] Tensor '{k}' invalid data offsets ({b}, "
                              f"{e}) exceeding the size of the file {name}. Perhaps an "
                              f"incomplete download or corrupt file?")
        out[k] = lazy(src, base + b, shape, dtype, s)
    return out, dict(meta)
