"""Kernels of as_strided and its transpose."""

import torch

from ember.core._backend.kernels import register
from ember.core.primitives import strided as P


def _flat_index(shape, strides, offset, device):
    idx = torch.full((), offset, dtype=torch.int64, device=device)
    n = len(shape)
    for k, (d, st) in enumerate(zip(shape, strides)):
        r = torch.arange(d, dtype=torch.int64, device=device) * st
        idx = idx + r.view((d,) + (1,) * (n - k - 1))
    return idx.expand(shape)


@register(P.AsStrided)
def _as_strided(p, x):
    flat = x.reshape(-1)
    if all(st >= 0 for st in p.strides):  # a true view (torch refuses negative strides)
        return flat.as_strided(p.shape, p.strides, flat.storage_offset() + p.offset)
    return flat[_flat_index(p.shape, p.strides, p.offset, x.device)]


@register(P.StridedScatter)
def _strided_scatter(p, g):
    n = 1
    for d in p.in_shape:
        n *= d
    out = torch.zeros(n, dtype=g.dtype, device=g.device)
    idx = _flat_index(g.shape, p.strides, p.offset, g.device).reshape(-1)
    out.index_add_(0, idx, g.reshape(-1))
    return out.reshape(p.in_shape)
