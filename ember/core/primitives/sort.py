"""Sorting primitives: sort, argsort, partition, argpartition, topk, and the index plumbing
their derivatives use.

Derivatives move cotangents through `GatherAxis`, a gather along one axis by indices that
hit each input position at most once, so its transpose is again a gather (by the inverse
indices) and the rules stay closed under repeated differentiation.
"""

import sys

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _S():
    # the op module (ember.core.ops.sort is shadowed by the `sort` function in ops)
    return sys.modules["ember.core.ops.sort"]


class _AxisOp(Primitive):
    """A primitive acting along one non-negative `axis`; `u64` marks uint64 input, whose
    storage (int64 bits) does not order like its values. Parameters end with these two."""

    __slots__ = ("axis", "u64")

    def __init__(self, axis, u64=False):
        self.axis, self.u64 = axis, u64

    def params(self):
        return (self.axis, self.u64)

    def _shifted(self):
        *lead, axis, u64 = self.params()
        return type(self)(*lead, axis + 1, u64)

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [_S().apply(self._shifted(), x)], [0]


class Sort(_AxisOp):
    """Derivatives move values by the indices the sort picks, which `_arg` (the index
    primitive of the same parameters) gives."""

    __slots__ = ()
    name = "Sort"

    def _indices(self, x):
        return _S().apply(self._arg(*self.params()), x)

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        inv = _S().invert(self._indices(x), x.shape[self.axis], self.axis)
        return [_S().gather(cotangents[0], inv, self.axis)]

    def jvp(self, primals, tangents, argnums):
        return [_S().gather(tangents[0], self._indices(primals[0]), self.axis)]


class ArgSort(_AxisOp):
    """Stable ascending sort indices (uint32), NaNs last."""

    __slots__ = ()
    name = "ArgSort"

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.zeros_like(primals[0])]

    def jvp(self, primals, tangents, argnums):
        return [O.zeros_like(_S().apply(self, primals[0]))]


class Partition(Sort):
    """x reordered along `axis` so that position `kth` (non-negative) holds the element a
    sort would put there, with nothing larger before it and nothing smaller after it
    (NaNs rank last). The order inside each side is unspecified, as upstream's."""

    __slots__ = ("kth",)
    name = "Partition"

    def __init__(self, kth, axis, u64=False):
        super().__init__(axis, u64)
        self.kth = kth

    def params(self):
        return (self.kth, self.axis, self.u64)


class TopK(Sort):
    """The k largest along `axis`, in ascending order."""

    __slots__ = ("k",)
    name = "TopK"

    def __init__(self, k, axis, u64=False):
        super().__init__(axis, u64)
        self.k = k

    def params(self):
        return (self.k, self.axis, self.u64)


# indices: zero derivatives, as ArgSort's
class ArgPartition(Partition):
    """The indices (uint32) that gather x into Partition's output."""

    __slots__ = ()
    name = "ArgPartition"
    vjp, jvp = ArgSort.vjp, ArgSort.jvp


class ArgTopK(TopK):
    """The indices of TopK's output (the last k of the stable argsort)."""

    __slots__ = ()
    name = "ArgTopK"
    vjp, jvp = ArgSort.vjp, ArgSort.jvp


Sort._arg, Partition._arg, TopK._arg = ArgSort, ArgPartition, ArgTopK


class GatherAxis(Primitive):
    """out[..., j, ...] = x[..., idx[j], ...] along `axis`, 0 where idx[j] is -1.

    idx has x's shape except along `axis`; no position of x is hit twice. When idx is
    longer than x along `axis` it may hold -1s (it is then the inverse of a shorter one).
    """

    __slots__ = ("axis",)
    name = "GatherAxis"

    def __init__(self, axis):
        self.axis = axis

    def params(self):
        return (self.axis,)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, idx = primals
        res = []
        for i in argnums:
            if i == 0:
                inv = _S().invert(idx, x.shape[self.axis], self.axis)
                res.append(_S().gather(cotangents[0], inv, self.axis))
            else:
                res.append(O.zeros_like(idx))
        return res

    def jvp(self, primals, tangents, argnums):
        x, idx = primals
        if 0 not in argnums:
            return [O.zeros(idx.shape, x.dtype)]
        return [_S().gather(tangents[argnums.index(0)], idx, self.axis)]

    def vmap(self, inputs, axes):
        n = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        x, idx = (to_front(v, ax) if ax is not None
                  else O.broadcast_to(O.expand_dims(v, 0), (n,) + v.shape)
                  for v, ax in zip(inputs, axes))
        return [_S().gather(x, idx, self.axis + 1)], [0]


class InvertIndex(Primitive):
    """The inverse of an injective index map along `axis`: out has length n there, and
    out[i] = j where idx[j] == i, else -1 (entries of idx that are -1 are skipped)."""

    __slots__ = ("n", "axis")
    name = "InvertIndex"

    def __init__(self, n, axis):
        self.n, self.axis = n, axis

    def params(self):
        return (self.n, self.axis)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.zeros_like(primals[0])]

    def jvp(self, primals, tangents, argnums):
        return [O.zeros_like(_S().invert(primals[0], self.n, self.axis))]

    def vmap(self, inputs, axes):
        idx = to_front(inputs[0], axes[0])
        return [_S().invert(idx, self.n, self.axis + 1)], [0]
