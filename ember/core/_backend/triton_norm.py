"""layer_norm on CUDA in one pass over the rows (Triton).

The backward: dx, and per-program partial sums of the weight's and the bias's
cotangents, which one small reduction adds up. ATen reads x and the cotangent twice (one
kernel for dx, one for the weight and bias, which is slow for many rows of few columns).
On an H100, in graph replay: 8192 x 768 float32 43 us against ATen's 68, bfloat16 31 /
47; 16384 x 1024 1.8-2.0x faster.

The forward of a residual connection's sum (`add_layer_norm`): s = a + b and
layer_norm(s), with s's mean and rstd for the backward, where an add and ATen's norm read
s once more and take two launches.

Sums are float32 whatever the input's dtype, as in ATen's kernels."""

import math

import torch

from ember.core._backend import fusion as F
from ember.core._backend.triton_launch import aligned, device_sms
from ember.core._backend.triton_reduce import middle_sum

_SRC = '''import triton
import triton.language as tl


@triton.jit
def _row(W, N, HAS_W: tl.constexpr, BN: tl.constexpr):
    """(this program, the programs, a row's columns, their mask, the weight in float32)."""
    cols = tl.arange(0, BN)
    m = cols < N
    if HAS_W:
        w = tl.load(W + cols, mask=m, other=0.0).to(tl.float32)
    else:
        w = tl.full((BN,), 1.0, tl.float32)
    return tl.program_id(0), tl.num_programs(0), cols, m, w


@triton.jit
def ln_bwd(X, DY, W, MEAN, RSTD, RES, DX, PART, M, N, HAS_W: tl.constexpr,
           HAS_RES: tl.constexpr, BN: tl.constexpr):
    pid, progs, cols, m, w = _row(W, N, HAS_W, BN)
    acc_w = tl.zeros((BN,), tl.float32)
    acc_b = tl.zeros((BN,), tl.float32)
    for row in range(pid, M, progs):
        x = tl.load(X + row * N + cols, mask=m, other=0.0).to(tl.float32)
        dy = tl.load(DY + row * N + cols, mask=m, other=0.0).to(tl.float32)
        mean = tl.load(MEAN + row)
        rstd = tl.load(RSTD + row)
        xhat = tl.where(m, (x - mean) * rstd, 0.0)
        if HAS_W:
            wdy = dy * w
        else:
            wdy = dy
        c1 = tl.sum(xhat * wdy, 0) / N
        c2 = tl.sum(wdy, 0) / N
        dx = (wdy - (xhat * c1 + c2)) * rstd
        if HAS_RES:  # (a residual's cotangent added on the way out)
            dx += tl.load(RES + row * N + cols, mask=m, other=0.0).to(tl.float32)
        tl.store(DX + row * N + cols, dx.to(DX.dtype.element_ty), mask=m)
        acc_w += dy * xhat
        acc_b += dy
    tl.store(PART + pid * N + cols, acc_w, mask=m)
    tl.store(PART + (progs + pid) * N + cols, acc_b, mask=m)


@triton.jit
def add_ln_fwd(A, B, W, BIAS, S, Y, MEAN, RSTD, M, N, eps, HAS_W: tl.constexpr,
               HAS_B: tl.constexpr, BN: tl.constexpr):
    pid, progs, cols, m, w = _row(W, N, HAS_W, BN)
    if HAS_B:
        bias = tl.load(BIAS + cols, mask=m, other=0.0).to(tl.float32)
    for row in range(pid, M, progs):
        s = tl.load(A + row * N + cols, mask=m, other=0.0) + tl.load(B + row * N + cols,
                                                                     mask=m, other=0.0)
        tl.store(S + row * N + cols, s, mask=m)  # (rounded to the inputs' dtype, as the add)
        x = s.to(tl.float32)
        mean = tl.sum(x, 0) / N
        xc = tl.where(m, x - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, 0) / N + eps)
        y = xc * rstd
        if HAS_W:
            y = y * w
        if HAS_B:
            y = y + bias
        tl.store(Y + row * N + cols, y.to(Y.dtype.element_ty), mask=m)
        tl.store(MEAN + row, mean)
        tl.store(RSTD + row, rstd)
'''
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_COLS = 8192  # a row lives in registers
# below this many elements ATen's kernels win: their GPU time is short (7.6 us for 1024 x
# 256 against 13.8) and their host time is less than half of this wrapper's (21 us / 48)
MIN_SIZE = 2**21


