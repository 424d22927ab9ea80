"""Kernels of the shape family: views where torch has them, single ATen calls otherwise."""

import functools

import torch
import torch.nn.functional as F

from ember.core._backend.kernels import KERNELS, register
from ember.core.primitives import shape as S

KERNELS[S.Reshape] = lambda p, x: x.reshape(p.shape)
KERNELS[S.Broadcast] = lambda p, x: x.expand(p.shape)
KERNELS[S.Transpose] = lambda p, x: x.permute(p.axes)
KERNELS[S.SplitHeads] = lambda p, x: x.unflatten(-1, (p.heads, -1)).transpose(1, 2)
KERNELS[S.MergeHeads] = lambda p, x: x.transpose(1, 2).flatten(-2)
KERNELS[S.Concatenate] = lambda p, *xs: torch.cat(xs, p.axis)
KERNELS[S.Stack] = lambda p, *xs: torch.stack(xs, p.axis)
KERNELS[S.Unstack] = lambda p, x: torch.unbind(x, p.axis)
KERNELS[S.Flip] = lambda p, x: torch.flip(x, p.axes)
KERNELS[S.Diagonal] = lambda p, x: torch.diagonal(x, p.offset, p.axis1, p.axis2)


@register(S.Split)
def _split(p, x):
    ax = p.axis
    return [x.narrow(ax, a, b - a) for a, b in p.bounds]


@register(S.Roll)
def _roll(p, x):
    if p.axes is None:
        return torch.roll(x, p.shifts[0])
    return torch.roll(x, p.shifts, p.axes)


@functools.lru_cache(maxsize=1024)
def _f_pad(widths):
    """Our (low, high) per axis as F.pad's flat list, last axis first."""
    out = []
    for lo, hi in reversed(widths):
        out += [lo, hi]
    while out and not out[-1] and not out[-2]:
        del out[-2:]
    return out


@functools.lru_cache(maxsize=1024)
def _pad_index(n, lo, hi, mode, device):
    """Source index along an axis of size n for each position of its padded version."""
    i = torch.arange(-lo, n + hi)
    if mode == "edge":
        i = i.clamp(0, n - 1)
    elif mode == "symmetric":
        i = i % (2 * n)
        i = torch.where(i >= n, 2 * n - 1 - i, i)
    elif n == 1:  # reflect of a single element repeats it
        i = torch.zeros_like(i)
    else:
        i = i % (2 * n - 2)
        i = torch.where(i >= n, 2 * n - 2 - i, i)
    # a blocking copy: the cached index is complete before any stream reads it
    return i.to(device)


@register(S.Pad)
def _pad(p, x, c=None):
    if p.mode == "constant":
        v = c if c is not None else p.value
        if type(v) is complex and not v.imag:
            v = v.real
        if type(v) is not complex and c is None:
            return F.pad(x, _f_pad(p.widths), value=v)
        # a tensor or complex fill, which F.pad does not take
        shape = [d + lo + hi for d, (lo, hi) in zip(x.shape, p.widths)]
        out = torch.empty(shape, dtype=x.dtype, device=x.device).fill_(v)
        out[tuple(slice(lo, lo + d) for d, (lo, _) in zip(x.shape, p.widths))] = x
        return out
    for ax, (lo, hi) in enumerate(p.widths):
        if lo or hi:
            x = x.index_select(ax, _pad_index(x.shape[ax], lo, hi, p.mode, x.device))
    return x


@register(S.PadAdjoint)
def _pad_adjoint(p, g):
    for ax, (lo, hi) in enumerate(p.widths):
        if lo or hi:
            n = p.shape[ax]
            shape = list(g.shape)
            shape[ax] = n
            z = torch.zeros(shape, dtype=g.dtype, device=g.device)
            g = z.index_add_(ax, _pad_index(n, lo, hi, p.mode, g.device), g)
    return g


@register(S.DiagonalAdjoint)
def _diagonal_adjoint(p, g):
    z = torch.zeros(p.shape, dtype=g.dtype, device=g.device)
    torch.diagonal(z, p.offset, p.axis1, p.axis2).copy_(g)
    return z


@register(S.Contiguous)
def _contiguous(p, x):
    if p.allow_col_major and x.dim() > 1 and x.permute(*range(x.dim() - 1, -1, -1)) \
            .is_contiguous():
        return x
    return x.contiguous()
