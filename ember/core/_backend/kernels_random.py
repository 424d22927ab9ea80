"""Kernels of the random primitives: Threefry-2x32 bits (upstream's counter layout), and the
inverse-CDF and covariance helpers of `mx.random`.

Threefry runs on int64 tensors holding 32-bit words (torch has no uint32 arithmetic), masked
after each addition and rotation; every step is one vectorised op over all counters, so the
same code runs on CPU and CUDA.
"""

import math

import numpy as np
import torch

from ember.core._backend.kernels import register
from ember.core.primitives import random as P

_M = 0xFFFFFFFF
_ROT = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0, k1, x0, x1):
    """The Threefry-2x32 (20 rounds) hash of counters (x0, x1) under key (k0, k1).

    All are int64 tensors of 32-bit values that broadcast together; returns two new tensors.
    """
    ks = (k0, k1, (k0 ^ k1) ^ 0x1BD11BDA)
    x0 = (x0 + k0) & _M
    x1 = (x1 + k1) & _M
    if x0.shape != x1.shape:
        x0, x1 = torch.broadcast_tensors(x0, x1)
        x0, x1 = x0.contiguous(), x1.contiguous()
    t = torch.empty_like(x1)
    for i in range(5):
        for r in _ROT[i % 2]:
            x0.add_(x1).bitwise_and_(_M)
            torch.bitwise_left_shift(x1, r, out=t).bitwise_and_(_M)
            x1.bitwise_right_shift_(32 - r).bitwise_or_(t).bitwise_xor_(x0)
        x0.add_(ks[(i + 1) % 3]).bitwise_and_(_M)
        x1.add_(ks[(i + 2) % 3]).add_(i + 1).bitwise_and_(_M)
    return x0, x1


def random_words(keys, n):
    """(K, n) int64 tensor of 32-bit words: n words for each of the K keys (K, 2)."""
    if keys.device.type == "cpu":
        return _cpu_words(keys, n)
    h, odd = divmod(n, 2)
    dev = keys.device
    k0 = keys[:, :1]
    k1 = keys[:, 1:]
    # word j and word h + odd + j come from one block, hashed from counters (j, h + odd + j);
    # an odd middle word takes the first half of the block at (h, 0)
    x0 = torch.arange(h + odd, dtype=torch.int64, device=dev)
    x1 = torch.arange(h + odd, h + odd + h + odd, dtype=torch.int64, device=dev)
    if odd:
        x1[h] = 0
    y0, y1 = threefry2x32(k0, k1, x0.unsqueeze(0), x1.unsqueeze(0))
    return torch.cat((y0, y1[:, :h]), dim=1)


# -- the CPU path -------------------------------------------------------------------------
# numpy's uint32 arithmetic wraps and shifts logically, so a round is 5 in-place ops on
# 4-byte words (the int64 path above needs 7 on 8-byte ones); counters go in chunks that
# stay in cache, and a handful of blocks is hashed on Python ints (no per-op dispatch).

_CHUNK = 1 << 16  # blocks per numpy pass
_FEW = 8  # up to this many blocks: Python ints
_KS = np.uint32(0x1BD11BDA)


def _threefry_py(k0, k1, x0, x1):
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0 = (x0 + k0) & _M
    x1 = (x1 + k1) & _M
    for i in range(5):
        for r in _ROT[i % 2]:
            x0 = (x0 + x1) & _M
            x1 = (((x1 << r) & _M) | (x1 >> (32 - r))) ^ x0
        x0 = (x0 + ks[(i + 1) % 3]) & _M
        x1 = (x1 + ks[(i + 2) % 3] + i + 1) & _M
    return x0, x1


def _threefry_np(k0, k1, x0, x1):
    """Threefry-2x32 of uint32 arrays x0, x1 (overwritten) under uint32 keys k0, k1 (scalars
    or arrays broadcasting against them)."""
    ks = (k0, k1, k0 ^ k1 ^ _KS)
    x0 += k0
    x1 += k1
    t = np.empty_like(x1)
    for i in range(5):
        for r in _ROT[i % 2]:
            x0 += x1
            np.left_shift(x1, r, out=t)
            x1 >>= 32 - r
            x1 |= t
            x1 ^= x0
        x0 += ks[(i + 1) % 3]
        x1 += ks[(i + 2) % 3]
        x1 += np.uint32(i + 1)


