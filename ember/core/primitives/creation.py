"""Primitives that make arrays from nothing (constants, ranges, identity-like matrices,
windows) and the triangle masks and NaN replacement that act on one array.

Source primitives have no inputs, so transforms never call their rules.
"""

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


class Full(Primitive):
    """An array of one value."""

    __slots__ = ("shape", "value", "dtype", "tdevice")
    name = "Full"

    def __init__(self, shape, value, dtype, tdevice):
        self.shape, self.value, self.dtype, self.tdevice = shape, value, dtype, tdevice

    def params(self):
        return (self.shape, self.value, type(self.value), self.dtype, self.tdevice)


class Arange(Primitive):
    """`n` values start, start + step, ... in `dtype` (start and step already cast to it,
    as upstream: the step is dtype(start + step) - dtype(start))."""

    __slots__ = ("start", "step", "n", "dtype", "tdevice")
    name = "Arange"

    def __init__(self, start, step, n, dtype, tdevice):
        self.start, self.step, self.n = start, step, n
        self.dtype, self.tdevice = dtype, tdevice

    def params(self):
        return (self.start, self.step, self.n, self.dtype, self.tdevice)


class Linspace(Primitive):
    """`num` points from start to stop, computed in `compute` precision, as upstream:
    (1 - t) * start + t * stop with t = i / (num - 1) (i / num without the endpoint)."""

    __slots__ = ("start", "stop", "num", "div", "compute", "dtype", "tdevice")
    name = "Linspace"

    def __init__(self, start, stop, num, div, compute, dtype, tdevice):
        self.start, self.stop, self.num, self.div = start, stop, num, div
        self.compute, self.dtype, self.tdevice = compute, dtype, tdevice

    def params(self):
        return (self.start, self.stop, self.num, self.div, self.compute, self.dtype,
                self.tdevice)


class Eye(Primitive):
    """An n x m matrix: ones on diagonal k (`tri`: at and below it), zeros elsewhere."""

    __slots__ = ("n", "m", "k", "tri", "dtype", "tdevice")
    name = "Eye"

    def __init__(self, n, m, k, tri, dtype, tdevice):
        self.n, self.m, self.k, self.tri = n, m, k, tri
        self.dtype, self.tdevice = dtype, tdevice

    def params(self):
        return (self.n, self.m, self.k, self.tri, self.dtype, self.tdevice)


class Window(Primitive):
    """A float32 window of M points: hamming, hanning, bartlett or blackman."""

    __slots__ = ("kind", "m", "tdevice")
    name = "Window"

    def __init__(self, kind, m, tdevice):
        self.kind, self.m, self.tdevice = kind, m, tdevice

    def params(self):
        return (self.kind, self.m, self.tdevice)


class Tri(Primitive):
    """x with the entries above diagonal k (`upper`: below it) of its last two axes
    zeroed: tril / triu."""

    __slots__ = ("k", "upper")
    name = "Tri"

    def __init__(self, k, upper):
        self.k, self.upper = k, upper

    def params(self):
        return (self.k, self.upper)

    def _apply(self, x):
        return (O.triu if self.upper else O.tril)(x, self.k)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [self._apply(cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [self._apply(tangents[0])]

    def vmap(self, inputs, axes):
        x, ax = inputs[0], axes[0]
        if ax >= x.ndim - 2:  # the batch axis is among the matrix axes: move it out
            x, ax = to_front(x, ax), 0
        return [self._apply(x)], [ax]


class NanToNum(Primitive):
    """x with NaN, +inf and -inf replaced (the values already in x's dtype)."""

    __slots__ = ("nan", "posinf", "neginf")
    name = "NanToNum"

    def __init__(self, nan, posinf, neginf):
        self.nan, self.posinf, self.neginf = nan, posinf, neginf

    def params(self):
        return (str(self.nan), str(self.posinf), str(self.neginf))

    def vjp(self, primals, cotangents, argnums, outputs):
        keep = O.isfinite(primals[0])
        g = cotangents[0]
        return [O.where(keep, g, O.zeros_like(g))]

    def jvp(self, primals, tangents, argnums):
        keep = O.isfinite(primals[0])
        t = tangents[0]
        return [O.where(keep, t, O.zeros_like(t))]

    def vmap(self, inputs, axes):
        from ember.core.array import node
        x = inputs[0]
        return [node(x.shape, x.dtype, self, (x,), x._stream)], [axes[0]]
