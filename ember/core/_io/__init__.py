"""File formats behind `load` and the `save*` functions: opening sources, building lazy
arrays over byte ranges, and writing atomically. The formats live beside this file."""

import contextlib
import io
import os
import secrets
import struct

from ember.core._io.read import FileRead, FormatError, Source
from ember.core.array import array, node, nodes

__all__ = ["FormatError", "Source", "Cursor", "open_source", "lazy", "lazy_multi",
           "open_for_write", "raw_numpy", "is_path", "check_array"]


def is_path(file):
    return isinstance(file, (str, os.PathLike))


def open_source(file, op, missing=None):
    """A Source for a path (opened now, read lazily) or a binary file-like object (read
    now, from its current position). `missing(name)` is the error for a path that does
    not open (upstream's words differ by format)."""
    if is_path(file):
        name = os.fsdecode(os.fspath(file))
        missing = missing or (lambda n: RuntimeError(f"[{op}] Failed to open file {n}"))
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError:
            raise missing(name) from None
        if os.path.isdir(name):
            # upstream opens a directory and then fails to read it: an empty file here,
            # so each format reports a short read as it would
            os.close(fd)
            return Source(name, data=b"")
        return Source(name, fd=fd)
    read = getattr(file, "read", None)
    # a text-mode file would fail to decode the bytes (or hand back str)
    if read is None or isinstance(file, io.TextIOBase):
        raise ValueError("[load] Input must be a file-like object opened in binary mode, "
                         "or string")
    data = read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("[load] Input must be a file-like object opened in binary mode, "
                         "or string")
    return Source(str(getattr(file, "name", "<stream>")), data=bytes(data))


def lazy(src, offset, shape, dtype, s, kind="raw", order="C", nbytes=None):
    """A lazy array reading `shape` x `dtype` from `src` at `offset`."""
    if nbytes is None:
        nbytes = _size(shape) * dtype.size
    _check_range(src, offset, nbytes)
    return node(shape, dtype, FileRead(src, offset, nbytes, (shape,), (dtype,), kind, order,
                                       s.tdevice), (), s)


def lazy_multi(src, offset, nbytes, shapes, dtypes, s, kind):
    _check_range(src, offset, nbytes)
    return nodes(shapes, dtypes, FileRead(src, offset, nbytes, shapes, dtypes, kind, "C",
                                          s.tdevice), (), s)


def _check_range(src, offset, nbytes):
    if offset + nbytes > src.size:
        # upstream's words first, then which file and by how much
        raise FormatError(f"[{src.op}] Unable to read from file {src.name}: it is truncated "
                          f"(needs {offset + nbytes} bytes, has {src.size}). Perhaps an "
                          f"incomplete download or corrupt file?")


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Cursor:
    """Sequential little-endian reads from a Source, buffered (headers can be megabytes:
    a GGUF vocabulary)."""

    __slots__ = ("src", "pos", "buf", "start")
    CHUNK = 1 << 20

    def __init__(self, src, pos=0):
        self.src, self.pos, self.buf, self.start = src, pos, b"", pos

    def take(self, n):
        end = self.pos + n - self.start
        if end > len(self.buf):
            if self.pos + n > self.src.size:
                raise FormatError(f"[{self.src.op}] Unable to read {n} bytes from file "
                                  f"{self.src.name}: unexpected end of file.")
            want = min(max(n, self.CHUNK), self.src.size - self.pos)
            self.buf = self.src.read(self.pos, want)
            self.start = self.pos
            end = n
        b = self.buf[self.pos - self.start:end]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def check_array(a, op):
    if not isinstance(a, array):
        raise RuntimeError(f"[{op}] Expected an mlx array, got {type(a).__name__}.")
    return a


def raw_numpy(a):
    """The bytes of array `a` as a flat C-ordered numpy array of its own itemsize
    (bfloat16 as its uint16 bit patterns)."""
    from ember.core._backend.kernels_io import raw_numpy as raw
    return raw(a._tensor(), a._dtype)


# upstream writes .npz from Python, so a bad target fails with Python's own errors
_PYTHON_WRITERS = ("savez", "savez_compressed")


@contextlib.contextmanager
def open_for_write(file, ext, op):
    """A binary file to write into. For a path (`ext` appended when missing) the bytes go
    to a temporary file beside it that replaces the target only once complete, so a
    failed save leaves nothing half-written."""
    if file is None:
        raise TypeError(f"{op}(): file must be a file-like object, str or pathlib.Path, got "
                        f"NoneType.")
    if not is_path(file):
        if not callable(getattr(file, "write", None)):
            error = AttributeError if op in _PYTHON_WRITERS else ValueError
            raise error(f"[{op}] Input must be a file-like object, or string")
        yield file
        return
    path = os.fsdecode(os.fspath(file))
    if not path.endswith(ext):
        path += ext
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as e:
        if op in _PYTHON_WRITERS:  # OSError(errno, ...) is the matching subclass
            raise OSError(e.errno, e.strerror, path) from None
        raise RuntimeError(f"[{op}] Failed to open file {path}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
