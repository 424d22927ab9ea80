"""Kernels of mx.fast: torch's layer_norm / rms_norm, rope, and attention: Ember's
Triton kernels in float32 (`triton_attention`), torch's fused ones otherwise (cuDNN,
flash, memory-efficient on CUDA).

Where it can (`_direct`: Ember's kernels, cuDNN's, the memory-efficient one), attention's
vjp calls the backward kernel itself with what the forward saved riding on the output
(`_ember_direct`). Elsewhere (boolean masks, sinks, the CPU), when a vjp of attention is
asked for before its forward runs, the forward runs under torch's autograd on aliases of
the inputs, and the autograd state rides on the output tensor (`_ember_sdpa`) until the
backward kernel consumes it. A forward that ran before its vjp was asked for runs again.
"""

import torch
import torch.nn.functional as F

from ember.core._backend import TORCH
from ember.core._backend import triton_attention as _TA
from ember.core._backend import triton_norm as _TN
from ember.core._backend.kernels import KERNELS, register
from ember.core.primitives import compiled as C
from ember.core.primitives import elementwise as E
from ember.core.primitives import fast as P
from ember.core.primitives.base import Primitive

_HALF = (torch.float16, torch.bfloat16)
_ln_fwd = torch.ops.aten.native_layer_norm.default
_lower_right = None


def _causal_lower_right(tq, tk):
    global _lower_right
    if _lower_right is None:
        try:
            from torch.nn.attention.bias import causal_lower_right
            _lower_right = causal_lower_right
        except ImportError:
            _lower_right = False
    return _lower_right(tq, tk) if _lower_right else None


# -- normalisations -----------------------------------------------------------------

@register(P.RMSNorm)
def _rms_norm(p, x, w=None):
    if x.numel() == 0:
        return torch.empty_like(x)
    if x.dtype in (torch.float16, torch.bfloat16) and not x.is_cuda:
        y = F.rms_norm(x.float(), (x.shape[-1],), None, p.eps).to(x.dtype)
        return y if w is None else y * w
    return F.rms_norm(x, (x.shape[-1],), w, p.eps)


@register(P.LayerNorm)
def _layer_norm(p, x, *wb):
    w = wb[0] if p.has_w else None
    b = wb[-1] if p.has_b else None
    if x.numel() == 0:
        return torch.empty_like(x)
    if x.dtype in _HALF and not x.is_cuda and (w is not None or b is not None):
        # upstream rounds the normalised x to its dtype, then scales and shifts in it
        y = F.layer_norm(x, (x.shape[-1],), None, None, p.eps)
        if w is not None:
            y = y.mul_(w)
        return y if b is None else y.add_(b)
    if x.dtype in _HALF and not x.is_cuda:
        return F.layer_norm(x, (x.shape[-1],), w, b, p.eps)
    y, mean, rstd = _ln_fwd(x, [x.shape[-1]], w, b, p.eps)
    # the statistics ride on the input for the backward (NormVJP reads them instead of a
    # second pass over x: one launch fewer per layer norm of a train step)
    x._ember_ln = (p.eps, mean, rstd)
    return y


class AddLayerNorm(Primitive):
    """A residual connection's sum and its layer norm, (a + b, layer_norm(a + b, ...)): a
    compiled tape's Add whose sum a LayerNorm reads, fused on CUDA by `fuse_add_norm` into
    one pass over the rows (`triton_norm.add_layer_norm`). It only runs (the tape's own
    steps carry the rules)."""

    __slots__ = ("norm",)
    name = "AddLayerNorm"

    def __init__(self, norm):
        self.norm = norm


@register(AddLayerNorm)
def _add_layer_norm(p, a, b, *wb):
    n = p.norm
    w = wb[0] if n.has_w else None
    bias = wb[-1] if n.has_b else None
    got = _TN.add_layer_norm(a, b, w, bias, n.eps)
    if got is None:  # (no Triton)
        s = a + b
        return [s, _layer_norm(n, s, *wb)]
    s, y, mean, rstd = got
    s._ember_ln = (n.eps, mean, rstd)
    return [s, y]


_ADD = E.BINARY["add"]


