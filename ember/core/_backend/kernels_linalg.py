"""Kernels of the matrix products and of `view`."""

import weakref

import torch
import torch.nn.functional as F

from ember.core import dtypes as D
from ember.core._backend import TORCH, WRAP
from ember.core._backend.kernels import KERNELS, register
from ember.core._backend.triton_transpose import transposed
from ember.core.primitives import compiled as C
from ember.core.primitives import elementwise as E
from ember.core.primitives import linalg as L
from ember.core.primitives.base import Primitive

# ATen's CPU product over a single term takes an outer-product path: it keeps a -0.0
# product (upstream's GEMM sums onto +0.0) and its complex one turns inf * (1+2j) into NaN
_OUTER = {torch.float32, torch.float64, torch.complex64}


@register(L.Matmul)
def _matmul(p, a, b):
    if a.shape[-1] == 1 and a.dtype in _OUTER and not a.is_cuda:
        if not a.is_complex():
            return torch.add(a * b, 0)
        # upstream's rounding: re = ac - bd, im = ad + bc, no fused multiply-add
        ar, ai, br, bi = a.real, a.imag, b.real, b.imag
        return torch.complex((ar * br).sub_(ai * bi).add_(0), (ar * bi).add_(ai * br).add_(0))
    if b.ndim == 2 and a.is_cuda and a.dtype is torch.float32 and b.dtype is torch.float32 \
            and b.stride(1) == 1 and min(b.shape) >= 512 and a.numel() >= 2048 * a.shape[-1] \
            and torch.backends.cuda.matmul.allow_tf32:
        # a product by a row-major matrix (a Linear's input gradient, g @ w): TF32 tensor
        # cores read both operands along the summed axis, and a transposed copy of b costs
        # less than cuBLAS's kernel for this layout (on an H100, the large GPT's 72 input
        # gradients per step: 5.07 -> 4.49 ms of products for 0.31 ms of copies)
        bt = transposed(b)
        if bt is not None:
            return torch.matmul(a, bt.mT)
    return torch.matmul(a, b)


KERNELS[L.Linear] = lambda p, *ts: F.linear(ts[-2], ts[-1], ts[0] if len(ts) == 3 else None)


@register(L.WeightGrad)
def _weight_grad(p, g, x):
    g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
    if g2.is_cuda and g2.dtype is torch.float32 and g2.shape[0] >= 2048 \
            and min(g2.shape[1], x2.shape[1]) >= 512:
        # cuBLAS's TF32 kernels want both operands laid out along the rows summed over; a
        # transposed copy of the one with fewer columns pays for itself (on an H100 over
        # 8192 rows, copy included: a GPT's 768 x 3072 layer 283 -> 168 us, 3072 x 768 202
        # -> 173, 768 x 768 73 -> 77, or 53 when q, k and v share their input's copy)
        if g2.shape[1] < x2.shape[1]:
            return torch.matmul(_k_major(g, g2), x2)
        return torch.matmul(g2.mT, _k_major(x, x2).mT)
    return torch.matmul(g2.mT, x2)


_LAST_COPY = [None]  # (weak reference to a tensor, its transposed copy)


def _forget(ref):
    last = _LAST_COPY[0]
    if last is not None and last[0] is ref:
        _LAST_COPY[0] = None


def _k_major(t, t2):
    """t2.mT.contiguous(), where t2 is t seen as a matrix. The last copy is kept while t
    lives: the weight gradients of a self-attention's q, k and v projections share their
    input."""
    last = _LAST_COPY[0]
    if last is not None and last[0]() is t and last[1].shape == t2.shape[::-1]:
        return last[1]
    y = transposed(t2)
    if y is None:
        y = t2.mT.contiguous()
    _LAST_COPY[0] = (weakref.ref(t, _forget), y)
    return y


class LinearReLU(Primitive):
    """max(x @ wᵀ + b, 0) in one cuBLAS call with a ReLU epilogue: a compiled tape's Linear
    step and the ReLU after it, fused on CUDA by `fuse_linear_relu`. It only runs (the
    tape's own steps carry the rules)."""

    __slots__ = ()
    name = "LinearReLU"


_LINEAR_RELU = LinearReLU()
_MAXIMUM, _GREATER = E.BINARY["maximum"], E.BINARY["greater"]
_EPILOGUE_DTYPES = (D.float32, D.float16, D.bfloat16)


