"""Kernels of the convolution family on ATen's convolution and convolution_backward.

MLX's data layout (N, *spatial, C) is torch's channels-last memory format, so a
`movedim(-1, 1)` view hands cuDNN its preferred layout with no copy, and the results
come back channels-last, i.e. as contiguous MLX arrays. 1-D convolutions are lifted to
2-D (a unit height) because torch has no channels-last format for 3-D tensors.

Every MLX convolution maps onto one torch call plus cheap edits, worked out once per
(parameters, shapes) in a `_Plan`:
  * no input dilation: a plain convolution; asymmetric padding pads the input for the
    excess of one side over the other; `flip` flips the kernel;
  * input dilation: a transposed convolution (stride = input dilation) on the kernel
    regrouped to torch's (C_in, C_out / groups, ...) layout, flipped unless `flip`; padding
    that torch cannot express is a pad or crop of its output, and a kernel stride is a
    strided slice of the stride-1 result.
The gradients run the same plan backwards: the adjoints of the output edits on the
cotangent, then convolution_backward, then the adjoints of the input edits. When both
gradients are wanted (`ConvGrad`) that is one convolution_backward on the real operands,
exactly the call torch's autograd makes; alone, the missing operand is an uninitialised
stand-in whose shape and strides are all torch reads.

The common case (`simple`: no padding edits, flips or input dilation, 2-D/3-D) is one
torch call on permuted views, nothing else: no copies, casts or extra kernels.
"""

import functools

import torch
import torch.nn.functional as F

from ember.core._backend.kernels import register
from ember.core.primitives import conv as C

_conv_bwd = torch.ops.aten.convolution_backward.default
_HALF = (torch.float16, torch.bfloat16)


def _gemm(t):
    """Whether a pointwise convolution of `t` runs as matrix products (see `_Plan`)."""
    return t.dtype in _HALF and t.is_cuda


def _pad_list(widths):
    """Per-spatial-dim (low, high) as F.pad's list for an (N, *spatial, C) tensor."""
    out = [0, 0]
    for lo, hi in reversed(widths):
        out += [lo, hi]
    return out


class _Plan:
    __slots__ = ("lift", "transposed", "xpad", "xunpad", "xp_shape", "t_stride", "t_pad",
                 "t_dil", "t_op", "groups", "wflip", "w_shape", "wt_shape", "post_pad",
                 "post_unpad", "full_shape", "stride_index", "out_shape", "simple", "to_t",
                 "from_t", "pointwise")


