"""The .npy format (NumPy's format 1.0-3.0) and .npz (a zip of .npy files).

bfloat16, which NumPy lacks, is written with descr '<V2' and read back from '<V2' or '|V2',
as upstream MLX does."""

import ast
import io
import os
import struct
import zipfile

from ember.core import dtypes as D
from ember.core._io import Cursor, FormatError, Source, lazy, raw_numpy

MAGIC = b"\x93NUMPY"
_CODES = {
    "b1": D.bool_, "u1": D.uint8, "u2": D.uint16, "u4": D.uint32, "u8": D.uint64,
    "i1": D.int8, "i2": D.int16, "i4": D.int32, "i8": D.int64, "f2": D.float16,
    "f4": D.float32, "f8": D.float64, "c8": D.complex64, "V2": D.bfloat16,
}
_DESCR = {dt: ("|" if dt.size == 1 else "<") + c for c, dt in _CODES.items()}


def header(shape, dtype):
    """The .npy header (version 1.0, or 2.0 when longer than 64 KiB), padded so the data
    starts on a 64-byte boundary."""
    dims = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
    text = f"{{'descr': '{_DESCR[dtype]}', 'fortran_order': False, 'shape': ({dims}), }}"
    for version, fmt in ((1, "<H"), (2, "<I")):
        pre = len(MAGIC) + 2 + struct.calcsize(fmt)
        pad = -(pre + len(text) + 1) % 64
        body = (text + " " * pad + "\n").encode("latin1")
        if version == 2 or len(body) < 1 << 16:
            return MAGIC + bytes([version, 0]) + struct.pack(fmt, len(body)) + body
    raise AssertionError


def write(f, a):
    data = raw_numpy(a)
    f.write(header(a.shape, a.dtype))
    f.write(memoryview(data).cast("B"))


def read(src, s, base=0):
    """The array stored at byte `base` of `src`, read lazily."""
    c = Cursor(src, base)
    start = c.take(8)
    magic, major = start[:6], start[6]
    if magic != MAGIC or major not in (1, 2, 3):
        raise FormatError(f"[load] Invalid header in file {src.name}")
    (n,) = c.unpack("<H" if major == 1 else "<I")
    text = c.take(n).decode("utf-8" if major == 3 else "latin1")
    try:
        h = ast.literal_eval(text)
        descr, fortran, shape = h["descr"], h["fortran_order"], tuple(h["shape"])
        if not (isinstance(descr, str) and isinstance(fortran, bool)
                and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
        raise FormatError(f"[load] Invalid header in file {src.name}") from None
    dtype = _CODES.get(descr[1:]) if len(descr) == 3 else None
    if dtype is None or descr[0] not in "<>|=":
        raise FormatError(f"[from_str] Unsupported array protocol type-string: {descr} "
                          f"(in file {src.name})")
    order = "F" if fortran and len(shape) > 1 else "C"
    if descr[0] == ">" and dtype.size > 1:
        order = "swap" if order == "C" else "swapF"
    return lazy(src, c.pos, shape, dtype, s, order=order)


def read_npz(src, s):
    fp = io.BytesIO(src.data) if src.data is not None else os.fdopen(os.dup(src.fd), "rb")
    out = {}
    with fp:
        try:
            z = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise FormatError("[load_npz] Input must be a zip file or a file-like object "
                              "that can be opened with zipfile.ZipFile: "
                              f"{src.name} is not a valid .npz (zip) file") from None
        for info in z.infolist():
            name = info.filename
            key = name[:-4] if name.endswith(".npy") else name
            try:
                data = z.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
                raise FormatError(f"[load_npz] {src.name} is corrupt: cannot read {name}") \
                    from None
            member = Source(f"{src.name}[{name}]", data=data)
            member.op = "load"  # upstream reads members through a Python stream
            out[key] = read(member, s)
    return out
