"""Float32 attention on CUDA as Triton flash-attention kernels with TF32 products.

torch has no fast float32 attention: flash attention takes half types only, and the
memory-efficient kernel runs float32 on CUDA cores (7-8 TFLOPS on an H100; the GPT of
the benchmarks at 512 tokens spends a third of its train step there). MLX's default dtype
is float32 and its matrix products use TF32 (`MLX_ENABLE_TF32`, on by default), so these
kernels do what upstream does in precision -- TF32 products, float32 softmax and
accumulation -- without writing the (Lq, Lk) scores to memory.

Forward and backward follow FlashAttention-2: the forward keeps a running max and sum per
query row and stores the row's log-sum-exp; the backward recomputes the probabilities from
it, one kernel for dK/dV (a program per key block, walking the query blocks of every head
of its group) and one for dQ (a program per query block). Masks: none, causal (aligned to
the lower right, as upstream's), additive or boolean arrays of any broadcast (read through
their strides). A mask array is first sorted into blocks (`_mask_blocks`, one small
kernel per call and block size): a block it hides entirely is skipped, one it leaves
unchanged (adds 0.0 everywhere, or is all True) is not read, nor is one that is a causal
mask itself (its diagonal blocks: the kernels apply `causal`'s test there), and only the
rest read it. Where every block is causal, hidden above the diagonal or unchanged below
it, a flag tells the forward to run `causal`'s code, which reads no mask: an additive
causal mask (upstream's `create_additive_causal_mask`) costs about what `causal` does.

Used when TF32 is allowed, for head sizes up to 128 and masks that take no gradient;
otherwise torch's kernels run. `TRITON_INTERPRET=1` runs them on the CPU (the tests).
"""

import importlib.util
import os
import sys

import torch

from ember.core._backend.cudagraph import CAPTURE_HOOKS
from ember.core._backend.triton_launch import Launcher, interpreting

MAX_HEAD = 128
# Attention with less work than this (multiply-adds of q kᵀ: batch x heads x queries x
# keys x head size) runs on torch's kernel: one C++ call each way costs less host time
# than these kernels' launches and autograd Function (on an H100's host, in one run: a
# small GPT train step 8.3 to 6.9-7.3 ms, a small Transformer forward 3.2 to 2.3 ms), and
# the GPU time is a few microseconds either way (decoding over long keys stays here).
# At 2^25 (8 x 8 heads x 128 x 128 x 32, the default GPT's) these kernels win: its
# compiled train step's kernels 1147 -> 1018 us, the step 1.49-1.77 -> 1.40-1.46 ms.
MIN_WORK = 1 << 25
_HAVE_TRITON = []  # [bool], looked up once


def usable(q, k, v, mask):
    """Whether these kernels take this attention (torch's otherwise)."""
    if q.dtype is not torch.float32 or k.dtype is not torch.float32 \
            or v.dtype is not torch.float32:
        return False
    if not (q.is_cuda and torch.backends.cuda.matmul.allow_tf32) and not interpreting():
        return False
    if not _HAVE_TRITON:
        _HAVE_TRITON.append(importlib.util.find_spec("triton") is not None)
    if not _HAVE_TRITON[0]:
        return False
    if q.shape[-1] > MAX_HEAD or v.shape[-1] > MAX_HEAD:
        return False
    if q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3] < MIN_WORK:
        return False
    # one program row per (batch, head) in the grid's second dimension; 32-bit offsets
    if q.shape[0] * q.shape[1] >= 65536 or max(q.numel(), k.numel(), v.numel()) >= 2 ** 31:
        return False
    return mask is None or (isinstance(mask, torch.Tensor) and not mask.requires_grad
                            and mask.dtype in (torch.float32, torch.bool))


_KERNELS = __name__ + "_kernels"


def _kernels():
    """The module of jitted kernels; under the interpreter a second copy of it, loaded
    while `TRITON_INTERPRET` is set (Triton picks the mode when decorating)."""
    if not interpreting():
        return importlib.import_module(_KERNELS)
    name = _KERNELS + "_interpreted"
    mod = sys.modules.get(name)
    if mod is None:
        path = os.path.join(os.path.dirname(__file__), "triton_attention_kernels.py")
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod


_LAUNCHERS = {}


def _launch(kernel, key, grid, args, meta):
    """kernel[grid](*args, **meta) through a cached Launcher (keyed by everything Triton
    specializes on: the caller's key holds the shapes, strides and alignments)."""
    mod = _kernels()
    if interpreting():  # Triton's own path
        getattr(mod, kernel)[grid](*args, **meta)
        return
    la = _LAUNCHERS.get(kernel)
    if la is None:
        la = _LAUNCHERS[kernel] = Launcher(getattr(mod, kernel))
    dev = args[0].device.index
    warps = meta.pop("num_warps")
    stages = meta.pop("num_stages")
    la(key, grid, args, meta, {"num_warps": warps, "num_stages": stages}, dev)


def _pow2(n):
    return max(16, 1 << (n - 1).bit_length())


