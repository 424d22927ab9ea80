"""The primitives of `compile`, and the tape they run.

A compiled function is traced once on `Placeholder` nodes (shape and dtype, no data); the
part of the traced graph between the placeholders and the outputs becomes a `Tape`: input
slots, constant slots (tensors captured while tracing), and steps (primitive, input slots,
output slots, output shapes and dtypes), in an order where inputs come first. A call of the
compiled function is then one `Compiled` node whose kernel runs the whole tape.

The graph passes below rewrite a tape in place at trace time. Each is a function
`pass_(tape)`; `PASSES` lists them in the order they run. A later pass (fusing
elementwise regions into one generated kernel) slots in before `dead_code`.

The rules of `Compiled` (vjp, jvp, vmap) expand the tape back into ordinary lazy nodes over
the node's inputs and apply the usual transforms to them.
"""

import ember.core.ops as O
from ember.core.array import leaf, node, nodes
from ember.core.primitives import index as I
from ember.core.primitives import misc as M
from ember.core.primitives import shape as S
from ember.core.primitives.base import Primitive


def bounded(p):
    """The input axes whose traced size primitive `p` holds: the bounds of a slice
    (`x[1:]` keeps the stop of the traced shape, `x[-1]` the index it stands for), the
    axis of a split. A shapeless trace holds for new shapes only where these sizes stay
    (upstream refuses slices and splits for any new shape)."""
    if p.__class__ is S.Split:
        return (p.axis,)
    if p.__class__ is not I.Slice:
        return ()
    axes, ax = [], 0
    for k in p.key:
        if k is None:  # a new axis
            continue
        if k != (None, None, None):
            axes.append(ax)
        ax += 1
    return tuple(axes)


class Placeholder(Primitive):
    """What a compiled function is traced on: shape and dtype only. Its kernel raises (an
    array computed from it cannot be evaluated: the values are not known yet)."""

    __slots__ = ()
    name = "Placeholder"


PLACEHOLDER = Placeholder()


class Compiled(Primitive):
    """One call of a compiled function: inputs are the call's arrays, outputs the tape's.
    `shapes` maps every slot to its shape for the input shapes of this call (a shapeless
    tape runs on other shapes than it was traced on). `runner`, when set, executes the
    tape instead of `tape.run` (the CUDA-graph runner of a cached call, on the GPU)."""

    __slots__ = ("tape", "shapes", "runner")
    name = "Compiled"

    def __init__(self, tape, shapes, runner=None):
        self.tape, self.shapes, self.runner = tape, shapes, runner

    def params(self):
        return (id(self.tape), id(self.shapes))

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.transforms.autodiff import backward
        tracers = [O._identity(p) for p in primals]  # one per input, even a repeated one
        outs = self.tape.expand(tracers, self.shapes)
        grads = backward(outs, list(cotangents), [tracers[i] for i in argnums])
        return [O.zeros_like(primals[i]) if g is None else g for i, g in zip(argnums, grads)]

    def jvp(self, primals, tangents, argnums):
        from ember.core.transforms.autodiff import forward
        tracers = [O._identity(p) for p in primals]
        outs = self.tape.expand(tracers, self.shapes)
        return forward(outs, list(tangents), [tracers[i] for i in argnums])

    def vmap(self, inputs, axes):
        from ember.core.transforms.vmap import _replay
        traced = []
        for x, ax in zip(inputs, axes):
            if ax is None:
                traced.append(x)
            else:
                sh = x._shape
                traced.append(node(sh[:ax] + sh[ax + 1:], x._dtype, None, (), x._stream))
        outs = self.tape.expand(traced, self.shapes)
        mapped = _replay(outs, traced, list(inputs), list(axes))
        return [y for y, _ in mapped], [ax for _, ax in mapped]


# -- the tape ---------------------------------------------------------------------------

class Step:
    """One primitive application: outputs `outs` (slots) from inputs `ins` (slots); `multi`
    when the kernel returns a sequence (a multi-output primitive, even with one output)."""

    __slots__ = ("prim", "ins", "outs", "stream", "multi")

    def __init__(self, prim, ins, outs, stream, multi):
        self.prim, self.ins, self.outs, self.stream, self.multi = prim, ins, outs, stream, multi

    def __repr__(self):
        return f"{self.outs} = {self.prim!r}{self.ins}"


# (for the backend's rewrites of an executor's step list)

def readers(steps):
    """slot -> the positions of the steps that read it, in order."""
    out = {}
    for n, st in enumerate(steps):
        for i in st.ins:
            out.setdefault(i, []).append(n)
    return out


def replaced(steps, made, gone):
    """`steps` with the step at each position n of `made` replaced by made[n] and those at
    the positions `gone` left out (`steps` itself where nothing changes)."""
    if not made and not gone:
        return steps
    return [made.get(n, st) for n, st in enumerate(steps) if n not in gone]


