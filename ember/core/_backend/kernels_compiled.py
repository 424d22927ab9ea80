"""Kernels of `compile`: the tape executor, shape inference for shapeless tapes, and the
keys that let equal small constants merge.

The executor of a tape is a Python function generated from it (`build_runner`): one line
per step calling the kernel on local variables, `del` after a temporary's last use, no
per-step lookups, loops or allocations besides the kernels' own. Generic elementwise
kernels are unwrapped so a step calls the torch function directly. This function is the
unit a CUDA graph captures (`ember.core._backend.cudagraph`: the `runner` of a cached
call's `Compiled` primitive). On CUDA, regions of elementwise steps run as one generated
Triton kernel each (`ember.core._backend.fusion`).
"""

import torch

from ember.core._backend import TORCH
from ember.core._backend.fusion import fuse
from ember.core._backend.kernels import KERNELS, _binary_kernel, _unary_kernel, register
from ember.core._backend.kernels_fast import fuse_add_norm
from ember.core._backend.kernels_fast_grad import fuse_norm_add
from ember.core._backend.kernels_linalg import fuse_linear_relu
from ember.core._backend.triton_reduce import fuse_sums
from ember.core.primitives import compiled as C
from ember.core.primitives import misc as M

_DURING = ("[eval] Attempting to eval an array during function transformations like compile "
           "or vmap is not allowed.")
_LEAKED = ("[eval] Attempting to eval an array without a primitive.\nIf you are compiling a "
           "function, make sure all the inputs and outputs are captured:\n"
           "https://ml-explore.github.io/mlx/build/html/usage/compile.html#pure-functions.\n"
           "If you are not using compile, this may be a bug. Please file an issue here:\n"
           "https://github.com/ml-explore/mlx/issues.")


@register(C.Placeholder)
def _placeholder(p):
    # inside a trace the function asked for a value it cannot have; outside, a traced
    # array escaped the compiled function (state that was not listed in `outputs`)
    from ember.core.transforms.eval import TRACING
    if TRACING[0]:
        raise ValueError(_DURING)
    raise RuntimeError(_LEAKED)


@register(C.Compiled)
def _compiled(p, *tensors):
    r = p.runner
    if r is None:
        return p.tape.run(*tensors)
    return r(tensors)


# -- the executor ---------------------------------------------------------------------------

_ALIASES = (M.Identity, M.StopGradient)  # kernels that return their input
_WRAPPERS = (_unary_kernel(None).__code__, _binary_kernel(None).__code__)

# tapes longer than this run in a loop instead of a generated function (compiling the
# source of a very long function costs more than the loop saves)
MAX_GENERATED_STEPS = 20000


def _direct(k):
    """The tensor-only function inside a generic elementwise kernel, or None."""
    if getattr(k, "__code__", None) in _WRAPPERS:
        return k.__closure__[0].cell_contents
    return None


def _kernel(cls):
    k = KERNELS.get(cls)
    if k is None:  # as in eager mode: the missing kernel raises when the step runs
        def k(p, *xs):
            return KERNELS[p.__class__](p, *xs)
    return k


def _roots(tape):
    """slot -> the slot whose tensor it is (through steps that return their input)."""
    root = {}
    for st in tape.steps:
        if st.prim.__class__ in _ALIASES:
            x = st.ins[0]
            root[st.outs[0]] = root.get(x, x)
    return root