def fuse_add_norm(steps, shape, dtype):
    """`steps` with each LayerNorm of the sum of an Add (of two values of one shape and
    dtype, the norm's weight and bias made before it) computed with that Add as one
    AddLayerNorm step where the Add was, where the norm's rows fit the Triton kernel (the
    large GPT's 24 residual sums of 8192 x 768 float32: an add of 21 us and ATen's norm of
    28 us apiece)."""
    made_at = {o: n for n, st in enumerate(steps) for o in st.outs}
    made, gone = {}, set()
    for n, st in enumerate(steps):
        p = st.prim
        if p.__class__ is not P.LayerNorm:
            continue
        x = st.ins[0]
        m = made_at.get(x)
        if m is None or m in made:
            continue
        q = steps[m]
        if q.prim.__class__ is not _ADD or q.multi:
            continue
        a, b = q.ins
        dt = dtype[x]
        if not (tuple(shape[a]) == tuple(shape[b]) == tuple(shape[x]) and
                dtype[a] is dt and dtype[b] is dt and dtype[st.outs[0]] is dt and
                all(dtype[i] is dt and made_at.get(i, -1) < m for i in st.ins[1:])):
            continue
        if not _TN.fits(tuple(shape[x]), TORCH[dt]):
            continue
        made[m] = C.Step(AddLayerNorm(p), (a, b, *st.ins[1:]), (x, st.outs[0]), q.stream,
                         True)
        gone.add(n)
    return C.replaced(steps, made, gone)


# -- rope ---------------------------------------------------------------------------

_INV_FREQS = {}  # (dims / 2, base, device, dtype) -> base ** (-i / (dims / 2))


def _rope_angles(p, x, offset, freqs, ct):
    t = x.shape[-2]
    half = p.dims // 2
    if freqs is None:
        key = (half, p.base, x.device, ct)
        inv = _INV_FREQS.get(key)
        if inv is None:
            # exp(-i log(base) / half) rather than base ** (-i / half), with base a float32
            # as upstream's: the two differ at i = 0 when log(base) is not finite (base 0,
            # negative, inf or NaN give NaN angles there, as upstream's do)
            lb = torch.tensor(p.base, dtype=torch.float32).double().log() / half
            i = torch.arange(0, -half, -1, dtype=torch.float64)
            inv = torch.exp(i * lb).to(device=x.device, dtype=ct)
            if p.base == p.base:  # (a NaN key would never be found again)
                _INV_FREQS[key] = inv
    else:
        inv = torch.reciprocal(freqs.to(ct))
    pos = torch.arange(t, dtype=ct, device=x.device)
    if offset.dtype is not torch.int32:
        offset = offset.to(torch.int32)  # (upstream takes the offset as an int32: it wraps)
    if offset.ndim:
        pos = offset.to(ct).reshape((offset.shape[0],) + (1,) * (x.ndim - 2)) + pos
    else:
        pos = pos + offset.to(ct)
    theta = (pos * p.scale).unsqueeze(-1) * inv
    return theta if p.forward else -theta


@register(P.RoPE)
def _rope(p, x, offset, freqs=None):
    if x.numel() == 0:
        return torch.empty_like(x)
    ct = torch.float64 if x.dtype is torch.float64 else torch.float32
    theta = _rope_angles(p, x, offset, freqs, ct)
    c, s = torch.cos(theta), torch.sin(theta)
    d = p.dims
    if x.dtype in _HALF and not x.is_cuda:
        # upstream rounds the cosines and sines to x's dtype and rotates in it
        c, s, xf = c.to(x.dtype), s.to(x.dtype), x[..., :d]
    else:
        xf = x[..., :d].to(ct)
    if p.traditional:
        a, b = xf[..., 0::2], xf[..., 1::2]
        y = torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)
    else:
        a, b = xf[..., : d // 2], xf[..., d // 2:]
        y = torch.cat((a * c - b * s, a * s + b * c), dim=-1)
    y = y.to(x.dtype)
    if d < x.shape[-1]:
        y = torch.cat((y, x[..., d:]), dim=-1)
    return y


# -- attention ----------------------------------------------------------------------

def _sdpa(p, q, k, v, mask, sinks):
    """The attention output in torch ops (differentiable by torch's autograd): one call of
    torch's fused attention with the layout, grouped heads and mask handed straight
    through. Rows where no key is visible get the mean of v, as upstream (its masked
    scores are the lowest float, so their softmax is uniform): such rows see every key
    with a zero query, which gives equal scores and the same gradients."""
    b, hq, tq, _ = q.shape
    hk, tk = k.shape[1], k.shape[2]
    if tq == 0 or tk == 0:
        return q.new_zeros((b, hq, tq, v.shape[-1]))
    if sinks is not None:
        return _sdpa_sinks(p, q, k, v, mask, sinks)
    if _triton_takes(p, q, k, v, mask):
        if mask is not None:
            q, mask = _sdpa_mask(q, mask)
        return _TA.attention(q, k, v, mask, p.causal, p.scale)
    attn_mask, is_causal = None, False
    if p.causal:
        if tq == tk:
            is_causal = True
        elif tq < tk:
            if tq > 1:  # (a single query, aligned with the last key, sees every key)
                # torch's lower-right causal bias spares CUDA the mask, but importing it
                # loads torch._dynamo (seconds): the CPU takes the boolean mask
                attn_mask = _causal_lower_right(tq, tk) if q.is_cuda else None
                if attn_mask is None:
                    attn_mask = _causal_long_keys(tq, tk, q.device)
        else:  # the first tq - tk queries see no key
            attn_mask, keep = _causal_long_queries(tq, tk, q.device)
            q = torch.where(keep, q, 0)
    elif mask is not None:
        q, attn_mask = _sdpa_mask(q, mask, k, p.scale)
    if hq != hk:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                              scale=p.scale, enable_gqa=True)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                          scale=p.scale)