class Tape:
    """A traced computation over slots (ints). `inputs`: the input slots in call order;
    `consts`: slot -> (tensor, dtype, stream, key), where `key` identifies a small
    constant's value (None for others); `steps`: in dependency order; `outs`: the
    output slots (a slot may repeat); `shape`/`dtype`: every slot's, as traced;
    `shapeless`: shape-changing no-ops must stay (the tape runs on other shapes); `run`:
    the executor, `run(*input_tensors) -> tensor or tuple`, built by the backend once the
    passes are done (the unit a CUDA graph captures); `graph`: the CUDA-graph runner of a
    cached tape on the GPU (its `status` and `reason` say whether it replays), or None."""

    __slots__ = ("inputs", "consts", "steps", "outs", "shape", "dtype", "shapeless", "stream",
                 "run", "graph", "_leaves")

    def __init__(self, inputs, consts, steps, outs, shape, dtype, shapeless, stream):
        self.inputs, self.consts, self.steps, self.outs = inputs, consts, steps, outs
        self.shape, self.dtype = shape, dtype
        self.shapeless, self.stream = shapeless, stream
        self.run = self.graph = None
        self._leaves = None

    def __repr__(self):
        lines = [f"Tape(inputs={self.inputs}, consts={list(self.consts)}, outs={self.outs})"]
        lines += [f"  {s!r}" for s in self.steps]
        return "\n".join(lines)

    def const_arrays(self):
        """slot -> evaluated array of each constant (made once)."""
        if self._leaves is None:
            self._leaves = {s: leaf(c[0], c[1], c[2]) for s, c in self.consts.items()}
        return self._leaves

    def expand(self, inputs, shapes=None):
        """The tape as ordinary lazy nodes over the arrays `inputs`: the output arrays.
        `shapes` (slot -> shape) replaces the traced shapes."""
        shapes = shapes or self.shape
        dtype = self.dtype
        vals = dict(zip(self.inputs, inputs))
        vals.update(self.const_arrays())
        for st in self.steps:
            ins = tuple([vals[i] for i in st.ins])
            outs = st.outs
            if not st.multi:
                o = outs[0]
                vals[o] = node(shapes[o], dtype[o], st.prim, ins, st.stream)
            else:
                res = nodes([shapes[o] for o in outs], [dtype[o] for o in outs], st.prim, ins,
                            st.stream)
                for o, r in zip(outs, res):
                    vals[o] = r
        return [vals[o] for o in self.outs]

    def used_inputs(self):
        """The positions (in `inputs`) of the input slots some step or output reads."""
        used = set(self.outs)
        for st in self.steps:
            used.update(st.ins)
        return [k for k, s in enumerate(self.inputs) if s in used]


# -- graph passes -----------------------------------------------------------------------

def _rename(tape, alias):
    """Point every use of a slot in `alias` at its replacement (steps already rewritten
    in order need no second look: replacements always come from earlier slots)."""
    if alias:
        tape.outs = [alias.get(o, o) for o in tape.outs]


def _is_noop(tape, st):
    cls = st.prim.__class__
    if cls is M.Identity:
        return True
    x = st.ins[0] if len(st.ins) == 1 and not st.multi else None
    if x is None:
        return False
    if cls is M.AsType:
        return tape.dtype[x] is st.prim.dtype
    if cls is S.Transpose:
        return tuple(st.prim.axes) == tuple(range(len(st.prim.axes)))
    if cls is S.Reshape or cls is S.Broadcast:
        # on a shapeless tape the same step may change the shape of other inputs
        return not tape.shapeless and tape.shape[x] == tape.shape[st.outs[0]]
    return False


def drop_noops(tape):
    """Remove steps whose output is their input: identities, casts to the same dtype,
    reshapes and broadcasts to the same shape, identity transposes. (StopGradient stays:
    the tape is also expanded for grad; the executor treats it as an alias.)"""
    alias = {}
    kept = []
    for st in tape.steps:
        if alias:
            st.ins = tuple([alias.get(i, i) for i in st.ins])
        if _is_noop(tape, st):
            alias[st.outs[0]] = st.ins[0]
        else:
            kept.append(st)
    tape.steps = kept
    _rename(tape, alias)


def merge_constants(tape):
    """Use one slot for constants holding the same tensor, or (small constants) the same
    dtype, shape and values."""
    alias = {}
    seen = {}
    for s, (t, dt, st, k) in list(tape.consts.items()):
        k = (id(t),) if k is None else (dt, st, k)
        first = seen.get(k)
        if first is None:
            seen[k] = s
        else:
            alias[s] = first
            del tape.consts[s]
    if alias:
        for st in tape.steps:
            st.ins = tuple([alias.get(i, i) for i in st.ins])
        _rename(tape, alias)


def _default_equivalence(cls, _base=Primitive.is_equivalent):
    return cls.is_equivalent is _base


def cse(tape):
    """Common-subexpression elimination: a step with the same primitive class, equal
    `params()`, the same input slots and stream as an earlier one reuses its outputs.
    Primitives with their own `is_equivalent` match only themselves."""
    alias = {}
    seen = {}
    kept = []
    for st in tape.steps:
        if alias:
            st.ins = tuple([alias.get(i, i) for i in st.ins])
        p = st.prim
        cls = p.__class__
        k = (cls, p.params() if _default_equivalence(cls) else id(p), st.ins, st.stream)
        try:
            first = seen.get(k)
        except TypeError:  # unhashable parameters: never merged
            kept.append(st)
            continue
        if first is None:
            seen[k] = st
            kept.append(st)
        else:
            for a, b in zip(st.outs, first.outs):
                alias[a] = b
    tape.steps = kept
    _rename(tape, alias)


def dead_code(tape):
    """Remove steps and constants no output depends on."""
    live = set(tape.outs)
    kept = []
    for st in reversed(tape.steps):
        if any(o in live for o in st.outs):
            kept.append(st)
            live.update(st.ins)
    kept.reverse()
    tape.steps = kept
    for s in [s for s in tape.consts if s not in live]:
        del tape.consts[s]


PASSES = [drop_noops, merge_constants, cse, dead_code]