def _strides4(t):
    return tuple(t.stride()) if t is not None else (0, 0, 0, 0)


# (wide heads (> 64), kernel) -> (BLOCK_M, BLOCK_N, warps, stages), from a sweep of each
# kernel on an H100 (benchmarks/README.md, attention: 512 tokens with the
# GPT's additive causal mask and causal, 2048 tokens causal, head sizes 64 and 128)
BLOCKS = {(False, "fwd"): (128, 64, 8, 3), (True, "fwd"): (128, 32, 8, 3),
          (False, "kv"): (64, 128, 8, 1), (True, "kv"): (64, 128, 8, 2),
          (False, "q"): (64, 64, 4, 2), (True, "q"): (128, 64, 8, 1)}
# Few query rows (decoding: one query, or a group of heads' single queries, see
# `kernels_fast._packed`) take 16-row blocks instead, from a sweep on an H100 (8 batches x
# 8 kv heads x 4 rows over 4096 keys, head size 128: forward 316 -> 96 us, backward 784
# -> about 410): a 128-row block spent its products on padding
FEW_ROWS = 16
BLOCKS_FEW = {"fwd": (16, 64, 4, 3), "kv": (16, 64, 4, 2), "q": (16, 128, 8, 2)}
# the dK/dV kernel splits a group's heads over programs when there are fewer than this
# many (key block, kv head) programs, and sums the shares afterwards
MIN_PROGRAMS = 1024


def _meta(d, dv, lq, mask_kind, causal, kernel):
    bd, bdv = _pow2(d), _pow2(dv)
    if lq <= FEW_ROWS:
        bm, bn, warps, stages = BLOCKS_FEW[kernel]
    else:
        bm, bn, warps, stages = BLOCKS[(max(bd, bdv) > 64, kernel)]
    return dict(MASK=mask_kind, CAUSAL=causal, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd,
                BLOCK_DV=bdv, num_warps=warps, num_stages=stages)


def _common(q, k, v, mask):
    b, h, lq, d = q.shape
    hk, lk, dv = k.shape[1], k.shape[2], v.shape[-1]
    if mask is None:
        kind, mk = 0, q  # never read
    else:
        kind = 2 if mask.dtype is torch.bool else 1
        mk = mask.expand(b, h, lq, lk)
    return (b, h, hk, lq, lk, d, dv), kind, mk


# while a CUDA graph is captured: the tables of `_blocks` by mask and block sizes, with
# the mask they were made of. The layers of a model share one mask: the first layer's
# kernel makes the table (on every replay), the others read it. Emptied before and after
# every capture (`cudagraph.CAPTURE_HOOKS`): outside one, a table made earlier would not
# be remade when a replay's mask differs
_TABLES = {}
CAPTURE_HOOKS.append(_TABLES.clear)