def _triton_takes(p, q, k, v, mask):
    """Whether Ember's float32 kernels (`triton_attention`) run this attention: causal
    ones only with no more queries than keys."""
    return q.dtype is torch.float32 and _TA.usable(q, k, v, mask) \
        and (not p.causal or q.shape[2] <= k.shape[2])


def _sdpa_mask(q, mask, k=None, scale=None):
    """(q, mask) for torch's attention: the mask at least 2-D; for a boolean mask, rows
    with no visible key see every key with a zero query (their output is the mean of v);
    for an additive mask on the CPU, rows masked by -inf everywhere get a NaN query, and
    given k (torch's kernel, not Ember's), rows masked by the lowest float everywhere the
    mask of `_lowest_rows`."""
    if mask.ndim < 2:
        mask = mask.reshape((1,) * (2 - mask.ndim) + tuple(mask.shape))
    if mask.dtype is torch.bool:
        keep = mask.any(-1, keepdim=True)
        return torch.where(keep, q, 0), torch.ge(mask, keep)
    if not q.is_cuda:
        top = mask.amax(-1, keepdim=True)
        if bool((top <= -1e30).any()):
            if k is not None:
                mask = _lowest_rows(q, k, mask, scale, top)
            # a row whose additive mask is all -inf has no finite score: upstream's
            # softmax gives NaN there (and NaN gradients: hence an add), torch's zeros
            q = q + torch.where(top == -torch.inf, torch.nan, 0.0).to(q.dtype)
    return q, mask


def _lowest_rows(q, k, mask, scale, top):
    """The additive mask for torch's kernel on the CPU where rows are masked by the
    lowest float (or below -1e30) everywhere: upstream's scores there round to that float,
    a uniform softmax, whose gradients torch's kernel gets wrong (the log of its sum
    vanishes below the float). Such rows get the mask minus their own scores (held
    constant): the same uniform softmax, and gradients through the scores as upstream's."""
    low = (top <= -1e30) & (top > -torch.inf)
    if not low.any():
        return mask
    if k.shape[1] != q.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)
    s = (q @ k.mT * scale).detach()
    return torch.where(low & (mask != -torch.inf), mask - mask.detach() - s, mask)


_CAUSAL = {}  # (tq, tk, device) -> constant causal masks; bounded by _CAUSAL_MAX entries
_CAUSAL_MAX = 64


def _cached(key, make):
    got = _CAUSAL.get(key)
    if got is None:
        if len(_CAUSAL) >= _CAUSAL_MAX:
            _CAUSAL.clear()
        # made outside inference mode: torch's autograd may save them for the backward
        with torch.inference_mode(False):
            got = _CAUSAL[key] = make()
    return got


def _causal_long_keys(tq, tk, device):
    return _cached(("keys", tq, tk, device), lambda: torch.ones(
        tq, tk, dtype=torch.bool, device=device).tril(tk - tq))


def _causal_long_queries(tq, tk, device):
    """(mask, keep) for tq > tk: `keep` marks the queries that see a key; the others see
    every key (with a zero query, see `_sdpa`)."""
    def make():
        keep = torch.arange(tq, device=device).unsqueeze(-1) >= tq - tk
        mask = torch.ones(tq, tk, dtype=torch.bool, device=device).tril(tk - tq)
        return mask | ~keep, keep
    return _cached(("queries", tq, tk, device), make)


