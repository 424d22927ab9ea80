"""Sums over a middle run of axes of contiguous CUDA tensors (Triton): x viewed as
(B, R, C), summed over R. These are the bias and norm-weight gradients of a train step
(R the tokens, C the features), where ATen's reduction over an outer axis moves 1.1-1.9
TB/s on an H100 (8192 x 768 float32: 18 us; 8192 x 3072: 54 us).

Two launches of one kernel, in a fixed order (the same bits on every call): programs of
BC columns sum disjoint chunks of rows into float32 partial sums (B, S, C), and one
program per BC columns adds the S partial sums. Half-type inputs sum in float32 and
round once, as ATen's kernels do.

In a compiled tape, such a sum of a fused elementwise region's float32 value becomes the
region kernel's own first pass (`FusedSum`, `fuse_sums`): the value is summed as it is
written, not read back (a ReLU's gradient mask and its bias gradient: the large GPT
step's kernels 27.74 -> 27.47 ms on an H100, its twelve 8192 x 3072 sums 46 us each)."""

import math

import torch

from ember.core import dtypes as D
from ember.core._backend import fusion as F
from ember.core._backend.kernels import register
from ember.core._backend.triton_launch import aligned, device_sms
from ember.core.primitives import compiled as C
from ember.core.primitives import reduce as R

_SRC = '''import triton
import triton.language as tl


@triton.jit
def col_sum(X, Y, R, C, CHUNK, S, BR: tl.constexpr, BC: tl.constexpr):
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    b = tl.program_id(1)
    s = tl.program_id(2)
    lo = s * CHUNK
    hi = tl.minimum(lo + CHUNK, R)
    base = X + b.to(tl.int64) * R * C
    acc = tl.zeros((BR, BC), tl.float32)
    for r in range(lo, hi, BR):
        rows = r + tl.arange(0, BR)
        m = (rows[:, None] < hi) & (c[None, :] < C)
        acc += tl.load(base + rows[:, None].to(tl.int64) * C + c[None, :], mask=m,
                       other=0.0).to(tl.float32)
    TREE
    tl.store(Y + (b * S + s) * C + c, tot.to(Y.dtype.element_ty), mask=c < C)
'''
_BR, _BC = 32, 64
# the rows of a program's (BR, BC) tile of sums added pairwise in a fixed tree ((0, 1),
# (2, 3), ... then their sums likewise), into `tot`: tl.sum's order follows the tile's
# layout, which Triton picks per kernel, and a fused kernel's sums must have the bits of
# this one's
_TREE = ["t = tl.trans(acc)"] + [
    f"ta, tb = tl.split(tl.reshape(t, (BC, {n // 2}, 2)))\nt = ta + tb"
    for n in (_BR >> k for k in range(_BR.bit_length() - 1))] + ["tot = tl.reshape(t, (BC,))"]
_SRC = _SRC.replace("TREE", "\n".join(_TREE).replace("\n", "\n    "))
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# below this many elements ATen's single kernel costs less than two launches
MIN_SIZE = 2**20


