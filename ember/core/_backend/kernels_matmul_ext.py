"""Kernels of gather_mm, segmented_mm and the Walsh-Hadamard transform."""

import math

import numpy as np
import torch

from ember.core._backend.kernels import register
from ember.core.primitives import matmul_ext as P

# gathering b per index costs G*K*N elements; past this (with fewer b matrices than
# indices) the rows that share a b matrix are multiplied together instead
_GROUP_MIN = 1 << 22


@register(P.GatherMM)
def _gather_mm(p, a, b, li, ri):
    m, k = a.shape[-2:]
    n = b.shape[-1]
    # (batch counts spelled out: -1 is ambiguous when a matrix is empty)
    a3 = a.reshape(math.prod(a.shape[:-2]), m, k)
    b3 = b.reshape(math.prod(b.shape[:-2]), k, n)
    shape = li.shape
    # out-of-range indices read garbage upstream: clamp them rather than fault
    li = li.reshape(-1).long().clamp(0, max(a3.shape[0] - 1, 0))
    ri = ri.reshape(-1).long().clamp(0, max(b3.shape[0] - 1, 0))
    g = li.numel()
    if g == 0 or a3.shape[0] == 0 or b3.shape[0] == 0:
        return torch.zeros(shape + (m, n), dtype=a.dtype, device=a.device)
    if g * k * n >= _GROUP_MIN and g > b3.shape[0]:
        return _grouped(a3, b3, li, ri, p.sorted_indices).reshape(shape + (m, n))
    return torch.matmul(a3[li], b3[ri]).reshape(shape + (m, n))


def _grouped(a3, b3, li, ri, is_sorted):
    """One matmul per distinct b matrix over the rows that use it (the MoE case)."""
    m, k = a3.shape[-2:]
    n = b3.shape[-1]
    if is_sorted:
        order = None
    else:
        ri, order = torch.sort(ri, stable=True)
        li = li[order]
    counts = torch.bincount(ri, minlength=b3.shape[0]).tolist()
    lhs = a3[li].reshape(-1, m * k)
    parts, start = [], 0
    for e, c in enumerate(counts):
        if c:
            x = lhs[start:start + c].reshape(c * m, k)
            parts.append(torch.matmul(x, b3[e]).reshape(c, m, n))
            start += c
    out = torch.cat(parts)
    if order is None:
        return out
    return torch.empty_like(out).index_copy_(0, order, out)


@register(P.SegmentedMM)
def _segmented_mm(p, a, b, seg):
    m, k = a.shape
    n = b.shape[1]
    shape = seg.shape[:-1]
    seg = seg.reshape(-1, 2).long().clamp(0, k)
    cols = torch.arange(k, device=a.device)
    mask = ((cols >= seg[:, :1]) & (cols < seg[:, 1:])).to(a.dtype)  # (S, K)
    if m <= n:
        out = torch.matmul(a.unsqueeze(0) * mask.unsqueeze(1), b)
    else:
        out = torch.matmul(a, b.unsqueeze(0) * mask.unsqueeze(2))
    return out.reshape(shape + (m, n))


# the Hadamard matrices of orders 12, 20 and 28 that upstream uses (rows, + is 1, - is -1)
_H = {
    12: (
        "+-++++++++++",
        "--+-+-+-+-+-",
        "+++-++----++",
        "+---+--+-++-",
        "+++++-++----",
        "+-+---+--+-+",
        "++--+++-++--",
        "+--++---+--+",
        "++----+++-++",
        "+--+-++---+-",
        "++++----+++-",
        "+-+--+-++---",
    ),
    20: (
        "+----+----++--++-++-",
        "-+----+---+++---+-++",
        "--+----+---+++-+-+-+",
        "---+----+---+++++-+-",
        "----+----++--++-++-+",
        "-+++++-----+--+++--+",
        "+-+++-+---+-+--+++--",
        "++-++--+---+-+--+++-",
        "+++-+---+---+-+--+++",
        "++++-----++--+-+--++",
        "--++-+-++-+-----++++",
        "---++-+-++-+---+-+++",
        "+---++-+-+--+--++-++",
        "++---++-+----+-+++-+",
        "-++---++-+----+++++-",
        "-+--+--++-+----+----",
        "+-+-----++-+----+---",
        "-+-+-+---+--+----+--",
        "--+-+++------+----+-",
        "+--+--++------+----+",
    ),
    28: (
        "+------++----++-+--+-+--++--",
        "-+-----+++-----+-+--+-+--++-",
        "--+-----+++---+-+-+----+--++",
        "---+-----+++---+-+-+-+--+--+",
        "----+-----+++---+-+-+++--+--",
        "-----+-----++++--+-+--++--+-",
        "------++----++-+--+-+--++--+",
        "--++++-+-------++--+++-+--+-",
        "---++++-+-----+-++--+-+-+--+",
        "+---+++--+----++-++--+-+-+--",
        "++---++---+----++-++--+-+-+-",
        "+++---+----+----++-++--+-+-+",
        "++++--------+-+--++-++--+-+-",
        "-++++--------+++--++--+--+-+",
        "-+-++-++--++--+--------++++-",
        "+-+-++--+--++--+--------++++",
        "-+-+-++--+--++--+----+---+++",
        "+-+-+-++--+--+---+---++---++",
        "++-+-+-++--+------+--+++---+",
        "-++-+-+-++--+------+-++++---",
        "+-++-+---++--+------+-++++--",
        "-++--++-+-++-+++----++------",
        "+-++--++-+-++-+++-----+-----",
        "++-++---+-+-++-+++-----+----",
        "-++-++-+-+-+-+--+++-----+---",
        "--++-++++-+-+----+++-----+--",
        "+--++-+-++-+-+----+++-----+-",
        "++--++-+-++-+-+----++------+",
    ),
}
_HT = {}


