"""Kernels of the quantization primitives: packing bit-identical to upstream, and the
quantized products (fused Triton kernels on CUDA for affine 2/4/8-bit, and 3/5/6-bit decode;
dequantize-then-matmul elsewhere).

Packed words are uint32, held as int64 in storage (see `_backend/__init__.py`).
"""

import torch

from ember.core._backend import TORCH
from ember.core._backend.kernels import _INT_OF_SIZE, register
from ember.core.primitives import quantized as P

_MASK32 = 0xFFFFFFFF
# E2M1 code -> value (codes 8-15 are the negatives of 0-7)
_FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
               -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
_TABLES = {}
_CONSTS = {}


def _over(a, c):
    """a / c for a Python float c, as a true division on every device: CUDA's div kernel
    turns a host-scalar divisor into a multiplication by its reciprocal, which can differ
    from the division in the last bit (and so move a quantization step); a divisor tensor
    on a's device keeps the correctly rounded division that CPU and upstream use."""
    key = (a.device, a.dtype, c)
    t = _CONSTS.get(key)
    if t is None:
        t = _CONSTS[key] = torch.full((), c, dtype=a.dtype, device=a.device)
    return a / t


def _fp4_table(device):
    t = _TABLES.get(device)
    if t is None:
        t = _TABLES[device] = torch.tensor(_FP4_VALUES, dtype=torch.float32, device=device)
    return t


# -- bit packing -----------------------------------------------------------------------

