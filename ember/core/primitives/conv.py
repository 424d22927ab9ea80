"""Convolution and its two adjoints (the input and weight gradients).

MLX's general convolution is bilinear in (input, weight): y = B(x, w). Its vjp needs
B(., w)^T and B(x, .)^T, which are primitives of their own here (`ConvGradInput`,
`ConvGradWeight`, and `ConvGrad` for both at once, the common training case: one backend
call on the real operands, as torch's autograd makes) so that the kernels can call the
backend's fused backward convolution. They close under differentiation: the adjoints of
the adjoints are again B and the other adjoint, so derivatives of any order stay on fast
kernels.

Layouts are MLX's, channels last: data (N, *spatial, C), weights (O, *kernel, C / groups).
"""

from ember.core.array import node, nodes
from ember.core.device import resolve
from ember.core.primitives.base import Primitive


def _cast(x, dtype):
    import ember.core.ops as O
    return x if x.dtype is dtype else O.astype(x, dtype)


def _add(a, b):
    import ember.core.ops as O
    return b if a is None else O.add(a, b)


class Convolution(Primitive):
    """y = B(x, w): inputs (x, w), every parameter a tuple with one entry per spatial dim
    (padding already non-negative: negative padding is a slice of the input)."""

    __slots__ = ("stride", "lo", "hi", "kdil", "idil", "groups", "flip", "_key")
    name = "Convolution"

    def __init__(self, stride, lo, hi, kdil, idil, groups, flip):
        self.stride, self.lo, self.hi = stride, lo, hi
        self.kdil, self.idil, self.groups, self.flip = kdil, idil, groups, flip
        self._key = (stride, lo, hi, kdil, idil, groups, flip)

    def params(self):
        return self._key

    def regrouped(self, groups):
        return Convolution(self.stride, self.lo, self.hi, self.kdil, self.idil, groups,
                           self.flip)

    def out_shape(self, xshape, wshape):
        out = [xshape[0]]
        for i, n in enumerate(xshape[1:-1]):
            n = (n - 1) * self.idil[i] + 1 + self.lo[i] + self.hi[i]
            k = (wshape[i + 1] - 1) * self.kdil[i] + 1
            out.append((n - k) // self.stride[i] + 1)
        out.append(wshape[0])
        return tuple(out)

    def apply(self, x, w):
        return node(self.out_shape(x.shape, w.shape), x.dtype, self, (x, w), resolve(None))

    def grad_input(self, g, w, xshape):
        return node(xshape, w.dtype, ConvGradInput(self, xshape), (_cast(g, w.dtype), w),
                    resolve(None))

    def grad_weight(self, g, x, wshape):
        return node(wshape, x.dtype, ConvGradWeight(self, wshape), (_cast(g, x.dtype), x),
                    resolve(None))

    def grads(self, g, x, w):
        """[B(., w)^T g, B(x, .)^T g] as one node pair."""
        return nodes((x.shape, w.shape), (x.dtype, w.dtype), ConvGrad(self),
                     (_cast(g, x.dtype), x, w), resolve(None))

    def vjp(self, primals, cotangents, argnums, outputs):
        x, w = primals
        g = cotangents[0]
        if len(argnums) == 2:
            return self.grads(g, x, w)
        return [self.grad_input(g, w, x.shape) if i == 0 else self.grad_weight(g, x, w.shape)
                for i in argnums]

    def jvp(self, primals, tangents, argnums):
        x, w = primals
        out = None
        for i, t in zip(argnums, tangents):
            out = _add(out, self.apply(t, w) if i == 0 else self.apply(x, t))
        return [out]

    def vmap(self, inputs, axes):
        x, w = inputs
        ax, aw = axes
        if aw is None:
            return [_fold_batch(x, ax, lambda v: self.apply(v, w))], [0]
        b = (x.shape[ax] if ax is not None else w.shape[aw])
        xs, ws = _into_channels(x, ax, b), _into_out(w, aw, b)
        y = self.regrouped(self.groups * b).apply(xs, ws)
        return [_from_channels(y, b)], [0]


class ConvolutionBias(Convolution):
    """B(x, w) + bias: a convolution layer's output as one node, inputs (x, w, bias) with
    the bias (C_out,) in the output's dtype (the backend adds it in its convolution
    call). Its rules are the convolution's plus the bias's: summed cotangent, broadcast
    tangent."""

    __slots__ = ()
    name = "ConvolutionBias"

    def plain(self):
        return self.regrouped(self.groups)

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        x, w, b = primals
        xw = [i for i in argnums if i < 2]
        res = dict(zip(xw, self.plain().vjp([x, w], cotangents, xw, outputs))) if xw else {}
        if 2 in argnums:
            res[2] = unbroadcast(cotangents[0], b.shape)
        return [res[i] for i in argnums]

    def jvp(self, primals, tangents, argnums):
        import ember.core.ops as O
        x, w, b = primals
        conv, out = self.plain(), None
        shape = conv.out_shape(x.shape, w.shape)
        for i, t in zip(argnums, tangents):
            term = (conv.apply(t, w) if i == 0 else conv.apply(x, t) if i == 1
                    else O.broadcast_to(t, shape))
            out = _add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        import ember.core.ops as O
        from ember.core.primitives.vmap import to_front
        (y,), (ay,) = self.plain().vmap(inputs[:2], axes[:2])
        b, ab = inputs[2], axes[2]
        if ab is not None:  # (V, C) against y (V, N, ..., C)
            b = to_front(b, ab)
            b = O.reshape(b, (b.shape[0],) + (1,) * (y.ndim - 2) + b.shape[1:])
        return [O.add(y, b)], [ay]


def with_bias(y, bias):
    """y + bias for a convolution's output y: one ConvolutionBias node in place of the
    pending convolution node when the bias is a (C_out,) array of y's dtype on its
    stream (the add otherwise)."""
    import ember.core.ops as O
    from ember.core.array import array
    if type(y._prim) is Convolution and type(bias) is array and bias._dtype is y._dtype \
            and bias._shape == y._shape[-1:] and bias._stream is y._stream:
        x, w = y._inputs
        prim = ConvolutionBias(*y._prim._key)
        return node(y._shape, y._dtype, prim, (x, w, bias), y._stream)
    return O.add(y, bias)


class ConvGradInput(Primitive):
    """B(., w)^T g: inputs (g, w); the shape of x is a parameter."""

    __slots__ = ("conv", "shape")
    name = "ConvGradInput"

    def __init__(self, conv, shape):
        self.conv, self.shape = conv, shape

    def params(self):
        return (self.conv._key, self.shape)

    def vjp(self, primals, cotangents, argnums, outputs):
        g, w = primals
        c = _cast(cotangents[0], w.dtype)
        return [self.conv.apply(c, w) if i == 0 else self.conv.grad_weight(g, c, w.shape)
                for i in argnums]

    def jvp(self, primals, tangents, argnums):
        g, w = primals
        out = None
        for i, t in zip(argnums, tangents):
            term = (self.conv.grad_input(t, w, self.shape) if i == 0
                    else self.conv.grad_input(g, t, self.shape))
            out = _add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        g, w = inputs
        ag, aw = axes
        if aw is None:
            def f(v):
                return self.conv.grad_input(v, w, (v.shape[0],) + self.shape[1:])
            return [_fold_batch(g, ag, f)], [0]
        b = g.shape[ag] if ag is not None else w.shape[aw]
        gs, ws = _into_channels(g, ag, b), _into_out(w, aw, b)
        shape = self.shape[:-1] + (self.shape[-1] * b,)
        dx = self.conv.regrouped(self.conv.groups * b).grad_input(gs, ws, shape)
        return [_from_channels(dx, b)], [0]


class ConvGradWeight(Primitive):
    """B(x, .)^T g: inputs (g, x); the shape of w is a parameter."""

    __slots__ = ("conv", "shape")
    name = "ConvGradWeight"

    def __init__(self, conv, shape):
        self.conv, self.shape = conv, shape

    def params(self):
        return (self.conv._key, self.shape)

    def vjp(self, primals, cotangents, argnums, outputs):
        g, x = primals
        c = _cast(cotangents[0], x.dtype)
        return [self.conv.apply(x, c) if i == 0 else self.conv.grad_input(g, c, x.shape)
                for i in argnums]

    def jvp(self, primals, tangents, argnums):
        g, x = primals
        out = None
        for i, t in zip(argnums, tangents):
            term = (self.conv.grad_weight(t, x, self.shape) if i == 0
                    else self.conv.grad_weight(g, t, self.shape))
            out = _add(out, term)
        return [out]

    def vmap(self, inputs, axes):
        # the batch sums over N here, so it always goes into the groups
        g, x = inputs
        ag, ax = axes
        b = g.shape[ag] if ag is not None else x.shape[ax]
        gs, xs = _into_channels(g, ag, b), _into_channels(x, ax, b)
        shape = (self.shape[0] * b,) + self.shape[1:]
        dw = self.conv.regrouped(self.conv.groups * b).grad_weight(gs, xs, shape)
        return [_from_out(dw, b)], [0]


class ConvGrad(Primitive):
    """[B(., w)^T g, B(x, .)^T g]: inputs (g, x, w), outputs (dx, dw)."""

    __slots__ = ("conv",)
    name = "ConvGrad"

    def __init__(self, conv):
        self.conv = conv

    def params(self):
        return self.conv._key

    def vjp(self, primals, cotangents, argnums, outputs):
        g, x, w = primals
        cx, cw = _cast(cotangents[0], w.dtype), _cast(cotangents[1], x.dtype)
        conv = self.conv
        out = []
        for i in argnums:
            if i == 0:
                out.append(_add(conv.apply(cx, w), conv.apply(x, cw)))
            elif i == 1:
                out.append(conv.grad_input(g, cw, x.shape))
            else:
                out.append(conv.grad_weight(g, cx, w.shape))
        return out

    def jvp(self, primals, tangents, argnums):
        g, x, w = primals
        conv = self.conv
        dx = dw = None
        for i, t in zip(argnums, tangents):
            if i == 0:
                dx = _add(dx, conv.grad_input(t, w, x.shape))
                dw = _add(dw, conv.grad_weight(t, x, w.shape))
            elif i == 1:
                dw = _add(dw, conv.grad_weight(g, t, w.shape))
            else:
                dx = _add(dx, conv.grad_input(g, t, x.shape))
        import ember.core.ops as O
        return [O.zeros(x.shape, x.dtype) if dx is None else dx,
                O.zeros(w.shape, w.dtype) if dw is None else dw]

    def vmap(self, inputs, axes):
        g, x, w = inputs
        ag, ax, aw = axes
        xshape = x.shape if ax is None else x.shape[:ax] + x.shape[ax + 1:]
        wshape = w.shape if aw is None else w.shape[:aw] + w.shape[aw + 1:]
        return [_vmapped(ConvGradInput(self.conv, xshape), g, w, ag, aw, ax, x),
                _vmapped(ConvGradWeight(self.conv, wshape), g, x, ag, ax, aw, w)], [0, 0]


def _vmapped(prim, g, y, ag, ay, a_other, other):
    """prim over (g, y), batched at axis 0; only the third operand may carry the batch."""
    if ag is None and ay is None:
        import ember.core.ops as O
        b = other.shape[a_other]
        r = node(prim.shape, y.dtype, prim, (_cast(g, y.dtype), y), resolve(None))
        return O.broadcast_to(O.expand_dims(r, 0), (b,) + r.shape)
    return prim.vmap([g, y], [ag, ay])[0][0]


# -- vmap: a batch folds into N when only data is batched, else into the groups --------

def _fold_batch(x, ax, f):
    import ember.core.ops as O
    from ember.core.primitives.vmap import to_front
    x = to_front(x, ax)
    b, n = x.shape[0], x.shape[1]
    y = f(O.reshape(x, (b * n,) + x.shape[2:]))
    return O.reshape(y, (b, n) + y.shape[1:])


def _into_channels(x, ax, b):
    """Data (B, N, ..., C) as (N, ..., B * C): batch b owns channels [b * C, (b + 1) * C),
    which are group block b once the groups are multiplied by B."""
    import ember.core.ops as O
    if ax is None:
        x = O.broadcast_to(O.expand_dims(x, -2), x.shape[:-1] + (b, x.shape[-1]))
    else:
        x = O.moveaxis(x, ax, -2)
    return O.reshape(x, x.shape[:-2] + (b * x.shape[-1],))


def _into_out(w, aw, b):
    """Weights (B, O, ..., I) as (B * O, ..., I)."""
    import ember.core.ops as O
    if aw is None:
        w = O.broadcast_to(O.expand_dims(w, 0), (b,) + w.shape)
    elif aw:
        w = O.moveaxis(w, aw, 0)
    return O.reshape(w, (b * w.shape[1],) + w.shape[2:])


def _from_channels(y, b):
    import ember.core.ops as O
    y = O.reshape(y, y.shape[:-1] + (b, y.shape[-1] // b))
    return O.moveaxis(y, -2, 0)


def _from_out(w, b):
    import ember.core.ops as O
    return O.reshape(w, (b, w.shape[0] // b) + w.shape[1:])
