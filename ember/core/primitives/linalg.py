"""Matrix products (matmul, addmm) and the bit reinterpretation `view`."""

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.shape import Transpose
from ember.core.primitives.vmap import to_front


def _mT(x):
    """The (conjugate, for complex) transpose of the matrix dims: cotangents of complex
    products follow upstream's convention, g @ conj(b)^T."""
    n = x.ndim
    if x.dtype.kind == "c":
        x = O.conjugate(x)
    elif type(x._prim) is Transpose and x._prim.axes == (1, 0):
        return x._inputs[0]  # (w.T).T of a Linear's weight: w itself, no node
    return O.swapaxes(x, n - 1, n - 2)


def _rhs_grad(a, g, b):
    """The cotangent of b in a @ b, summed over the batch: for a 2-D b beside a batched a
    (a Linear layer's weight), one product of the rows flattened, not one per batch entry
    and a sum after."""
    if b.ndim == 2 and a.ndim > 2:
        return O.matmul(_mT(O.reshape(a, (-1, a.shape[-1]))), O.reshape(g, (-1, g.shape[-1])))
    from ember.core.primitives.elementwise import unbroadcast
    return unbroadcast(O.matmul(_mT(a), g), b.shape)


def _scale(x, s):
    return x if s == 1 else O.multiply(x, s)


def _batched_operands(inputs, axes):
    """Matrix operands (>= 2-D) with the batch axis in front of both, padded so their
    batch dims broadcast."""
    out = []
    for x, ax in zip(inputs, axes):
        out.append(O.expand_dims(x, 0) if ax is None else to_front(x, ax))
    nb = max(x.ndim for x in out)
    return [O.reshape(x, (x.shape[0],) + (1,) * (nb - x.ndim) + x.shape[1:]) for x in out]


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
                res.append(_rhs_grad(a, g, b))
        return res

    def jvp(self, primals, tangents, argnums):
        a, b = primals
        out = None
        for i, t in zip(argnums, tangents):
            term = O.matmul(t, b) if i == 0 else O.matmul(a, t)
            out = term if out is None else O.add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        a, b = _batched_operands(inputs, axes)
        return [O.matmul(a, b)], [0]


class AddMM(Primitive):
    """alpha * (a @ b) + beta * c, with a and b >= 2-D and c broadcasting to the product."""

    __slots__ = ("alpha", "beta")
    name = "AddMM"

    def __init__(self, alpha, beta):
        self.alpha, self.beta = alpha, beta

    def params(self):
        return (self.alpha, self.beta)

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        c, a, b = primals
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                res.append(unbroadcast(_scale(g, self.beta), c.shape))
            elif i == 1:
                res.append(unbroadcast(_scale(O.matmul(g, _mT(b)), self.alpha), a.shape))
            else:
                res.append(_scale(_rhs_grad(a, g, b), self.alpha))
        return res

    def jvp(self, primals, tangents, argnums):
        c, a, b = primals
        shape = O.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        out = None
        for i, t in zip(argnums, tangents):
            if i == 0:
                term = O.broadcast_to(_scale(t, self.beta), shape)
            elif i == 1:
                term = _scale(O.matmul(t, b), self.alpha)
            else:
                term = _scale(O.matmul(a, t), self.alpha)
            out = term if out is None else O.add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        c, a, b = inputs
        a, b = _batched_operands((a, b), axes[1:])
        if axes[0] is not None:
            # c broadcasts from the right against the product: pad it to the product's rank
            c = to_front(c, axes[0])
            c = O.reshape(c, (c.shape[0],) + (1,) * (a.ndim - c.ndim) + c.shape[1:])
            if axes[1] is None and axes[2] is None:
                a = O.broadcast_to(a, (c.shape[0],) + a.shape[1:])
        return [O.addmm(c, a, b, self.alpha, self.beta)], [0]


class View(Primitive):
    """The bits of a `src` array read as `dst` (the last axis rescales with the sizes)."""

    __slots__ = ("src", "dst")
    name = "View"

    def __init__(self, src, dst):
        self.src, self.dst = src, dst

    def params(self):
        return (self.src, self.dst)

    def vjp(self, primals, cotangents, argnums, outputs):
        raise ValueError(f"[View] The vjp is not implemented for View {self.dst.name}.")

    def jvp(self, primals, tangents, argnums):
        raise ValueError(f"[View] The jvp is not implemented for View {self.dst.name}.")

    def vmap(self, inputs, axes):
        # the last axis may change size, so the batch axis goes in front
        return [O.view(to_front(inputs[0], axes[0]), self.dst)], [0]
