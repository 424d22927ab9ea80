"""The lazy file read: a source primitive whose kernel reads a byte range of a file (or of
bytes held in memory) and decodes it, so a loaded array costs nothing until evaluated."""

import os

from ember.core.primitives.base import Primitive


class FormatError(ValueError, RuntimeError):
    """A corrupt, truncated or mislabeled file. A ValueError as Ember promises, and a
    RuntimeError as upstream raises for most such files, so either `except` works."""


class Source:
    """Where the bytes come from: an open file descriptor (held until the last array that
    reads from it is evaluated, so renaming or deleting the file after `load` is harmless),
    or a bytes object read eagerly from a file-like object."""

    __slots__ = ("name", "fd", "data", "size", "op", "__weakref__")

    def __init__(self, name, fd=None, data=None):
        self.name, self.fd, self.data = name, fd, data
        # the op named by short-read errors: upstream's generic reader unless the format
        # reader claims it
        self.op = "read"
        self.size = os.fstat(fd).st_size if fd is not None else len(data)

    def readinto(self, offset, buf):
        """Fill memoryview `buf` (bytes) from `offset`."""
        n = len(buf)
        if self.data is not None:
            if offset + n > len(self.data):
                raise FormatError(f"[{self.op}] Unexpected end of data in {self.name}.")
            buf[:] = self.data[offset:offset + n]
            return
        done = 0
        while done < n:
            got = os.preadv(self.fd, [buf[done:]], offset + done)
            if got <= 0:
                raise FormatError(f"[{self.op}] Unexpected end of file {self.name}: it was "
                                  f"truncated after loading.")
            done += got

    def read(self, offset, n):
        b = bytearray(n)
        self.readinto(offset, memoryview(b))
        return bytes(b)

    def __del__(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class FileRead(Primitive):
    """`nbytes` bytes at `offset` of `source`, decoded by `kind` into arrays of `shapes`
    and `dtypes` (several outputs for GGUF's quantized triples).

    kinds: "raw" (the bytes are the array; `order` "C", "F" or "swap" for big-endian),
    "bf16_f16", "q4_0", "q4_1", "q8_0" (to affine triples), "q2_k", "q4_k", "q6_k"
    (dequantized to float16)."""

    __slots__ = ("source", "offset", "nbytes", "shapes", "dtypes", "kind", "order", "tdevice")
    name = "Load"

    def __init__(self, source, offset, nbytes, shapes, dtypes, kind, order, tdevice):
        self.source, self.offset, self.nbytes = source, offset, nbytes
        self.shapes, self.dtypes, self.kind, self.order = shapes, dtypes, kind, order
        self.tdevice = tdevice

    def params(self):
        return (id(self.source), self.offset, self.nbytes, self.shapes, self.dtypes,
                self.kind, self.order, self.tdevice)
