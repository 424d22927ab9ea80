"""The fused ops of mx.fast: normalisations, rotary embedding, attention, custom kernels.

The normalisations differentiate through one backward node each (`fast_grad.NormVJP`,
ATen's fused layer_norm backward); their jvp and rope's rules are written with Ember's ops.
Attention differentiates through torch's fused backward (`SDPAVJP`); its jvp, its vmap
and its higher derivatives use `sdpa_math`, the same function written with Ember's ops.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import node, nodes
from ember.core.primitives.base import Primitive
from ember.core.primitives.fast_grad import (
    _f,
    _fill,
    _lead_sum,
    _mean_last,
    compute_dtype,
    ln_stats,
    norm_vjp,
    rms_stats,
)
from ember.core.primitives.vmap import to_front

# -- rms_norm and layer_norm -----------------------------------------------------------

def rms_node(x, w, eps, s):
    ins = (x,) if w is None else (x, w)
    return node(x.shape, x.dtype, RMSNorm(eps), ins, s)


def ln_node(x, w, b, eps, s):
    ins = (x,) + ((w,) if w is not None else ()) + ((b,) if b is not None else ())
    return node(x.shape, x.dtype, LayerNorm(eps, w is not None, b is not None), ins, s)


class RMSNorm(Primitive):
    """x * rsqrt(mean(x^2, -1) + eps) [* w]; x and w share the output dtype."""

    __slots__ = ("eps",)
    name = "RMSNorm"

    def __init__(self, eps):
        self.eps = eps

    def params(self):
        return (self.eps,)

    def vjp(self, primals, cotangents, argnums, outputs):
        # one node: the whole backward in the kernel (see fast_grad)
        w = primals[1] if len(primals) > 1 else None
        return norm_vjp(primals[0], w, False, cotangents[0], self.eps, False, argnums,
                        [primals[i].dtype for i in argnums])

    def jvp(self, primals, tangents, argnums):
        x = primals[0]
        w = primals[1] if len(primals) > 1 else None
        ct, r, n = rms_stats(x, self.eps)
        out = None
        for i, t in zip(argnums, tangents):
            t = _f(t, ct)
            if i == 0:
                dn = O.multiply(r, O.subtract(t, O.multiply(n, _mean_last(O.multiply(n, t)))))
                term = dn if w is None else O.multiply(_f(w, ct), dn)
            else:
                term = O.multiply(t, n)
            out = term if out is None else O.add(out, term)
        return [_f(out, x.dtype)]

    def vmap(self, inputs, axes):
        x, ax = inputs[0], axes[0]
        x = to_front(x, ax) if ax is not None else O.expand_dims(x, 0)
        s = x._stream
        if len(inputs) == 1 or axes[1] is None:
            w = inputs[1] if len(inputs) > 1 else None
            return [rms_node(x, w, self.eps, s)], [0]
        w = to_front(inputs[1], axes[1])
        w = O.reshape(w, (w.shape[0],) + (1,) * (x.ndim - 2) + (w.shape[-1],))
        return [O.multiply(rms_node(x, None, self.eps, s), w)], [0]


class LayerNorm(Primitive):
    """(x - mean) * rsqrt(var + eps) [* w] [+ b] over the last axis."""

    __slots__ = ("eps", "has_w", "has_b")
    name = "LayerNorm"

    def __init__(self, eps, has_w, has_b):
        self.eps, self.has_w, self.has_b = eps, has_w, has_b

    def params(self):
        return (self.eps, self.has_w, self.has_b)

    def _split(self, primals):
        x = primals[0]
        w = primals[1] if self.has_w else None
        return x, w

    def vjp(self, primals, cotangents, argnums, outputs):
        # one node: the whole backward in the kernel (see fast_grad)
        x, w = self._split(primals)
        return norm_vjp(x, w, self.has_b, cotangents[0], self.eps, True, argnums,
                        [primals[i].dtype for i in argnums])

    def jvp(self, primals, tangents, argnums):
        x, w = self._split(primals)
        ct, r, n = ln_stats(x, self.eps)
        out = None
        for i, t in zip(argnums, tangents):
            t = _f(t, ct)
            if i == 0:
                dn = O.multiply(r, O.subtract(O.subtract(t, _mean_last(t)),
                                              O.multiply(n, _mean_last(O.multiply(n, t)))))
                term = dn if w is None else O.multiply(_f(w, ct), dn)
            elif i == 1 and self.has_w:
                term = O.multiply(t, n)
            else:
                term = O.broadcast_to(t, x.shape)
            out = term if out is None else O.add(out, term)
        return [_f(out, x.dtype)]

    def vmap(self, inputs, axes):
        x, ax = inputs[0], axes[0]
        x = to_front(x, ax) if ax is not None else O.expand_dims(x, 0)
        s = x._stream
        nb = 1 + self.has_w + self.has_b
        w = inputs[1] if self.has_w else None
        b = inputs[nb - 1] if self.has_b else None
        aw = axes[1] if self.has_w else None
        ab = axes[nb - 1] if self.has_b else None
        if aw is None and ab is None:
            return [ln_node(x, w, b, self.eps, s)], [0]

        def param(p, a):
            if a is None:
                return p
            p = to_front(p, a)
            return O.reshape(p, (p.shape[0],) + (1,) * (x.ndim - 2) + (p.shape[-1],))
        out = ln_node(x, w if aw is None else None, None, self.eps, s)
        if aw is not None:
            out = O.multiply(out, param(w, aw))
        if b is not None:
            out = O.add(out, param(b, ab))
        return [out], [0]


# -- rope ------------------------------------------------------------------------------

def rope_node(x, offset, freqs, prim, s):
    ins = (x, offset) if freqs is None else (x, offset, freqs)
    return node(x.shape, x.dtype, prim, ins, s)


class RoPE(Primitive):
    """Rotary embedding of the first `dims` features of x (..., T, D); positions are
    `offset` (a scalar, or one per batch element) + 0..T-1. `forward=False` rotates back."""

    __slots__ = ("dims", "traditional", "base", "scale", "forward")
    name = "RoPE"

    def __init__(self, dims, traditional, base, scale, forward=True):
        self.dims, self.traditional, self.base = dims, traditional, base
        self.scale, self.forward = scale, forward

    def params(self):
        return (self.dims, self.traditional, self.base, self.scale, self.forward)

    def _inverse(self):
        return RoPE(self.dims, self.traditional, self.base, self.scale, not self.forward)

    def _pairs(self, y):
        d = self.dims
        if self.traditional:
            return y[..., 0:d:2], y[..., 1:d:2]
        return y[..., : d // 2], y[..., d // 2: d]

    def _join(self, a, b, like):
        if self.traditional:
            y = O.reshape(O.stack([a, b], axis=-1), a.shape[:-1] + (self.dims,))
        else:
            y = O.concatenate([a, b], axis=-1)
        rest = like.shape[-1] - self.dims
        if rest:
            y = O.concatenate([y, O.zeros(like.shape[:-1] + (rest,), y.dtype)], axis=-1)
        return y

    def _dtheta_dfreq(self, x, offset, freqs, ct):
        """d theta / d freqs, shaped to broadcast against the pairs of x: (.., T, dims/2)."""
        t = x.shape[-2]
        pos = O.arange(t, dtype=ct)
        if offset.ndim:
            off = O.reshape(_f(offset, ct), (offset.shape[0],) + (1,) * (x.ndim - 2))
        else:
            off = _f(offset, ct)
        pos = O.expand_dims(O.add(pos, off), -1)
        f = _f(freqs, ct)
        d = O.divide(O.multiply(pos, -self.scale), O.square(f))
        return d if self.forward else O.negative(d)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, offset = primals[0], primals[1]
        freqs = primals[2] if len(primals) > 2 else None
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                res.append(rope_node(g, offset, freqs, self._inverse(), g._stream))
            elif i == 1:
                res.append(O.zeros_like(offset))
            else:
                ct = compute_dtype(x.dtype)
                o1, o2 = self._pairs(_f(outputs[0], ct))
                g1, g2 = self._pairs(_f(g, ct))
                dtheta = O.subtract(O.multiply(g2, o1), O.multiply(g1, o2))
                dfreq = self._dtheta_dfreq(x, offset, freqs, ct)
                res.append(_f(_lead_sum(O.multiply(dtheta, dfreq), 1), freqs.dtype))
        return res

    def jvp(self, primals, tangents, argnums):
        x, offset = primals[0], primals[1]
        freqs = primals[2] if len(primals) > 2 else None
        out = None
        for i, t in zip(argnums, tangents):
            if i == 0:
                term = rope_node(t, offset, freqs, self, t._stream)
            elif i == 1:
                continue
            else:
                ct = compute_dtype(x.dtype)
                y = rope_node(x, offset, freqs, self, x._stream)
                o1, o2 = self._pairs(_f(y, ct))
                dth = O.multiply(self._dtheta_dfreq(x, offset, freqs, ct), _f(t, ct))
                term = _f(self._join(O.negative(O.multiply(o2, dth)), O.multiply(o1, dth), x),
                          x.dtype)
            out = term if out is None else O.add(out, term)
        return [O.zeros_like(x) if out is None else out]

    def vmap(self, inputs, axes):
        x, offset = inputs[0], inputs[1]
        freqs = inputs[2] if len(inputs) > 2 else None
        ax, aoff = axes[0], axes[1]
        afr = axes[2] if len(axes) > 2 else None
        if aoff is None and afr is None:
            if offset.ndim == 0:
                return [rope_node(to_front(x, ax), offset, freqs, self, x._stream)], [0]
            # one offset per batch element: that is axis 0, keep it there
            x = O.moveaxis(x, ax, 1)
            return [rope_node(x, offset, freqs, self, x._stream)], [1]
        n = next(inp.shape[a] for inp, a in zip(inputs, axes) if a is not None)
        outs = []
        for j in range(n):
            xs = [inp if a is None else O.take(inp, j, axis=a) for inp, a in zip(inputs, axes)]
            outs.append(rope_node(xs[0], xs[1], xs[2] if freqs is not None else None, self,
                                  x._stream))
        return [O.stack(outs)], [0]


# -- scaled dot product attention -------------------------------------------------------

def sdpa_math(q, k, v, scale, causal, mask, sinks):
    """Attention written with Ember's ops, for any leading dims: q (..., Hq, Tq, D),
    k (..., Hk, Tk, D), v (..., Hk, Tk, Dv); softmax in float32 (float64 for float64)."""
    dt = q.dtype
    ct = compute_dtype(dt)
    hq, tq = q.shape[-3], q.shape[-2]
    hk, tk = k.shape[-3], k.shape[-2]
    if hq != hk:
        k = O.repeat(k, hq // hk, axis=-3)
        v = O.repeat(v, hq // hk, axis=-3)
    if tq == 0 or tk == 0:
        return O.zeros(q.shape[:-1] + (v.shape[-1],), dt)
    scores = _f(O.matmul(O.multiply(q, scale), O.swapaxes(k, -1, -2)), ct)
    low = D.finfo(ct).min
    if causal:
        keep = O.tril(O.ones((tq, tk), D.bool_), k=tk - tq)
        scores = O.where(keep, scores, low)
    if mask is not None:
        if mask.dtype is D.bool_:
            scores = O.where(mask, scores, low)
        else:
            scores = O.add(scores, _f(mask, ct))
    if sinks is not None:
        col = O.reshape(_f(sinks, ct), (hq, 1, 1))
        col = O.broadcast_to(col, scores.shape[:-1] + (1,))
        scores = O.concatenate([col, scores], axis=-1)
    p = O.softmax(scores, axis=-1, precise=True)
    if sinks is not None:
        p = p[..., 1:]
    return O.matmul(_f(p, dt), v)


class SDPA(Primitive):
    """softmax(scale q k^T [+ mask]) v with inputs (q, k, v[, mask][, sinks]); `mask_kind`
    is None, "bool" or "add". `save` holds the argnums a vjp asked for before the forward
    ran: the kernel then keeps torch's autograd state for the fused backward."""

    __slots__ = ("scale", "causal", "mask_kind", "has_sinks", "save")
    name = "ScaledDotProductAttention"

    def __init__(self, scale, causal, mask_kind, has_sinks):
        self.scale, self.causal = scale, causal
        self.mask_kind, self.has_sinks = mask_kind, has_sinks
        self.save = frozenset()

    def params(self):
        return (self.scale, self.causal, self.mask_kind, self.has_sinks)

    def split(self, ins):
        """(q, k, v, mask, sinks) from the inputs."""
        q, k, v = ins[0], ins[1], ins[2]
        mask = ins[3] if self.mask_kind is not None else None
        sinks = ins[-1] if self.has_sinks else None
        return q, k, v, mask, sinks

    def math(self, ins):
        q, k, v, mask, sinks = self.split(ins)
        return sdpa_math(q, k, v, self.scale, self.causal, mask, sinks)

    def vjp(self, primals, cotangents, argnums, outputs):
        out = outputs[0]
        if out._data is None:
            self.save = self.save | frozenset(argnums)
        prim = SDPAVJP(self, frozenset(argnums))
        grads = nodes([x.shape for x in primals], [x.dtype for x in primals], prim,
                      tuple(primals) + (out, cotangents[0]), out._stream)
        return [grads[i] if i != 3 or self.mask_kind != "bool" else O.zeros_like(primals[i])
                for i in argnums]

    def jvp(self, primals, tangents, argnums):
        from ember.core.transforms.autodiff import jvp
        _, outs = jvp(lambda *xs: self.math(_fill(primals, argnums, xs)),
                      [primals[i] for i in argnums], list(tangents))
        return outs

    def vmap(self, inputs, axes):
        n = next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)
        q, k, v, mask, sinks = self.split(inputs)
        aq, ak, av, am, asink = self.split(axes)
        if asink is not None:
            outs = []
            for j in range(n):
                xs = [x if a is None else O.take(x, j, axis=a) for x, a in zip(inputs, axes)]
                outs.append(self.math(xs))
            return [O.stack(outs)], [0]

        def front(x, a):
            return O.expand_dims(x, 0) if a is None else to_front(x, a)
        q, k, v = front(q, aq), front(k, ak), front(v, av)
        if mask is not None:
            if am is None:
                mask = O.reshape(mask, (1,) * (5 - mask.ndim) + mask.shape)
            else:
                mask = to_front(mask, am)
                mask = O.reshape(mask, (n,) + (1,) * (5 - mask.ndim) + mask.shape[1:])
        return [sdpa_math(q, k, v, self.scale, self.causal, mask, sinks)], [0]


