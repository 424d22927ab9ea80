"""Matrix products."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _mT(x):
    n = x.ndim
    return O.swapaxes(x, n - 1, n - 2)


class Matmul(Primitive):
    """Batched (…, M, K) @ (…, K, N) with broadcast batch dims (inputs are >= 2-D)."""

    __slots__ = ()
    name = "Matmul"

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        a, b = primals
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                res.append(unbroadcast(O.matmul(g, _mT(b)), a.shape))
            else:
                res.append(unbroadcast(O.matmul(_mT(a), g), b.shape))
        return res

    def jvp(self, primals, tangents, argnums):
        a, b = primals
        out = None
        for i, t in zip(argnums, tangents):
            term = O.matmul(t, b) if i == 0 else O.matmul(a, t)
            out = term if out is None else O.add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        a, b = inputs
        ax, bx = axes
        # batch axes go in front; an unbatched side broadcasts over them
        if ax is not None:
            a = to_front(a, ax)
        if bx is not None:
            b = to_front(b, bx)
        if ax is None:
            a = O.expand_dims(a, 0)
        if bx is None:
            b = O.expand_dims(b, 0)
        nb = max(a.ndim, b.ndim)
        a = O.reshape(a, (a.shape[0],) + (1,) * (nb - a.ndim) + a.shape[1:])
        b = O.reshape(b, (b.shape[0],) + (1,) * (nb - b.ndim) + b.shape[1:])
        return [O.matmul(a, b)], [0]
