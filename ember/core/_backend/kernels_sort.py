"""Kernels of the sorting primitives.

Sorts are stable and ascending with NaNs last (torch's order). uint64 is stored as int64
bits, so it is sorted with the sign bit flipped; complex numbers sort by real part, then
imaginary part, as upstream.
"""

import torch

from ember.core._backend.kernels import register
from ember.core.primitives import sort as P

_SIGN = -(2 ** 63)


def _argsort(p, x):
    axis = p.axis
    if x.is_complex():
        by_imag = torch.sort(x.imag, dim=axis, stable=True).indices
        by_real = torch.sort(x.real.gather(axis, by_imag), dim=axis, stable=True).indices
        return by_imag.gather(axis, by_real)
    if p.u64:
        x = torch.bitwise_xor(x, _SIGN)
    elif x.is_cuda and x.is_floating_point():
        # CUDA radix sorts order -0.0 before 0.0; upstream treats them as equal (stably)
        x = x + 0.0
    return torch.sort(x, dim=axis, stable=True).indices


@register(P.Sort)
def _sort(p, x):
    if x.is_complex() or (x.is_cuda and x.is_floating_point()):
        return x.gather(p.axis, _argsort(p, x))
    if p.u64:
        return torch.bitwise_xor(torch.sort(torch.bitwise_xor(x, _SIGN), dim=p.axis).values,
                                 _SIGN)
    return torch.sort(x, dim=p.axis, stable=True).values


@register(P.ArgSort)
def _argsort_k(p, x):
    return _argsort(p, x)


@register(P.TopK)
def _topk(p, x):
    axis, k = p.axis, p.k
    n = x.shape[axis]
    if k == 0:
        return x.narrow(axis, 0, 0).clone()
    if x.is_complex() or x.dtype is torch.bool or p.u64 or 2 * k > n:
        return _sort(p, x).narrow(axis, n - k, k)
    # torch.topk ranks NaN above everything, like upstream's NaN-last order
    return torch.topk(x, k, dim=axis, largest=True, sorted=True).values.flip(axis)


@register(P.ArgTopK)
def _argtopk(p, x):
    n = x.shape[p.axis]
    return _argsort(p, x).narrow(p.axis, n - p.k, p.k)


@register(P.GatherAxis)
def _gather(p, x, idx):
    axis = p.axis
    if idx.shape[axis] <= x.shape[axis]:
        return torch.gather(x, axis, idx)
    # a longer index map holds -1 where nothing lands
    if x.shape[axis] == 0:
        return torch.zeros(idx.shape, dtype=x.dtype, device=x.device)
    out = torch.gather(x, axis, idx.clamp(min=0))
    return torch.where(idx < 0, torch.zeros((), dtype=x.dtype, device=x.device), out)


@register(P.InvertIndex)
def _invert(p, idx):
    axis, n = p.axis, p.n
    m = idx.shape[axis]
    view = [1] * idx.ndim
    view[axis] = m
    src = torch.arange(m, device=idx.device).view(view).expand(idx.shape)
    shape = list(idx.shape)
    if m > n:  # idx holds -1s: they land in a spare slot that is dropped
        shape[axis] = n + 1
        out = torch.full(shape, -1, dtype=torch.int64, device=idx.device)
        out.scatter_(axis, torch.where(idx < 0, n, idx), src)
        return out.narrow(axis, 0, n)
    shape[axis] = n
    out = torch.full(shape, -1, dtype=torch.int64, device=idx.device)
    return out.scatter_(axis, idx, src)
