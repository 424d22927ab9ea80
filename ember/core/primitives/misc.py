"""Primitives that move or relabel data: astype, device copies, identity, stop_gradient."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive


class AsType(Primitive):
    __slots__ = ("dtype",)
    name = "AsType"

    def __init__(self, dtype):
        self.dtype = dtype

    def params(self):
        return (self.dtype,)

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        g = cotangents[0]
        return [O.astype(g, x.dtype)]

    def jvp(self, primals, tangents, argnums):
        return [O.astype(tangents[0], self.dtype)]

    def vmap(self, inputs, axes):
        return [O.astype(inputs[0], self.dtype)], [axes[0]]


class AsTypeU64(AsType):
    """A cast from uint64 (stored as int64) to a floating or complex dtype."""

    __slots__ = ()


class Copy(Primitive):
    """A copy of the input onto another device."""

    __slots__ = ("tdevice",)
    name = "Copy"

    def __init__(self, tdevice):
        self.tdevice = tdevice

    def params(self):
        return (self.tdevice,)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.to_device(cotangents[0], primals[0]._stream)]

    def jvp(self, primals, tangents, argnums):
        return [tangents[0]]

    def vmap(self, inputs, axes):
        return [O.to_device(inputs[0], O.resolve(None))], [axes[0]]


class Identity(Primitive):
    """A new node with the input's value (used to give arrays their own identity)."""

    __slots__ = ()
    name = "Identity"

    def vjp(self, primals, cotangents, argnums, outputs):
        return [cotangents[0]]

    def jvp(self, primals, tangents, argnums):
        return [tangents[0]]

    def vmap(self, inputs, axes):
        return [O._identity(inputs[0])], [axes[0]]


class StopGradient(Identity):
    __slots__ = ()
    name = "StopGradient"

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.zeros_like(primals[0])]

    def jvp(self, primals, tangents, argnums):
        return [O.zeros_like(primals[0])]

    def vmap(self, inputs, axes):
        return [O.stop_gradient(inputs[0])], [axes[0]]
