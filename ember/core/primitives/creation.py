"""Primitives that make arrays from nothing: constants and ranges."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive


class Full(Primitive):
    """An array of one value."""

    __slots__ = ("shape", "value", "dtype", "tdevice")
    name = "Full"

    def __init__(self, shape, value, dtype, tdevice):
        self.shape, self.value, self.dtype, self.tdevice = shape, value, dtype, tdevice

    def params(self):
        return (self.shape, self.value, type(self.value), self.dtype, self.tdevice)

    def vmap(self, inputs, axes):
        return [O.full(self.shape, self.value, self.dtype)], [None]


class Arange(Primitive):
    __slots__ = ("start", "stop", "step", "dtype", "tdevice")
    name = "Arange"

    def __init__(self, start, stop, step, dtype, tdevice):
        self.start, self.stop, self.step = start, stop, step
        self.dtype, self.tdevice = dtype, tdevice

    def params(self):
        return (self.start, self.stop, self.step, self.dtype, self.tdevice)