def _cpu_words(keys, n):
    h, odd = divmod(n, 2)
    half = h + odd
    nk = keys.shape[0]
    out = torch.empty((nk, n), dtype=torch.int64)
    if not n or not nk:
        return out
    kv = keys.numpy()
    ov = out.numpy()
    if nk * half <= _FEW:
        for r, (k0, k1) in enumerate(kv.tolist()):
            for j in range(half):
                y0, y1 = _threefry_py(k0 & _M, k1 & _M, j, 0 if odd and j == h else half + j)
                ov[r, j] = y0
                if j < h:
                    ov[r, half + j] = y1
        return out
    k0 = kv[:, :1].astype(np.uint32)
    k1 = kv[:, 1:].astype(np.uint32)
    # rows of keys x columns of counters per pass, about _CHUNK blocks each
    cols = min(half, _CHUNK)
    rows = max(1, _CHUNK // cols)
    for r0 in range(0, nk, rows):
        r1 = min(nk, r0 + rows)
        a0, a1 = (k0[0, 0], k1[0, 0]) if nk == 1 else (k0[r0:r1], k1[r0:r1])
        for j0 in range(0, half, cols):
            j1 = min(half, j0 + cols)
            x0 = np.broadcast_to(np.arange(j0, j1, dtype=np.uint32), (r1 - r0, j1 - j0)).copy()
            x1 = x0 + np.uint32(half)
            if odd and j1 == half:
                x1[:, -1] = 0
            _threefry_np(a0, a1, x0, x1)
            ov[r0:r1, j0:j1] = x0
            m = min(j1, h)
            if m > j0:
                ov[r0:r1, half + j0:half + m] = x1[:, :m - j0]
    return out


@register(P.RandomBits)
def _bits(p, keys):
    lead = keys.shape[:-1]
    keys = keys.reshape(-1, 2)
    count = 1
    for d in p.shape:
        count *= d
    width = p.width
    out_shape = tuple(lead) + p.shape
    n = (count * width + 3) // 4
    if count == 0 or keys.shape[0] == 0:
        dt = torch.int64 if width == 4 else torch.int32 if width == 2 else torch.uint8
        return torch.empty(out_shape, dtype=dt, device=keys.device)
    words = random_words(keys, n)
    if width == 4:
        return words.reshape(out_shape)
    # little-endian: the low bytes of a word come first; a last partial word is truncated
    per = 4 // width
    bits = 8 * width
    shifts = torch.arange(0, 32, bits, dtype=torch.int64, device=keys.device)
    parts = (words.unsqueeze(-1) >> shifts) & ((1 << bits) - 1)
    parts = parts.reshape(keys.shape[0], n * per)[:, :count]
    return parts.to(torch.int32 if width == 2 else torch.uint8).reshape(out_shape)


@register(P.StandardNormal)
def _standard_normal(p, key):
    from ember.core.random import _BELOW_ONE, _NEG_ONE_UP, _OPEN_RANGE, D
    count = 1
    for d in p.shape:
        count *= d
    args = (_NEG_ONE_UP, _OPEN_RANGE, _BELOW_ONE[D.float32])
    if key.is_cuda and count < 2 ** 31:
        from ember.core._backend.triton_random import standard_normal
        return standard_normal(key, count, *args).reshape(p.shape)
    lo, span, below, sqrt2 = (torch.tensor(v, dtype=torch.float32, device=key.device)
                              for v in args + (math.sqrt(2.0),))
    u = random_words(key.reshape(1, 2), count).reshape(p.shape).to(torch.float32)
    u = torch.minimum(u / 4294967296.0, below)
    return sqrt2 * torch.erfinv(lo + span * u)


@register(P.SearchSorted)
def _searchsorted(p, seq, values):
    # seq: (..., n) sorted along the last axis; values: any shape after seq's leading axes
    if seq.ndim == 1:
        return torch.searchsorted(seq.contiguous(), values.contiguous(), right=p.right)
    lead = seq.shape[:-1]
    flat = values.reshape(tuple(lead) + (-1,)).contiguous()
    out = torch.searchsorted(seq.contiguous(), flat, right=p.right)
    return out.reshape(values.shape)


@register(P.CovSqrt)
def _cov_sqrt(p, cov):
    u, s, vh = torch.linalg.svd(cov)
    return (u * torch.sqrt(s).unsqueeze(-2)) @ vh
