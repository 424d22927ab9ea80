"""Kernels of the one-node backward passes (`ember.core.primitives.fast_grad`).

layer_norm: ATen's `native_layer_norm_backward` (on CUDA a Triton kernel of one pass,
`triton_norm`), with the mean and rstd its forward left on the input, or recomputed by
`native_layer_norm` (one fused pass; it also gives them in the dtype the backward wants on
each device). rms_norm: a short formula. Both accumulate in float32 (float64 for float64),
as the formulas in Ember's ops do: half inputs are widened, but for layer_norm on CUDA,
whose ATen kernels accumulate half inputs in float32 themselves. On the CPU, half inputs
round where upstream's do (`_half_cpu`).
"""

import torch

from ember.core._backend.kernels import register
from ember.core._backend.kernels_reduce import _softmax
from ember.core._backend.triton_norm import layer_norm_backward
from ember.core.primitives import compiled as C
from ember.core.primitives import elementwise as E
from ember.core.primitives import fast_grad as G
from ember.core.primitives import reduce as R
from ember.core.primitives.base import Primitive

_HALF = (torch.float16, torch.bfloat16)
_ln_fwd = torch.ops.aten.native_layer_norm.default
_ln_bwd = torch.ops.aten.native_layer_norm_backward.default
_vecdot = torch.linalg.vecdot


def _lead(t):
    return tuple(range(t.ndim - 1))


@register(G.NormVJP)
def _norm_vjp(p, x, *rest, res=None):
    g = rest[-1]
    w = rest[0] if p.has_w else None
    nums = p.argnums
    d = x.shape[-1]
    dts = [w.dtype if (i == 1 and p.has_w) else x.dtype for i in nums]
    if x.numel() == 0:
        return [torch.zeros(x.shape if i == 0 else (d,), dtype=dt, device=x.device)
                for i, dt in zip(nums, dts)]
    want_x = 0 in nums
    want_w = p.has_w and 1 in nums
    want_b = p.has_b and 1 + p.has_w in nums
    dt = x.dtype
    gb = None
    if dt in _HALF and not x.is_cuda:
        gx, gw = _half_cpu(p, x, w, g.to(dt), want_x, want_w)
        g = g.float()
    else:
        gx, gw, gb, g, res = _grads(p, x, w, g, want_x, want_w, want_b, res)
    outs = []
    for i, odt in zip(nums, dts):
        if i == 0:
            t = gx
            if res is not None:  # (not added by the kernel)
                t = (t if t.dtype is odt else t.to(odt)) + res
        elif i == 1 and p.has_w:
            t = gw
        elif gb is not None:
            t = gb
        else:  # the bias
            t = g.sum(_lead(g)) if g.ndim > 1 else g
        outs.append(t if t.dtype is odt else t.to(odt))
    return outs


class NormVJPAdd(Primitive):
    """A layer norm's cotangents (`vjp`, a NormVJP) with a value added to the input's: a
    compiled tape's NormVJP whose input cotangent is only read by an Add (a residual
    connection's two cotangents), fused on CUDA by `fuse_norm_add`; the backward kernel
    adds it on the way out. It only runs (the tape's own steps carry the rules)."""

    __slots__ = ("vjp",)
    name = "NormVJPAdd"

    def __init__(self, vjp):
        self.vjp = vjp


@register(NormVJPAdd)
def _norm_vjp_add(p, *ins):
    return _norm_vjp(p.vjp, *ins[:-1], res=ins[-1])


_ADD = E.BINARY["add"]


def fuse_norm_add(steps, shape, dtype, outs):
    """`steps` with each layer norm's cotangents whose input cotangent is read only by an
    Add of a value of its shape and dtype, made before the norm's cotangents, computed as
    one NormVJPAdd step (the add moves 75 MB of a large GPT's 8192 x 768 float32 in 23 us
    on an H100; the kernel reads the addend in its pass over the rows)."""
    made_at = {o: n for n, st in enumerate(steps) for o in st.outs}
    users = C.readers(steps)
    made, gone = {}, set()
    for n, st in enumerate(steps):
        p = st.prim
        if p.__class__ is not G.NormVJP or not p.centered or 0 not in p.argnums:
            continue
        k = p.argnums.index(0)
        s = st.outs[k]
        us = users.get(s, ())
        if s in outs or len(us) != 1 or us[0] in gone:
            continue
        q = steps[us[0]]
        if q.prim.__class__ is not _ADD or q.ins[0] == q.ins[1]:
            continue
        r = q.ins[1] if q.ins[0] == s else q.ins[0]
        if tuple(shape[r]) != tuple(shape[s]) or dtype[r] is not dtype[s] \
                or dtype[q.outs[0]] is not dtype[s] or made_at.get(r, -1) >= n:
            continue
        new_outs = st.outs[:k] + (q.outs[0],) + st.outs[k + 1:]
        made[n] = C.Step(NormVJPAdd(p), (*st.ins, r), new_outs, st.stream, st.multi)
        gone.add(us[0])
    return C.replaced(steps, made, gone)


