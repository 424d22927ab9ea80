"""Reductions over axes: sum, prod, max, min, all, any, mean; argmax/argmin; the fused
logsumexp, softmax and var/std.

Axes are sorted, non-negative tuples. Primitives carry the input dtype so that kernels
can treat the widened unsigned storage types (see `_backend`) without guessing.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.fast_grad import logsumexp_vjp, softmax_vjp
from ember.core.primitives.vmap import to_front


def kept_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _kept(y, shape, axes, keepdims):
    """y with the reduced axes restored as size-1 dims."""
    return y if keepdims else O.reshape(y, kept_shape(shape, axes))


def _count(shape, axes):
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def _shift(axes):
    return tuple(a + 1 for a in axes)


class Reduce(Primitive):
    """`op` (sum, prod, max, min, all, any, mean) over `axes` of an input of `dtype`."""

    __slots__ = ("op", "axes", "keepdims", "dtype")
    name = "Reduce"

    def __init__(self, op, axes, keepdims, dtype):
        self.op, self.axes, self.keepdims, self.dtype = op, axes, keepdims, dtype

    def params(self):
        return (self.op, self.axes, self.keepdims, self.dtype)

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        op = self.op
        if op in ("all", "any"):
            return [O.zeros_like(x)]
        g = _kept(cotangents[0], x.shape, self.axes, self.keepdims)
        if op == "sum":
            return [O.broadcast_to(g, x.shape)]
        if op == "mean":
            n = _count(x.shape, self.axes)
            return [O.broadcast_to(O.multiply(g, 1.0 / n if n else 0.0), x.shape)]
        y = _kept(outputs[0], x.shape, self.axes, self.keepdims)
        if op == "prod":
            others = _prod_except(x, y, self.axes)
            if x.dtype is D.complex64:
                others = O.conjugate(others)
            return [O.multiply(g, others)]
        # max/min: ties share the cotangent equally
        mask = O.astype(O.equal(x, y), g.dtype)
        count = O.sum(mask, axis=self.axes, keepdims=True)
        return [O.multiply(O.divide(g, count), mask)]

    def jvp(self, primals, tangents, argnums):
        x, t = primals[0], tangents[0]
        op = self.op
        if op in ("sum", "mean"):
            return [getattr(O, op)(t, axis=self.axes, keepdims=self.keepdims)]
        y = O.apply_reduce(self, x)
        if op == "prod":
            others = _prod_except(x, _kept(y, x.shape, self.axes, self.keepdims), self.axes)
            return [O.sum(O.multiply(others, t), axis=self.axes, keepdims=self.keepdims)]
        if op in ("max", "min"):
            return [_first_extreme(x, t, self.axes, op, y.shape)]
        return [O.zeros_like(y)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        prim = Reduce(self.op, _shift(self.axes), self.keepdims, self.dtype)
        return [O.apply_reduce(prim, x)], [0]


def _prod_except(x, y, axes):
    """d prod / d x_i: the product of the others, exact when x has zeros."""
    zero = O.equal(x, 0)
    safe = O.where(zero, O.ones_like(x), x)
    zeros = O.sum(zero, axis=axes, keepdims=True)
    prod_nz = O.prod(safe, axis=axes, keepdims=True)
    return O.where(zero, O.where(O.equal(zeros, 1), prod_nz, O.zeros_like(prod_nz)),
                   O.divide(y, safe))


def _first_extreme(x, t, axes, op, out_shape):
    """The tangent at the first max (min) over `axes` in row-major order, as upstream's
    jvp picks it."""
    if not x.size:
        return O.zeros(out_shape, t.dtype)
    if len(axes) == 1:
        ax = axes[0]
        n = x.shape[ax]
    else:
        keep = [i for i in range(x.ndim) if i not in axes]
        perm = keep + list(axes)
        n = _count(x.shape, axes)
        lead = tuple(x.shape[i] for i in keep)
        x = O.reshape(O.transpose(x, perm), lead + (n,))
        t = O.reshape(O.transpose(t, perm), lead + (n,))
        ax = len(keep)
    idx = (O.argmax if op == "max" else O.argmin)(x, axis=ax, keepdims=True)
    iota = O.reshape(O.arange(n, dtype=D.uint32), tuple(n if i == ax else 1
                                                         for i in range(x.ndim)))
    r = O.sum(O.where(O.equal(iota, idx), t, O.zeros_like(t)), axis=ax)
    return O.reshape(r, out_shape)


class ArgReduce(Primitive):
    """argmax/argmin along one axis; uint32 indices."""

    __slots__ = ("op", "axis", "keepdims", "dtype")
    name = "ArgReduce"

    def __init__(self, op, axis, keepdims, dtype):
        self.op, self.axis, self.keepdims, self.dtype = op, axis, keepdims, dtype

    def params(self):
        return (self.op, self.axis, self.keepdims, self.dtype)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.zeros_like(primals[0])]

    def jvp(self, primals, tangents, argnums):
        x = primals[0]
        shape = kept_shape(x.shape, (self.axis,)) if self.keepdims else \
            tuple(d for i, d in enumerate(x.shape) if i != self.axis)
        return [O.zeros(shape, D.uint32)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [getattr(O, self.op)(x, axis=self.axis + 1, keepdims=self.keepdims)], [0]


class LogSumExp(Primitive):
    __slots__ = ("axes", "keepdims")
    name = "LogSumExp"

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def params(self):
        return (self.axes, self.keepdims)

    def vjp(self, primals, cotangents, argnums, outputs):
        # one node: g * softmax(x) (see fast_grad)
        return [logsumexp_vjp(primals[0], cotangents[0], self.axes, self.keepdims)]

    def jvp(self, primals, tangents, argnums):
        x = primals[0]
        p = O.softmax(x, axis=self.axes)
        return [O.sum(O.multiply(tangents[0], p), axis=self.axes, keepdims=self.keepdims)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [O.logsumexp(x, axis=_shift(self.axes), keepdims=self.keepdims)], [0]


class Softmax(Primitive):
    __slots__ = ("axes", "precise")
    name = "Softmax"

    def __init__(self, axes, precise):
        self.axes, self.precise = axes, precise

    def params(self):
        return (self.axes, self.precise)

    # the Jacobian of softmax (symmetric) applied to v, y * (v - <v, y>), as one node

    def vjp(self, primals, cotangents, argnums, outputs):
        return [softmax_vjp(outputs[0], cotangents[0], self.axes)]

    def jvp(self, primals, tangents, argnums):
        y = O.softmax(primals[0], axis=self.axes, precise=self.precise)
        return [softmax_vjp(y, tangents[0], self.axes)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [O.softmax(x, axis=_shift(self.axes), precise=self.precise)], [0]


class Var(Primitive):
    """Variance (or, with `sqrt`, standard deviation) with divisor N - ddof."""

    __slots__ = ("axes", "keepdims", "ddof", "sqrt")
    name = "Var"

    def __init__(self, axes, keepdims, ddof, sqrt):
        self.axes, self.keepdims, self.ddof, self.sqrt = axes, keepdims, ddof, sqrt

    def params(self):
        return (self.axes, self.keepdims, self.ddof, self.sqrt)

    def _parts(self, x, degenerate):
        """x - mean(x) and 1 / (N - ddof) (`degenerate` when N <= ddof: upstream's vjp is
        nan there, its jvp inf)."""
        d = O.subtract(x, O.mean(x, axis=self.axes, keepdims=True))
        n = _count(x.shape, self.axes) - self.ddof
        return d, (1.0 / n if n > 0 else degenerate)

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        d, scale = self._parts(x, float("nan"))
        g = _kept(cotangents[0], x.shape, self.axes, self.keepdims)
        if self.sqrt:
            g = O.divide(g, _kept(outputs[0], x.shape, self.axes, self.keepdims))
        else:
            scale *= 2.0
        return [O.multiply(O.multiply(g, d), scale)]

    def jvp(self, primals, tangents, argnums):
        x = primals[0]
        d, scale = self._parts(x, float("inf"))
        r = O.multiply(O.sum(O.multiply(d, tangents[0]), axis=self.axes,
                             keepdims=self.keepdims), scale)
        if self.sqrt:
            return [O.divide(r, self._forward(x))]
        return [O.multiply(r, 2.0)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        f = O.std if self.sqrt else O.var
        return [f(x, axis=_shift(self.axes), keepdims=self.keepdims, ddof=self.ddof)], [0]

    def _forward(self, x):
        f = O.std if self.sqrt else O.var
        return f(x, axis=self.axes, keepdims=self.keepdims, ddof=self.ddof)
