"""Kernels of the sorting primitives.

Sorts are stable and ascending with NaNs last (torch's order). uint64 is stored as int64
bits, so it is sorted with the sign bit flipped; complex numbers sort by real part, then
imaginary part, with NaNs (in either part) last, as upstream.
"""

import torch

from ember.core._backend.kernels import register
from ember.core.primitives import sort as P

_SIGN = -(2 ** 63)


def _argsort(p, x):
    axis = p.axis
    if x.is_complex():
        nan = None
        if not x.is_cuda:
            # upstream ranks a NaN in either part last, all such values tied
            nan = x.isnan()
            x = torch.where(nan, 0, x)
        by_imag = torch.sort(x.imag, dim=axis, stable=True).indices
        by_real = torch.sort(x.real.gather(axis, by_imag), dim=axis, stable=True).indices
        perm = by_imag.gather(axis, by_real)
        if nan is None:
            return perm
        last = torch.sort(nan.gather(axis, perm).view(torch.uint8), dim=axis, stable=True)
        return perm.gather(axis, last.indices)
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


# short axes and small arrays: the full sort is faster than the selection's extra ops
_SORT_AXIS, _SORT_SIZE = 64, 2048


def _argpartition(p, x):
    """Partition indices from a selection (a top-k, cheaper than the full sort) of the
    smaller side around kth, kth included: the selection fills that side with the kth
    element next to the rest; the rest keep their places where the selection leaves them
    free and fill the holes it leaves."""
    axis, kth = p.axis, p.kth
    n = x.shape[axis]
    if x.is_complex() or x.is_cuda or n <= _SORT_AXIS or x.numel() <= _SORT_SIZE:
        return _argsort(p, x)
    if p.u64:
        x = torch.bitwise_xor(x, _SIGN)
    elif x.dtype is torch.bool:
        x = x.view(torch.uint8)
    x = x.movedim(axis, -1)
    low = 2 * kth < n
    m = kth + 1 if low else n - kth
    # (topk ranks NaN highest, as the sort does)
    vals, picked = torch.topk(x, m, dim=-1, largest=not low, sorted=False)
    top = torch.topk(vals, 1, dim=-1, largest=low, sorted=False).indices.reshape(-1, 1)
    picked = picked.reshape(-1, m)
    if not low:  # mirrored, the high side is in front too
        picked = (n - 1) - picked
    # the kth element last in front
    at_top, last = picked.gather(1, top), picked[:, -1:].clone()
    picked.scatter_(1, top, last)
    picked[:, -1:] = at_top
    out = torch.arange(n).expand(picked.shape[0], n).clone()
    free = torch.ones((picked.shape[0], m + 1), dtype=torch.bool)
    free.scatter_(1, picked.clamp(max=m), False)
    away = picked >= m
    out[away.nonzero()[:, 0], picked[away]] = free[:, :m].nonzero()[:, 1]
    out[:, :m] = picked
    if not low:
        out = ((n - 1) - out).flip(-1)
    return out.view(x.shape).movedim(-1, axis)


@register(P.ArgPartition)
def _argpartition_k(p, x):
    return _argpartition(p, x)


@register(P.Partition)
def _partition(p, x):
    return x.gather(p.axis, _argpartition(p, x))


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
