"""Elementwise fusion of compiled tapes: regions of elementwise steps become one generated
Triton kernel.

`fuse(steps, shape, dtype, outs)` walks a tape's steps (aliases already resolved) in order
and groups elementwise steps -- the unary and binary ops of `FLOAT_UNARY`/`BINARY` below,
where, and casts between the dtypes of `DTYPES` -- whose outputs have one shape:

- a step joins (and merges) the open groups of its inputs that have its shape, or opens
  a new group;
- a group closes when a step outside it reads one of its values: it can take no more
  steps, so every reader outside comes after its last step, where its kernel runs.

A group of two or more steps becomes one step whose primitive is a `FusedElementwise`:
its inputs are the values read from outside, its outputs the values read after it (by
other steps or as tape outputs); the values used only inside never reach memory.
Matmuls, reductions, attention and everything else keep their own kernels.

The kernel (`codegen`) computes each value as torch's kernel would: half-precision values
are widened to float32 for the op and rounded back to their dtype after it, functions
come from CUDA's libdevice (torch's kernels call the same functions), division is IEEE, and
no multiply-add is contracted into an FMA: compiled results equal eager ones bit for bit.
An input whose shape is the group's and is contiguous is read directly, one of a single
element once per program, any other (a broadcast, a strided view) through its strides
broadcast to the group's shape; the mode of each input is part of the launch key.

`EMBER_COMPILE_FUSE=0` (or `FUSE[0] = False`) turns fusion off. Fusion applies to tapes on
CUDA; with `TRITON_INTERPRET=1` it applies on the CPU too, through Triton's interpreter
(how the tests check the generated kernels without a GPU).
"""

import hashlib
import importlib.util
import math
import os
import string
import sys
import tempfile

import torch

from ember.core import dtypes as D
from ember.core._backend import TORCH
from ember.core._backend.kernels import register
from ember.core._backend.triton_launch import Launcher, aligned, interpreting
from ember.core.primitives import elementwise as E
from ember.core.primitives import misc as M
from ember.core.primitives.base import Primitive

FUSE = [os.environ.get("EMBER_COMPILE_FUSE", "1") not in ("", "0")]

DTYPES = {D.float32: "tl.float32", D.float16: "tl.float16", D.bfloat16: "tl.bfloat16",
          D.int32: "tl.int32", D.bool_: "tl.int1"}
_FLOATS = (D.float32, D.float16, D.bfloat16)
_HALF = (D.float16, D.bfloat16)
_MAX_ELEMENTS = 2 ** 31 - 1  # int32 offsets

# name -> (libdevice function, the interpreter's stand-in or None where it has none).
# sqrt is correctly rounded as torch's is. Left to torch: power (torch turns scalar
# exponents such as -1, 0.5 or 2 into other functions), and the inverse trigonometric
# functions but arctanh, and erf (libdevice's round differently from torch's: measured
# against torch on the H100 by tests/core/test_compile_fusion.py).
_MATH = {
    "exp": ("exp", "tl.exp"), "log": ("log", "tl.log"), "log2": ("log2", "tl.log2"),
    "sqrt": ("tl.sqrt_rn", "tl.sqrt_rn"), "rsqrt": ("rsqrt", "tl.rsqrt"), "sin": ("sin", "tl.sin"),
    "cos": ("cos", "tl.cos"), "floor": ("floor", "tl.floor"),
    "ceil": ("ceil", "tl.ceil"), "log10": ("log10", None), "log1p": ("log1p", None),
    "expm1": ("expm1", None), "tan": ("tan", None), "tanh": ("tanh", None),
    "sinh": ("sinh", None), "cosh": ("cosh", None), "arctanh": ("atanh", None),
    "erfinv": ("erfinv", None), "trunc": ("trunc", None),
}


def _say(msg):
    from ember.core._backend.cudagraph import DEBUG
    if DEBUG[0]:
        print(f"[compile] fusion: {msg}", file=sys.stderr, flush=True)