class SDPAVJP(Primitive):
    """Cotangents of (q, k, v[, mask][, sinks]) from inputs (primals..., out, g), through
    torch's fused attention backward."""

    __slots__ = ("fwd", "argnums")
    name = "ScaledDotProductAttentionVJP"

    def __init__(self, fwd, argnums):
        self.fwd, self.argnums = fwd, argnums

    def params(self):
        return (self.fwd.params(), self.argnums)

    def _grads(self, ins):
        """The cotangents computed with Ember's ops (for higher derivatives)."""
        from ember.core.transforms.autodiff import vjp
        primals, g = ins[:-2], ins[-1]
        nums = sorted(self.argnums)
        _, cts = vjp(lambda *xs: self.fwd.math(_fill(primals, nums, xs)),
                     [primals[i] for i in nums], [g])
        full = [O.zeros_like(x) for x in primals]
        for i, c in zip(nums, cts):
            full[i] = c
        return full

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.transforms.autodiff import vjp
        nums = [i for i in argnums]
        _, cts = vjp(lambda *xs: self._grads(_fill(primals, nums, xs)),
                     [primals[i] for i in nums], list(cotangents))
        return cts

    def jvp(self, primals, tangents, argnums):
        from ember.core.transforms.autodiff import jvp
        _, outs = jvp(lambda *xs: self._grads(_fill(primals, argnums, xs)),
                      [primals[i] for i in argnums], list(tangents))
        return outs

    def vmap(self, inputs, axes):
        from ember.core.transforms.vmap import vmap
        outs = vmap(lambda *xs: self._grads(list(xs)), in_axes=tuple(axes))(*inputs)
        return outs, [0] * len(outs)


# -- user kernels ----------------------------------------------------------------------

class CustomKernel(Primitive):
    """A user CUDA kernel: `launch(tensors) -> list of output tensors` runs it."""

    __slots__ = ("launch",)
    name = "CustomKernel"

    def __init__(self, launch):
        self.launch = launch

    def params(self):
        return (id(self),)
