"""Ember's file format for exported functions (`.mlxfn` files written by Ember).

Layout: the magic `EMBERFN1`, the length of a JSON header (8 bytes, little endian), the
header, then the constants' bytes. The header holds the format version, `shapeless`,
the metadata string, the table of constants (dtype, shape, offset, size) and the traces.
A trace lists its positional and keyword inputs (name, shape, dtype), its outputs, the
constants it uses, and its primitives in evaluation order: the primitive's class and the
value of each of its slots, encoded as tagged JSON so that tuples, slices, dtypes and
the like come back as they were.
"""

import json
import struct

import numpy as np

from ember.core import _backend as B
from ember.core import dtypes as D
from ember.core._backend import export as BX
from ember.core._backend.kernels import KERNELS

MAGIC = b"EMBERFN1"
VERSION = 1


class ExportError(ValueError):
    pass


# -- primitive parameters ---------------------------------------------------------------

_PY_TYPES = {t.__name__: t for t in (bool, int, float, complex, str)}


def encode_value(v):
    t = type(v)
    if v is None or t in (bool, int, str):
        return v
    if t is float:
        return {"f": repr(v)}  # repr keeps inf, nan and -0.0 exactly
    if t is tuple:
        return {"t": [encode_value(x) for x in v]}
    if t is list:
        return {"l": [encode_value(x) for x in v]}
    if t is dict:
        return {"m": [[encode_value(k), encode_value(x)] for k, x in v.items()]}
    if t is frozenset:  # (attention's argnums to save for a vjp)
        return {"fs": [encode_value(x) for x in sorted(v, key=repr)]}
    if t is slice:
        return {"s": [encode_value(v.start), encode_value(v.stop), encode_value(v.step)]}
    if t is complex:
        return {"c": [repr(v.real), repr(v.imag)]}
    if v is Ellipsis:
        return {"e": 0}
    if t is D.Dtype:
        return {"d": v.name}
    if t is type and v.__name__ in _PY_TYPES and _PY_TYPES[v.__name__] is v:
        return {"py": v.__name__}
    if t is BX.DEVICE_TYPE:
        return {"dev": 0}  # replayed on the device of the call
    if t is BX.DTYPE_TYPE:
        return {"td": BX.dtype_name(v)}
    if isinstance(v, np.generic):
        return encode_value(v.item())
    raise ExportError(f"a parameter of type {t.__name__} cannot be serialized")


def decode_value(v, tdevice):
    if not isinstance(v, dict):
        return v
    (tag, x), = v.items()
    if tag == "f":
        return float(x)
    if tag == "t":
        return tuple(decode_value(i, tdevice) for i in x)
    if tag == "l":
        return [decode_value(i, tdevice) for i in x]
    if tag == "m":
        return {decode_value(k, tdevice): decode_value(i, tdevice) for k, i in x}
    if tag == "fs":
        return frozenset(decode_value(i, tdevice) for i in x)
    if tag == "s":
        return slice(*(decode_value(i, tdevice) for i in x))
    if tag == "c":
        return complex(float(x[0]), float(x[1]))
    if tag == "e":
        return Ellipsis
    if tag == "d":
        return D._by_name(x)
    if tag == "py":
        return _PY_TYPES[x]
    if tag == "dev":
        return tdevice
    if tag == "td":
        return BX.dtype_of(x)
    raise ValueError(f"[import_function] Unknown parameter tag {tag!r}.")


def _slots(cls):
    names = []
    for c in reversed(cls.__mro__):
        s = c.__dict__.get("__slots__", ())
        for n in (s,) if isinstance(s, str) else s:
            if n not in ("__weakref__", "__dict__") and n not in names:
                names.append(n)
    return names


def class_key(cls):
    # a variant made by subclassing under the same name (the unsigned comparisons, abs,
    # sign...) is told from its base by the count of same-named classes above it
    same = sum(1 for c in cls.__mro__[1:]
               if c.__qualname__ == cls.__qualname__ and c.__module__ == cls.__module__)
    return f"{cls.__module__}:{cls.__qualname__}" + "+" * same