def _fn(name):
    """The source of math function `name`, or None where this target has none."""
    lib, interp = _MATH[name]
    if interpreting():
        return interp
    return lib if lib.startswith("tl.") else f"libdevice.{lib}"


# unary float ops (float in, same dtype out): templates over the float32 value {0}
_FLOAT_UNARY = {"negative": "-{0}", "abs": "tl.abs({0})", "square": "{0} * {0}",
                "reciprocal": "tl.div_rn(1.0, {0})",
                "sigmoid": "tl.div_rn(1.0, 1.0 + {exp}(-{0}))"}
_FLOAT_UNARY.update({k: f"{{{k}}}({{0}})" for k in _MATH})

# binary ops: (template over {0} and {1}, the dtypes it takes)
_ARITH = (D.float32, D.float16, D.bfloat16, D.int32)
_MAXNAN = "tl.{}({{0}}, {{1}}, propagate_nan=tl.PropagateNan.ALL)"
_BINARY = {
    "add": ("{0} + {1}", _ARITH), "subtract": ("{0} - {1}", _ARITH),
    "multiply": ("{0} * {1}", _ARITH), "divide": ("tl.div_rn({0}, {1})", _FLOATS),
    "maximum": (_MAXNAN.format("maximum"), _ARITH),
    "minimum": (_MAXNAN.format("minimum"), _ARITH),
    "equal": ("{0} == {1}", _ARITH), "not_equal": ("{0} != {1}", _ARITH),
    "less": ("{0} < {1}", _ARITH), "less_equal": ("{0} <= {1}", _ARITH),
    "greater": ("{0} > {1}", _ARITH), "greater_equal": ("{0} >= {1}", _ARITH),
    "logical_and": ("{0} & {1}", (D.bool_,)), "logical_or": ("{0} | {1}", (D.bool_,)),
    "bitwise_and": ("{0} & {1}", (D.int32, D.bool_)),
    "bitwise_or": ("{0} | {1}", (D.int32, D.bool_)),
    "bitwise_xor": ("{0} ^ {1}", (D.int32, D.bool_)),
}

_UNARY_OF = {cls: op for op, cls in E.UNARY.items()}
_BINARY_OF = {cls: op for op, cls in E.BINARY.items()}


def _names():
    """Template fields: the math functions of this target (None where it has none)."""
    return {k: _fn(k) for k in _MATH}


def _expr(st, dtype, names):
    """The Triton template of a fusible step (over its operands {0}, {1}, {2}), or None."""
    cls = st.prim.__class__
    out = dtype[st.outs[0]]
    ins = [dtype[i] for i in st.ins]
    if any(d not in DTYPES for d in ins) or out not in DTYPES:
        return None
    op = _UNARY_OF.get(cls)
    if op is not None:
        if op == "logical_not" and ins[0] is D.bool_:
            return "{0} == 0"
        if op == "isnan" and ins[0] in _FLOATS:
            return "{0} != {0}"
        t = _FLOAT_UNARY.get(op)
        if t is None or ins[0] not in _FLOATS and op not in ("negative", "abs", "square"):
            return None
        if ins[0] is D.bool_:
            return None
        return _fill(t, names)
    op = _BINARY_OF.get(cls)
    if op is not None:
        t, takes = _BINARY.get(op, (None, ()))
        if t is None or ins[0] is not ins[1] or ins[0] not in takes:
            return None
        return _fill(t, names)
    if cls is E.Select:
        return "tl.where({0}, {1}, {2})" if ins[0] is D.bool_ and ins[1] is ins[2] else None
    if cls is M.AsType:
        return "{0} != 0" if out is D.bool_ and ins[0] is not D.bool_ else "{0}"
    return None


