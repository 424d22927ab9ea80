"""Shape primitives: views and rearrangements of data (reshape, broadcast, transpose)."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


class Reshape(Primitive):
    __slots__ = ("shape",)
    name = "Reshape"

    def __init__(self, shape):
        self.shape = shape

    def params(self):
        return (self.shape,)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.reshape(cotangents[0], primals[0].shape)]

    def jvp(self, primals, tangents, argnums):
        return [O.reshape(tangents[0], self.shape)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [O.reshape(x, (x.shape[0],) + self.shape)], [0]


class Broadcast(Primitive):
    __slots__ = ("shape",)
    name = "Broadcast"

    def __init__(self, shape):
        self.shape = shape

    def params(self):
        return (self.shape,)

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        return [unbroadcast(cotangents[0], primals[0].shape)]

    def jvp(self, primals, tangents, argnums):
        return [O.broadcast_to(tangents[0], self.shape)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        core = x.ndim - 1
        pad = len(self.shape) - core
        x = O.reshape(x, (x.shape[0],) + (1,) * pad + x.shape[1:])
        return [O.broadcast_to(x, (x.shape[0],) + self.shape)], [0]


class Transpose(Primitive):
    __slots__ = ("axes",)
    name = "Transpose"

    def __init__(self, axes):
        self.axes = axes

    def params(self):
        return (self.axes,)

    def vjp(self, primals, cotangents, argnums, outputs):
        inv = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inv[a] = i
        return [O.transpose(cotangents[0], inv)]

    def jvp(self, primals, tangents, argnums):
        return [O.transpose(tangents[0], self.axes)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [O.transpose(x, [0] + [a + 1 for a in self.axes])], [0]