def _pack(q, bits):
    """Unsigned codes q (int64, last axis a multiple of 32) as a little-endian bit stream
    cut into 32-bit words."""
    lead, k = q.shape[:-1], q.shape[-1]
    if 32 % bits == 0:
        per = 32 // bits
        shifts = torch.arange(0, 32, bits, device=q.device, dtype=torch.int64)
        return (q.reshape(lead + (k // per, per)) << shifts).sum(-1)
    # 3, 5 and 6 bits: 32 values fill `bits` words exactly; a value may straddle two
    q = q.reshape(lead + (k // 32, 32))
    off = torch.arange(32, device=q.device, dtype=torch.int64) * bits
    word, shift = off // 32, off % 32
    v = q << shift
    words = torch.zeros(q.shape[:-1] + (bits + 1,), dtype=torch.int64, device=q.device)
    idx = word.expand(q.shape)
    words.scatter_add_(-1, idx, v & _MASK32)
    words.scatter_add_(-1, idx + 1, v >> 32)
    return words[..., :bits].reshape(lead + (k * bits // 32,))


def _unpack(w, bits):
    """Codes (int64) from packed words (int64 holding uint32)."""
    lead, nw = w.shape[:-1], w.shape[-1]
    n = (1 << bits) - 1
    if 32 % bits == 0:
        shifts = torch.arange(0, 32, bits, device=w.device, dtype=torch.int64)
        return ((w.unsqueeze(-1) >> shifts) & n).reshape(lead + (nw * 32 // bits,))
    w = w.reshape(lead + (nw // bits, bits))
    w = torch.cat([w, torch.zeros_like(w[..., :1])], -1)
    off = torch.arange(32, device=w.device, dtype=torch.int64) * bits
    word, shift = off // 32, off % 32
    lo = w[..., word] >> shift
    hi = w[..., word + 1] << (32 - shift)
    return ((lo | hi) & n).reshape(lead + (nw * 32 // bits,))


# -- fp8 (E4M3) ------------------------------------------------------------------------

def _signed_448(x):
    """448 with the sign bit of each element of x, NaNs included: read from the bits,
    since CUDA's float16 to float32 conversion drops a NaN's sign."""
    neg = x.view(_INT_OF_SIZE[x.element_size()]) < 0
    return torch.where(neg, -448.0, 448.0)


def to_fp8_bits(x):
    """E4M3 bytes (uint8) of float tensor x, saturating at ±448 (NaN gives 448 of its
    sign)."""
    big = _signed_448(x)
    x = x.float()
    x = torch.where(torch.isnan(x), big, x.clamp(-448.0, 448.0))
    return x.to(torch.float8_e4m3fn).view(torch.uint8)


def _e8m0(e):
    """2^(e - 127) for E8M0 codes e, exactly: CUDA's exp2 is off in the last bits at the
    subnormal end (code 0 is 2^-127); code 255 gives inf as exp2(128) does."""
    e = e.to(torch.int32)
    return torch.where(e == 0, 1 << 22, e << 23).view(torch.float32)


def from_fp8_bits(b, dtype=torch.float32):
    return b.view(torch.float8_e4m3fn).to(torch.float32).to(dtype)


# -- fp4 (E2M1) ------------------------------------------------------------------------

# midpoints between consecutive magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6
_FP4_BOUNDS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


def _to_fp4(x):
    """E2M1 codes (int64) of float32 x (already scaled into ±6); ties round toward zero
    as upstream's do, and values rounding to zero keep code 0 whatever their sign. Larger
    values saturate, except that NaN and magnitudes from 2^27 up give code 0 as upstream's
    CPU conversion does."""
    bounds = torch.tensor(_FP4_BOUNDS, dtype=torch.float32, device=x.device)
    a = x.abs()
    code = torch.bucketize(a, bounds, right=False)
    code = torch.where((x < 0) & (code != 0), code + 8, code)
    return torch.where(a < 2.0 ** 27, code, 0).to(torch.int64)


# -- quantize / dequantize -------------------------------------------------------------

def affine_quantize(w, group_size, bits):
    shape = w.shape
    wf = w.float().reshape(shape[:-1] + (shape[-1] // group_size, group_size))
    n = float((1 << bits) - 1)
    wmax, wmin = wf.amax(-1), wf.amin(-1)
    nan = torch.isnan(wmax)
    # NaN takes no part in a group's range (and gets code 0 below); on the GPU the check
    # would wait for the device, so the masked range is always taken there
    if w.is_cuda or nan.any():
        m = torch.isnan(wf)
        wmax = torch.where(nan, torch.where(m, -torch.inf, wf).amax(-1), wmax)
        wmin = torch.where(nan, torch.where(m, torch.inf, wf).amin(-1), wmin)
    scale = torch.clamp(_over(wmax - wmin, n), min=1e-7)
    if bits == 1:  # upstream anchors 1-bit groups at wmin, without the edge adjustment
        bias = wmin
    else:
        scale, bias = _edge_exact(scale, wmin, wmax)
    q = torch.round((wf - bias.unsqueeze(-1)) / scale.unsqueeze(-1)).clamp_(0, n)
    q = torch.nan_to_num_(q, nan=0.0).to(torch.int64).reshape(shape)
    return _pack(q, bits), scale.to(w.dtype), bias.to(w.dtype)


def _edge_exact(scale, wmin, wmax):
    # the endpoint of larger magnitude becomes exactly representable
    low = wmin.abs() > wmax.abs()
    scale = torch.where(low, scale, -scale)
    edge = torch.where(low, wmin, wmax)
    q0 = torch.round(edge / scale)
    nz = q0 != 0
    scale = torch.where(nz, edge / q0, scale)
    bias = torch.where(nz, edge, torch.zeros_like(edge))
    return scale, bias


def affine_dequantize(w, scales, biases, group_size, bits, dtype):
    q = _unpack(w, bits)
    shape = q.shape
    q = q.reshape(shape[:-1] + (shape[-1] // group_size, group_size)).to(scales.dtype)
    out = q * scales.unsqueeze(-1) + biases.unsqueeze(-1)
    return out.reshape(shape).to(dtype)


def fp_quantize(w, group_size, bits, mode, global_scale=None):
    shape = w.shape
    wf = w.float().reshape(shape[:-1] + (shape[-1] // group_size, group_size))
    maxval = 6.0 if bits == 4 else 448.0
    # the scale is divided out in the input's type
    scale = _over(wf.abs().amax(-1).to(w.dtype), maxval).float().abs()
    if mode == "nvfp4":
        if global_scale is not None:
            scale = scale * (448.0 * 6.0 / global_scale.float())
        s8 = to_fp8_bits(scale)
        div = from_fp8_bits(s8)
    else:
        # E8M0 rounds the scale up to a power of two (an all-zero group gets 2^0); a group
        # holding inf or NaN gets upstream's code (2^1 from float32, 2^-127 from half types)
        # and divides by zero
        b = scale.view(torch.int32)
        e = (b >> 23) + ((b & 0x7FFFFF) != 0).to(torch.int32)
        e = torch.where(scale == 0, torch.full_like(e, 127), e.clamp(0, 255))
        bad = ~torch.isfinite(scale)
        e = torch.where(bad, 128 if w.dtype == torch.float32 else 0, e)
        s8 = e.to(torch.uint8)
        div = torch.where(bad, 0.0, _e8m0(e))
    x = wf / div.unsqueeze(-1)
    if global_scale is not None:
        # the block scale is divided out in the input's type, the global one in float32
        x = x.to(w.dtype).float() * (448.0 * 6.0 / global_scale.float())
    if mode == "nvfp4":
        x = torch.where(div.unsqueeze(-1) == 0, torch.zeros_like(x), x)
    if bits == 4:
        q = _to_fp4(x)
    else:
        # a NaN saturates with upstream's sign: the input NaN's own, minus for 0/0
        # (the x86 default NaN), plus for everything from bfloat16
        big = torch.full_like(x, 448.0)
        if w.dtype != torch.bfloat16:
            big = torch.where(torch.isnan(wf), _signed_448(w).reshape(wf.shape), -big)
        q = to_fp8_bits(torch.where(torch.isnan(x), big, x)).to(torch.int64)
    return _pack(q.reshape(shape), bits), s8


def fp_dequantize(w, scales, group_size, bits, mode, dtype, global_scale=None):
    q = _unpack(w, bits)
    shape = q.shape
    if bits == 4:
        v = _fp4_table(q.device)[q]
    else:
        v = from_fp8_bits(q.to(torch.uint8))
    if mode == "nvfp4":
        s = from_fp8_bits(scales)
        if global_scale is not None:
            s = s * (_over(global_scale.float(), 448.0 * 6.0))
    else:
        s = _e8m0(scales)
    # the product is taken in the output type, where a scale may underflow or overflow
    s = s.to(dtype).unsqueeze(-1)
    v = v.to(dtype).reshape(shape[:-1] + (shape[-1] // group_size, group_size)) * s
    return v.reshape(shape)


# -- kernels ---------------------------------------------------------------------------

@register(P.Quantize)
def _quantize(p, w, global_scale=None):
    if w.numel() == 0:
        lead, k = w.shape[:-1], w.shape[-1]
        outs = [torch.empty(lead + (k * p.bits // 32,), dtype=torch.int64, device=w.device)]
        sdt = w.dtype if p.mode == "affine" else torch.uint8
        outs += [torch.empty(lead + (k // p.group_size,), dtype=sdt, device=w.device)] * (
            2 if p.mode == "affine" else 1)
        return outs
    if p.mode == "affine":
        return affine_quantize(w, p.group_size, p.bits)
    return fp_quantize(w, p.group_size, p.bits, p.mode, global_scale)


def _dequantize(p, w, scales, biases, gs, dtype):
    if p.mode == "affine":
        return affine_dequantize(w, scales, biases, p.group_size, p.bits, dtype)
    return fp_dequantize(w, scales, p.group_size, p.bits, p.mode, dtype, gs)


@register(P.Dequantize)
def _dequantize_k(p, w, scales, *rest):
    biases = rest[0] if p.mode == "affine" else None
    gs = rest[-1] if p.has_gs else None
    return _dequantize(p, w, scales, biases, gs, TORCH[p.dtype])


def _fused(p, x, w):
    """Whether the Triton kernels take this product: affine 2, 4 and 8 bits; 3, 5 and 6
    bits for decode (at most GEMV_MAX_M rows of x, transposed w) only."""
    if not (x.is_cuda and p.mode == "affine" and w.ndim == 2 and x.numel() > 0
            and x.dtype in (torch.float16, torch.bfloat16, torch.float32)):
        return False
    if p.bits in (2, 4, 8):
        return True
    return p.bits in (3, 5, 6) and p.transpose and x.numel() <= 4 * x.shape[-1]


@register(P.QuantizedMatmul)
def _qmm(p, x, w, scales, biases=None):
    if _fused(p, x, w):
        from ember.core._backend import triton_quantized as T
        if T.available():
            return T.quantized_matmul(x, w, scales, biases, p.transpose, p.group_size, p.bits)
    wd = _dequantize(p, w, scales, biases, None, x.dtype)
    return torch.matmul(x, wd.mT if p.transpose else wd)


@register(P.GatherQMM)
def _gather_qmm(p, x, w, scales, *rest):
    lhs, rhs = rest[-2], rest[-1]
    biases = rest[0] if p.mode == "affine" else None
    batch = torch.broadcast_shapes(lhs.shape, rhs.shape)
    lhs = lhs.expand(batch).reshape(-1).long()
    rhs = rhs.expand(batch).reshape(-1).long()
    xf = x.reshape((-1,) + x.shape[-2:])[lhs]
    flat = (-1,) + w.shape[-2:]
    # only the distinct experts are dequantized
    used, inv = torch.unique(rhs, return_inverse=True)
    wq = w.reshape(flat)[used]
    sq = scales.reshape((-1,) + scales.shape[-2:])[used]
    bq = None if biases is None else biases.reshape((-1,) + biases.shape[-2:])[used]
    wd = _dequantize(p, wq, sq, bq, None, x.dtype)[inv]
    out = torch.matmul(xf, wd.mT if p.transpose else wd)
    return out.reshape(batch + out.shape[-2:])


@register(P.ToFP8)
def _to_fp8(p, x):
    return to_fp8_bits(x)


@register(P.FromFP8)
def _from_fp8(p, x):
    return from_fp8_bits(x, TORCH[p.dtype])