def _fill(template, names):
    """`template` with its named fields filled in (positional ones kept), or None when
    this target lacks one of its functions."""
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f and not f.isdigit()}
    if any(names.get(f) is None for f in fields):
        return None
    return template.format("{0}", "{1}", "{2}", **{f: names[f] for f in fields})


# -- grouping ---------------------------------------------------------------------------

class _Group:
    __slots__ = ("shape", "steps", "open", "into")

    def __init__(self, shape):
        self.shape, self.steps, self.open, self.into = shape, [], True, None

    def find(self):
        g = self
        while g.into is not None:
            g = g.into
        return g


def groups(steps, shape, exprs):
    """The fusion groups of `steps` (lists of steps in order, two or more each) where
    `exprs[k]` is step k's template or None."""
    of = {}  # slot -> the group that computes it
    made = []
    for k, st in enumerate(steps):
        if exprs[k] is None:
            for i in st.ins:
                g = of.get(i)
                if g is not None:
                    g.find().open = False
            continue
        sh = shape[st.outs[0]]
        join = []
        for i in st.ins:
            g = of.get(i)
            if g is None:
                continue
            g = g.find()
            if g.open and g.shape == sh:
                if g not in join:
                    join.append(g)
            else:
                g.open = False
        if join:
            g = join[0]
            for h in join[1:]:  # both open: every reader of either is still to come
                g.steps += h.steps
                h.into, h.steps = g, []
        else:
            g = _Group(sh)
            made.append(g)
        g.steps.append((k, st))
        of[st.outs[0]] = g
    out = []
    for g in made:
        if g.into is None and len(g.steps) > 1:
            out.append([st for _, st in sorted(g.steps, key=lambda t: t[0])])
    return out


def fuse(steps, shape, dtype, outs, consts, stream):
    """`steps` (on `stream`, the tape's) with each fusion group replaced by one step of a
    FusedElementwise at the place of its last step; `outs`: the tape's output slots,
    `consts`: slot -> tensor of its constants (the kernel keeps those it reads, on its
    device, instead of taking them at each call)."""
    if not FUSE[0] or not steps or not (stream.is_gpu or interpreting()):
        return steps
    names = _names()
    exprs = []
    for st in steps:
        e = None
        if not st.multi and len(st.outs) == 1 and st.stream == stream:
            n = math.prod(shape[st.outs[0]])
            if 0 < n <= _MAX_ELEMENTS:
                e = _expr(st, dtype, names)
        exprs.append(e)
    found = groups(steps, shape, exprs)
    if not found:
        return steps
    template = {id(st): e for st, e in zip(steps, exprs)}
    readers = {}  # slot -> ids of steps reading it
    for st in steps:
        for i in st.ins:
            readers.setdefault(i, set()).add(id(st))
    final = set(outs)
    replace = {}  # id of a group's last step -> the fused step; other members -> None
    for members in found:
        ids = {id(st) for st in members}
        made = {st.outs[0] for st in members}
        ext = []
        for st in members:
            for i in st.ins:
                if i not in made and i not in ext:
                    ext.append(i)
        stored = [st.outs[0] for st in members
                  if st.outs[0] in final or readers.get(st.outs[0], set()) - ids]
        try:
            prim = FusedElementwise(members, [template[id(st)] for st in members], ext,
                                    stored, shape, dtype, consts, stream.tdevice)
        except Exception as e:  # noqa: BLE001 - no Triton here, say: the steps run as they are
            _say(f"{len(members)} steps left unfused ({type(e).__name__}: {e})")
            continue
        first = members[0]
        fused = first.__class__(prim, tuple([i for i in ext if i not in consts]),
                                tuple(stored), first.stream, len(stored) != 1)
        for st in members:
            replace[id(st)] = None
        replace[id(members[-1])] = fused
    res = []
    for st in steps:
        r = replace.get(id(st), st)
        if r is not None:
            res.append(r)
    return res


# -- the kernel -------------------------------------------------------------------------