@register(LinearReLU)
def _linear_relu(p, b, x, w):
    out = torch._addmm_activation(b, x.reshape(-1, x.shape[-1]), w.mT)
    return out.reshape(x.shape[:-1] + out.shape[-1:])


def fuse_linear_relu(steps, dtype, outs, consts):
    """`steps` with each Linear (with bias) whose result is only read by a ReLU
    (maximum with a constant 0) and by the ReLU's gradient mask (greater than 0) computed
    as one LinearReLU step; the mask reads the ReLU's output instead (x > 0 exactly where
    max(x, 0) > 0, NaN included). On an H100 the 8192 x 768 -> 3072 layer of a GPT takes
    109 us against 184 for the product and a separate ReLU, with the same bits."""
    users = C.readers(steps)

    def is_zero(s):
        c = consts.get(s)
        return c is not None and c.numel() == 1 and c.is_floating_point() and c.item() == 0

    gone, made = set(), {}
    for n, st in enumerate(steps):
        if st.prim.__class__ is not L.Linear or len(st.ins) != 3 or st.outs[0] in outs \
                or dtype[st.outs[0]] not in _EPILOGUE_DTYPES:
            continue
        s = st.outs[0]
        relu, masks = None, []
        for u in users.get(s, ()):
            cls, ins = steps[u].prim.__class__, steps[u].ins
            if len(ins) != 2 or ins[0] != s or ins[1] == s or not is_zero(ins[1]):
                break
            if cls is _MAXIMUM and relu is None and dtype[steps[u].outs[0]] is dtype[s]:
                relu = u
            elif cls is _GREATER:
                masks.append(u)
            else:
                break
        else:
            if relu is not None:
                r = steps[relu].outs[0]
                made[n] = C.Step(_LINEAR_RELU, st.ins, (r,), steps[relu].stream, False)
                gone.add(relu)
                for u in masks:
                    m = steps[u]
                    made[u] = C.Step(m.prim, (r, m.ins[1]), m.outs, m.stream, m.multi)
    return C.replaced(steps, made, gone)


def _scaled_c(c, beta, shape):
    # what upstream gives when the product term drops out (alpha == 0 or K == 0)
    return (c * beta).expand(shape).clone()


@register(L.AddMM)
def _addmm(p, c, a, b):
    alpha, beta = p.alpha, p.beta
    if alpha == 0 or a.shape[-1] == 0:
        shape = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        return _scaled_c(c, beta, shape)
    if b.ndim == 2 and c.ndim <= 2 and (a.ndim == 2 or c.ndim <= 1):
        # one GEMM with the bias folded in (torch.addmm ignores c when beta == 0, as upstream)
        if a.ndim == 2:  # (no reshapes or keywords: this is every Linear layer's kernel)
            if alpha == 1 and beta == 1:
                return torch.addmm(c, a, b)
            return torch.addmm(c, a, b, beta=beta, alpha=alpha)
        out = torch.addmm(c, a.reshape(-1, a.shape[-1]), b, beta=beta, alpha=alpha)
        return out.reshape(a.shape[:-1] + (b.shape[-1],))
    out = torch.matmul(a, b)
    if alpha != 1:
        out.mul_(alpha)
    if beta != 0:
        out.add_(c, alpha=beta)
    return out


# the exact-width torch dtype holding the bits of each Ember dtype
_BITS = {d: t for d, t in TORCH.items()}
_BITS.update({D.bool_: torch.uint8, D.uint16: torch.int16, D.uint32: torch.int32})


@register(L.View)
def _view(p, x):
    src, dst = p.src, p.dst
    if src is D.bool_:
        x = x.view(torch.uint8)
    elif src in WRAP:  # widened storage: the truncating cast keeps the low bits
        x = x.to(_BITS[src])
    tb = _BITS[dst]
    if x.numel() == 0:  # (torch refuses to view some empty layouts)
        last = x.shape[-1] * src.size // dst.size if x.ndim else ()
        y = torch.empty(x.shape[:-1] + (last,), dtype=tb, device=x.device)
    else:
        y = (x.contiguous() if src.size != dst.size else x).view(tb)
    if dst is D.bool_:
        return y != 0
    if dst in WRAP:
        return y.to(TORCH[dst]) & WRAP[dst]
    return y
