"""Strided views of the row-contiguous data of an array (`as_strided`), and the scatter that
is their transpose."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class AsStrided(Primitive):
    """Output element i reads flat element offset + sum(i_k * strides_k) of the input."""

    __slots__ = ("shape", "strides", "offset")
    name = "AsStrided"

    def __init__(self, shape, strides, offset):
        self.shape, self.strides, self.offset = shape, strides, offset

    def params(self):
        return (self.shape, self.strides, self.offset)

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        return [O.strided._scatter(cotangents[0], x.shape, self.strides, self.offset)]

    def jvp(self, primals, tangents, argnums):
        return [O.as_strided(tangents[0], self.shape, self.strides, self.offset)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        n = _prod(x.shape[1:])
        return [O.as_strided(x, (x.shape[0],) + self.shape, (n,) + self.strides,
                             self.offset)], [0]


class StridedScatter(Primitive):
    """The transpose of AsStrided: a zero array of `in_shape` with each element of the
    input added at the flat position AsStrided would read it from."""

    __slots__ = ("in_shape", "strides", "offset")
    name = "StridedScatter"

    def __init__(self, in_shape, strides, offset):
        self.in_shape, self.strides, self.offset = in_shape, strides, offset

    def params(self):
        return (self.in_shape, self.strides, self.offset)

    def vjp(self, primals, cotangents, argnums, outputs):
        g = primals[0]
        return [O.as_strided(cotangents[0], g.shape, self.strides, self.offset)]

    def jvp(self, primals, tangents, argnums):
        return [O.strided._scatter(tangents[0], self.in_shape, self.strides, self.offset)]

    def vmap(self, inputs, axes):
        g = to_front(inputs[0], axes[0])
        n = _prod(self.in_shape)
        return [O.strided._scatter(g, (g.shape[0],) + self.in_shape, (n,) + self.strides,
                                  self.offset)], [0]
