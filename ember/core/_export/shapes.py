"""Output shapes of a shapeless import's primitives at the call's input shapes.

Upstream asks every primitive of a shapeless import for its output shapes on every call
(at the traced shapes too): primitives without that rule (slices, splits, pads, strided
views) refuse, the shape ops it records apart (expand_dims, squeeze, flatten) follow the
new shapes, a reshape keeps the shape it was given and `broadcast_to` its target. Ember
records all of those as one Reshape of the traced shapes, so the op is told back from
them: 1s inserted is an expansion, 1s removed a squeeze, a run of axes merged (or a
result of one axis) a flatten; any other reshape keeps its traced result and checks the
size. Other primitives keep their kernels' shape rules (run on meta tensors).
"""

import math

from ember.core._backend import export as BX
from ember.core._backend.kernels import KERNELS
from ember.core.ops._base import broadcast_shapes
from ember.core.primitives import elementwise as E
from ember.core.primitives import index as I
from ember.core.primitives import shape as S
from ember.core.primitives.fast import RoPE
from ember.core.primitives.fft import FFT
from ember.core.primitives.sort import TopK
from ember.core.primitives.strided import AsStrided
from ember.core.transforms.graph import fmt_shape

__all__ = ["output_shapes"]


def _refused(name):
    return ValueError(f"[Primitive::output_shapes] {name} cannot infer output shapes.")


# -- Reshape: the op it stands for --------------------------------------------------------

def _inserted(short, long):
    """Axes of `long` that are 1s inserted into `short`, or None."""
    axes, i = [], 0
    for j, d in enumerate(long):
        if i < len(short) and short[i] == d:
            i += 1
        elif d == 1:
            axes.append(j)
        else:
            return None
    return axes if i == len(short) else None


def _reshape_kind(src, dst):
    if len(dst) == 1 and src:
        return ("flatten", 0, len(src) - 1)
    if len(dst) > len(src):
        axes = _inserted(src, dst)
        if axes is not None:
            return ("expand", axes)
    elif len(dst) < len(src):
        axes = _inserted(dst, src)
        if axes is not None:
            return ("squeeze", axes)
        st = 0
        while st < len(dst) and src[st] == dst[st]:
            st += 1
        en = len(src) - (len(dst) - st)  # the last merged axis
        if src[en + 1:] == dst[st + 1:] and math.prod(src[st:en + 1]) == dst[st]:
            return ("flatten", st, en)
    return ("fixed",)


def _reshape(kind, shape, out):
    if kind[0] == "flatten":
        _, st, en = kind
        return shape[:st] + (math.prod(shape[st:en + 1]),) + shape[en + 1:]
    if kind[0] == "expand":
        res = list(shape)
        for ax in kind[1]:
            res.insert(ax, 1)
        return tuple(res)
    if kind[0] == "squeeze":
        for ax in kind[1]:
            if shape[ax] != 1:  # (upstream drops the axis whatever its size)
                raise ValueError(f"[squeeze] Cannot squeeze axis {ax} with size {shape[ax]} "
                                 "which is not equal to 1.")
        return tuple(d for i, d in enumerate(shape) if i not in kind[1])
    if math.prod(shape) != math.prod(out):
        raise ValueError(f"[reshape] Cannot reshape array of size {math.prod(shape)} into shape "
                         f"{fmt_shape(out)}.")
    return out


# -- rules -----------------------------------------------------------------------------
# A rule takes (primitive, input shapes, traced input shapes, traced output shapes) and
# gives (output shapes, the primitive to replay, the input to slice first or None).

def _rule_reshape(p, shapes, traced, outs):
    res = _reshape(_reshape_kind(traced[0], outs[0]), shapes[0], outs[0])
    return [res], (p if res == p.shape else S.Reshape(res)), None  # (its kernel reads it)


def _rule_broadcast(p, shapes, traced, outs):
    res = broadcast_shapes(shapes[0], p.shape)
    if res != p.shape:
        raise ValueError("[Broadcast] Unable to infer broadcast shape")
    return [res], p, None