def _matrix(m, transpose, dtype, device):
    key = (m, transpose, dtype, device)
    h = _HT.get(key)
    if h is None:
        rows = [[1.0 if c == "+" else -1.0 for c in r] for r in _H[m]]
        h = torch.tensor(rows, dtype=dtype, device=device)
        _HT[key] = h = h.T.contiguous() if transpose else h
    return h


# rows of the butterfly per pass: a block and its partner buffer stay in the L2 cache
_BLOCK_BYTES = 1 << 19
# numpy's strided adds cost less per call than ATen's, and they are faster on the first
# stages (runs of 1 and 2 elements); ATen's 2-d loops are faster on the longer runs
_NP_PAIR = {torch.float32: np.complex64, torch.float64: np.complex128}
_NP_ALL = 1 << 12  # elements up to which numpy runs every stage


def _butterfly(y):
    """The 2^k transform of each row of contiguous `y` (rows, n), pairing elements h = 1, 2,
    4, ... apart in turn and rounding each step to y's dtype, as upstream's CPU kernel does
    (same bits). Half types step in float32, rounded through the output after each step:
    a float32 sum of two halves rounds to the correctly rounded half sum, and ATen's own
    half-precision adds are slow on short runs."""
    rows, n = y.shape
    half = y.dtype in (torch.float16, torch.bfloat16)
    work = torch.float32 if half else y.dtype
    out = torch.empty_like(y)
    step = max(1, _BLOCK_BYTES // (n * 4))
    tmp = [torch.empty((min(step, rows), n), dtype=work) for _ in range(1 + half)]
    pair = _NP_PAIR.get(work)
    np_max = 0 if pair is None else n if y.numel() <= _NP_ALL else 2
    stages = n.bit_length() - 1
    for r in range(0, rows, step):
        src, ob = y[r:r + step], out[r:r + step]
        k = src.shape[0]
        # the stages go 0 -> j -> 3 - j -> ..., the last one into out where it is a buffer
        bufs = (src.float(), tmp[0][:k], tmp[1][:k]) if half else (src, ob, tmp[0][:k])
        nps = [t.numpy() for t in bufs] if pair else None
        c, j = 0, 1 if stages % 2 else 2
        h = 1
        while h < n:
            if h <= np_max:
                a, b, w = nps[c], nps[j], h
                if h == 2:  # an element pair as one complex number: the same float adds
                    a, b, w = a.view(pair), b.view(pair), 1
                a, b = a.reshape(-1, n // (2 * h), 2, w), b.reshape(-1, n // (2 * h), 2, w)
                np.add(a[:, :, 0], a[:, :, 1], out=b[:, :, 0])
                np.subtract(a[:, :, 0], a[:, :, 1], out=b[:, :, 1])
            else:
                a0, a1 = bufs[c].view(-1, n // (2 * h), 2, h).unbind(2)
                b0, b1 = bufs[j].view(-1, n // (2 * h), 2, h).unbind(2)
                torch.add(a0, a1, out=b0)
                torch.sub(a0, a1, out=b1)
            if half:
                ob.copy_(bufs[j])
                if 2 * h < n:
                    bufs[j].copy_(ob)
            c, j, h = j, 3 - j, h * 2
        if stages == 0:
            ob.copy_(src)
    return out


def _hadamard_cpu(p, x):
    shape, m = x.shape, p.m
    if shape[-1] == 1:  # (upstream scales by the scale rounded to x's dtype here)
        return x * torch.tensor(p.scale, dtype=x.dtype)
    pw = shape[-1] // m
    y = _butterfly(x.reshape(-1, pw).contiguous()).view(-1, m, pw)
    if m > 1:
        # upstream sums the m rows in order, and scales, in float32 for the half types
        if y.dtype in (torch.float16, torch.bfloat16):
            y = y.float()
        hm = _matrix(m, p.transpose, y.dtype, y.device).unsqueeze(-1)
        acc = hm[:, 0] * y[:, :1]
        for j in range(1, m):
            acc += hm[:, j] * y[:, j:j + 1]
        y = acc
    return y.mul_(p.scale).to(x.dtype).reshape(shape)  # (y is a new buffer)


@register(P.Hadamard)
def _hadamard(p, x):
    if x.device.type == "cpu":
        return _hadamard_cpu(p, x)
    shape = x.shape
    d = shape[-1]
    wide = x.dtype in (torch.float16, torch.bfloat16)
    y = x.to(torch.float32) if wide else x
    m = p.m
    pw = d // m
    y = y.reshape(-1, m, pw)
    # butterflies over the 2^k factor: exact (no TF32 matmul), log2(2^k) passes
    h = 1
    while h < pw:
        y = y.view(y.shape[0], m, pw // (2 * h), 2, h)
        lo, hi = y[:, :, :, 0], y[:, :, :, 1]
        y = torch.stack((lo + hi, lo - hi), dim=3)
        h *= 2
    y = y.reshape(-1, m, pw)
    if m > 1:  # the small factor: a signed sum over its rows (kept exact as well)
        hm = _matrix(m, p.transpose, y.dtype, y.device)
        y = (hm.view(1, m, m, 1) * y.unsqueeze(1)).sum(2)
    y = y * p.scale
    y = y.reshape(shape)
    return y.to(x.dtype) if wide else y
