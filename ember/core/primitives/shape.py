"""Shape primitives: views and rearrangements of data.

Each knows its output shape (`out_shape`, from the input shapes) so that transform rules
can rebuild it through `ember.core.ops.shape.apply`. Multi-output primitives set `multi`.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import array, node
from ember.core.device import _CURRENT
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front

_SHAPE = []


def _S():
    if not _SHAPE:  # (ember.core.ops imports this module: bound at first use)
        from ember.core.ops import shape
        _SHAPE.append(shape)
    return _SHAPE[0]


def _apply(prim, *xs):
    return _S().apply(prim, *xs)


def _all_front(inputs, axes):
    """Inputs with the batch axis first; unbatched ones broadcast along a new first axis."""
    n = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
    out = []
    for x, ax in zip(inputs, axes):
        if ax is None:
            x = O.broadcast_to(O.reshape(x, (1,) + x.shape), (n,) + x.shape)
        else:
            x = to_front(x, ax)
        out.append(x)
    return out


def _full_tangents(primals, tangents, argnums):
    ts = [None] * len(primals)
    for i, t in zip(argnums, tangents):
        ts[i] = t
    return [O.zeros_like(x) if t is None else t for x, t in zip(primals, ts)]


class ShapePrimitive(Primitive):
    __slots__ = ()
    multi = False


class SplitHeads(ShapePrimitive):
    """(B, L, h * d) -> (B, h, L, d): attention's `unflatten(x, -1, (h, -1)).transpose(0, 2,
    1, 3)` as one node (a view in torch); its cotangent is `MergeHeads`."""

    __slots__ = ("heads",)
    name = "SplitHeads"

    def __init__(self, heads):
        self.heads = heads

    def params(self):
        return (self.heads,)

    def out_shape(self, shapes):
        b, n, f = shapes[0]
        return (b, self.heads, n, f // self.heads)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [merge_heads(cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [split_heads(tangents[0], self.heads)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        x = O.unflatten(x, -1, (self.heads, -1))
        return [O.transpose(x, (0, 1, 3, 2, 4))], [0]


class MergeHeads(ShapePrimitive):
    """(B, h, L, d) -> (B, L, h * d), the inverse of `SplitHeads`."""

    __slots__ = ()
    name = "MergeHeads"

    def out_shape(self, shapes):
        b, h, n, d = shapes[0]
        return (b, n, h * d)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [split_heads(cotangents[0], primals[0].shape[1])]

    def jvp(self, primals, tangents, argnums):
        return [merge_heads(tangents[0])]

    def vmap(self, inputs, axes):
        x = O.transpose(to_front(inputs[0], axes[0]), (0, 1, 3, 2, 4))
        return [O.flatten(x, -2, -1)], [0]


_MERGE = MergeHeads()


def _on_current(x, ndim):
    return type(x) is array and len(x._shape) == ndim and _CURRENT \
        and x._stream is _CURRENT[-1]


def split_heads(x, heads):
    """`unflatten(x, -1, (heads, -1)).transpose(0, 2, 1, 3)`: one SplitHeads node for x
    (B, L, heads * d) on the current stream, the two ops (and their errors) otherwise."""
    if _on_current(x, 3) and x._shape[2] % heads == 0:
        b, n, f = x._shape
        return node((b, heads, n, f // heads), x._dtype, SplitHeads(heads), (x,), x._stream)
    return O.transpose(O.unflatten(x, -1, (heads, -1)), (0, 2, 1, 3))


def merge_heads(x):
    """`x.transpose(0, 2, 1, 3).flatten(-2, -1)`: one MergeHeads node for x (B, h, L, d)
    on the current stream, the two ops otherwise."""
    if _on_current(x, 4):
        b, h, n, d = x._shape
        return node((b, n, h * d), x._dtype, _MERGE, (x,), x._stream)
    return O.flatten(O.transpose(x, (0, 2, 1, 3)), -2, -1)


class Reshape(ShapePrimitive):
    __slots__ = ("shape",)
    name = "Reshape"

    def __init__(self, shape):
        self.shape = shape

    def params(self):
        return (self.shape,)

    def out_shape(self, shapes):
        return self.shape

    def vjp(self, primals, cotangents, argnums, outputs):
        S = _S()  # (checked already: no validation)
        return [S._reshaped(cotangents[0], primals[0].shape, S.resolve(None))]

    def jvp(self, primals, tangents, argnums):
        return [O.reshape(tangents[0], self.shape)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [O.reshape(x, (x.shape[0],) + self.shape)], [0]


class Broadcast(ShapePrimitive):
    __slots__ = ("shape",)
    name = "Broadcast"

    def __init__(self, shape):
        self.shape = shape

    def params(self):
        return (self.shape,)

    def out_shape(self, shapes):
        return self.shape

    def vjp(self, primals, cotangents, argnums, outputs):
        from ember.core.primitives.elementwise import unbroadcast
        return [unbroadcast(cotangents[0], primals[0].shape)]

    def jvp(self, primals, tangents, argnums):
        return [O.broadcast_to(tangents[0], self.shape)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        core = x.ndim - 1
        pad = len(self.shape) - core
        x = O.reshape(x, (x.shape[0],) + (1,) * pad + x.shape[1:])
        return [O.broadcast_to(x, (x.shape[0],) + self.shape)], [0]


class Transpose(ShapePrimitive):
    __slots__ = ("axes",)
    name = "Transpose"

    def __init__(self, axes):
        self.axes = axes

    def params(self):
        return (self.axes,)

    def out_shape(self, shapes):
        return tuple(shapes[0][i] for i in self.axes)

    def vjp(self, primals, cotangents, argnums, outputs):
        inv = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inv[a] = i
        S = _S()
        return [S._transposed(cotangents[0], tuple(inv), S.resolve(None))]

    def jvp(self, primals, tangents, argnums):
        return [O.transpose(tangents[0], self.axes)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [O.transpose(x, [0] + [a + 1 for a in self.axes])], [0]


class Concatenate(ShapePrimitive):
    """Inputs (one dtype, equal shapes but along `axis`) joined along `axis`."""

    __slots__ = ("axis",)
    name = "Concatenate"

    def __init__(self, axis):
        self.axis = axis

    def params(self):
        return (self.axis,)

    def out_shape(self, shapes):
        ax = self.axis
        return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]

    def vjp(self, primals, cotangents, argnums, outputs):
        ax = self.axis
        bounds, start = [], 0
        for x in primals:
            bounds.append((start, start + x.shape[ax]))
            start += x.shape[ax]
        parts = _apply(Split(ax, tuple(bounds)), cotangents[0])
        return [parts[i] for i in argnums]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, *_full_tangents(primals, tangents, argnums))]

    def vmap(self, inputs, axes):
        return [_apply(Concatenate(self.axis + 1), *_all_front(inputs, axes))], [0]


class Stack(ShapePrimitive):
    """Inputs (one dtype and shape) stacked along a new axis `axis`."""

    __slots__ = ("axis",)
    name = "Stack"

    def __init__(self, axis):
        self.axis = axis

    def params(self):
        return (self.axis,)

    def out_shape(self, shapes):
        return shapes[0][:self.axis] + (len(shapes),) + shapes[0][self.axis:]

    def vjp(self, primals, cotangents, argnums, outputs):
        parts = _apply(Unstack(self.axis), cotangents[0])
        return [parts[i] for i in argnums]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, *_full_tangents(primals, tangents, argnums))]

    def vmap(self, inputs, axes):
        return [_apply(Stack(self.axis + 1), *_all_front(inputs, axes))], [0]


class Split(ShapePrimitive):
    """Slices [start, stop) of the input along `axis`, one output per bound (they may
    overlap or be empty)."""

    __slots__ = ("axis", "bounds")
    name = "Split"
    multi = True

    def __init__(self, axis, bounds):
        self.axis, self.bounds = axis, bounds

    def params(self):
        return (self.axis, self.bounds)

    def out_shape(self, shapes):
        s, ax = shapes[0], self.axis
        return [s[:ax] + (b - a,) + s[ax + 1:] for a, b in self.bounds]

    def vjp(self, primals, cotangents, argnums, outputs):
        x, ax = primals[0], self.axis
        n = x.shape[ax]
        stops = [0] + [b for _, b in self.bounds]
        if stops[-1] == n and all(a == stops[i] for i, (a, _) in enumerate(self.bounds)):
            return [_apply(Concatenate(ax), *cotangents) if len(cotangents) > 1
                    else cotangents[0]]
        # overlapping or partial pieces: each one's cotangent padded back into place
        total = None
        for (a, b), c in zip(self.bounds, cotangents):
            if a == b:
                continue
            widths = [(0, 0)] * x.ndim
            widths[ax] = (a, n - b)
            c = _apply(Pad(tuple(widths), "constant", 0), c)
            total = c if total is None else O.add(total, c)
        return [O.zeros_like(x) if total is None else total]

    def jvp(self, primals, tangents, argnums):
        return _apply(self, tangents[0])

    def vmap(self, inputs, axes):
        outs = _apply(Split(self.axis + 1, self.bounds), to_front(inputs[0], axes[0]))
        return outs, [0] * len(outs)


class Unstack(ShapePrimitive):
    """Every index along `axis`, that axis removed."""

    __slots__ = ("axis",)
    name = "Unstack"
    multi = True

    def __init__(self, axis):
        self.axis = axis

    def params(self):
        return (self.axis,)

    def out_shape(self, shapes):
        s, ax = shapes[0], self.axis
        return [s[:ax] + s[ax + 1:]] * s[ax]

    def vjp(self, primals, cotangents, argnums, outputs):
        return [_apply(Stack(self.axis), *cotangents)]

    def jvp(self, primals, tangents, argnums):
        return _apply(self, tangents[0])

    def vmap(self, inputs, axes):
        outs = _apply(Unstack(self.axis + 1), to_front(inputs[0], axes[0]))
        return outs, [0] * len(outs)


class Flip(ShapePrimitive):
    __slots__ = ("axes",)
    name = "Flip"

    def __init__(self, axes):
        self.axes = axes

    def params(self):
        return (self.axes,)

    def out_shape(self, shapes):
        return shapes[0]

    def vjp(self, primals, cotangents, argnums, outputs):
        return [_apply(self, cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, tangents[0])]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [_apply(Flip(tuple(a + 1 for a in self.axes)), x)], [0]


class Roll(ShapePrimitive):
    """Roll by `shifts` along `axes` (distinct, shifts in [1, size)); axes None: roll the
    flattened array by shifts[0]."""

    __slots__ = ("shifts", "axes")
    name = "Roll"

    def __init__(self, shifts, axes):
        self.shifts, self.axes = shifts, axes

    def params(self):
        return (self.shifts, self.axes)

    def out_shape(self, shapes):
        return shapes[0]

    def _inverse(self, shape):
        if self.axes is None:
            n = 1
            for d in shape:
                n *= d
            return Roll((n - self.shifts[0],), None)
        return Roll(tuple(shape[a] - s for s, a in zip(self.shifts, self.axes)), self.axes)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [_apply(self._inverse(primals[0].shape), cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, tangents[0])]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        if self.axes is None:
            flat = O.reshape(x, (x.shape[0], x.size // x.shape[0] if x.shape[0] else 0))
            y = _apply(Roll(self.shifts, (1,)), flat)
            return [O.reshape(y, x.shape)], [0]
        return [_apply(Roll(self.shifts, tuple(a + 1 for a in self.axes)), x)], [0]


class Pad(ShapePrimitive):
    """Pad with `widths` ((low, high) per axis) in `mode`.

    Constant mode pads with `value` (a Python number in the storage type) or, when
    `value` is None, with a 0-d second input. Its widths may be negative (cropping), which
    makes Pad(-w) the transpose of Pad(w). Other modes gather edge/mirrored values.
    """

    __slots__ = ("widths", "mode", "value")
    name = "Pad"

    def __init__(self, widths, mode, value=None):
        self.widths, self.mode, self.value = widths, mode, value

    def params(self):
        return (self.widths, self.mode, repr(self.value))

    def out_shape(self, shapes):
        return tuple(d + lo + hi for d, (lo, hi) in zip(shapes[0], self.widths))

    def _crop(self, g):
        return _apply(Pad(tuple((-lo, -hi) for lo, hi in self.widths), "constant", 0), g)

    def vjp(self, primals, cotangents, argnums, outputs):
        g = cotangents[0]
        out = []
        for i in argnums:
            if i == 1:  # the constant fills what the input does not cover
                out.append(O.subtract(O.sum(g), O.sum(self._crop(g))))
            elif self.mode == "constant":
                out.append(self._crop(g))
            else:
                out.append(_apply(PadAdjoint(self.widths, self.mode, primals[0].shape), g))
        return out

    def jvp(self, primals, tangents, argnums):
        ts = _full_tangents(primals, tangents, argnums)
        if self.value is not None and self.mode == "constant":
            return [_apply(Pad(self.widths, "constant", 0), ts[0])]
        return [_apply(self, *ts)]

    def vmap(self, inputs, axes):
        widths = ((0, 0),) + self.widths
        if len(inputs) == 1 or axes[1] is None:
            return [_apply(Pad(widths, self.mode, self.value), to_front(inputs[0], axes[0]),
                           *inputs[1:])], [0]
        # a constant per batch element: pad with zeros, then fill the border
        x, c = _all_front(inputs, axes)
        y = _apply(Pad(widths, "constant", 0), x)
        inside = _apply(Pad(self.widths, "constant", False), O.ones(x.shape[1:], D.bool_))
        c = O.reshape(c, (c.shape[0],) + (1,) * (y.ndim - 1))
        return [O.where(inside, y, c)], [0]


class PadAdjoint(ShapePrimitive):
    """The transpose of a non-constant Pad: sums each padded value back onto the input
    element it was copied from; `shape` is that input's shape."""

    __slots__ = ("widths", "mode", "shape")
    name = "PadAdjoint"

    def __init__(self, widths, mode, shape):
        self.widths, self.mode, self.shape = widths, mode, shape

    def params(self):
        return (self.widths, self.mode, self.shape)

    def out_shape(self, shapes):
        return self.shape

    def vjp(self, primals, cotangents, argnums, outputs):
        return [_apply(Pad(self.widths, self.mode), cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, tangents[0])]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        prim = PadAdjoint(((0, 0),) + self.widths, self.mode, (x.shape[0],) + self.shape)
        return [_apply(prim, x)], [0]


class Diagonal(ShapePrimitive):
    """The `offset` diagonal of the planes (axis1, axis2), as a new last axis."""

    __slots__ = ("offset", "axis1", "axis2")
    name = "Diagonal"

    def __init__(self, offset, axis1, axis2):
        self.offset, self.axis1, self.axis2 = offset, axis1, axis2

    def params(self):
        return (self.offset, self.axis1, self.axis2)

    def out_shape(self, shapes):
        s = shapes[0]
        n1, n2, k = s[self.axis1], s[self.axis2], self.offset
        n = max(0, min(n1, n2 - k) if k >= 0 else min(n1 + k, n2))
        return tuple(d for i, d in enumerate(s) if i not in (self.axis1, self.axis2)) + (n,)

    def vjp(self, primals, cotangents, argnums, outputs):
        prim = DiagonalAdjoint(self.offset, self.axis1, self.axis2, primals[0].shape)
        return [_apply(prim, cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, tangents[0])]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [_apply(Diagonal(self.offset, self.axis1 + 1, self.axis2 + 1), x)], [0]


class DiagonalAdjoint(ShapePrimitive):
    """Zeros of `shape` with the input written on the diagonal that Diagonal reads."""

    __slots__ = ("offset", "axis1", "axis2", "shape")
    name = "DiagonalAdjoint"

    def __init__(self, offset, axis1, axis2, shape):
        self.offset, self.axis1, self.axis2, self.shape = offset, axis1, axis2, shape

    def params(self):
        return (self.offset, self.axis1, self.axis2, self.shape)

    def out_shape(self, shapes):
        return self.shape

    def vjp(self, primals, cotangents, argnums, outputs):
        return [_apply(Diagonal(self.offset, self.axis1, self.axis2), cotangents[0])]

    def jvp(self, primals, tangents, argnums):
        return [_apply(self, tangents[0])]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        prim = DiagonalAdjoint(self.offset, self.axis1 + 1, self.axis2 + 1,
                               (x.shape[0],) + self.shape)
        return [_apply(prim, x)], [0]


class Contiguous(ShapePrimitive):
    __slots__ = ("allow_col_major",)
    name = "Contiguous"

    def __init__(self, allow_col_major):
        self.allow_col_major = allow_col_major

    def params(self):
        return (self.allow_col_major,)

    def out_shape(self, shapes):
        return shapes[0]

    def vjp(self, primals, cotangents, argnums, outputs):
        return [cotangents[0]]

    def jvp(self, primals, tangents, argnums):
        return [tangents[0]]

    def vmap(self, inputs, axes):
        return [_apply(self, inputs[0])], [axes[0]]
