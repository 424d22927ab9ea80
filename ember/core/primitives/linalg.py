"""Matrix products (matmul, addmm) and the bit reinterpretation `view`."""

import ember.core.ops as O
from ember.core.array import array, node
from ember.core.device import _CURRENT
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
        return weight_grad(a, g)
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


class Linear(Primitive):
    """x @ wᵀ (+ bias): a linear layer's product taking its (N, K) weight as stored, with
    x (..., K) and the bias (N,) when there is one (inputs (x, w) or (bias, x, w)). The
    graph of upstream's `addmm(bias, x, w.T)` has a transpose on the way in and another
    on the way out of the weight's cotangent; here neither exists: the cotangents are
    g @ w, gᵀx over the rows (`WeightGrad`) and g summed over the rows."""

    __slots__ = ()
    name = "Linear"

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        g = cotangents[0]
        off = len(primals) - 2  # (1 with a bias)
        x, w = primals[off], primals[off + 1]
        res = []
        for i in argnums:
            if i == off:
                res.append(O.matmul(g, w))
            elif i == off + 1:
                res.append(weight_grad(g, x))
            else:
                res.append(unbroadcast(g, primals[0].shape))
        return res

    def jvp(self, primals, tangents, argnums):
        off = len(primals) - 2
        x, w = primals[off], primals[off + 1]
        out = None
        for i, t in zip(argnums, tangents):
            if i == off:
                term = linear(t, w)
            elif i == off + 1:
                term = linear(x, t)
            else:
                term = O.broadcast_to(t, x.shape[:-1] + w.shape[:1])
            out = term if out is None else O.add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        off = len(inputs) - 2
        x = inputs[off]
        if all(ax is None for i, ax in enumerate(axes) if i != off):  # (only x batched)
            return [linear(to_front(x, axes[off]), *inputs[off + 1:], *inputs[:off])], [0]
        # a batched weight (or bias): a batched matmul, through the general ops
        x, w = _batched_operands((x, inputs[off + 1]), axes[off:])
        out = O.matmul(x, O.swapaxes(w, -1, -2))
        if off:
            b = inputs[0]
            if axes[0] is not None:
                b = to_front(b, axes[0])
                b = O.reshape(b, (b.shape[0],) + (1,) * (out.ndim - b.ndim) + b.shape[1:])
            out = O.add(out, b)
        return [out], [0]


class WeightGrad(Primitive):
    """gᵀ x summed over the rows: g (..., N) and x (..., K) give (N, K), the cotangent of
    a linear layer's weight."""

    __slots__ = ()
    name = "WeightGrad"

    def vjp(self, primals, cotangents, argnums, outputs):
        g, x = primals
        h = cotangents[0]  # (N, K)
        return [linear(x, h) if i == 0 else O.matmul(g, h) for i in argnums]

    def jvp(self, primals, tangents, argnums):
        g, x = primals
        out = None
        for i, t in zip(argnums, tangents):
            term = weight_grad(t, x) if i == 0 else weight_grad(g, t)
            out = term if out is None else O.add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        g, x = _all_batched(inputs, axes)
        g3 = O.reshape(g, (g.shape[0], -1, g.shape[-1]))
        x3 = O.reshape(x, (x.shape[0], -1, x.shape[-1]))
        return [O.matmul(O.swapaxes(g3, -1, -2), x3)], [0]


def _all_batched(inputs, axes):
    n = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
    return [O.broadcast_to(O.expand_dims(x, 0), (n,) + x.shape) if ax is None
            else to_front(x, ax) for x, ax in zip(inputs, axes)]


_LINEAR = Linear()
_WEIGHT_GRAD = WeightGrad()


def linear(x, w, bias=None):
    """x @ wᵀ (+ bias) as one Linear node when x (at least 2-D), w (2-D) and the bias (1-D)
    are real floating arrays of one dtype on one stream (the general ops otherwise)."""
    if type(x) is not array or type(w) is not array or not _CURRENT \
            or (bias is not None and type(bias) is not array):
        return _general_linear(x, w, bias)
    st = x._stream
    dt = x._dtype
    sx, sw = x._shape, w._shape
    if (st is _CURRENT[-1] and len(sw) == 2 and len(sx) >= 2 and sx[-1] == sw[1] and w._dtype is dt
            and dt.kind == "f" and w._stream is st
            and (bias is None or (bias._dtype is dt and bias._stream is st
                                  and bias._shape == sw[:1]))):
        shape = sx[:-1] + sw[:1]
        if bias is None:
            return node(shape, dt, _LINEAR, (x, w), st)
        return node(shape, dt, _LINEAR, (bias, x, w), st)
    return _general_linear(x, w, bias)


def _general_linear(x, w, bias):
    # (upstream's formulation, for whatever the Linear node does not take)
    if bias is None:
        return O.matmul(x, O.transpose(w))
    return O.addmm(bias, x, O.transpose(w))


def weight_grad(g, x):
    """gᵀ x over the rows of g (..., N) and x (..., K): (N, K); conj(g)ᵀ x for complex
    operands, as `_mT` (the node takes real floating ones)."""
    if g._dtype is x._dtype and g._dtype.kind == "f" and g._stream is x._stream \
            and g._shape[:-1] == x._shape[:-1]:
        return node((g._shape[-1], x._shape[-1]), g._dtype, _WEIGHT_GRAD, (g, x), g._stream)
    return O.matmul(_mT(O.reshape(g, (-1, g.shape[-1]))), O.reshape(x, (-1, x.shape[-1])))


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