def _blocks(mk, kind, meta):
    """The mask's block classes for these block sizes (`_mask_blocks`), one table per
    batch and head it varies over, and a cleared flag after it: (table, flag, the table's
    batch and head strides, key blocks); sets the kernels' SPAN (a power of two over the
    table's rows and columns)."""
    if not kind:
        meta["SPAN"] = 1
        return mk, mk, 0, 0, 0  # (never read)
    b, h, lq, lk = mk.shape
    smb, smh, smm, smn = mk.stride()
    bm, bn = meta["BLOCK_M"], meta["BLOCK_N"]
    nbm, nbn = -(-lq // bm), -(-lk // bn)
    meta["SPAN"] = 1 << (max(nbm, nbn) - 1).bit_length()
    key = None
    if mk.is_cuda and torch.cuda.is_current_stream_capturing():
        # (the mask is held with its table: no other tensor takes its address meanwhile)
        key = (mk.data_ptr(), mk.shape, mk.stride(), mk.dtype, kind, bm, bn)
        hit = _TABLES.get(key)
        if hit is not None:
            return hit[1]
    tb, th = (b if smb else 1), (h if smh else 1)
    n = tb * th * nbm * nbn
    # (zeros: the flags after the table are only ever set by the kernels)
    t = torch.zeros(n + 2, dtype=torch.int8, device=mk.device)
    ints = (smb, smh, smm, smn, th, lq, lk, nbn)
    flag = t[n:]
    _launch("_mask_blocks", (_key((mk, flag), ints), kind, bm, bn), (nbm, nbn, tb * th),
            (mk, t, flag, *ints), dict(MASK=kind, BLOCK_M=bm, BLOCK_N=bn, num_warps=4,
                                       num_stages=1))
    res = t, flag, (th * nbm * nbn if smb else 0), (nbm * nbn if smh else 0), nbn
    if key is not None:
        _TABLES[key] = (mk, res)
    return res


def _heads_last(b, h, n, d, like):
    """An empty (b, h, n, d) laid out as (b, n, h, d): merging its heads back (the
    transpose and reshape after attention, or of a gradient on its way to the
    projection) is then a view, not a copy."""
    return torch.empty((b, n, h, d), dtype=like.dtype, device=like.device).transpose(1, 2)


def _key(ts, ints):
    """What the compiled kernel depends on beyond the constexprs: dtypes (float32 now, but
    a cache keyed without them would hand one dtype another's kernel), pointer alignment,
    the integer arguments."""
    return (tuple((t.dtype, t.data_ptr() % 16 == 0) for t in ts), ints)


def forward(q, k, v, mask, causal, scale):
    """(output, (max, log-sum-exp below it) per row, the flag the backward reads: whether
    some row saw only vanishing mask values)."""
    (b, h, hk, lq, lk, d, dv), kind, mk = _common(q, k, v, mask)
    o = _heads_last(b, h, lq, dv, q)
    lse = torch.empty((b * h, 2, lq), dtype=torch.float32, device=q.device)
    meta = _meta(d, dv, lq, kind, causal, "fwd")
    t, flag, stb, sth, nbn = _blocks(mk, kind, meta)
    ints = (*q.stride(), *k.stride(), *v.stride(), *_strides4(mk if kind else None),
            stb, sth, nbn, *o.stride(), h, h // hk, lq, lk, d, dv)
    args = (q, k, v, mk, t, flag, o, lse, *ints, scale)
    grid = (-(-lq // meta["BLOCK_M"]), b * h, 1)
    for fixup in (False, True) if kind == 1 else (False,):
        meta["FIXUP"] = fixup
        _launch("_fwd", (_key((q, k, v, mk, flag), ints), *meta.values()), grid, args,
                dict(meta))
    return o, lse, flag


def backward(q, k, v, mask, causal, scale, o, lse, do, flag):
    (b, h, hk, lq, lk, d, dv), kind, mk = _common(q, k, v, mask)
    delta = torch.empty((b * h, lq), dtype=torch.float32, device=q.device)
    ints = (*o.stride(), *do.stride(), h, lq, dv)
    _launch("_delta", _key((o, do, delta), ints), (-(-lq // 64), b * h, 1),
            (o, do, delta, *ints), dict(BLOCK_M=64, BLOCK_DV=_pow2(dv), num_warps=4,
                                         num_stages=1))
    dq = _heads_last(b, h, lq, d, q)
    mkv, mq = _meta(d, dv, lq, kind, causal, "kv"), _meta(d, dv, lq, kind, causal, "q")
    g = h // hk
    blocks = -(-lk // mkv["BLOCK_N"])
    shares = g if g > 1 and blocks * b * hk < MIN_PROGRAMS else 1
    if shares == 1:
        dk = _heads_last(b, hk, lk, d, k).unsqueeze(2)
        dvt = _heads_last(b, hk, lk, dv, v).unsqueeze(2)
    else:  # (summed over the shares below)
        dk = torch.empty((b, hk, shares, lk, d), dtype=k.dtype, device=k.device)
        dvt = torch.empty((b, hk, shares, lk, dv), dtype=v.dtype, device=v.device)
    outs = (*dk.stride()[:4], *dvt.stride()[:4])
    head = (*q.stride(), *k.stride(), *v.stride(), *_strides4(mk if kind else None))
    tail = (*do.stride(), h, g, lq, lk, d, dv)
    t = _blocks(mk, kind, mkv)
    ints = (*head, *t[2:], *tail)
    _launch("_bwd_kv", (_key((q, k, v, mk, flag, do), ints), shares, outs, *mkv.values()),
            (blocks, b * hk * shares, 1),
            (q, k, v, mk, t[0], flag, do, lse, delta, dk, dvt, *ints, scale, g // shares,
             *outs), mkv)
    if (mq["BLOCK_M"], mq["BLOCK_N"]) != (mkv["BLOCK_M"], mkv["BLOCK_N"]):
        t = _blocks(mk, kind, mq)
    else:
        mq["SPAN"] = mkv["SPAN"]
    ints = (*head, *t[2:], *tail)
    outs = dq.stride()[:3]
    _launch("_bwd_q", (_key((q, k, v, mk, flag, do), ints), outs, *mq.values()),
            (-(-lq // mq["BLOCK_M"]), b * h, 1),
            (q, k, v, mk, t[0], flag, do, lse, delta, dq, *ints, scale, *outs), mq)
    if shares > 1:
        return dq, dk.sum(2), dvt.sum(2)
    return dq, dk.squeeze(2), dvt.squeeze(2)


class Attention(torch.autograd.Function):
    """softmax(scale * q @ k^T + mask) @ v with the kernels above, for torch's autograd."""

    @staticmethod
    def forward(ctx, q, k, v, mask, causal, scale):
        o, lse, flag = forward(q, k, v, mask, causal, scale)
        ctx.save_for_backward(q, k, v, mask, o, lse, flag)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, mask, o, lse, flag = ctx.saved_tensors
        dq, dk, dv = backward(q, k, v, mask, ctx.causal, ctx.scale, o, lse, do, flag)
        return dq, dk, dv, None, None, None


def attention(q, k, v, mask, causal, scale):
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return Attention.apply(q, k, v, mask, causal, scale)
    return forward(q, k, v, mask, causal, scale)[0]  # (no autograd node to make)