def _sdpa_sinks(p, q, k, v, mask, sinks):
    b, hq, tq, d = q.shape
    hk, tk = k.shape[1], k.shape[2]
    g = hq // hk
    ct = torch.float64 if q.dtype is torch.float64 else torch.float32
    qg = q.reshape(b, hk, g, tq, d)
    s = torch.matmul(qg * p.scale, k.unsqueeze(2).transpose(-1, -2)).to(ct)
    low = torch.finfo(ct).min
    if p.causal:
        keep = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril(tk - tq)
        s = s.masked_fill(~keep, low)
    if mask is not None:
        m = mask.expand(b, hq, tq, tk).reshape(b, hk, g, tq, tk)
        s = s.masked_fill(~m, low) if m.dtype is torch.bool else s + m.to(ct)
    col = sinks.to(ct).reshape(1, hk, g, 1, 1).expand(b, hk, g, tq, 1)
    pr = torch.softmax(torch.cat((col, s), dim=-1), dim=-1)[..., 1:]
    out = torch.matmul(pr.to(q.dtype), v.unsqueeze(2))
    return out.reshape(b, hq, tq, v.shape[-1])


def _leaf(t):
    """A tensor torch's autograd may save: an alias of `t` made outside inference mode."""
    if not t.is_inference():
        return t.detach()
    return torch.empty(0, dtype=t.dtype, device=t.device).set_(t)


def _traced(p, ins, nums):
    """Forward under autograd: (output, leaves) with leaves for the inputs in `nums`."""
    with torch.inference_mode(False), torch.enable_grad():
        leaves = [None if t is None else _leaf(t) for t in ins]
        for i in nums:
            leaves[i].requires_grad_(True)
        out = _sdpa(p, *leaves)
    return out, leaves


try:  # torch.autograd.grad's engine call, without its Python-side argument checks
    from torch.autograd.graph import _engine_run_backward
except ImportError:
    _engine_run_backward = None


def _grad(o, leaves, g):
    """torch.autograd.grad(o, leaves, g, allow_unused=True); Ember's cotangent already has
    the output's shape, so torch's checks of it are skipped."""
    if g.dtype is not o.dtype:
        g = g.to(o.dtype)
    with torch.inference_mode(False), torch.enable_grad():
        if _engine_run_backward is None:
            return torch.autograd.grad(o, leaves, g, allow_unused=True)
        return _engine_run_backward((o,), (g,), False, False, tuple(leaves), True, False)


_ZERO = {}  # (dtype, device) -> a zero scalar


def _zeros(x):
    """Zeros shaped like `x` without writing them (a view of one cached zero)."""
    key = (x.dtype, x.device)
    z = _ZERO.get(key)
    if z is None:
        z = _ZERO[key] = torch.zeros((), dtype=x.dtype, device=x.device)
    return z.expand(x.shape)


def _split(p, ts):
    q, k, v = ts[0], ts[1], ts[2]
    mask = ts[3] if p.mask_kind is not None else None
    sinks = ts[-1] if p.has_sinks else None
    return [q, k, v, mask, sinks]


def _positions(p):
    """Input position of q, k, v, mask, sinks (None where absent)."""
    pos = [0, 1, 2, 3 if p.mask_kind is not None else None, None]
    if p.has_sinks:
        pos[4] = 3 + (p.mask_kind is not None)
    return pos


def _diff_nums(p, argnums):
    """Which of (q, k, v, mask, sinks) get a torch gradient for input argnums."""
    pos = _positions(p)
    out = []
    for j, i in enumerate(pos):
        if i is not None and i in argnums and not (j == 3 and p.mask_kind == "bool"):
            out.append(j)
    return out


# -- attention on ATen's fused kernels, without torch's autograd ---------------------------

_CHOICE = torch.ops.aten._fused_sdp_choice.default
_EFF = torch.ops.aten._scaled_dot_product_efficient_attention.default
_EFF_BWD = torch.ops.aten._scaled_dot_product_efficient_attention_backward.default
_CUDNN = torch.ops.aten._scaled_dot_product_cudnn_attention.default
_CUDNN_BWD = torch.ops.aten._scaled_dot_product_cudnn_attention_backward.default
_EFFICIENT, _CUDNN_KIND = 2, 3  # torch's SDPBackend values of those kernels
_TRITON = -1  # (Ember's float32 kernels, `triton_attention`)
_CHOSEN = {}  # what `_choice` read -> torch's pick
MAX_CHOSEN = 256


