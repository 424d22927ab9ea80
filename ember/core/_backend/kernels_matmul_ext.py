"""Kernels of gather_mm, segmented_mm and the Walsh-Hadamard transform."""

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
    a3, b3 = a.reshape(-1, m, k), b.reshape(-1, k, n)
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


@register(P.Hadamard)
def _hadamard(p, x):
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
