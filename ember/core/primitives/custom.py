"""CustomTransforms: the node that gives a function's outputs custom vjp, jvp and vmap rules.

Its inputs are the function's n input arrays followed by the function's outputs, and it
passes those outputs through. The rules themselves (the user's, or the transform of the
function) live in `rules`, an object of the transforms layer with flat-list methods:
`vjp(primals, cotangents, outputs)` -> a cotangent (or None) per primal,
`jvp(primals, tangents, outputs)` -> a tangent per output (tangents hold None where an
input has none), `vmap(inputs, axes, outputs, out_axes)` -> (outputs, axes), where
`outputs` are the function's outputs batched by the replay that reached this node.
"""

import ember.core.ops as O
from ember.core.primitives.base import Primitive


class CustomTransforms(Primitive):
    __slots__ = ("n_in", "rules")
    name = "CustomTransforms"

    def __init__(self, n_in, rules):
        self.n_in = n_in
        self.rules = rules

    def is_equivalent(self, other):
        # two calls of the same function may carry different rules or captured state
        return self is other

    def vjp(self, primals, cotangents, argnums, outputs):
        # The function's outputs (inputs n_in..) get no cotangent: one flowing back
        # through the function's own graph would bypass the custom rule. They come last
        # in argnums and the caller pairs results with argnums in order, so the results
        # simply stop before them.
        n = self.n_in
        wanted = [i for i in argnums if i < n]
        if not wanted:
            return []
        cts = self.rules.vjp(primals[:n], cotangents, primals[n:])
        return [O.zeros_like(primals[i]) if cts[i] is None else cts[i] for i in wanted]

    def jvp(self, primals, tangents, argnums):
        n = self.n_in
        tans = [None] * n
        for i, t in zip(argnums, tangents):
            if i < n:
                tans[i] = t
        outs = primals[n:]
        if all(t is None for t in tans):
            return [O.zeros_like(o) for o in outs]
        return self.rules.jvp(primals[:n], tans, outs)

    def vmap(self, inputs, axes):
        n = self.n_in
        return self.rules.vmap(inputs[:n], axes[:n], inputs[n:], axes[n:])
