"""Adam and AdamW over every parameter in one generated Triton kernel (float32, CUDA).

torch's multi-tensor ops run the rule of `kernels_optim._adam` as a dozen launches of
several kernels each (72 kernels for the 47 parameters of a small GPT). Here one launch
covers PER_KERNEL parameters: the kernel, generated for their sizes and layouts, gives
each parameter a range of programs (a static `if` chain on the program id picks it) and
runs the same operations in the same order, each rounded to float32 (no FMA contraction, IEEE
square root and division), so the results are the bits of the multi-tensor rule.

`adam(hyper, lr, extra, grads, params, slots)` returns (params, m, v) or None where the
kernel does not apply (another dtype, tensors off CUDA, no Triton); with
`TRITON_INTERPRET=1` it runs on the CPU through Triton's interpreter (for the tests).
"""

import hashlib
from functools import reduce
from operator import or_

import torch

from ember.core._backend import fusion as F
from ember.core._backend.cudagraph import empty_for
from ember.core._backend.triton_launch import Launcher, aligned

BLOCK = 1024
# parameters per kernel: compiling one grows faster than its branches (about 1.6 s for 16
# parameters, 14 s for 64); layers of one shape give chunks of one kernel
PER_KERNEL = 16
_KERNELS = {}  # (hyper, layouts, interpreted) -> (launcher, grid)
_PTR = torch.Tensor.data_ptr


def _index(layout):
    """The element offsets of a tensor of `layout` ((shape, strides), or None when it is
    contiguous) at the flat positions `offs`."""
    if layout is None:
        return "offs"
    shape, strides = layout
    terms, inner = [], 1
    for d in range(len(shape) - 1, -1, -1):
        if shape[d] != 1:
            terms.append(f"(offs // {inner} % {shape[d]}) * {strides[d]}")
        inner *= shape[d]
    return " + ".join(terms) or "offs * 0"


def _source(name, hyper, layouts):
    from ember.core._backend.kernels_optim import _c  # (it imports this module)

    def _f32(v):  # source of the float32 constant the multi-tensor rule uses
        return repr(_c(v, torch.float32))
    b1, b2, eps, bias_correction, decay = hyper
    one = ["@triton.jit",
           "def _one(p, g, m, v, P, M, V, mask, lr, c1, c2, dec):",
           "    pp = tl.load(p, mask=mask)",
           "    gg = tl.load(g, mask=mask)",
           "    mm = tl.load(m, mask=mask)",
           "    vv = tl.load(v, mask=mask)"]
    if decay:
        one.append("    pp = pp * tl.load(dec)")
    one += [f"    mm = mm * {_f32(b1)} + gg * {_f32(1 - b1)}",
            f"    vv = vv * {_f32(b2)} + (gg * gg) * {_f32(1 - b2)}",
            "    den = tl.sqrt_rn(vv)"]
    if bias_correction:
        one += ["    num = mm * tl.load(c1)", "    den = den * tl.load(c2)"]
    else:
        one.append("    num = mm * tl.load(lr)")
    one += [f"    den = den + {_f32(eps)}",
            "    num = tl.div_rn(num, den)",
            "    tl.store(P, pp - num, mask=mask)",
            "    tl.store(M, mm, mask=mask)",
            "    tl.store(V, vv, mask=mask)"]
    args = [f"{a}{i}" for i in range(len(layouts)) for a in "pgmvPMV"]
    main = ["@triton.jit",
            f"def {name}({', '.join(args)}, lr, c1, c2, dec):",
            "    pid = tl.program_id(0)"]
    start = 0
    for i, (numel, lays) in enumerate(layouts):
        blocks = -(-numel // BLOCK)
        if not blocks:
            continue
        ins = [f"{a}{i} + {_index(lay)}" for a, lay in zip("pgmv", lays)]
        main += [f"    {'if' if start == 0 else 'elif'} pid < {start + blocks}:",
                 f"        offs = (pid - {start}) * BLOCK + tl.arange(0, BLOCK)",
                 f"        _one({', '.join(ins)}, P{i} + offs, M{i} + offs, V{i} + offs, "
                 f"offs < {numel}, lr, c1, c2, dec)"]
        start += blocks
    head = f"import triton\nimport triton.language as tl\n\nBLOCK = tl.constexpr({BLOCK})\n\n\n"
    return head + "\n".join(one) + "\n\n\n" + "\n".join(main) + "\n", start


def _kernel(hyper, layouts):
    key = (hyper, layouts, F.interpreting())
    hit = _KERNELS.get(key)
    if hit is None:
        digest = hashlib.sha1(repr(key[:2]).encode()).hexdigest()[:16]
        name = f"adam_{digest}"
        src, programs = _source(name, hyper, layouts)
        hit = _KERNELS[key] = (Launcher(F.load(name, src)), (max(programs, 1), 1, 1))
    return hit


def _layout(t):
    return None if t.is_contiguous() else (tuple(t.shape), tuple(t.stride()))


def adam(hyper, lr, extra, grads, params, slots):
    if lr.dtype is not torch.float32 or not (lr.is_cuda or F.interpreting()):
        return None
    g, p, (m, v) = grads, params, slots
    dev = lr.device
    at = lr.get_device()
    f32 = torch.float32
    if any(t.dtype is not f32 or t.get_device() != at for ts in (g, p, m, v) for t in ts):
        return None
    n = len(p)
    # a strided tensor (a gradient computed transposed, say) is read through its strides
    layouts = [(a.numel(), (_layout(a), _layout(b), _layout(c), _layout(d)))
               for a, b, c, d in zip(p, g, m, v)]
    # (a train step's state carried between CUDA graphs is written where it is carried)
    outs = [[empty_for(t) for t in p], [empty_for(t) for t in m], [empty_for(t) for t in v]]
    c1, c2 = (extra[0], extra[1]) if hyper[3] else (lr, lr)
    dec = extra[-1] if hyper[4] else lr
    idx = dev.index if dev.type == "cuda" else None
    for a in range(0, n, PER_KERNEL):
        b = min(a + PER_KERNEL, n)
        try:
            launch, grid = _kernel(hyper, tuple(layouts[a:b]))
        except Exception:  # noqa: BLE001 - no Triton here: the multi-tensor rule runs instead
            return None
        args = []
        for i in range(a, b):
            args += [p[i], g[i], m[i], v[i], outs[0][i], outs[1][i], outs[2][i]]
        args += [lr, c1, c2, dec]
        # the launch key: alignment of every pointer (Triton specializes on it); one
        # value when all are aligned, as fresh buffers are
        key = True if reduce(or_, map(_PTR, args)) % 16 == 0 else \
            tuple(aligned(t) for t in args)
        launch(key, grid, args, {}, {"num_warps": 4, "enable_fp_fusion": False}, idx)
    return outs
