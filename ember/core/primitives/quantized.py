"""Quantization primitives: quantize, dequantize, the quantized products, fp8 conversion.

Affine mode stores w ≈ scale · q + bias per group of `group_size` along the last axis;
the fp modes (mxfp4, mxfp8, nvfp4) store float codes and a uint8 scale per group.
Gradients follow upstream: quantize has a zero vjp, the products differentiate w.r.t. x
and (affine) w.r.t. scales and biases, never w.r.t. the packed words.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _grouped_grads(G, w, scales, biases, group_size, bits, argnums, first):
    """Cotangents of scales (argnum first) and biases (first + 1) given G, the cotangent
    of the dequantized matrix (same batch dims as w)."""
    shape = G.shape
    Gg = O.reshape(G, shape[:-1] + (shape[-1] // group_size, group_size))
    res = []
    for i in argnums:
        if i == first:
            q = O.dequantize(w, O.ones_like(scales), O.zeros_like(biases), group_size, bits)
            q = O.reshape(q, Gg.shape)
            res.append(O.astype(O.sum(O.multiply(Gg, q), -1), scales.dtype))
        elif i == first + 1:
            res.append(O.astype(O.sum(Gg, -1), biases.dtype))
    return res


def _no_weight_grad(name, argnums, n_float):
    for i in argnums:
        if i == 1 or i >= n_float:
            raise ValueError(f"[{name}] Cannot calculate the vjp with respect to the "
                             "quantized weights or the indices.")


def _affine_scale_bias(w, group_size, bits):
    """Scales and biases of affine quantization written with differentiable ops."""
    shape = w.shape
    wg = O.reshape(O.astype(w, D.float32), shape[:-1] + (shape[-1] // group_size, group_size))
    n = float((1 << bits) - 1)
    wmax, wmin = O.max(wg, -1), O.min(wg, -1)
    scale = O.maximum(O.divide(O.subtract(wmax, wmin), n), 1e-7)
    if bits == 1:
        bias = wmin
    else:
        low = O.greater(O.abs(wmin), O.abs(wmax))
        scale = O.where(low, scale, O.negative(scale))
        edge = O.where(low, wmin, wmax)
        q0 = O.stop_gradient(O.round(O.divide(edge, scale)))
        nz = O.not_equal(q0, 0)
        scale = O.where(nz, O.divide(edge, O.where(nz, q0, 1.0)), scale)
        bias = O.where(nz, edge, O.zeros_like(edge))
    return [O.astype(scale, w.dtype), O.astype(bias, w.dtype)]


class Quantize(Primitive):
    """(w[, global_scale]) -> (w_q, scales[, biases])."""

    __slots__ = ("group_size", "bits", "mode")
    name = "Quantize"

    def __init__(self, group_size, bits, mode):
        self.group_size, self.bits, self.mode = group_size, bits, mode

    def params(self):
        return (self.group_size, self.bits, self.mode)

    def vjp(self, primals, cotangents, argnums, outputs):
        w = primals[0]
        if self.mode != "affine" or 0 not in argnums:
            return [O.zeros_like(primals[i]) for i in argnums]
        # the codes are piecewise constant; scales and biases move with the group's
        # extremes, as upstream's differentiable formulation of them does
        from ember.core.transforms.autodiff import vjp
        _, (g,) = vjp(lambda a: _affine_scale_bias(a, self.group_size, self.bits), [w],
                      [cotangents[1], cotangents[2]])
        return [g if i == 0 else O.zeros_like(primals[i]) for i in argnums]

    def jvp(self, primals, tangents, argnums):
        # the codes and scales are piecewise constant in w
        w = primals[0]
        outs = O.quantize(w, self.group_size, self.bits, self.mode,
                          global_scale=primals[1] if len(primals) > 1 else None)
        return [O.zeros_like(o) for o in outs]

    def vmap(self, inputs, axes):
        w = to_front(inputs[0], axes[0])
        if axes[0] is None:
            w = O.expand_dims(w, 0)
        gs = inputs[1] if len(inputs) > 1 else None
        if gs is not None and axes[1] is not None:
            raise ValueError("[Quantize] vmap over the global scale is not supported.")
        outs = O.quantize(w, self.group_size, self.bits, self.mode, global_scale=gs)
        return list(outs), [0] * len(outs)


class Dequantize(Primitive):
    """(w, scales[, biases][, global_scale]) -> w in `dtype`."""

    __slots__ = ("group_size", "bits", "mode", "dtype", "has_gs")
    name = "Dequantize"

    def __init__(self, group_size, bits, mode, dtype, has_gs):
        self.group_size, self.bits, self.mode = group_size, bits, mode
        self.dtype, self.has_gs = dtype, has_gs

    def params(self):
        return (self.group_size, self.bits, self.mode, self.dtype, self.has_gs)

    def vjp(self, primals, cotangents, argnums, outputs):
        if self.mode != "affine":  # only integer inputs (and the global scale)
            return [O.zeros_like(primals[i]) for i in argnums]
        if 0 in argnums:
            raise ValueError("[Dequantize] Cannot calculate the vjp with respect to the "
                             "quantized weights.")
        w, scales, biases = primals[:3]
        return _grouped_grads(cotangents[0], w, scales, biases, self.group_size, self.bits,
                              argnums, 1)

    def jvp(self, primals, tangents, argnums):
        if self.mode != "affine" or 0 in argnums:
            raise ValueError("[Dequantize] The jvp is only implemented for the scales and "
                             "biases in affine mode.")
        w, scales = primals[0], primals[1]
        g = self.group_size
        out = None
        for i, t in zip(argnums, tangents):
            t = O.repeat(t, g, axis=-1)
            if i == 1:
                q = O.dequantize(w, O.ones_like(scales), O.zeros_like(scales), g, self.bits)
                t = O.multiply(t, q)
            out = t if out is None else O.add(out, t)
        return [O.astype(out, self.dtype)]

    def vmap(self, inputs, axes):
        n = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        xs = []
        for i, (x, ax) in enumerate(zip(inputs, axes)):
            if self.has_gs and i == len(inputs) - 1:
                if ax is not None:
                    raise ValueError("[Dequantize] vmap over the global scale is not "
                                     "supported.")
                xs.append(x)
                continue
            x = O.broadcast_to(O.expand_dims(x, 0), (n,) + x.shape) if ax is None \
                else to_front(x, ax)
            xs.append(x)
        biases = xs[2] if self.mode == "affine" else None
        gs = xs[-1] if self.has_gs else None
        out = O.dequantize(xs[0], xs[1], biases, self.group_size, self.bits, self.mode,
                           global_scale=gs, dtype=self.dtype)
        return [out], [0]


class QuantizedMatmul(Primitive):
    """(x, w, scales[, biases]) -> x @ dequantize(w)ᵀ (or without ᵀ); x and w >= 2-D with
    broadcasting batch dims."""

    __slots__ = ("group_size", "bits", "mode", "transpose")
    name = "QuantizedMatmul"

    def __init__(self, group_size, bits, mode, transpose):
        self.group_size, self.bits, self.mode = group_size, bits, mode
        self.transpose = transpose

    def params(self):
        return (self.group_size, self.bits, self.mode, self.transpose)

    def _qmm(self, x, primals, transpose):
        biases = primals[3] if len(primals) > 3 else None
        return O.quantized_matmul(x, primals[1], primals[2], biases, transpose,
                                  self.group_size, self.bits, self.mode)

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        x = primals[0]
        g = cotangents[0]
        _no_weight_grad(self.name, argnums, len(primals))
        res = []
        if 0 in argnums:
            res.append(unbroadcast(self._qmm(g, primals, not self.transpose), x.shape))
        rest = [i for i in argnums if i > 1]
        if rest:
            if self.mode != "affine":
                raise ValueError(f"[{self.name}] The vjp w.r.t. the scales is only "
                                 "implemented for affine mode.")
            n = x.ndim
            if self.transpose:
                G = O.matmul(O.swapaxes(g, n - 1, n - 2), x)
            else:
                G = O.matmul(O.swapaxes(x, n - 1, n - 2), g)
            G = unbroadcast(G, primals[2].shape[:-1] + (G.shape[-1],))
            res += _grouped_grads(G, primals[1], primals[2], primals[3], self.group_size,
                                  self.bits, rest, 2)
        return res

    def jvp(self, primals, tangents, argnums):
        if any(i != 0 for i in argnums):
            raise ValueError(f"[{self.name}] The jvp is only implemented w.r.t. x.")
        return [self._qmm(tangents[0], primals, self.transpose)]

    def vmap(self, inputs, axes):
        if any(ax is not None for ax in axes[1:]):
            raise RuntimeError("[QuantizedMatmul::vmap] NYI")
        x = to_front(inputs[0], axes[0])
        return [self._qmm(x, inputs, self.transpose)], [0]


class GatherQMM(Primitive):
    """(x, w, scales[, biases], lhs_indices, rhs_indices): the product of x[lhs] (batch
    dims flattened) with dequantize(w[rhs]), indices broadcast together."""

    __slots__ = ("group_size", "bits", "mode", "transpose", "sorted_indices")
    name = "GatherQMM"

    def __init__(self, group_size, bits, mode, transpose, sorted_indices):
        self.group_size, self.bits, self.mode = group_size, bits, mode
        self.transpose, self.sorted_indices = transpose, sorted_indices

    def params(self):
        return (self.group_size, self.bits, self.mode, self.transpose, self.sorted_indices)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, w, scales = primals[:3]
        affine = self.mode == "affine"
        biases = primals[3] if affine else None
        lhs, rhs = primals[-2:]
        g = cotangents[0]
        _no_weight_grad(self.name, argnums, len(primals) - 2)
        bshape = g.shape[:-2]
        lhs_b = O.flatten(O.broadcast_to(lhs, bshape)) if bshape else O.reshape(lhs, (1,))
        rhs_b = O.flatten(O.broadcast_to(rhs, bshape)) if bshape else O.reshape(rhs, (1,))
        g3 = O.reshape(g, (-1,) + g.shape[-2:])
        xf = O.reshape(x, (-1,) + x.shape[-2:])
        res = []
        if 0 in argnums:
            gx = O.gather_qmm(g3, w, scales, biases, None, rhs_b,
                              transpose=not self.transpose, group_size=self.group_size,
                              bits=self.bits, mode=self.mode)
            gx = O.zeros_like(xf).at[lhs_b].add(O.astype(gx, x.dtype))
            res.append(O.reshape(gx, x.shape))
        rest = [i for i in argnums if i > 1]
        if rest:
            if not affine:
                raise ValueError(f"[{self.name}] The vjp w.r.t. the scales is only "
                                 "implemented for affine mode.")
            xg = O.take(xf, lhs_b, axis=0)
            if self.transpose:
                G = O.matmul(O.swapaxes(g3, 1, 2), xg)
            else:
                G = O.matmul(O.swapaxes(xg, 1, 2), g3)
            wb = w.shape[:-2]
            wf = O.reshape(w, (-1,) + w.shape[-2:])
            Gw = O.zeros((wf.shape[0],) + G.shape[1:], G.dtype).at[rhs_b].add(G)
            Gw = O.reshape(Gw, wb + G.shape[1:])
            res += _grouped_grads(Gw, w, scales, biases, self.group_size, self.bits, rest, 2)
        return res

    def vmap(self, inputs, axes):
        raise RuntimeError("GatherQMM::vmap NYI")


class ToFP8(Primitive):
    __slots__ = ()
    name = "ToFP8"

    def vmap(self, inputs, axes):
        return [O.to_fp8(inputs[0])], [axes[0]]


class FromFP8(Primitive):
    __slots__ = ("dtype",)
    name = "FromFP8"

    def __init__(self, dtype):
        self.dtype = dtype

    def params(self):
        return (self.dtype,)

    def vmap(self, inputs, axes):
        return [O.from_fp8(inputs[0], self.dtype)], [axes[0]]