def _choice(q, k, v, bias, causal, scale, gqa):
    """The kernel torch's dispatcher picks (`_fused_sdp_choice`, 10-15 us of host time a
    call on an H100's host), looked up by everything it reads: shapes, strides, dtypes,
    pointer alignment, the arguments and torch's switches for its kernels."""
    cuda = torch.backends.cuda
    key = (q.shape, q.stride(), k.shape, k.stride(), v.shape, v.stride(), q.dtype,
           q.device, causal, scale, gqa, q.data_ptr() % 16, k.data_ptr() % 16,
           v.data_ptr() % 16, cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(),
           cuda.cudnn_sdp_enabled(), cuda.math_sdp_enabled(),
           torch.are_deterministic_algorithms_enabled())
    if bias is not None:
        key += (bias.shape, bias.stride(), bias.data_ptr() % 16)
    kind = _CHOSEN.get(key)
    if kind is None:
        extra = {"enable_gqa": True} if gqa else {}
        kind = _CHOICE(q, k, v, bias, 0.0, causal, scale=scale, **extra)
        if len(_CHOSEN) >= MAX_CHOSEN:  # (shapes that keep changing)
            _CHOSEN.clear()
        _CHOSEN[key] = kind
    return kind


def _direct(p, q, k, v, mask, sinks):
    """(kernel, q, k, v, mask or bias, is_causal) for attention run without torch's
    autograd engine (its backward call costs about 0.3 ms of host time under the
    profiler): Ember's float32 kernels where they take it, else the kernel torch's
    dispatcher picks, memory-efficient or cuDNN (which alone takes grouped heads), called
    directly. None elsewhere (boolean masks, sinks, the CPU, unaligned masks, float32
    causal attention with more queries than keys)."""
    if sinks is not None or not q.is_cuda:
        return None
    b, h, tq, d = q.shape
    hk, tk = k.shape[1], k.shape[2]
    if not tq or not tk or k.dtype is not q.dtype or v.dtype is not q.dtype:
        return None
    if _triton_takes(p, q, k, v, mask):
        if mask is not None:
            if mask.dtype is torch.bool:  # (`_sdpa` rewrites q for its empty rows)
                return None
            mask = _sdpa_mask(q, mask)[1]
        return _TRITON, q, k, v, mask, p.causal
    if v.shape[-1] != d:
        return None
    bias = None
    if p.causal:
        if tq != tk:
            return None
    elif mask is not None:
        if mask.dtype is not q.dtype or mask.ndim < 2 or tk % 16 or mask.stride(-1) != 1:
            return None
        bias = mask.expand(b, h, tq, tk)
    kind = _choice(q, k, v, bias, p.causal, p.scale, hk != h)
    if kind != _CUDNN_KIND and (hk != h or kind != _EFFICIENT):
        return None
    return kind, q, k, v, bias, p.causal


def _direct_forward(p, direct):
    """The output, with the choice and what the backward needs riding on it."""
    kind, q, k, v, bias, causal = direct
    if kind == _TRITON:
        out, *saved = _TA.forward(q, k, v, bias, causal, p.scale)
    elif kind == _EFFICIENT:
        out, *saved = _EFF(q, k, v, bias, True, 0.0, causal, scale=p.scale)
    else:
        out, *saved = _CUDNN(q, k, v, bias, True, 0.0, causal, False, scale=p.scale)
    out._ember_direct = direct, saved
    return out


def _direct_vjp(fwd, direct, out, g, nums):
    kind, q, k, v, bias, causal = direct
    saved = getattr(out, "_ember_direct", None)
    if saved is None:  # the forward ran before the vjp was asked for: again, saving
        out = _direct_forward(fwd, direct)
        saved = out._ember_direct
    saved = saved[1]
    if g.dtype is not out.dtype:
        g = g.to(out.dtype)
    if kind == _TRITON:  # (reads the cotangent through its strides)
        lse, flag = saved
        return list(_TA.backward(q, k, v, bias, causal, fwd.scale, out, lse, g, flag)) \
            + [None, None]
    if g.stride() != out.stride():  # (both kernels read it in the output's layout)
        g = torch.empty_like(out).copy_(g)
    if kind == _EFFICIENT:
        lse, seed, offset = saved
        want = [0 in nums, 1 in nums, 2 in nums, False]
        grads = _EFF_BWD(g, q, k, v, bias, out, lse, seed, offset, 0.0, want, causal,
                         scale=fwd.scale)
    else:
        lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = saved
        grads = _CUDNN_BWD(g, q, k, v, out, lse, seed, offset, bias, cum_q, cum_k, max_q,
                           max_k, 0.0, causal, scale=fwd.scale)
    return list(grads[:3]) + [None, None]


