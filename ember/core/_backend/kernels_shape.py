"""Kernels of the shape family: views where torch has them, single ATen calls otherwise."""

import functools

import torch
import torch.nn.functional as F

from ember.core._backend.kernels import KERNELS, register
from ember.core._backend.memory import CACHE_MIN, cpu_out
from ember.core.primitives import shape as S

KERNELS[S.Broadcast] = lambda p, x: x.expand(p.shape)
KERNELS[S.Transpose] = lambda p, x: x.permute(p.axes)
KERNELS[S.SplitHeads] = lambda p, x: x.unflatten(-1, (p.heads, -1)).transpose(1, 2)
KERNELS[S.MergeHeads] = lambda p, x: x.transpose(1, 2).flatten(-2)


def _copy_of(x):
    """x made contiguous, into a cached buffer when it is large."""
    out = cpu_out(x.shape, x.dtype, x.device)
    return x.contiguous() if out is None else out.copy_(x)


@register(S.Reshape)
def _reshape(p, x):
    if x.device.type == "cpu" and x.numel() * x.dtype.itemsize >= CACHE_MIN:
        try:
            return x.view(p.shape)
        except RuntimeError:  # (not a view: the copy goes to a cached buffer)
            return _copy_of(x).view(p.shape)
    return x.reshape(p.shape)


def _joined(fn, stacked):
    def k(p, *xs):
        shape = list(xs[0].shape)
        if stacked:
            shape.insert(p.axis % (len(shape) + 1), len(xs))
        else:
            shape[p.axis] = sum(x.shape[p.axis] for x in xs)
        out = cpu_out(shape, functools.reduce(torch.promote_types, [x.dtype for x in xs]),
                      xs[0].device)
        return fn(xs, p.axis, out=out)
    return k


KERNELS[S.Concatenate] = _joined(torch.cat, False)
KERNELS[S.Stack] = _joined(torch.stack, True)
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
        return _filled_pad(p, x, v)
    for ax, (lo, hi) in enumerate(p.widths):
        if lo or hi:
            x = x.index_select(ax, _pad_index(x.shape[ax], lo, hi, p.mode, x.device))
    return x


def _filled_pad(p, x, v):
    """x inside a buffer filled with v: F.pad's for a real value and a small or GPU
    output, else a (cached, when large) buffer filled first (F.pad takes no tensor or
    complex fill)."""
    shape = [d + lo + hi for d, (lo, hi) in zip(x.shape, p.widths)]
    out = cpu_out(shape, x.dtype, x.device)
    if out is None:
        if type(v) is not complex and not torch.is_tensor(v):
            return F.pad(x, _f_pad(p.widths), value=v)
        out = torch.empty(shape, dtype=x.dtype, device=x.device)
    out.fill_(v)
    out[tuple(slice(lo, lo + d) for d, (lo, _) in zip(x.shape, p.widths))] = x
    return out


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
    return _copy_of(x)
