"""The kernel of lazy file reads: read the bytes, move them to the device, decode there
(byte order, Fortran order, GGUF blocks), so dequantization runs on the GPU when the array
lives there."""

import numpy as np
import torch

from ember.core import dtypes as D
from ember.core._backend import to_numpy, to_storage
from ember.core._backend.kernels import register
from ember.core._io.read import FileRead

# the bytes viewed as a torch dtype of the same width (unsigned 16/32-bit as signed: to_storage
# widens and masks them, and torch's uint16/uint32 have few kernels, on CUDA especially)
_VIEW = {
    D.bool_: torch.uint8, D.uint8: torch.uint8, D.uint16: torch.int16,
    D.uint32: torch.int32, D.uint64: torch.int64, D.int8: torch.int8, D.int16: torch.int16,
    D.int32: torch.int32, D.int64: torch.int64, D.float16: torch.float16,
    D.bfloat16: torch.bfloat16, D.float32: torch.float32, D.float64: torch.float64,
    D.complex64: torch.complex64,
}


@register(FileRead)
def _file_read(p):
    buf = torch.empty(p.nbytes, dtype=torch.uint8)
    if p.nbytes:
        p.source.readinto(p.offset, memoryview(buf.numpy()))
    buf = buf.to(p.tdevice)
    if p.kind == "raw":
        return _raw(buf, p.shapes[0], p.dtypes[0], p.order)
    return _DECODE[p.kind](buf, p.shapes)


def raw_numpy(t, dtype):
    """The bytes of tensor `t` (holding `dtype`) as a flat C-ordered numpy array of the
    dtype's own width (bfloat16 as its uint16 bit patterns)."""
    if dtype is D.bfloat16:
        return t.detach().cpu().contiguous().view(torch.int16).numpy().view(np.uint16).reshape(-1)
    return np.ascontiguousarray(to_numpy(t, dtype)).reshape(-1)


def _raw(buf, shape, dtype, order):
    if order.startswith("swap"):  # big-endian: reverse the bytes of each (real) number
        unit = dtype.size // 2 if dtype is D.complex64 else dtype.size
        buf = buf.view(-1, unit).flip(1).reshape(-1)
    t = buf.view(_VIEW[dtype])
    if dtype is D.bool_:
        t = t != 0
    if order.endswith("F"):
        t = t.reshape(shape[::-1]).permute(*reversed(range(len(shape)))).contiguous()
    else:
        t = t.reshape(shape)
    return to_storage(t, dtype)


def _half(blocks, at):
    """The float16 at byte `at` of each block, as float32 (n, 1)."""
    return blocks[:, at:at + 2].contiguous().view(torch.float16).float()


def _bf16_f16(buf, shapes):
    t = buf.view(torch.bfloat16).float().half()
    return t.reshape(shapes[0])


def _pack_words(q, shape):
    """uint8 codes (n, 32/k bytes of packed codes) -> upstream's uint32 words."""
    return to_storage(q.contiguous().view(torch.int32).reshape(shape), D.uint32)


def _nibbles(qs):
    # GGUF keeps elements 0-15 in the low nibbles and 16-31 in the high ones; upstream's
    # packing puts element i in nibble i, so pair (2k, 2k+1) shares byte k
    e = torch.cat([qs & 0xF, qs >> 4], dim=1)
    return e[:, 0::2] | (e[:, 1::2] << 4)


def _affine(buf, shapes, nb, kind):
    b = buf.view(-1, nb)
    d = b[:, 0:2].contiguous().view(torch.float16)
    if kind == "q8_0":
        w = _pack_words(b[:, 2:] ^ 0x80, shapes[0])
        bias = d * -128
    elif kind == "q4_0":
        w = _pack_words(_nibbles(b[:, 2:]), shapes[0])
        bias = d * -8
    else:
        w = _pack_words(_nibbles(b[:, 4:]), shapes[0])
        bias = b[:, 2:4].contiguous().view(torch.float16)
    return w, d.reshape(shapes[1]), bias.reshape(shapes[2])


def _q2_k(buf, shapes):
    b = buf.view(-1, 84)
    sc, qs = b[:, :16].int(), b[:, 16:80].int()
    d, dmin = _half(b, 80), _half(b, 82)
    # two halves of 32 bytes; each gives four 2-bit planes of 32 values (16 per scale)
    q = (qs.view(-1, 2, 1, 32) >> torch.tensor([0, 2, 4, 6], device=b.device)
         .view(1, 1, 4, 1)) & 3
    q = q.reshape(-1, 16, 16).float()
    dl = (d * (sc & 0xF).float()).unsqueeze(-1)
    ml = (dmin * (sc >> 4).float()).unsqueeze(-1)
    return (dl * q - ml).half().reshape(shapes[0])


def _k4_scales(s):
    """The eight 6-bit (scale, min) pairs packed in Q4_K's 12 bytes."""
    lo_sc, lo_m = s[:, 0:4] & 63, s[:, 4:8] & 63
    hi_sc = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    hi_m = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return torch.cat([lo_sc, hi_sc], 1).float(), torch.cat([lo_m, hi_m], 1).float()


def _q4_k(buf, shapes):
    b = buf.view(-1, 144)
    d, dmin = _half(b, 0), _half(b, 2)
    sc, m = _k4_scales(b[:, 4:16].int())
    qs = b[:, 16:].int().view(-1, 4, 32)
    q = torch.stack([qs & 0xF, qs >> 4], 2).reshape(-1, 8, 32).float()
    d1 = (d * sc).unsqueeze(-1)
    m1 = (dmin * m).unsqueeze(-1)
    return (d1 * q - m1).half().reshape(shapes[0])


def _q6_k(buf, shapes):
    b = buf.view(-1, 210)
    ql = b[:, :128].int().view(-1, 2, 2, 32)
    qh = b[:, 128:192].int().view(-1, 2, 1, 32)
    sc = b[:, 192:208].contiguous().view(torch.int8).float()
    d = _half(b, 208)
    lo = torch.cat([ql & 0xF, ql >> 4], 2)  # (n, 2, 4, 32): planes 0-3 of each half
    hi = (qh >> torch.tensor([0, 2, 4, 6], device=b.device).view(1, 1, 4, 1)) & 3
    q = ((lo | (hi << 4)) - 32).reshape(-1, 16, 16).float()
    return ((d * sc).unsqueeze(-1) * q).half().reshape(shapes[0])


_DECODE = {
    "bf16_f16": _bf16_f16,
    "q4_0": lambda buf, shapes: _affine(buf, shapes, 18, "q4_0"),
    "q4_1": lambda buf, shapes: _affine(buf, shapes, 20, "q4_1"),
    "q8_0": lambda buf, shapes: _affine(buf, shapes, 34, "q8_0"),
    "q2_k": _q2_k, "q4_k": _q4_k, "q6_k": _q6_k,
}
