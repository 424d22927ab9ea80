"""Kernels of the random primitives: Threefry-2x32 bits (upstream's counter layout), the
samplers fused over them, and the inverse-CDF and covariance helpers of `mx.random`.

On CUDA, Threefry runs on int64 tensors holding 32-bit words (torch has no uint32
arithmetic), masked after each addition and rotation, every step one vectorised op over all
counters (and `normal` in one Triton kernel). The host has its own paths (below).
"""

import functools
import math

import numpy as np
import torch

from ember.core import dtypes as D
from ember.core._backend import TORCH
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
        return torch.from_numpy(host_words(keys, n))
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
# Up to _LANES blocks are hashed all at once on Python ints, block i in bits 64i..64i+31 of
# two big ints (a round is 6 big-int ops, each a fraction of numpy's per-call overhead);
# beyond, numpy's uint32 arithmetic (it wraps and shifts logically, so a round is 5 in-place
# ops on 4-byte words, the int64 path above needs 7 on 8-byte ones), counters in chunks that
# stay in cache.

_LANES = 256
_CHUNK = 1 << 16  # blocks per numpy pass
_KS = np.uint32(0x1BD11BDA)


def _threefry_lanes(k0, k1, x0, x1, ones, mask):
    """Threefry-2x32 of the 64-bit lanes of Python ints x0, x1 under lane keys k0, k1 (k·ones
    for one key); `ones` has 1 in each lane, `mask` 2^32 - 1. Additions carry into a lane's
    high half, never out of it: x1 is masked every round (a rotation must not see carries),
    x0 only at the end (its 25 additions stay below 2^38)."""
    ks = (k0, k1, k0 ^ k1 ^ (0x1BD11BDA * ones))
    x0 = x0 + k0
    x1 = (x1 + k1) & mask
    for i in range(5):
        for r in _ROT[i % 2]:
            x0 += x1
            x1 = (((x1 << r) | (x1 >> (32 - r))) ^ x0) & mask
        x0 += ks[(i + 1) % 3]
        x1 = (x1 + ks[(i + 2) % 3] + (i + 1) * ones) & mask
    return x0 & mask, x1


def _lanes(a):
    """A Python int holding the values of numpy array `a` (< 2^32) in 64-bit lanes."""
    return int.from_bytes(a.astype(np.uint64).tobytes(), "little")


def _unlanes(v, count):
    return np.frombuffer(v.to_bytes(8 * count, "little"), np.int64)


@functools.lru_cache(maxsize=64)
def _lane_counters(nk, n):
    """(ones, mask, first counters, second counters) of n words for each of nk keys."""
    h, odd = divmod(n, 2)
    half = h + odd
    j = np.arange(half, dtype=np.int64)
    c1 = j + half
    if odd:
        c1[h] = 0
    ones = _lanes(np.ones(nk * half, np.int64))
    return ones, ones * _M, _lanes(np.tile(j, nk)), _lanes(np.tile(c1, nk))


def split_words(k0, k1):
    """The two keys of `split(key)` for key (k0, k1), as pairs of Python ints."""
    ones, mask, c0, c1 = _lane_counters(1, 4)
    y0, y1 = _threefry_lanes(k0 * ones, k1 * ones, c0, c1, ones, mask)
    return (y0 & _M, y0 >> 64), (y1 & _M, y1 >> 64)


def _lane_words(keys, n):
    nk = keys.numel() >> 1
    h, odd = divmod(n, 2)
    half = h + odd
    ones, mask, c0, c1 = _lane_counters(nk, n)
    if nk == 1:
        k0, k1 = (keys if keys.dim() == 1 else keys.reshape(2)).tolist()
        k0, k1 = (k0 & _M) * ones, (k1 & _M) * ones
    else:
        kv = keys.reshape(nk, 2).numpy() & _M
        k0, k1 = _lanes(np.repeat(kv[:, 0], half)), _lanes(np.repeat(kv[:, 1], half))
    y0, y1 = _threefry_lanes(k0, k1, c0, c1, ones, mask)
    if nk == 1:
        b = bytearray(y0.to_bytes(8 * half, "little") + y1.to_bytes(8 * half, "little")[:8 * h])
        return np.frombuffer(b, np.int64).reshape(1, n)
    w0 = _unlanes(y0, nk * half).reshape(nk, half)
    w1 = _unlanes(y1, nk * half).reshape(nk, half)
    return np.concatenate((w0, w1[:, :h]), 1)


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


def host_words(keys, n):
    """(K, n) int64 numpy array of 32-bit words: n words for each of the K keys of the host
    tensor `keys` (..., 2)."""
    nk = keys.numel() >> 1
    h, odd = divmod(n, 2)
    half = h + odd
    if not n or not nk:
        return np.empty((nk, n), np.int64)
    if nk * half <= _LANES:
        return _lane_words(keys, n)
    kv = keys.reshape(nk, 2).numpy()
    ov = np.empty((nk, n), np.int64)
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
    return ov


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


_TWO32 = np.float32(4294967296.0)  # float32(2^32 - 1): upstream's divisor rounds to 2^32
_SQRT2 = torch.tensor(math.sqrt(2.0), dtype=torch.float32)


def _unit_words(words, below, lo=None, span=None):
    """Uniform [0, 1) float32 samples of numpy 32-bit words, or with `span`, lo + span · u."""
    u = words.astype(np.float32)
    u /= _TWO32
    np.minimum(u, np.float32(below), out=u)
    if span is not None:
        u *= np.float32(span)
        u += np.float32(lo)
    return u


@register(P.Uniform)
def _uniform(p, keys):
    u = _unit_words(host_words(keys, math.prod(p.shape)), P._R()._BELOW_ONE[p.dtype], p.lo, p.span)
    u = torch.from_numpy(u.reshape(tuple(keys.shape[:-1]) + p.shape))
    return u if p.dtype is D.float32 else u.to(TORCH[p.dtype])


@register(P.Gumbel)
def _gumbel(p, keys):
    return _uniform(p, keys).log_().neg_().log_().neg_()


@register(P.Laplace)
def _laplace(p, keys):
    u = _uniform(p, keys)
    return torch.mul(torch.sign(u), torch.log1p(torch.neg(torch.abs(u))))


@register(P.Bernoulli)
def _bernoulli(p, keys):
    words = host_words(keys, math.prod(p.shape))
    out = words.astype(np.float32) < np.float32(p.threshold)
    return torch.from_numpy(out.reshape(tuple(keys.shape[:-1]) + p.shape))


@register(P.StandardNormal)
def _standard_normal(p, key):
    R = P._R()  # (the distributions' constants live with them)
    args = (R._NEG_ONE_UP, R._OPEN_RANGE, R._BELOW_ONE[D.float32])
    count = math.prod(p.shape)
    if key.is_cuda and count < 2 ** 31:
        from ember.core._backend.triton_random import standard_normal
        return standard_normal(key, count, *args).reshape(p.shape)
    if key.is_cuda:
        lo, span, below, sqrt2 = (torch.tensor(v, dtype=torch.float32, device=key.device)
                                  for v in args + (math.sqrt(2.0),))
        u = random_words(key.reshape(1, 2), count).reshape(p.shape).to(torch.float32)
        u = torch.minimum(u / 4294967296.0, below)
        return sqrt2 * torch.erfinv(lo + span * u)
    u = _unit_words(host_words(key, count), args[2], args[0], args[1])
    return torch.from_numpy(u.reshape(p.shape)).erfinv_().mul_(_SQRT2)


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