def build_runner(tape):
    """The executor of `tape`: run(*input_tensors) -> tensor (one output) or tuple."""
    if len(tape.steps) > MAX_GENERATED_STEPS:
        return _loop_runner(tape)
    root = _roots(tape)
    names = {}
    for i, s in enumerate(tape.inputs):
        names[s] = f"x{i}"
    env = {}
    defaults = []
    for j, (s, c) in enumerate(tape.consts.items()):
        names[s] = f"c{j}"
        env[f"C{j}"] = c[0]
        defaults.append(f"c{j}=C{j}")
    # steps read through aliases to the tensors they stand for
    steps = [C.Step(st.prim, tuple([root.get(i, i) for i in st.ins]), st.outs, st.stream,
                    st.multi)
             for st in tape.steps if st.prim.__class__ not in _ALIASES]
    outs = [root.get(o, o) for o in tape.outs]
    consts = {s: c[0] for s, c in tape.consts.items()}
    if tape.stream.is_gpu:
        steps = fuse_linear_relu(steps, tape.dtype, set(outs), consts)
        if not tape.shapeless:
            steps = fuse_norm_add(steps, tape.shape, tape.dtype, set(outs))
            steps = fuse_add_norm(steps, tape.shape, tape.dtype)
    if not tape.shapeless:  # a generated kernel holds the traced shapes
        steps = fuse(steps, tape.shape, tape.dtype, outs, consts, tape.stream)
        steps = fuse_sums(steps, tape.shape, tape.dtype)
    last = {}
    for n, st in enumerate(steps):
        for i in st.ins:
            last[i] = n
    keep = set(outs) | set(names)  # outputs, inputs and constants are never deleted
    used = set(last) | set(outs)
    lines = []
    bound = {}  # id(object) -> its name in the generated function (kernels, primitives)

    def bind(obj, prefix):
        name = bound.get(id(obj))
        if name is None:
            name = bound[id(obj)] = f"{prefix}{len(bound)}"
            env[name] = obj
        return name

    for n, st in enumerate(steps):
        args = ", ".join(names[i] for i in st.ins)
        f = _direct(KERNELS.get(st.prim.__class__))
        if f is not None:
            call = f"{bind(f, 'f')}({args})"
        else:
            k, p = bind(_kernel(st.prim.__class__), "k"), bind(st.prim, "p")
            call = f"{k}({p}, {args})" if args else f"{k}({p})"
        if not st.multi:
            o = st.outs[0]
            names[o] = f"t{o}"
            lines.append(f"t{o} = {call}")
        else:
            lines.append(f"r = {call}")
            for j, o in enumerate(st.outs):
                if o in used:
                    names[o] = f"t{o}"
                    lines.append(f"t{o} = r[{j}]")
        dead = sorted({i for i in st.ins if last[i] == n} - keep)
        if dead:
            lines.append("del " + ", ".join(names[s] for s in dead))
    ret = [names[o] for o in outs]
    if len(ret) == 1:
        lines.append(f"return {ret[0]}")
    else:
        lines.append(f"return ({', '.join(ret)}{',' if ret else ''})")
    params = ", ".join([f"x{i}" for i in range(len(tape.inputs))] + defaults)
    src = (f"def _factory({', '.join(env)}):\n"
           f"    def run({params}):\n"
           + "".join(f"        {ln}\n" for ln in lines)
           + "    return run\n")
    scope = {}
    exec(compile(src, "<ember.compile tape>", "exec"), scope)  # noqa: S102 - our own source
    run = scope["_factory"](**env)
    run.source = src
    run.steps = steps  # what runs: the tape's steps less aliases, elementwise regions fused
    return run


def _program(tape):
    """The steps as (kernel, prim, input slots, output slots, multi, alias) tuples."""
    prog = []
    for st in tape.steps:
        cls = st.prim.__class__
        prog.append((_kernel(cls), st.prim, st.ins, st.outs, st.multi, cls in _ALIASES))
    return prog


def _interpret(prog, vals):
    for k, p, ins, outs, multi, alias in prog:
        if alias:
            vals[outs[0]] = vals[ins[0]]
            continue
        r = k(p, *[vals[i] for i in ins])
        if not multi:
            vals[outs[0]] = r
        else:
            for o, t in zip(outs, r):
                vals[o] = t


def _loop_runner(tape):
    prog = _program(tape)
    inputs = tape.inputs
    consts = {s: c[0] for s, c in tape.consts.items()}
    outs = tape.outs
    single = len(outs) == 1

    def run(*xs):
        vals = dict(consts)
        vals.update(zip(inputs, xs))
        _interpret(prog, vals)
        return vals[outs[0]] if single else tuple([vals[o] for o in outs])
    run.steps = tape.steps
    return run


# -- shapes of a shapeless tape on new input shapes --------------------------------------------

def infer_shapes(tape, in_shapes):
    """slot -> shape when the tape's inputs have shapes `in_shapes`, found by running the
    kernels on meta tensors (no data); None when a kernel cannot run there (it reads
    values, or the shapes do not fit) or gives another dtype than traced."""
    dtype = tape.dtype
    vals = {s: torch.empty(sh, dtype=TORCH[dtype[s]], device="meta")
            for s, sh in zip(tape.inputs, in_shapes)}
    for s, c in tape.consts.items():
        vals[s] = c[0].to("meta")
    try:
        with torch.inference_mode():
            _interpret(_program(tape), vals)
    except Exception:  # noqa: BLE001 - any failure means: trace again for these shapes
        return None
    shapes = {}
    for s, t in vals.items():
        if t.dtype is not TORCH[dtype[s]]:
            return None
        shapes[s] = tuple(t.shape)
    return shapes


# -- constants ----------------------------------------------------------------------------------

SMALL_CONSTANT = 64  # elements: constants up to this size merge by value


def const_key(t):
    """A hashable key of a small tensor's shape and bytes (None for a large one)."""
    if t.numel() > SMALL_CONSTANT:
        return None
    raw = t.detach().reshape(-1).contiguous()
    if raw.dtype.is_complex:
        raw = torch.view_as_real(raw).reshape(-1)
    return (tuple(t.shape), str(t.dtype), tuple(raw.view(torch.uint8).tolist())
            if raw.numel() else ())