def _fixed_sizes(shape, sizes, op):
    """Upstream gathers slices of the traced `sizes` from the start of each axis: the
    key taking them from `shape` (None when it is all of it)."""
    if any(n < t for n, t in zip(shape, sizes)):  # (upstream reads past the end there)
        raise ValueError(f"[{op}] Slice sizes {fmt_shape(sizes)} do not fit in an array of "
                         f"shape {fmt_shape(shape)}.")
    if tuple(shape) == tuple(sizes):
        return None
    return tuple((0, t, 1) for t in sizes)


def _rule_slice(p, shapes, traced, outs):
    key, sh = p.key, shapes[0]
    if all(k is None or k == I.FULL for k in key):  # new axes only: an expand_dims
        res, ax = [], 0
        for k in key:
            if k is None:
                res.append(1)
            else:
                res.append(sh[ax])
                ax += 1
        return [tuple(res) + sh[ax:]], p, None
    if len(key) == 1 and type(key[0]) is int and not p.flip:  # x[i]: a gather upstream
        k, rest = key[0], outs[0]
        if k >= sh[0]:
            raise ValueError(f"[gather] Slice sizes {fmt_shape((1,) + rest)} do not fit in "
                             f"an array of shape {fmt_shape(sh)}.")
        fixed = _fixed_sizes(sh[1:], rest, "gather")
        return [rest], (p if fixed is None else I.Slice((k,) + fixed, p.flip)), None
    raise _refused("Slice")


def _rule_gather(p, shapes, traced, outs):
    # the axes not indexed keep their traced sizes, as upstream's slice sizes
    sh, tr = shapes[0], traced[0]
    kept = [a for a in range(len(sh)) if a not in p.axes]
    fixed = _fixed_sizes([sh[a] for a in kept], [tr[a] for a in kept], "gather")
    idx = broadcast_shapes(*shapes[1:]) if len(shapes) > 1 else ()
    rest = [tr[a] for a in kept]
    out = tuple(rest[:p.pos]) + tuple(idx) + tuple(rest[p.pos:])
    if fixed is None:
        return [out], p, None
    key, it = [], iter(fixed)
    for a in range(len(sh)):
        key.append(I.FULL if a in p.axes else next(it))
    return [out], p, tuple(key)


def _rule_gather_axis(p, shapes, traced, outs):
    return [shapes[1]], p, None  # (the indices' shape; the kernel checks their values)


# Ember primitives whose upstream counterpart has no shape rule (a roll is upstream's
# split and concatenation, a top-k its partition and slice, rope on the CPU a graph
# holding slices)
_REFUSED = {S.Split: "Split", S.Roll: "Split", S.Pad: "Pad", AsStrided: "AsStrided",
            TopK: "Slice", RoPE: "Slice", FFT: "FFT"}
_RULES = {S.Reshape: _rule_reshape, S.Broadcast: _rule_broadcast, I.Slice: _rule_slice,
          I.Gather: _rule_gather, I.GatherAxis: _rule_gather_axis}


def output_shapes(p, shapes, dtypes, traced, outs, name):
    """(output shapes, primitive to replay, key to slice its first input with first or
    None) of `p` for inputs of `shapes` and `dtypes`; `traced` and `outs`: its traced
    input and output shapes; `name`: its name, for errors."""
    cls = type(p)
    rule = _RULES.get(cls)
    if rule is not None:
        return rule(p, shapes, traced, outs)
    refused = _REFUSED.get(cls)
    if refused is not None:
        raise _refused(refused)
    if isinstance(p, E.Unary):
        return [shapes[0]], p, None
    if isinstance(p, (E.Binary, E.Select)):
        return [broadcast_shapes(*shapes)], p, None
    res = BX.kernel_shapes(KERNELS[cls], p, shapes, dtypes)
    if res is None and list(shapes) == list(traced):
        return outs, p, None  # (a kernel that reads its inputs' values: the traced shapes)
    if res is None:
        raise ValueError(f"[import_function::call] The shapes of {name} cannot be computed "
                         "for new input shapes.")
    return res, p, None
