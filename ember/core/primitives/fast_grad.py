"""One-node backward passes of the normalisations, softmax and logsumexp.

The vjp of `layer_norm`, `rms_norm`, `softmax` and `logsumexp` is a single primitive
(multi-output for the norms: one output per requested input) whose kernel runs the whole
backward in a few torch calls (ATen's `native_layer_norm_backward` for layer_norm). Each
also knows its outputs as a formula in Ember's ops (`math`): its own vjp, jvp and vmap go
through that formula, so higher derivatives and vmapped gradients see the same math as
the fused kernel.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import node, nodes
from ember.core.primitives.base import Primitive


def compute_dtype(dt):
    """The dtype the fused ops accumulate in: float32, or float64 for float64 inputs."""
    return D.float64 if dt is D.float64 else D.float32


def _f(x, dt):
    return O.astype(x, dt)


def _lead_sum(x, n):
    """x summed over every axis but the last n, as a 1-D (n == 1) array."""
    axes = tuple(range(x.ndim - n))
    return O.sum(x, axis=axes) if axes else x


def _mean_last(x):
    return O.mean(x, axis=-1, keepdims=True)


def _fill(primals, argnums, xs):
    ins = list(primals)
    for i, x in zip(argnums, xs):
        ins[i] = x
    return ins


class Composite(Primitive):
    """A primitive whose outputs `math(inputs)` (a list) also computes with Ember's ops:
    its vjp, jvp and vmap are those of the formula."""

    __slots__ = ()

    def math(self, ins):
        raise NotImplementedError

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.transforms.autodiff import vjp
        _, cts = vjp(lambda *xs: self.math(_fill(primals, argnums, xs)),
                     [primals[i] for i in argnums], list(cotangents))
        return cts

    def jvp(self, primals, tangents, argnums):
        from ember.core.transforms.autodiff import jvp
        _, outs = jvp(lambda *xs: self.math(_fill(primals, argnums, xs)),
                      [primals[i] for i in argnums], list(tangents))
        return outs

    def vmap(self, inputs, axes):
        from ember.core.transforms.vmap import vmap
        outs = vmap(lambda *xs: self.math(list(xs)), in_axes=tuple(axes))(*inputs)
        return outs, [0] * len(outs)


# -- layer_norm and rms_norm ------------------------------------------------------------

def ln_stats(x, eps):
    """(compute dtype, rsqrt(var + eps), normalised x) of layer_norm, keepdims."""
    ct = compute_dtype(x.dtype)
    xc = _f(x, ct)
    xc = O.subtract(xc, _mean_last(xc))
    r = O.rsqrt(O.add(_mean_last(O.square(xc)), eps))
    return ct, r, O.multiply(xc, r)


def rms_stats(x, eps):
    """(compute dtype, rsqrt(mean(x^2) + eps), normalised x) of rms_norm, keepdims."""
    ct = compute_dtype(x.dtype)
    xf = _f(x, ct)
    r = O.rsqrt(O.add(_mean_last(O.square(xf)), eps))
    return ct, r, O.multiply(xf, r)


class NormVJP(Composite):
    """Cotangents of the inputs `argnums` (a tuple) of layer_norm (`centered`) or rms_norm
    from inputs (x[, w], g): one output per argnum, in the dtype of that input. Inputs of
    the forward: x, then w if `has_w`, then b if `has_b` (layer_norm)."""

    __slots__ = ("eps", "centered", "has_w", "has_b", "argnums")
    name = "NormVJP"

    def __init__(self, eps, centered, has_w, has_b, argnums):
        self.eps, self.centered, self.has_w, self.has_b = eps, centered, has_w, has_b
        self.argnums = argnums

    def params(self):
        return (self.eps, self.centered, self.has_w, self.has_b, self.argnums)

    def math(self, ins):
        """The cotangents written with Ember's ops (float32 / float64 accumulation)."""
        x, g = ins[0], ins[-1]
        w = ins[1] if self.has_w else None
        ct, r, n = (ln_stats if self.centered else rms_stats)(x, self.eps)
        g = _f(g, ct)
        res = []
        for i in self.argnums:
            if i == 0:
                gn = g if w is None else O.multiply(g, _f(w, ct))
                a = O.subtract(gn, _mean_last(gn)) if self.centered else gn
                inner = O.subtract(a, O.multiply(n, _mean_last(O.multiply(gn, n))))
                res.append(_f(O.multiply(r, inner), x.dtype))
            elif i == 1 and self.has_w:
                res.append(_f(_lead_sum(O.multiply(g, n), 1), w.dtype))
            else:  # the bias
                res.append(_f(_lead_sum(g, 1), x.dtype))
        return res


def norm_vjp(x, w, has_b, g, eps, centered, argnums, dtypes):
    """The cotangents of a norm's inputs `argnums` as one node (`dtypes`: their dtypes)."""
    d = x.shape[-1]
    shapes = [x.shape if i == 0 else (d,) for i in argnums]
    prim = NormVJP(eps, centered, w is not None, has_b, tuple(argnums))
    ins = (x, g) if w is None else (x, w, g)
    return nodes(shapes, dtypes, prim, ins, g._stream)


# -- softmax and logsumexp --------------------------------------------------------------

class SoftmaxVJP(Composite):
    """y * (g - sum(g * y, axes)) from inputs (y, g): the (symmetric) Jacobian of softmax
    at output y applied to g."""

    __slots__ = ("axes",)
    name = "SoftmaxVJP"

    def __init__(self, axes):
        self.axes = axes

    def params(self):
        return (self.axes,)

    def math(self, ins):
        y, v = ins
        dot = O.sum(O.multiply(v, y), axis=self.axes, keepdims=True)
        return [O.multiply(y, O.subtract(v, dot))]


def softmax_vjp(y, g, axes):
    if y._dtype is not g._dtype or y._shape != g._shape:
        return SoftmaxVJP(axes).math([y, g])[0]
    return node(y._shape, y._dtype, SoftmaxVJP(axes), (y, g), g._stream)


class LogSumExpVJP(Composite):
    """g * softmax(x, axes) from inputs (x, g), g shaped as logsumexp's output."""

    __slots__ = ("axes", "keepdims")
    name = "LogSumExpVJP"

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def params(self):
        return (self.axes, self.keepdims)

    def math(self, ins):
        x, g = ins
        if not self.keepdims:
            g = O.reshape(g, tuple(1 if i in self.axes else s for i, s in enumerate(x.shape)))
        return [O.multiply(g, O.softmax(x, axis=self.axes))]


def logsumexp_vjp(x, g, axes, keepdims):
    prim = LogSumExpVJP(axes, keepdims)
    if x._dtype is not g._dtype:
        return prim.math([x, g])[0]
    return node(x._shape, x._dtype, prim, (x, g), g._stream)
