"""Kernels of the matrix products and of `view`."""

import torch
import torch.nn.functional as F

from ember.core import dtypes as D
from ember.core._backend import TORCH, WRAP
from ember.core._backend.kernels import KERNELS, register
from ember.core.primitives import linalg as L

KERNELS[L.Matmul] = lambda p, a, b: torch.matmul(a, b)
KERNELS[L.Linear] = lambda p, *ts: F.linear(ts[-2], ts[-1], ts[0] if len(ts) == 3 else None)


@register(L.WeightGrad)
def _weight_grad(p, g, x):
    g, x = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
    if g.is_cuda and g.dtype is torch.float32 and g.shape[0] >= 2048 \
            and max(g.shape[1], x.shape[1]) >= 2048:
        # cuBLAS's TF32 kernels for gᵀx over many rows run faster when the operand with
        # fewer columns is transposed into its own copy first (on an H100, with the copy:
        # 1.05-1.4x at 2048-8192 rows and 768-4096 columns; a GPT's 768 x 3072 layer 279
        # -> 201 us); below 2048 columns the plain product was the fastest
        if g.shape[1] <= x.shape[1]:
            return torch.matmul(g.mT.contiguous(), x)
        return torch.matmul(g.mT, x.mT.contiguous().mT)
    return torch.matmul(g.mT, x)


def _scaled_c(c, beta, shape):
    # what upstream gives when the product term drops out (alpha == 0 or K == 0)
    return (c * beta).expand(shape).clone()


@register(L.AddMM)
def _addmm(p, c, a, b):
    alpha, beta = p.alpha, p.beta
    if alpha == 0 or a.shape[-1] == 0:
        shape = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        return _scaled_c(c, beta, shape)
    if b.ndim == 2 and c.ndim <= 2 and (a.ndim == 2 or c.ndim <= 1):
        # one GEMM with the bias folded in (torch.addmm ignores c when beta == 0, as upstream)
        if a.ndim == 2:  # (no reshapes or keywords: this is every Linear layer's kernel)
            if alpha == 1 and beta == 1:
                return torch.addmm(c, a, b)
            return torch.addmm(c, a, b, beta=beta, alpha=alpha)
        out = torch.addmm(c, a.reshape(-1, a.shape[-1]), b, beta=beta, alpha=alpha)
        return out.reshape(a.shape[:-1] + (b.shape[-1],))
    out = torch.matmul(a, b)
    if alpha != 1:
        out.mul_(alpha)
    if beta != 0:
        out.add_(c, alpha=beta)
    return out


# the exact-width torch dtype holding the bits of each Ember dtype
_BITS = {d: t for d, t in TORCH.items()}
_BITS.update({D.bool_: torch.uint8, D.uint16: torch.int16, D.uint32: torch.int32})


@register(L.View)
def _view(p, x):
    src, dst = p.src, p.dst
    if src is D.bool_:
        x = x.view(torch.uint8)
    elif src in WRAP:  # widened storage: the truncating cast keeps the low bits
        x = x.to(_BITS[src])
    tb = _BITS[dst]
    if x.numel() == 0:  # (torch refuses to view some empty layouts)
        last = x.shape[-1] * src.size // dst.size if x.ndim else ()
        y = torch.empty(x.shape[:-1] + (last,), dtype=tb, device=x.device)
    else:
        y = (x.contiguous() if src.size != dst.size else x).view(tb)
    if dst is D.bool_:
        return y != 0
    if dst in WRAP:
        return y.to(TORCH[dst]) & WRAP[dst]
    return y