def layer_norm_backward(x, g, w, mean, rstd, res=None):
    """(dx, dw, db) of layer_norm over the last axis of CUDA tensors (dw None without a
    weight; dw and db float32), dx plus `res` where given (of x's shape and dtype), or
    None where the kernel does not run."""
    if not x.is_cuda or not fits(x.shape, x.dtype):
        return None
    launch = F.launcher("ln_bwd", _SRC)
    if launch is None:  # (no Triton: ATen's kernels)
        return None
    rows, n, dev, progs, bn, opts = _rows(x)
    x2 = x.reshape(rows, n).contiguous()
    g2 = g.reshape(rows, n).contiguous()
    dx = torch.empty_like(x2)
    has_res = res is not None
    r2 = res.reshape(rows, n).contiguous() if has_res else x2
    part = torch.empty((2, progs, n), dtype=torch.float32, device=x.device)
    has_w = w is not None
    mean, rstd = mean.reshape(rows), rstd.reshape(rows)
    args = (x2, g2, w if has_w else x2, mean, rstd, r2, dx, part, rows, n)
    # what Triton specializes on: dtypes, the sizes, the pointers' alignment
    key = (x.dtype, rows, n, has_w, w.dtype if has_w else None, mean.dtype, progs,
           r2.dtype if has_res else None, tuple(aligned(t) for t in args[:6]))
    launch(key, (progs, 1, 1), args, {"HAS_W": has_w, "HAS_RES": has_res, "BN": bn}, opts,
           dev)
    # (ATen's sum over the middle axis takes 12 us for 8192 x 768 on an H100)
    sums = middle_sum(part, 2, progs, n, force=True)
    if sums is None:  # (one program)
        sums = part.sum(1)
    return dx.view(x.shape), (sums[0] if has_w else None), sums[1]


def fits(shape, dtype):
    """Whether a layer norm of this shape and dtype (a torch dtype) on CUDA runs on these
    kernels (larger than MIN_SIZE, a row of at most MAX_COLS)."""
    n = shape[-1] if shape else 0
    return dtype in _DTYPES and 0 < n <= MAX_COLS and MIN_SIZE <= math.prod(shape) < 2**31


def _rows(x):
    """(rows, columns, device index, programs, the row's block, launch options) of the
    kernels over the last axis of `x`: each program loops over every programs-th row."""
    n = x.shape[-1]
    rows = x.numel() // n
    dev, sms = device_sms(x)
    bn = max(16, 1 << (n - 1).bit_length())
    return (rows, n, dev, max(1, min(rows, 4 * sms)), bn,
            {"num_warps": 4 if bn <= 1024 else 8})


def add_layer_norm(a, b, w, bias, eps):
    """(a + b, layer_norm(a + b) [* w] [+ bias], mean, rstd) of same-shape CUDA tensors of
    one dtype (mean and rstd float32, shaped as ATen's: a trailing 1), or None where the
    kernel does not run."""
    if not a.is_cuda or not fits(a.shape, a.dtype):
        return None
    launch = F.launcher("add_ln_fwd", _SRC)
    if launch is None:
        return None
    rows, n, dev, progs, bn, opts = _rows(a)
    a2, b2 = a.reshape(rows, n).contiguous(), b.reshape(rows, n).contiguous()
    s, y = torch.empty_like(a2), torch.empty_like(a2)
    stat = a.shape[:-1] + (1,)
    mean = torch.empty(stat, dtype=torch.float32, device=a.device)
    rstd = torch.empty(stat, dtype=torch.float32, device=a.device)
    has_w, has_b = w is not None, bias is not None
    args = (a2, b2, w if has_w else a2, bias if has_b else a2, s, y, mean, rstd, rows, n,
            eps)
    key = (a.dtype, rows, n, has_w, has_b, progs, tuple(aligned(t) for t in args[:8]))
    launch(key, (progs, 1, 1), args, {"HAS_W": has_w, "HAS_B": has_b, "BN": bn}, opts, dev)
    return s.view(a.shape), y.view(a.shape), mean, rstd
