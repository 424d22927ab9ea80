"""Reductions over axes: sum, prod, max, min, all, any."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive


class Reduce(Primitive):
    """op over `axes` (sorted, non-negative), keeping or dropping the reduced dims."""

    __slots__ = ("op", "axes", "keepdims")
    name = "Reduce"

    def __init__(self, op, axes, keepdims):
        self.op, self.axes, self.keepdims = op, axes, keepdims

    def params(self):
        return (self.op, self.axes, self.keepdims)

    def _kept(self, y, x):
        """y with the reduced axes restored as size-1 dims."""
        if self.keepdims:
            return y
        return O.reshape(y, tuple(1 if i in self.axes else d for i, d in enumerate(x.shape)))

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        g = self._kept(cotangents[0], x)
        if self.op == "sum":
            return [O.broadcast_to(g, x.shape)]
        if self.op in ("max", "min"):
            y = self._kept(outputs[0], x)
            mask = O.astype(O.equal(x, y), g.dtype)
            count = O.sum(mask, axis=self.axes, keepdims=True)
            return [O.multiply(O.divide(g, count), mask)]
        if self.op == "prod":
            y = self._kept(outputs[0], x)
            return [O.multiply(g, _prod_except(x, y, self.axes))]
        return [O.zeros_like(x)]

    def jvp(self, primals, tangents, argnums):
        x = primals[0]
        t = tangents[0]
        if self.op == "sum":
            return [O.sum(t, axis=self.axes, keepdims=self.keepdims)]
        if self.op in ("max", "min", "prod"):
            y = O.apply_reduce(self, x)
            # the vjp's per-element weights, applied to the tangent
            w = self.vjp([x], [O.ones_like(y)], [0], [y])[0]
            return [O.sum(O.multiply(w, t), axis=self.axes, keepdims=self.keepdims)]
        return [O.zeros_like(O.apply_reduce(self, x))]

    def vmap(self, inputs, axes):
        x, ax = inputs[0], axes[0]
        if ax is None:
            return [O.apply_reduce(self, x)], [None]
        from ember.core.primitives.vmap import to_front
        x = to_front(x, ax)
        prim = Reduce(self.op, tuple(a + 1 for a in self.axes), self.keepdims)
        return [O.apply_reduce(prim, x)], [0]


def _prod_except(x, y, axes):
    """d prod / d x_i: the product of the others, exact when x has zeros."""
    safe = O.where(O.equal(x, 0), O.ones_like(x), x)
    zeros = O.sum(O.astype(O.equal(x, 0), x.dtype), axis=axes, keepdims=True)
    prod_nz = O.prod(safe, axis=axes, keepdims=True)
    others = O.where(O.equal(x, 0),
                     O.where(O.equal(zeros, 1), prod_nz, O.zeros_like(prod_nz)),
                     O.divide(y, safe))
    return others