@functools.lru_cache(maxsize=4096)
def _plan(key, xshape, wshape):
    stride, lo, hi, kdil, idil, groups, flip = key
    nd = len(stride)
    p = _Plan()
    p.lift = nd == 1
    p.groups = groups
    p.w_shape = wshape
    p.transposed = any(d != 1 for d in idil)
    ks = wshape[1:-1]
    t_pad, t_op, xpad, post = [], [], [], []
    if not p.transposed:
        for i in range(nd):
            m = min(lo[i], hi[i])
            t_pad.append(m)
            t_op.append(0)
            xpad.append((lo[i] - m, hi[i] - m))
        t_stride = list(stride)
        post = [(0, 0)] * nd
    else:
        for i in range(nd):
            kd = (ks[i] - 1) * kdil[i]
            op = hi[i] - lo[i]
            if lo[i] <= kd and 0 <= op < max(idil[i], kdil[i]):
                t_pad.append(kd - lo[i])
                t_op.append(op)
                post.append((0, 0))
            else:
                pt = max(0, kd - max(lo[i], hi[i]))
                t_pad.append(pt)
                t_op.append(0)
                post.append((lo[i] - (kd - pt), hi[i] - (kd - pt)))
        t_stride = list(idil)
        xpad = [(0, 0)] * nd
    t_dil = list(kdil)
    if p.lift:
        t_stride, t_pad, t_dil, t_op = [1] + t_stride, [0] + t_pad, [1] + t_dil, [0] + t_op
    p.t_stride, p.t_pad, p.t_dil, p.t_op = t_stride, t_pad, t_dil, t_op
    p.xpad = _pad_list(xpad) if any(a or b for a, b in xpad) else None
    p.xunpad = [-v for v in p.xpad] if p.xpad else None
    p.xp_shape = (xshape[0],) + tuple(n + a + b for n, (a, b) in zip(xshape[1:-1], xpad)) \
        + (xshape[-1],)
    p.post_pad = _pad_list(post) if any(a or b for a, b in post) else None
    p.post_unpad = [-v for v in p.post_pad] if p.post_pad else None
    # the kernel's own layout: flipped spatial dims, and for transposed convolutions
    # (C_in, C_out / groups, *kernel)
    p.wflip = (tuple(range(2 + p.lift, 2 + p.lift + nd))
               if flip != p.transposed else None)
    o, cg = wshape[0], wshape[-1]
    kshape = ((1,) if p.lift else ()) + ks
    p.wt_shape = ((cg * groups, o // groups) if p.transposed else (o, cg)) + kshape
    full = [xshape[0]]
    for i, n in enumerate(xshape[1:-1]):
        n = (n - 1) * idil[i] + 1 + lo[i] + hi[i]
        full.append(n - (ks[i] - 1) * kdil[i])
    full.append(o)
    p.full_shape = tuple(full)
    strided = p.transposed and any(s != 1 for s in stride)
    p.stride_index = ((slice(None),) + tuple(slice(None, None, s) for s in stride)
                      if strided else None)
    p.out_shape = C.Convolution(*key).out_shape(xshape, wshape)
    p.simple = not (p.xpad or p.post_pad or p.stride_index or p.wflip or p.transposed
                    or p.lift)
    # a 1x1 kernel with unit strides and no padding or groups is a matrix product over
    # the (N * spatial, C) rows: in half types on CUDA one GEMM each way beats cuDNN
    # (the bfloat16 1x1 benchmark's forward+backward: 0.10-0.12 ms against 0.19-0.20; in
    # float32 cuDNN was faster, 0.17 against 0.21 ms)
    p.pointwise = (p.simple and groups == 1 and all(k == 1 for k in ks)
                   and all(v == 1 for v in stride))
    # (N, *spatial, C) <-> (N, C, *spatial) permutations, for the simple case
    p.to_t = (0, nd + 1) + tuple(range(1, nd + 1))
    p.from_t = (0,) + tuple(range(2, nd + 2)) + (1,)
    return p


def _to_t(x, lift):
    """(N, *spatial, C) -> torch's (N, C, *spatial), a view."""
    if lift:
        x = x.unsqueeze(1)
    return x.movedim(-1, 1)


def _from_t(y, lift):
    y = y.movedim(1, -1)
    return y.squeeze(1) if lift else y


def _weight_to_t(p, w):
    if p.lift:
        w = w.unsqueeze(1)
    if p.transposed:
        g = p.groups
        o = w.shape[0]
        nk = w.dim() - 2
        w = w.reshape((g, o // g) + w.shape[1:])
        w = w.permute((0, nk + 2, 1) + tuple(range(2, nk + 2))).reshape(p.wt_shape)
    else:
        w = w.movedim(-1, 1)
    return w.flip(p.wflip) if p.wflip else w


def _weight_from_t(p, w):
    if p.wflip:
        w = w.flip(p.wflip)
    if p.transposed:
        g = p.groups
        c, og = w.shape[0], w.shape[1]
        nk = w.dim() - 2
        w = w.reshape((g, c // g, og) + w.shape[2:])
        w = w.permute((0, 2) + tuple(range(3, nk + 3)) + (1,))
        w = w.reshape((g * og,) + w.shape[2:])
    else:
        w = w.movedim(1, -1)
    return w.squeeze(1) if p.lift else w


def _complex(fn, a, b):
    """A bilinear fn over complex operands, as four real calls."""
    ar, ai = (a.real, a.imag) if a.is_complex() else (a, None)
    br, bi = (b.real, b.imag) if b.is_complex() else (b, None)
    re = fn(ar, br)
    im = None
    if ai is not None and bi is not None:
        re = re - fn(ai, bi)
    if bi is not None:
        im = fn(ar, bi)
    if ai is not None:
        t = fn(ai, br)
        im = t if im is None else im + t
    return torch.complex(re, im if im is not None else torch.zeros_like(re))


def _forward(p, x, w):
    if p.xpad:
        x = F.pad(x, p.xpad)
    y = torch.convolution(_to_t(x, p.lift), _weight_to_t(p, w), None, p.t_stride, p.t_pad,
                          p.t_dil, p.transposed, p.t_op, p.groups)
    y = _from_t(y, p.lift)
    if p.post_pad:
        y = F.pad(y, p.post_pad)
    if p.stride_index:
        y = y[p.stride_index]
    return y


def _cotangent(p, g):
    """The cotangent of torch's output, from that of ours (adjoints of the output edits)."""
    if p.stride_index:
        z = g.new_zeros(p.full_shape)
        z[p.stride_index] = g
        g = z
    if p.post_pad:
        g = F.pad(g, p.post_unpad)
    return _to_t(g, p.lift)


@register(C.Convolution)
def _convolution(prim, x, w):
    p = _plan(prim._key, x.shape, w.shape)
    if x.numel() == 0 or w.numel() == 0:  # torch mishandles empty channels
        return x.new_zeros(p.out_shape)
    if x.is_complex():
        return _complex(lambda a, b: _forward(p, a, b), x, w)
    if p.pointwise and _gemm(x):
        return (x.reshape(-1, x.shape[-1]) @ w.reshape(w.shape[0], -1).t()).reshape(p.out_shape)
    if p.simple:
        pm = p.to_t
        return torch.convolution(x.permute(pm), w.permute(pm), None, p.t_stride, p.t_pad,
                                 p.t_dil, False, p.t_op, p.groups).permute(p.from_t)
    if 0 in p.out_shape:
        return x.new_zeros(p.out_shape)
    return _forward(p, x, w)


@register(C.ConvolutionBias)
def _convolution_bias(prim, x, w, b):
    p = _plan(prim._key, x.shape, w.shape)
    if x.numel() and w.numel() and not x.is_complex():
        # the bias goes into the backend's call: its kernel adds it
        if p.pointwise and _gemm(x):
            return torch.addmm(b, x.reshape(-1, x.shape[-1]),
                               w.reshape(w.shape[0], -1).t()).reshape(p.out_shape)
        if p.simple:
            pm = p.to_t
            return torch.convolution(x.permute(pm), w.permute(pm), b, p.t_stride, p.t_pad,
                                     p.t_dil, False, p.t_op, p.groups).permute(p.from_t)
    return _convolution(prim, x, w) + b


def _grad_input(p, g, w):
    wt = _weight_to_t(p, w)
    # only its shape and strides are read (channels-last, as the real input would be)
    dummy = _to_t(g.new_empty(p.xp_shape), p.lift)
    dx = _conv_bwd(_cotangent(p, g), dummy, wt, None, p.t_stride, p.t_pad, p.t_dil,
                   p.transposed, p.t_op, p.groups, _INPUT)[0]
    dx = _from_t(dx, p.lift)
    return F.pad(dx, p.xunpad) if p.xunpad else dx


def _grad_weight(p, g, x):
    if p.xpad:
        x = F.pad(x, p.xpad)
    # only its shape and strides are read; made in our layout so that torch sees
    # channels-last weights
    dummy = _weight_to_t(p, g.new_empty(p.w_shape))
    dw = _conv_bwd(_cotangent(p, g), _to_t(x, p.lift), dummy, None, p.t_stride, p.t_pad,
                   p.t_dil, p.transposed, p.t_op, p.groups, _WEIGHT)[1]
    return _weight_from_t(p, dw)


_BOTH = [True, True, False]
_INPUT = [True, False, False]
_WEIGHT = [False, True, False]


def _grads(p, g, x, w):
    if p.xpad:
        x = F.pad(x, p.xpad)
    dx, dw, _ = _conv_bwd(_cotangent(p, g), _to_t(x, p.lift), _weight_to_t(p, w), None,
                          p.t_stride, p.t_pad, p.t_dil, p.transposed, p.t_op, p.groups,
                          _BOTH)
    dx = _from_t(dx, p.lift)
    return F.pad(dx, p.xunpad) if p.xunpad else dx, _weight_from_t(p, dw)


@register(C.ConvGrad)
def _conv_grad(prim, g, x, w):
    p = _plan(prim.conv._key, x.shape, w.shape)
    if p.pointwise and _gemm(g) and g.numel() and x.numel() and w.numel():
        g2 = g.reshape(-1, g.shape[-1])
        return ((g2 @ w.reshape(w.shape[0], -1)).reshape(x.shape),
                (g2.t() @ x.reshape(-1, x.shape[-1])).reshape(w.shape))
    if p.simple and g.numel() and x.numel() and w.numel() and not g.is_complex():
        pm = p.to_t
        dx, dw, _ = _conv_bwd(g.permute(pm), x.permute(pm), w.permute(pm), None, p.t_stride,
                              p.t_pad, p.t_dil, False, p.t_op, p.groups, _BOTH)
        pm = p.from_t
        return dx.permute(pm), dw.permute(pm)
    if g.numel() == 0 or x.numel() == 0 or w.numel() == 0:
        return x.new_zeros(x.shape), w.new_zeros(w.shape)
    if g.is_complex() or x.is_complex() or w.is_complex():
        return (_complex(lambda a, b: _grad_input(p, a, b), g, w),
                _complex(lambda a, b: _grad_weight(p, a, b), g, x))
    return _grads(p, g, x, w)


@register(C.ConvGradInput)
def _conv_grad_input(prim, g, w):
    p = _plan(prim.conv._key, prim.shape, w.shape)
    if p.pointwise and _gemm(g) and g.numel() and w.numel():
        return (g.reshape(-1, g.shape[-1]) @ w.reshape(w.shape[0], -1)).reshape(prim.shape)
    if p.simple and g.numel() and w.numel() and not g.is_complex():
        pm = p.to_t
        return _conv_bwd(g.permute(pm), g.new_empty(prim.shape).permute(pm), w.permute(pm),
                         None, p.t_stride, p.t_pad, p.t_dil, False, p.t_op, p.groups,
                         _INPUT)[0].permute(p.from_t)
    if g.numel() == 0 or w.numel() == 0 or 0 in prim.shape:
        return g.new_zeros(prim.shape)
    if g.is_complex() or w.is_complex():
        return _complex(lambda a, b: _grad_input(p, a, b), g, w)
    return _grad_input(p, g, w)


@register(C.ConvGradWeight)
def _conv_grad_weight(prim, g, x):
    p = _plan(prim.conv._key, x.shape, prim.shape)
    if p.pointwise and _gemm(g) and g.numel() and x.numel():
        return (g.reshape(-1, g.shape[-1]).t() @ x.reshape(-1, x.shape[-1])).reshape(prim.shape)
    if p.simple and g.numel() and x.numel() and not g.is_complex():
        pm = p.to_t
        return _conv_bwd(g.permute(pm), x.permute(pm), g.new_empty(prim.shape).permute(pm),
                         None, p.t_stride, p.t_pad, p.t_dil, False, p.t_op, p.groups,
                         _WEIGHT)[1].permute(p.from_t)
    if g.numel() == 0 or x.numel() == 0 or 0 in prim.shape:
        return g.new_zeros(prim.shape)
    if g.is_complex() or x.is_complex():
        return _complex(lambda a, b: _grad_weight(p, a, b), g, x)
    return _grad_weight(p, g, x)