def _half_cpu(p, x, w, g, want_x, want_w):
    """(dx, dw) of half inputs on the CPU, rounded as upstream: g * w and g * (normalised
    x, rounded) are products in x's dtype, the rest is in float32."""
    d = x.shape[-1]
    xf = x.float()
    if p.centered:
        n, mean, rstd = _ln_fwd(xf, [d], None, None, p.eps)
    else:
        rstd = _vecdot(xf, xf).div_(d).add_(p.eps).rsqrt_().unsqueeze_(-1)
        n = xf * rstd
    gx = gw = None
    if want_x:
        gn = (g if w is None else g * w).float()
        if p.centered:
            gx = _ln_bwd(gn, xf, [d], mean, rstd, None, None, [True, False, False])[0]
        else:
            dot = _vecdot(gn, n).div_(d).unsqueeze_(-1)
            gx = gn.addcmul_(n, dot, value=-1).mul_(rstd)
    if want_w:
        gw = n.to(x.dtype).mul_(g)
        gw = gw.sum(_lead(gw), dtype=torch.float32) if gw.ndim > 1 else gw.float()
    return gx, gw


def _grads(p, x, w, g, want_x, want_w, want_b, res=None):
    """(dx, dw, db or None, g, res): float32 accumulation for half inputs (for layer_norm
    on CUDA, in ATen's kernels), g in the dtype the bias's cotangent is summed in. A layer
    norm's bias cotangent comes from ATen's kernel with the weight's (the same pass over
    the rows), not a reduction of its own. `res`, to be added to dx, comes back None
    where the kernel added it."""
    d = x.shape[-1]
    dt = x.dtype
    if dt in _HALF and not (p.centered and x.is_cuda):
        x, g = x.float(), g.float()
        w = None if w is None else w.float()
    elif g.dtype is not dt:
        g = g.to(dt)
    gx = gw = gb = None
    if want_x or want_w or (want_b and p.centered):
        if p.centered:
            mean, rstd = _stats(x, d, p.eps)
            fused = layer_norm_backward(x, g, w, mean, rstd, res) if want_x else None
            if fused is not None:
                gx, gw, gb = fused
                res = None
            else:
                # (the bias's only role there is the shape and dtype of its cotangent)
                b = None if not want_b else w if w is not None else x.new_empty(d)
                gx, gw, gb = _ln_bwd(g, x, [d], mean, rstd, w, b, [want_x, want_w, want_b])
        else:
            # (few temporaries: each large one costs page faults on the CPU)
            r = _vecdot(x, x).div_(d).add_(p.eps).rsqrt_().unsqueeze_(-1)
            n = x * r
            if want_x:
                gn = g if w is None else g * w
                dot = _vecdot(gn, n).div_(d).unsqueeze_(-1)
                gx = (gn.addcmul_(n, dot, value=-1) if w is not None else
                      torch.addcmul(gn, n, dot, value=-1)).mul_(r)
            if want_w:
                gw = n.mul_(g).sum(_lead(g)) if g.ndim > 1 else n.mul_(g)
    return gx, gw, gb, g, res


def _stats(x, d, eps):
    """(mean, rstd) of x over its last axis: those its forward left on it, or a new pass."""
    saved = getattr(x, "_ember_ln", None)
    if saved is not None and saved[0] == eps:
        return saved[1], saved[2]
    return _ln_fwd(x, [d], None, None, eps)[1:]


@register(G.SoftmaxVJP)
def _softmax_vjp(p, y, g):
    axes = p.axes
    if not axes:  # softmax over no axes is 1: the Jacobian is 0
        return y * (g - g * y)
    if len(axes) == 1 and not y.is_complex():
        return torch._softmax_backward_data(g, y, axes[0], y.dtype)
    return y * (g - (g * y).sum(axes, keepdim=True))


@register(G.LogSumExpVJP)
def _logsumexp_vjp(p, x, g):
    if not p.keepdims:
        g = g.reshape([1 if i in p.axes else s for i, s in enumerate(x.shape)])
    return g * _softmax(R.Softmax(p.axes, False), x)