def codegen(members, templates, ext, stored, shape, dtype):
    """(kernel name, Triton source) computing `stored` from `ext` by the steps `members`."""
    g = shape[members[0].outs[0]]
    body = ["offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
            f"mask = offs < {math.prod(g)}"]
    body += region(members, templates, ext, stored, g, dtype, "(BLOCK,)")[0]
    return kernel_source("fused", params(ext, stored, len(g)) + ["BLOCK: tl.constexpr"], body)


def params(ext, stored, nd, more=()):
    """The kernel's parameters for inputs `ext` (pointer, then strides), outputs `stored`
    and the arguments `more`, then the inputs' modes."""
    out = []
    for k in range(len(ext)):
        out.append(f"x{k}")
        out += [f"x{k}s{d}" for d in range(nd)]
    out += [f"o{j}" for j in range(len(stored))] + list(more)
    return out + [f"MODE{k}: tl.constexpr" for k in range(len(ext))]


def region(members, templates, ext, stored, g, dtype, tile):
    """(lines, slot -> variable): the steps `members` at flat offsets `offs` (a tile of
    shape `tile` of the group's shape `g`) under `mask`, the values `stored` written."""
    nd = len(g)
    gstride = [1] * nd
    for d in range(nd - 2, -1, -1):
        gstride[d] = gstride[d + 1] * g[d + 1]
    body = [f"i{d} = offs // {gstride[d]} % {g[d]}" for d in range(nd)]
    var = {}
    for k, s in enumerate(ext):
        strided = " + ".join([f"i{d} * x{k}s{d}" for d in range(nd)]) or "0"
        body += [f"if MODE{k} == 0:",
                 f"    v{s} = tl.load(x{k} + offs, mask=mask)",
                 f"elif MODE{k} == 1:",
                 f"    v{s} = tl.load(x{k})",
                 "else:",
                 f"    v{s} = tl.load(x{k} + ({strided}), mask=mask)"]
        var[s] = f"v{s}"
    for st, t in zip(members, templates):
        o = st.outs[0]
        out = dtype[o]
        cls = st.prim.__class__
        args = []
        for i in st.ins:
            v = var[i]
            # half precision computes in float32, as torch's kernels do
            if dtype[i] in _HALF and cls is not E.Select:
                v = f"{v}.to(tl.float32)"
            args.append(v)
        e = t.format(*[f"({a})" for a in args])
        if cls is M.AsType or out in _HALF or out is not dtype[st.ins[-1]]:
            e = f"({e}).to({DTYPES[out]})"
        body.append(f"v{o} = {e}")
        var[o] = f"v{o}"
    for j, s in enumerate(stored):
        body.append(f"tl.store(o{j} + offs, tl.broadcast_to({var[s]}, {tile}), mask=mask)")
    return body, var


def kernel_source(prefix, params, body):
    """(name, Triton module source) of a kernel of `params` running `body`, named after a
    digest of both."""
    src = "\n".join("    " + ln for ln in body)
    digest = hashlib.sha1(src.encode() + repr(params).encode()).hexdigest()[:16]
    name = f"{prefix}_{digest}"
    head = ("import triton\nimport triton.language as tl\n"
            "from triton.language.extra import libdevice  # noqa: F401\n\n\n"
            f"@triton.jit\ndef {name}({', '.join(params)}):\n")
    return name, head + src + "\n"


_MODULES = {}  # (source, interpreted) -> the jitted kernel