def _packed(p, ins):
    """(attention, inputs) for one query over grouped heads with no mask array (a causal
    mask hides nothing from a single query): the group's queries become the rows of one
    kv head's attention, q (b, hq, 1, d) -> (b, hk, hq / hk, d), so the kernels read each
    key and value once per kv head rather than once per query head, and take no grouped
    heads (decoding over 4096 keys, 8 x 32 / 8 heads, head size 128, forward+backward
    steps on an H100: bfloat16 0.61 -> 0.19 ms, float32 2.15 -> 0.58 ms). None
    elsewhere."""
    q, k, v, mask, sinks = ins
    b, hq, tq, d = q.shape
    hk = k.shape[1]
    if tq != 1 or hq == hk or mask is not None or sinks is not None:
        return None
    packed = P.SDPA(p.scale, False, None, False)
    packed.save = p.save
    return packed, [q.reshape(b, hk, hq // hk, d), k, v, None, None]


@register(P.SDPA)
def _sdpa_kernel(p, *ts):
    ins = _split(p, ts)
    pk = _packed(p, ins)
    if pk is not None:
        out = _sdpa_forward(*pk)
        res = out.reshape(ins[0].shape[:3] + out.shape[-1:])
        res._ember_packed = out  # (with what the backward reads riding on it)
        return res
    return _sdpa_forward(p, ins)


def _sdpa_forward(p, ins):
    if p.save:
        nums = _diff_nums(p, p.save)
        direct = _direct(p, *ins) if max(nums, default=0) < 3 else None
        if direct is not None:
            return _direct_forward(p, direct)
        out, leaves = _traced(p, ins, nums)
        res = out.detach()
        res._ember_sdpa = [out, leaves, frozenset(nums)]
        return res
    return _sdpa(p, *ins)


@register(P.SDPAVJP)
def _sdpa_vjp(p, *ts):
    fwd = p.fwd
    out, g = ts[-2], ts[-1]
    ins = _split(fwd, ts[:-2])
    nums = _diff_nums(fwd, p.argnums)
    pk = _packed(fwd, ins)
    if pk is not None:
        q = ins[0]
        fwd, ins = pk
        out = getattr(out, "_ember_packed", None)
        if out is None:
            out = ts[-2].reshape(ins[0].shape[:3] + ts[-2].shape[-1:])
        g = g.reshape(out.shape)
        res = _sdpa_grads(fwd, ins, out, g, nums)
        return [res[0].reshape(q.shape)] + res[1:]
    return _sdpa_grads(fwd, ins, out, g, nums)


def _sdpa_grads(fwd, ins, out, g, nums):
    direct = None
    if nums and max(nums) < 3:
        hit = getattr(out, "_ember_direct", None)  # (the forward's choice)
        direct = hit[0] if hit is not None else _direct(fwd, *ins)
    if direct is not None:
        grads = _direct_vjp(fwd, direct, out, g, nums)
    else:
        grads = _autograd_vjp(fwd, ins, out, g, nums)
    res = []
    for j, x in enumerate(ins):
        if x is not None:
            gr = grads[j]
            # unrequested cotangents are never read: a broadcast zero, nothing written
            res.append(gr if gr is not None else torch.zeros_like(x) if j in nums else _zeros(x))
    return res


def _autograd_vjp(fwd, ins, out, g, nums):
    saved = getattr(out, "_ember_sdpa", None)
    if saved is not None and saved[0] is not None and saved[2].issuperset(nums):
        o, leaves = saved[0], saved[1]
        saved[0] = saved[1] = None  # torch frees the graph in backward: use it once
    else:
        o, leaves = _traced(fwd, ins, nums)
    grads = [None] * 5
    if nums and o.requires_grad:
        for j, gr in zip(nums, _grad(o, [leaves[j] for j in nums], g)):
            grads[j] = gr
    return grads


KERNELS[P.CustomKernel] = lambda p, *ts: p.launch(ts)
