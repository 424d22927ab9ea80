"""Matrix products with gathered or segmented operands, and the Walsh-Hadamard transform."""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _mT(x):
    return O.swapaxes(x, -1, -2)


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _scatter_batches(parts, idx, shape):
    """Zeros of `shape` (batch..., R, C) with parts (idx..., R, C) added at the flat batch
    positions `idx`."""
    nb = _prod(shape[:-2])
    flat = O.zeros((nb,) + shape[-2:], parts.dtype)
    flat = flat.at[O.reshape(idx, (-1,))].add(O.reshape(parts, (-1,) + shape[-2:]))
    return O.reshape(flat, shape)


class GatherMM(Primitive):
    """Inputs (a, b, lhs_indices, rhs_indices): a (A..., M, K), b (B..., K, N), indices of one
    shape I into the flattened batch dims; the output (I..., M, N) holds
    a[lhs[i]] @ b[rhs[i]]."""

    __slots__ = ("sorted_indices",)
    name = "GatherMM"

    def __init__(self, sorted_indices=False):
        self.sorted_indices = sorted_indices

    def params(self):
        return (self.sorted_indices,)

    def vjp(self, primals, cotangents, argnums, outputs):
        a, b, li, ri = primals
        g = cotangents[0]
        own = O.reshape(O.arange(_prod(li.shape), dtype=D.uint32), li.shape)
        res = []
        for i in argnums:
            if i == 0:
                parts = O.gather_mm(g, _mT(b), own, ri)
                res.append(_scatter_batches(parts, li, a.shape))
            elif i == 1:
                parts = O.gather_mm(_mT(a), g, li, own)
                res.append(_scatter_batches(parts, ri, b.shape))
            else:
                res.append(O.zeros_like(primals[i]))
        return res

    def jvp(self, primals, tangents, argnums):
        a, b, li, ri = primals
        out = None
        for i, t in zip(argnums, tangents):
            if i == 0:
                term = O.gather_mm(t, b, li, ri)
            elif i == 1:
                term = O.gather_mm(a, t, li, ri)
            else:
                continue
            out = term if out is None else O.add(out, term)
        if out is None:
            out = O.zeros_like(outputs_like(a, b, li))
        return [out]

    def vmap(self, inputs, axes):
        a, b, li, ri = inputs
        n = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        a, li = _fold_batch(a, axes[0], li, axes[2], n)
        b, ri = _fold_batch(b, axes[1], ri, axes[3], n)
        return [O.gather_mm(a, b, li, ri, sorted_indices=self.sorted_indices)], [0]


def outputs_like(a, b, li):
    return O.zeros(li.shape + (a.shape[-2], b.shape[-1]), a.dtype)


def _fold_batch(x, ax, idx, iax, n):
    """The vmapped operand's batch axis folded into its flat batch dims, the indices
    shifted to match (and given a leading batch axis of size n or 1)."""
    idx = O.expand_dims(idx, 0) if iax is None else to_front(idx, iax)
    if ax is None:
        return x, idx
    x = to_front(x, ax)
    per = _prod(x.shape[1:-2])
    x = O.reshape(x, (n * per,) + x.shape[-2:])
    base = O.reshape(O.arange(n, dtype=D.uint32), (n,) + (1,) * (idx.ndim - 1))
    return x, O.add(O.astype(idx, D.uint32), O.multiply(base, per))


def _segment_mask(segments, k, dtype):
    """(S..., K) with ones where column k lies in the segment [start, end)."""
    cols = O.arange(k, dtype=D.int32)
    start, end = segments[..., 0:1], segments[..., 1:2]
    inside = O.logical_and(O.greater_equal(cols, start), O.less(cols, end))
    return O.astype(inside, dtype)


class SegmentedMM(Primitive):
    """Inputs (a (M, K), b (K, N), segments (S..., 2)): out[s] = a[:, s0:s1] @ b[s0:s1]."""

    __slots__ = ()
    name = "SegmentedMM"

    def vjp(self, primals, cotangents, argnums, outputs):
        a, b, seg = primals
        g = cotangents[0]
        mask = _segment_mask(seg, a.shape[-1], g.dtype)
        lead = tuple(range(seg.ndim - 1))
        res = []
        for i in argnums:
            if i == 0:
                da = O.multiply(O.matmul(g, _mT(b)), O.expand_dims(mask, -2))
                res.append(O.sum(da, lead) if lead else da)
            elif i == 1:
                db = O.multiply(O.matmul(_mT(a), g), O.expand_dims(mask, -1))
                res.append(O.sum(db, lead) if lead else db)
            else:
                res.append(O.zeros_like(seg))
        return res

    def jvp(self, primals, tangents, argnums):
        a, b, seg = primals
        out = None
        for i, t in zip(argnums, tangents):
            if i == 0:
                term = O.segmented_mm(t, b, seg)
            elif i == 1:
                term = O.segmented_mm(a, t, seg)
            else:
                continue
            out = term if out is None else O.add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        # out[beta, s] = (a[beta] * mask[beta, s]) @ b[beta], with every operand padded so
        # its batch axis leads and the segment dims broadcast
        a, b, seg = inputs
        n = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        seg = O.expand_dims(seg, 0) if axes[2] is None else to_front(seg, axes[2])
        ns = seg.ndim - 2
        a = O.expand_dims(a, 0) if axes[0] is None else to_front(a, axes[0])
        b = O.expand_dims(b, 0) if axes[1] is None else to_front(b, axes[1])
        a = O.reshape(a, a.shape[:1] + (1,) * ns + a.shape[1:])
        b = O.reshape(b, b.shape[:1] + (1,) * ns + b.shape[1:])
        mask = O.expand_dims(_segment_mask(seg, a.shape[-1], a.dtype), -2)
        out = O.matmul(O.multiply(a, mask), b)
        if out.shape[0] != n:
            out = O.broadcast_to(out, (n,) + out.shape[1:])
        return [out], [0]


class Hadamard(Primitive):
    """y = scale * (H_m kron H_2^k) @ x along the last axis; `transpose` uses H^T (the
    vjp, for the m whose H_m is not symmetric)."""

    __slots__ = ("m", "scale", "transpose")
    name = "Hadamard"

    def __init__(self, m, scale, transpose=False):
        self.m, self.scale, self.transpose = m, scale, transpose

    def params(self):
        return (self.m, self.scale, self.transpose)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.matmul_ext._hadamard(cotangents[0], self.scale, not self.transpose)]

    def jvp(self, primals, tangents, argnums):
        return [O.matmul_ext._hadamard(tangents[0], self.scale, self.transpose)]

    def vmap(self, inputs, axes):
        x, ax = inputs[0], axes[0]
        if ax == x.ndim - 1:
            x, ax = to_front(x, ax), 0
        return [O.matmul_ext._hadamard(x, self.scale, self.transpose)], [ax]
