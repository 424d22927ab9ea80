"""Kernel of searchsorted: torch.searchsorted, with NaNs ordered last as upstream does."""

import torch

from ember.core._backend.kernels import register
from ember.core.primitives.search import SearchSorted


def _complex_count(seq, v, right):
    # lexicographic order (real, then imaginary), counted by comparison; a NaN in either
    # part sorts last, as upstream's sort puts it, and NaN values go after the non-NaNs
    # (after everything, for right)
    s = seq.view((1,) * v.ndim + seq.shape)
    snan = torch.isnan(s)
    v = v.unsqueeze(-1)
    less = (s.real < v.real) | ((s.real == v.real) & (s.imag < v.imag))
    if right:
        less = less | (s == v)
    out = (less & ~snan).sum(-1)
    vnan = torch.isnan(v.squeeze(-1))
    if not vnan.any():
        return out
    return torch.where(vnan, seq.shape[-1] if right else (~snan).sum(-1), out)


@register(SearchSorted)
def _searchsorted(p, seq, v):
    right = p.right
    if seq.dtype.is_complex:
        return _complex_count(seq, v, right)
    if seq.dtype is torch.bool:
        seq, v = seq.to(torch.uint8), v.to(torch.uint8)
    seq, v = seq.contiguous(), v.contiguous()
    if not seq.dtype.is_floating_point:
        return torch.searchsorted(seq, v, right=right)
    # torch compares NaNs as unordered; upstream sorts them last: search among the
    # non-NaN prefix and place NaN values after it (or after everything, for right)
    n = seq.shape[-1]
    nans = torch.isnan(seq)
    real = n - nans.sum(-1, keepdim=seq.ndim > 1)
    out = torch.searchsorted(torch.where(nans, torch.inf, seq), v, right=right)
    out = torch.minimum(out, real)
    vnan = torch.isnan(v)
    if right:
        return torch.where(vnan, n, out)
    return torch.where(vnan, real, out)