def encode_primitive(p):
    cls = type(p)
    if cls not in KERNELS:
        raise ExportError("it has no kernel")
    state = {n: encode_value(getattr(p, n)) for n in _slots(cls) if hasattr(p, n)}
    if hasattr(p, "__dict__"):
        state.update((k, encode_value(x)) for k, x in vars(p).items())
    return {"cls": class_key(cls), "state": state}


_CLASSES = {}


def decode_primitive(rec, tdevice):
    key = rec["cls"]
    cls = _CLASSES.get(key)
    if cls is None:
        _CLASSES.update((class_key(c), c) for c in KERNELS)
        cls = _CLASSES.get(key)
        if cls is None:
            raise ValueError(f"[import_function] Unknown primitive {key}.")
    p = object.__new__(cls)
    for n, x in rec["state"].items():
        setattr(p, n, decode_value(x, tdevice))
    return p


# -- files ----------------------------------------------------------------------------

def write(path, header, blobs):
    data = json.dumps(header, separators=(",", ":")).encode()
    try:
        f = open(path, "wb")
    except OSError:
        raise RuntimeError(f"[export_function] Failed to open {path}") from None
    with f:
        f.write(MAGIC)
        f.write(struct.pack("<Q", len(data)))
        f.write(data)
        for b in blobs:
            f.write(b)


def _short(missing):
    # upstream's wording when a file ends early
    return RuntimeError(f"[read] Unable to read {missing} bytes from file.")


def read(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raw = b""  # (upstream opens a directory, then reads nothing from it)
    except OSError:
        raise RuntimeError(f"[import_function] Failed to open {path}") from None
    if len(raw) < 8:
        raise _short(8 - len(raw))
    if raw[:8] != MAGIC:
        raise RuntimeError(f"[import_function] {path} is not a function exported by Ember"
                           f"{_upstream_version(raw)}.")
    if len(raw) < 16:
        raise _short(16 - len(raw))
    (n,) = struct.unpack("<Q", raw[8:16])
    if len(raw) < 16 + n:
        raise _short(16 + n - len(raw))
    try:
        header = json.loads(raw[16:16 + n].decode())
    except ValueError:
        raise RuntimeError(f"[import_function] {path} holds a damaged header.") from None
    if header.get("version") != VERSION:
        raise RuntimeError(f"[import_function] Unsupported format version "
                           f"{header.get('version')} in {path}.")
    blob = memoryview(raw)[16 + n:]
    end = max((c["offset"] + c["nbytes"] for c in header["constants"]), default=0)
    if len(blob) < end:
        raise _short(end - len(blob))
    return header, blob


def _upstream_version(raw):
    """Names the MLX version that wrote `raw`, when it is MLX's own format (the length of
    the version string, 8 bytes, then the string), whose primitives Ember cannot read."""
    (n,) = struct.unpack("<Q", raw[:8])
    version = raw[8:8 + n].decode("ascii", "replace") if 0 < n <= 32 else ""
    if version[:1].isdigit() and all(c.isdigit() or c == "." for c in version):
        return f" (it was exported by MLX {version}, whose format Ember does not read)"
    return ""


def constant_record(a, offset):
    """(header entry, bytes) for evaluated array `a` (bfloat16 is kept as float32, exactly)."""
    arr = B.to_numpy(a._tensor(), a._dtype)
    b = arr.tobytes()  # (C order; np.ascontiguousarray would make 0-d arrays 1-d)
    return {"dtype": a.dtype.name, "np": arr.dtype.str, "shape": list(a.shape),
            "offset": offset, "nbytes": len(b)}, b


def constant_value(rec, blob):
    o, n = rec["offset"], rec["nbytes"]
    arr = np.frombuffer(blob[o:o + n], dtype=np.dtype(rec["np"])).reshape(rec["shape"])
    return arr, D._by_name(rec["dtype"])
