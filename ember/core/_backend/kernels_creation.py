"""Kernels of the creation family: constants, ranges, identity-like matrices, windows,
triangle masks and NaN replacement."""

import math

import numpy as np
import torch

from ember.core._backend import TORCH, WRAP, to_storage
from ember.core._backend.kernels import register
from ember.core.primitives import creation as C


def tensor_from_dlpack(x):
    """A torch tensor sharing the memory of DLPack-compatible `x`."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.from_dlpack(x)


@register(C.Full)
def _full(p):
    # (a float16 NaN on the CPU takes upstream's bits from `_scalar_tensor`)
    if p.dtype not in WRAP and not (p.dtype.name == "float16" and p.value != p.value
                                    and p.tdevice.type == "cpu"):
        try:
            return torch.full(p.shape, p.value, dtype=TORCH[p.dtype], device=p.tdevice)
        except (RuntimeError, TypeError):  # torch refuses values it would overflow
            pass
    from ember.core.array import _scalar_tensor
    v = _scalar_tensor(p.value, p.dtype, p.tdevice)
    return v.expand(p.shape).clone()


_NP_FLOAT = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
             "complex64": np.float32}


@register(C.Arange)
def _arange(p):
    # as upstream's CPU backend: start and step cast to the dtype (the step being
    # dtype(start + step) - dtype(start)), then a running sum in the dtype
    dt, n = p.dtype, p.n
    if dt.name in ("int32", "int64"):
        r = _int_arange(p.start, p.step, n, TORCH[dt], p.tdevice)
        if r is not None:
            return r
    if dt.kind in "ui":
        st = to_storage(torch.tensor(float(p.start), dtype=torch.float64), dt)
        nxt = to_storage(torch.tensor(float(p.start + p.step), dtype=torch.float64), dt)
        step = to_storage(nxt - st, dt).to(torch.int64)
        r = torch.arange(n, dtype=torch.int64) * step + st.to(torch.int64)
        return to_storage(r, dt).to(p.tdevice)
    if dt.name == "bfloat16":
        return _arange_bf16(p).to(p.tdevice)
    npd = _NP_FLOAT[dt.name]
    with np.errstate(over="ignore", invalid="ignore"):
        st = npd(p.start)
        step = npd(npd(p.start + p.step) - st)
        a = np.full(n, step, dtype=npd)
        if n:
            a[0] = st
        np.add.accumulate(a, dtype=npd, out=a)
    return torch.from_numpy(a).to(device=p.tdevice, dtype=TORCH[dt])


def _int_arange(start, step, n, td, device):
    """Whole start and step whose values all fit `td`: torch's arange made where the array
    lives (the general path builds on the host and copies, which waits for the GPU)."""
    if not (float(start).is_integer() and float(step).is_integer()):
        return None
    s0, sp = int(start), int(step)
    info = torch.iinfo(td)
    last = s0 + (n - 1) * sp if n else s0
    if not (info.min <= min(s0, last) and max(s0, last) <= info.max) or (n and not sp):
        return None
    return torch.arange(s0, s0 + n * sp, sp, dtype=td, device=device)


def _bf16(x):
    return torch.tensor(x, dtype=torch.float64).to(torch.bfloat16)


def _arange_bf16(p):
    st = _bf16(p.start)
    step = (_bf16(p.start + p.step) - st).item()
    if p.n > 1 << 16:  # too long to run step by step: the exact values instead
        return (torch.arange(p.n, dtype=torch.float32) * step + st.float()).to(torch.bfloat16)
    out = torch.empty(p.n, dtype=torch.bfloat16)
    if p.n:
        # each addition rounds to bfloat16, as a running sum in bfloat16 does
        v = st.float().numpy()
        vals = np.empty(p.n, dtype=np.float32)
        for i in range(p.n):
            vals[i] = v
            v = _round_bf16(v + np.float32(step))
        out = torch.from_numpy(vals).to(torch.bfloat16)
    return out


def _round_bf16(x):
    """float32 `x` rounded to the nearest bfloat16 (ties to even), as a float32."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32)
    if (b & 0x7F800000) == 0x7F800000:  # inf and nan stay
        return np.float32(x)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return np.asarray(b, dtype=np.uint32).view(np.float32)[()]


@register(C.Linspace)
def _linspace(p):
    compute = torch.float64 if p.compute.name == "float64" else torch.float32
    t = torch.arange(p.num, dtype=compute, device=p.tdevice)
    # a true division (CUDA turns division by a host scalar into a multiply by its inverse)
    t = t / torch.full_like(t, p.div)
    r = (1 - t) * p.start + t * p.stop
    return to_storage(r, p.dtype)


@register(C.Eye)
def _eye(p):
    td = TORCH[p.dtype]
    if p.tri:
        return torch.ones((p.n, p.m), dtype=td, device=p.tdevice).tril(p.k)
    t = torch.zeros((p.n, p.m), dtype=td, device=p.tdevice)
    t.diagonal(p.k).fill_(1)
    return t


_COS_TERMS = {"hamming": (0.54, 0.46, 0.0), "hanning": (0.5, 0.5, 0.0),
              "blackman": (0.42, 0.5, 0.08)}


@register(C.Window)
def _window(p):
    m = p.m
    if m <= 1:
        return torch.ones(max(m, 0), dtype=torch.float32, device=p.tdevice)
    n = torch.arange(m, dtype=torch.float64, device=p.tdevice)
    if p.kind == "bartlett":
        w = 1 - torch.abs(2 * n / (m - 1) - 1)
    else:
        a0, a1, a2 = _COS_TERMS[p.kind]
        x = 2 * math.pi * n / (m - 1)
        w = a0 - a1 * torch.cos(x) + a2 * torch.cos(2 * x)
    return w.to(torch.float32)


@register(C.Tri)
def _tri(p, x):
    return torch.triu(x, p.k) if p.upper else torch.tril(x, p.k)


@register(C.NanToNum)
def _nan_to_num(p, x):
    if not x.is_complex():
        return torch.nan_to_num(x, p.nan, p.posinf, p.neginf)
    # as upstream: a whole element is replaced, a nan one (either part) and one equal to
    # +-inf (a zero imaginary part); an infinite part otherwise stays
    re, im = x.real, x.imag
    flat = im == 0
    out = torch.where(flat & (re == float("inf")), complex(p.posinf), x)
    out = torch.where(flat & (re == -float("inf")), complex(p.neginf), out)
    return torch.where(torch.isnan(re) | torch.isnan(im), complex(p.nan), out)