def _launch(launch, x, y, b, r, c, chunk, s, dev):
    args = (x, y, r, c, chunk, s)
    key = (x.dtype, y.dtype, r, c, chunk, s, aligned(x), aligned(y))
    launch(key, (-(-c // _BC), b, s), args, {"BR": _BR, "BC": _BC}, {"num_warps": 4}, dev)


def middle_sum(x, b, r, c, out_dtype=None, force=False):
    """x (contiguous, B * R * C elements) summed over R: a contiguous (B, C) tensor of
    `out_dtype` (x's by default), or None where the kernel does not run (CPU, other
    dtypes, small or 64-bit-indexed inputs: ATen's sum instead). `force` skips the size
    threshold (partial sums of other kernels)."""
    if not x.is_cuda or x.dtype not in _DTYPES or not x.is_contiguous() or r < 2 \
            or not (force or x.numel() >= MIN_SIZE) or x.numel() >= 2**31:
        return None
    launch = F.launcher("col_sum", _SRC)
    if launch is None:  # (no Triton)
        return None
    dev, s, chunk = _chunks(x, b, r, c)
    y = torch.empty((b, c), dtype=out_dtype or x.dtype, device=x.device)
    if s == 1:
        _launch(launch, x, y, b, r, c, r, 1, dev)
        return y
    part = torch.empty((b, s, c), dtype=torch.float32, device=x.device)
    _launch(launch, x, part, b, r, c, chunk, s, dev)
    _launch(launch, part, y, b, s, c, s, 1, dev)
    return y


def _chunks(x, b, r, c):
    """(device index, number of chunks of rows, rows per chunk) for `b` (r, c) sums on
    x's device: about four programs per multiprocessor, each over at least a few tiles
    of rows, every chunk but the last of whole tiles."""
    dev, sms = device_sms(x) if x.is_cuda else (None, 4)
    s = max(1, min(-(-4 * sms // (-(-c // _BC) * b)), r // (4 * _BR)))
    per = -(-r // s)
    chunk = -(-per // _BR) * _BR
    return dev, -(-r // chunk), chunk


# -- the first pass inside a fused elementwise kernel ------------------------------------

class FusedSum(F.FusedElementwise):
    """A fused elementwise region that also sums its stored float32 value `summed` over
    the leading rows of its shape (`cols` trailing elements to a row): `col_sum`'s first
    pass is run by the region's kernel, in the same programs, chunks, tiles and order,
    then its second pass, so the sums have `middle_sum`'s bits. Results: the region's
    values, then the sums shaped `sum_shape`."""

    __slots__ = ("summed", "cols", "rows", "sum_shape")
    name = "FusedSum"

    def __init__(self, fused, summed, cols, sum_shape):
        self.summed, self.cols, self.sum_shape = summed, cols, sum_shape
        super().__init__(*fused.made_of)
        self.rows = self.numel // cols
        self.opts = {"num_warps": 4, "enable_fp_fusion": False}

    def codegen(self, members, templates, ext, stored, shape, dtype):
        g = shape[members[0].outs[0]]
        c = self.cols
        inner, var = F.region(members, templates, ext, stored, g, dtype, "(BR, BC)")
        v = f"tl.broadcast_to({var[stored[self.summed]]}, (BR, BC))"
        body = ["cols = tl.program_id(0) * BC + tl.arange(0, BC)",
                "lo = tl.program_id(1) * CHUNK",
                f"hi = tl.minimum(lo + CHUNK, {math.prod(g) // c})",
                # (tl.zeros is a jitted library function, which Triton's interpreter
                # cannot call when triton was imported outside it)
                "acc = tl.full((BR, BC), 0.0, tl.float32)",
                "for r in range(lo, hi, BR):",
                "    rows = r + tl.arange(0, BR)",
                f"    mask = (rows[:, None] < hi) & (cols[None, :] < {c})",
                f"    offs = rows[:, None] * {c} + cols[None, :]"]
        body += ["    " + ln for ln in inner]
        body += [f"    acc += tl.where(mask, {v}, 0.0)"]
        body += "\n".join(_TREE).splitlines()
        body += [f"tl.store(P + tl.program_id(1) * {c} + cols, tot, mask=cols < {c})"]
        params = F.params(ext, stored, len(g), ("P", "CHUNK")) + ["BR: tl.constexpr",
                                                                  "BC: tl.constexpr"]
        return F.kernel_source("fused_sum", params, body)

    def __call__(self, xs):
        args, meta, key = self.inputs(xs)
        c = self.cols
        outs = [torch.empty(self.shape, dtype=d, device=self.device) for d in self.out_dtypes]
        dev, s, chunk = _chunks(outs[0], 1, self.rows, c)
        part = torch.empty((s, c), dtype=torch.float32, device=self.device)
        meta["BR"], meta["BC"] = _BR, _BC
        self.launcher((*key, chunk), (-(-c // _BC), s, 1), args + outs + [part, chunk],
                      meta, self.opts, dev)
        if s == 1:
            y = part
        else:
            y = torch.empty(c, dtype=torch.float32, device=self.device)
            _launch(F.launcher("col_sum", _SRC), part, y, 1, s, c, s, 1, dev)
        return (*outs, y.view(self.sum_shape))


register(FusedSum)(lambda p, *xs: p(xs))


def fuse_sums(steps, shape, dtype):
    """`steps` where a float32 sum over leading axes (at least MIN_SIZE elements, 32
    trailing) of a value a fused elementwise step stores is computed by that step, as a
    FusedSum (one sum per region)."""
    at = {}  # slot -> position of the fused step storing it
    for n, st in enumerate(steps):
        if st.prim.__class__ is F.FusedElementwise:
            for o in st.outs:
                at[o] = n
    made, gone = {}, set()
    for n, st in enumerate(steps):
        p = st.prim
        if p.__class__ is not R.Reduce or p.op != "sum" or len(st.ins) != 1:
            continue
        x = st.ins[0]
        f = at.get(x)
        if f is None or f in made or dtype[x] is not D.float32 \
                or dtype[st.outs[0]] is not D.float32 or st.stream != steps[f].stream:
            continue
        sh = shape[x]
        k = len(p.axes)
        if not k or k >= len(sh) or p.axes != tuple(range(k)):
            continue
        c, n_all = math.prod(sh[k:]), math.prod(sh)
        if c < 32 or n_all < MIN_SIZE or n_all >= 2**31:
            continue
        fs = steps[f]
        try:
            prim = FusedSum(fs.prim, fs.outs.index(x), c, tuple(shape[st.outs[0]]))
        except Exception as e:  # noqa: BLE001 - Triton refused it: the sum stays apart
            F._say(f"a sum left apart ({type(e).__name__}: {e})")
            continue
        made[f] = fs.__class__(prim, fs.ins, fs.outs + st.outs, fs.stream, True)
        gone.add(n)
    return C.replaced(steps, made, gone)