def load(name, src):
    """The jitted function `name` defined by the Triton module source `src`."""
    key = (src, interpreting())  # the interpreter's functions are other objects
    fn = _MODULES.get(key)
    if fn is not None:
        return fn
    # Triton reads a kernel's source from its file: write each one to a file of its own
    folder = os.path.join(tempfile.gettempdir(), f"ember-fused-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}{'_interp' if interpreting() else ''}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(src)
        os.replace(tmp, path)
    mod_name = f"ember_fused.{os.path.basename(path)[:-3]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    fn = _MODULES[key] = getattr(mod, name)
    return fn


_LAUNCHERS = {}  # (kernel name, source) -> its Launcher, or None where Triton cannot load it


def launcher(name, src):
    """A `Launcher` of the jitted function `name` in the Triton module source `src`,
    loaded at the first call (under a name holding a digest of the source: `load` keeps
    one file per name); None where Triton is missing or refuses the source (the caller's
    torch path runs instead)."""
    key = (name, src)
    if key not in _LAUNCHERS:
        unique = f"{name}_{hashlib.sha1(src.encode()).hexdigest()[:12]}"
        try:
            _LAUNCHERS[key] = Launcher(load(unique, src.replace(name, unique)))
        except Exception:  # noqa: BLE001 - no Triton here
            _LAUNCHERS[key] = None
    return _LAUNCHERS[key]


class FusedElementwise(Primitive):
    """A region of elementwise steps of a compiled tape, as one generated Triton kernel:
    inputs the values it reads from outside, outputs the values read after it. It only
    ever appears in a tape's executor (the tape keeps the original steps for grad, vmap
    and shape inference)."""

    __slots__ = ("steps", "source", "kernel", "launcher", "shape", "out_dtypes", "numel",
                 "block", "opts", "device", "sources", "made_of")
    name = "FusedElementwise"

    def __init__(self, members, templates, ext, stored, shape, dtype, consts, device):
        self.made_of = (members, templates, ext, stored, shape, dtype, consts, device)
        self.steps = members
        self.shape = torch.Size(shape[members[0].outs[0]])
        self.device = device
        self.out_dtypes = [TORCH[dtype[s]] for s in stored]
        self.numel = math.prod(self.shape)
        # per kernel input: the position among the call's tensors, or a constant tensor
        self.sources = []
        n = 0
        for s in ext:
            if s in consts:
                self.sources.append(consts[s].to(device))
            else:
                self.sources.append(n)
                n += 1
        name, self.source = self.codegen(members, templates, ext, stored, shape, dtype)
        self.kernel = load(name, self.source)
        self.launcher = Launcher(self.kernel)
        self.block = min(1024, max(128, 1 << (self.numel - 1).bit_length()))
        # no contraction of a * b + c into one FMA: each op rounds as torch's kernel does
        self.opts = {"num_warps": 4 if self.block >= 512 else (2 if self.block >= 256 else 1),
                     "enable_fp_fusion": False}

    codegen = staticmethod(codegen)

    def __repr__(self):
        return f"{self.name}({len(self.steps)} steps, shape {tuple(self.shape)})"

    def params(self):
        return (id(self),)

    def inputs(self, xs):
        """(the kernel's arguments for its inputs, its meta of their modes, the launch
        key) for the call's tensors `xs`."""
        shape, nd = self.shape, len(self.shape)
        args = []
        meta = {}
        key = []
        for k, src in enumerate(self.sources):
            t = xs[src] if src.__class__ is int else src
            if t.numel() == 1:
                mode, st = 1, (0,) * nd
            elif t.shape == shape and t.is_contiguous():
                mode, st = 0, (0,) * nd
            else:
                mode, st = 2, t.expand(shape).stride()
            args.append(t)
            args += st
            meta[f"MODE{k}"] = mode
            key.append((mode, st, t.dtype, aligned(t)))
        return args, meta, key

    def __call__(self, xs):
        args, meta, key = self.inputs(xs)
        dev = self.device
        outs = [torch.empty(self.shape, dtype=d, device=dev) for d in self.out_dtypes]
        meta["BLOCK"] = self.block
        grid = (-(-self.numel // self.block), 1, 1)
        self.launcher(tuple(key), grid, args + outs, meta, self.opts, dev.index)
        return outs[0] if len(outs) == 1 else tuple(outs)


@register(FusedElementwise)
def _fused(p, *xs):
    return p(xs)
