"""`depends`: outputs equal to some inputs that are only computed after other arrays."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive


class Depends(Primitive):
    """Inputs are the n passed-through arrays followed by the dependencies."""

    __slots__ = ("n",)
    name = "Depends"

    def __init__(self, n):
        self.n = n

    def params(self):
        return (self.n,)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [cotangents[i] if i < self.n else O.zeros_like(primals[i]) for i in argnums]

    def jvp(self, primals, tangents, argnums):
        given = dict(zip(argnums, tangents))
        return [given[i] if i in given else O.zeros_like(primals[i]) for i in range(self.n)]

    def vmap(self, inputs, axes):
        n = self.n
        return O.depends(list(inputs[:n]), list(inputs[n:])), list(axes[:n])
