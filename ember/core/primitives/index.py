"""Indexing primitives: static slices, gathers and scatters over integer indices, dynamic
slices, and masked scatters.

Conventions shared with the kernels (`_backend/kernels_index.py`) and the ops
(`ops/index.py`):

- A basic `key` is a tuple of ints (select), (start, stop, step) triples with a positive
  step (a slice; (None, None, None) is the full one) and None (new axis); `tkey` is the
  same with Python slices, as torch indexes. `flip` names output dims (negative, counted
  from the end) reversed afterwards, which is how negative steps are done without
  negative strides.
- Gather/Scatter index `axes` of x with broadcast index arrays of shape B; the indexed
  dims are replaced by B inserted at position `pos` among the remaining dims.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.elementwise import unbroadcast
from ember.core.primitives.vmap import to_front


def _ix():
    from ember.core.ops import index
    return index


def _no_index_grad(op, argnums, first_index, mode="VJP"):
    if any(i >= first_index for i in argnums):
        raise ValueError(f"[{op}] Cannot calculate {mode} with respect to indices. Use "
                         "stop_gradient on indices to stop gradients from being computed.")


def _batched(x, ax, nb):
    """x with its batch axis first (broadcast to size nb when x is unbatched)."""
    if ax is None:
        return O.broadcast_to(O.reshape(x, (1,) + x.shape), (nb,) + x.shape)
    return to_front(x, ax)


def _batch_size(inputs, axes):
    for x, ax in zip(inputs, axes):
        if ax is not None:
            return x.shape[ax]


def _pad_after_batch(x, ndim):
    """Batched x (batch first) with 1-dims after the batch axis so it has `ndim` dims."""
    if x.ndim >= ndim:
        return x
    return O.reshape(x, x.shape[:1] + (1,) * (ndim - x.ndim) + x.shape[1:])


# -- static slices ---------------------------------------------------------------------

FULL = (None, None, None)


def torch_key(key):
    return tuple(slice(*k) if type(k) is tuple else k for k in key)


class Slice(Primitive):
    __slots__ = ("key", "flip", "tkey")
    name = "Slice"

    def __init__(self, key, flip):
        self.key, self.flip, self.tkey = key, flip, torch_key(key)

    def params(self):
        return (self.key, self.flip)

    def vjp(self, primals, cotangents, argnums, outputs):
        x = primals[0]
        return [_ix()._slice_update(O.zeros_like(x), cotangents[0], self.key, self.flip)]

    def jvp(self, primals, tangents, argnums):
        return [_ix()._slice(tangents[0], self.key, self.flip)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [_ix()._slice(x, (FULL,) + self.key, self.flip)], [0]


class SliceUpdate(Primitive):
    """x with x[key] (flipped) replaced by the update, which broadcasts to x[key]."""

    __slots__ = ("key", "flip", "tkey")
    name = "SliceUpdate"

    def __init__(self, key, flip):
        self.key, self.flip, self.tkey = key, flip, torch_key(key)

    def params(self):
        return (self.key, self.flip)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, u = primals
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                res.append(_ix()._slice_update(g, O.zeros((), g.dtype), self.key, self.flip))
            else:
                res.append(unbroadcast(_ix()._slice(g, self.key, self.flip), u.shape))
        return res

    def jvp(self, primals, tangents, argnums):
        x, u = primals
        tx = tangents[argnums.index(0)] if 0 in argnums else O.zeros_like(x)
        tu = tangents[argnums.index(1)] if 1 in argnums else O.zeros((), x.dtype)
        return [_ix()._slice_update(tx, tu, self.key, self.flip)]

    def vmap(self, inputs, axes):
        x, u = inputs
        nb = _batch_size(inputs, axes)
        x = _batched(x, axes[0], nb)
        if axes[1] is not None:
            rank = len(_ix()._key_shape(x.shape[1:], self.key))
            u = _pad_after_batch(to_front(u, axes[1]), rank + 1)
        return [_ix()._slice_update(x, u, (FULL,) + self.key, self.flip)], [0]


# -- gather and scatter over index arrays ---------------------------------------------

def _index_ndim(idx, iaxes):
    """Rank of the broadcast index shape of the unbatched problem."""
    return max((i.ndim - (ax is not None) for i, ax in zip(idx, iaxes)), default=0)


def _vmap_indices(x, bx, idx, iaxes, nb, axes, pos):
    """Batched gather/scatter arguments: (x batched first, indices, axes, pos, out axis)."""
    x = _batched(x, bx, nb)
    shifted = tuple(a + 1 for a in axes)
    if all(ax is None for ax in iaxes):
        return x, list(idx), shifted, pos + 1, 0
    nbd = _index_ndim(idx, iaxes)
    new = [O.reshape(O.arange(nb), (nb,) + (1,) * nbd)]
    for i, ax in zip(idx, iaxes):
        new.append(i if ax is None else _pad_after_batch(to_front(i, ax), nbd + 1))
    return x, new, (0,) + shifted, pos, pos


class Gather(Primitive):
    __slots__ = ("axes", "pos")
    name = "Gather"

    def __init__(self, axes, pos):
        self.axes, self.pos = axes, pos

    def params(self):
        return (self.axes, self.pos)

    def vjp(self, primals, cotangents, argnums, outputs):
        _no_index_grad("gather", argnums, 1)
        x, idx = primals[0], primals[1:]
        return [_ix()._scatter(O.zeros_like(x), cotangents[0], idx, self.axes, self.pos, "add")]

    def jvp(self, primals, tangents, argnums):
        _no_index_grad("gather", argnums, 1, "JVP")
        return [_ix()._gather(tangents[0], primals[1:], self.axes, self.pos)]

    def vmap(self, inputs, axes):
        nb = _batch_size(inputs, axes)
        x, idx, ax, pos, out = _vmap_indices(inputs[0], axes[0], inputs[1:], axes[1:], nb,
                                             self.axes, self.pos)
        return [_ix()._gather(x, idx, ax, pos)], [out]


_REDUCE_NAMES = {"prod": "scatter_prod"}


class Scatter(Primitive):
    """x with updates written (mode None) or combined (add, prod, max, min) at the
    gathered positions; the update broadcasts to the gather's output shape."""

    __slots__ = ("axes", "pos", "mode")
    name = "Scatter"

    def __init__(self, axes, pos, mode):
        self.axes, self.pos, self.mode = axes, pos, mode

    def params(self):
        return (self.axes, self.pos, self.mode)

    def vjp(self, primals, cotangents, argnums, outputs):
        _no_index_grad("scatter", argnums, 2)
        if self.mode == "prod":
            raise RuntimeError("[scatter] VJP not implemented for scatter_prod")
        ix = _ix()
        x, u, idx = primals[0], primals[1], primals[2:]
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                if self.mode is None:
                    dx = ix._scatter(g, O.zeros((), g.dtype), idx, self.axes, self.pos, None)
                elif self.mode == "add":
                    dx = g
                else:
                    dx = O.multiply(g, O.astype(O.equal(x, outputs[0]), g.dtype))
                res.append(dx)
            else:
                du = ix._gather(g, idx, self.axes, self.pos)
                if self.mode in ("max", "min"):
                    hit = O.equal(u, ix._gather(outputs[0], idx, self.axes, self.pos))
                    du = O.multiply(du, O.astype(hit, du.dtype))
                res.append(unbroadcast(du, u.shape))
        return res

    def jvp(self, primals, tangents, argnums):
        if self.mode == "prod":
            raise RuntimeError("[scatter] JVP not implemented for scatter_prod")
        _no_index_grad("scatter", argnums, 2, "JVP")
        ix = _ix()
        x, u, idx = primals[0], primals[1], primals[2:]
        tx = tangents[argnums.index(0)] if 0 in argnums else O.zeros_like(x)
        tu = tangents[argnums.index(1)] if 1 in argnums else O.zeros((), x.dtype)
        if self.mode in (None, "add"):
            return [ix._scatter(tx, tu, idx, self.axes, self.pos, self.mode)]
        out = ix._scatter(x, u, idx, self.axes, self.pos, self.mode)
        tx = O.multiply(tx, O.astype(O.equal(x, out), tx.dtype))
        hit = O.equal(u, ix._gather(out, idx, self.axes, self.pos))
        tu = O.multiply(tu, O.astype(hit, tu.dtype))
        return [ix._scatter(tx, tu, idx, self.axes, self.pos, "add")]

    def vmap(self, inputs, axes):
        ix = _ix()
        nb = _batch_size(inputs, axes)
        x, u, idx = inputs[0], inputs[1], inputs[2:]
        rank = x.ndim - (axes[0] is not None) - len(self.axes) + _index_ndim(idx, axes[2:])
        x, idx, ax, pos, out = _vmap_indices(x, axes[0], idx, axes[2:], nb, self.axes,
                                             self.pos)
        if axes[1] is not None:
            u = _pad_after_batch(to_front(u, axes[1]), rank + 1)
            if out:
                u = O.moveaxis(u, 0, out)
        elif out:
            # an unbatched update broadcasts over the batch dim placed at `out`
            u = O.reshape(u, (1,) * (rank - u.ndim) + u.shape)
            u = O.reshape(u, u.shape[:out] + (1,) + u.shape[out:])
        return [ix._scatter(x, u, idx, ax, pos, self.mode)], [0]


# -- along an axis ---------------------------------------------------------------------

class GatherAxis(Primitive):
    """take_along_axis: indices broadcast against x in every dim but `axis`."""

    __slots__ = ("axis",)
    name = "GatherAxis"

    def __init__(self, axis):
        self.axis = axis

    def params(self):
        return (self.axis,)

    def vjp(self, primals, cotangents, argnums, outputs):
        _no_index_grad("gather_axis", argnums, 1)
        x, idx = primals
        g = cotangents[0]
        shape = list(g.shape)
        shape[self.axis] = x.shape[self.axis]
        dx = _ix()._scatter_axis(O.zeros(tuple(shape), g.dtype), idx, g, self.axis, "add")
        return [unbroadcast(dx, x.shape)]

    def jvp(self, primals, tangents, argnums):
        _no_index_grad("gather_axis", argnums, 1, "JVP")
        return [_ix()._gather_axis(tangents[0], primals[1], self.axis)]

    def vmap(self, inputs, axes):
        x, idx = (to_front(v, ax) if ax is not None else O.reshape(v, (1,) + v.shape)
                  for v, ax in zip(inputs, axes))
        return [_ix()._gather_axis(x, idx, self.axis + 1)], [0]


class ScatterAxis(Primitive):
    """put_along_axis (mode None) or its add form: indices and updates broadcast against
    each other and against x in every dim but `axis`."""

    __slots__ = ("axis", "mode")
    name = "ScatterAxis"

    def __init__(self, axis, mode):
        self.axis, self.mode = axis, mode

    def params(self):
        return (self.axis, self.mode)

    def vjp(self, primals, cotangents, argnums, outputs):
        _no_index_grad(self._op, [i for i in argnums if i == 1], 1)
        ix = _ix()
        x, idx, u = primals
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                res.append(g if self.mode == "add" else
                           ix._scatter_axis(g, idx, O.zeros((1,) * g.ndim, g.dtype),
                                            self.axis, None))
            else:
                full = ix._axis_update_shape(g.shape, idx.shape, u.shape, self.axis)
                du = ix._gather_axis(g, O.broadcast_to(idx, full), self.axis)
                res.append(unbroadcast(du, u.shape))
        return res

    @property
    def _op(self):
        return "scatter_axis" if self.mode is None else "scatter_add_axis"

    def jvp(self, primals, tangents, argnums):
        _no_index_grad(self._op, [i for i in argnums if i == 1], 1, "JVP")
        x, idx, u = primals
        tx = tangents[argnums.index(0)] if 0 in argnums else O.zeros_like(x)
        tu = tangents[argnums.index(2)] if 2 in argnums else O.zeros((1,) * u.ndim, x.dtype)
        return [_ix()._scatter_axis(tx, idx, tu, self.axis, self.mode)]

    def vmap(self, inputs, axes):
        nb = _batch_size(inputs, axes)
        x = _batched(inputs[0], axes[0], nb)
        idx, u = (to_front(v, ax) if ax is not None else O.reshape(v, (1,) + v.shape)
                  for v, ax in zip(inputs[1:], axes[1:]))
        return [_ix()._scatter_axis(x, idx, u, self.axis + 1, self.mode)], [0]


# -- dynamic slices ---------------------------------------------------------------------

class DynamicSlice(Primitive):
    """x[start:start+size] along `axes` (start from an array, clamped into range) and
    x[:size] along the other axes; `sizes` has one entry per dim of x."""

    __slots__ = ("axes", "sizes")
    name = "DynamicSlice"

    def __init__(self, axes, sizes):
        self.axes, self.sizes = axes, sizes

    def params(self):
        return (self.axes, self.sizes)

    def vjp(self, primals, cotangents, argnums, outputs):
        if 1 in argnums:
            raise ValueError("[DynamicSlice::vjp] Not supported for start indices.")
        x, start = primals
        return [_ix()._dynamic_slice_update(O.zeros_like(x), cotangents[0], start, self.axes,
                                            self.sizes)]

    def jvp(self, primals, tangents, argnums):
        return [_ix()._dynamic_slice(tangents[0], primals[1], self.axes, self.sizes)]

    def vmap(self, inputs, axes):
        x, start = inputs
        if axes[1] is None:
            x = to_front(x, axes[0])
            return [_ix()._dynamic_slice(x, start, tuple(a + 1 for a in self.axes),
                                         (x.shape[0],) + self.sizes)], [0]
        nb = start.shape[axes[1]]
        x = _batched(x, axes[0], nb)
        sub, idx, gaxes = _dynamic_indices(x, to_front(start, axes[1]), self.axes, self.sizes)
        y = _ix()._gather(sub, idx, gaxes, 0)
        return [O.transpose(y, _gathered_order(x.ndim, self.axes))], [0]


class DynamicSliceUpdate(Primitive):
    """x with the slice DynamicSlice(axes, sizes) would read replaced by the update
    (broadcast to `sizes`)."""

    __slots__ = ("axes", "sizes")
    name = "DynamicSliceUpdate"

    def __init__(self, axes, sizes):
        self.axes, self.sizes = axes, sizes

    def params(self):
        return (self.axes, self.sizes)

    def vjp(self, primals, cotangents, argnums, outputs):
        if 2 in argnums:
            raise ValueError("[DynamicSliceUpdate::vjp] Not supported for start indices")
        ix = _ix()
        x, u, start = primals
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                res.append(ix._dynamic_slice_update(g, O.zeros((), g.dtype), start, self.axes,
                                                    self.sizes))
            else:
                du = ix._dynamic_slice(g, start, self.axes, self.sizes)
                res.append(unbroadcast(du, u.shape))
        return res

    def jvp(self, primals, tangents, argnums):
        if 2 in argnums:
            raise ValueError("[DynamicSliceUpdate::jvp] Not supported for start indices")
        x, u, start = primals
        tx = tangents[argnums.index(0)] if 0 in argnums else O.zeros_like(x)
        tu = tangents[argnums.index(1)] if 1 in argnums else O.zeros((), x.dtype)
        return [_ix()._dynamic_slice_update(tx, tu, start, self.axes, self.sizes)]

    def vmap(self, inputs, axes):
        ix = _ix()
        x, u, start = inputs
        nb = _batch_size(inputs, axes)
        x = _batched(x, axes[0], nb)
        if axes[1] is not None:
            u = _pad_after_batch(to_front(u, axes[1]), len(self.sizes) + 1)
        else:
            u = O.reshape(u, (1,) * (len(self.sizes) + 1 - u.ndim) + u.shape)
        if axes[2] is None:
            return [ix._dynamic_slice_update(x, u, start, tuple(a + 1 for a in self.axes),
                                             (nb,) + self.sizes)], [0]
        # per-example starts: a scatter into the statically sliced part of x
        sub, idx, gaxes = _dynamic_indices(x, to_front(start, axes[2]), self.axes, self.sizes)
        order = _gathered_order(x.ndim, self.axes)
        inv = [0] * len(order)
        for i, o in enumerate(order):
            inv[o] = i
        u = O.transpose(O.broadcast_to(u, (nb,) + self.sizes), inv)
        new = ix._scatter(sub, u, idx, gaxes, 0, None)
        key = (FULL,) + tuple(FULL if d in self.axes else (0, s, 1)
                              for d, s in enumerate(self.sizes))
        return [ix._slice_update(x, new, key, ())], [0]


def _dynamic_indices(x, start, axes, sizes):
    """For batched x (batch first) and per-example starts (nb, k): the statically sliced
    x, the gather indices and axes reading each example's dynamic slice."""
    ix = _ix()
    nb = x.shape[0]
    key = (FULL,) + tuple(FULL if d in axes else (0, s, 1) for d, s in enumerate(sizes))
    sub = ix._slice(x, key, ())
    start = O.reshape(start, (nb, len(axes)))
    k = len(axes)
    idx = [O.reshape(O.arange(nb), (nb,) + (1,) * k)]
    for j, ax in enumerate(axes):
        n, sz = x.shape[ax + 1], sizes[ax]
        st = O.astype(ix._slice(start, (FULL, j), ()), D.int64)
        st = O.minimum(O.maximum(st, 0), max(n - sz, 0))
        shape = (1,) * (j + 1) + (sz,) + (1,) * (k - 1 - j)
        idx.append(O.add(O.reshape(st, (nb,) + (1,) * k),
                         O.reshape(O.arange(sz, dtype=D.int64), shape)))
    return sub, idx, (0,) + tuple(a + 1 for a in axes)


def _gathered_order(ndim, axes):
    """The transpose taking (batch, sliced axes..., other axes...) back to dim order."""
    rest = [d for d in range(ndim - 1) if d not in axes]
    src = [None] + list(axes) + rest  # source dim of each gathered dim
    order = [0]
    for d in range(ndim - 1):
        order.append(src.index(d))
    return order


# -- boolean masks ---------------------------------------------------------------------

_MASK_VJP = ("[masked_scatter] Cannot calculate VJP with respect to mask. Use stop_gradient "
             "on mask to stop gradients from being computed.")


class MaskedScatter(Primitive):
    """x with the positions under `mask` (a prefix of x's shape) filled, in order, with the
    rows of src (shape (rows,) + the rest of x's shape). `batched`: every input has a
    leading batch dim and each example fills from its own rows."""

    __slots__ = ("batched",)
    name = "MaskedScatter"

    def __init__(self, batched):
        self.batched = batched

    def params(self):
        return (self.batched,)

    def vjp(self, primals, cotangents, argnums, outputs):
        if 1 in argnums:
            raise ValueError(_MASK_VJP)
        ix = _ix()
        x, mask, src = primals
        g = cotangents[0]
        res = []
        for i in argnums:
            if i == 0:
                m = O.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim))
                res.append(O.where(m, O.zeros((), g.dtype), g))
            else:
                res.append(ix._masked_gather(g, mask, src.shape, self.batched))
        return res

    def jvp(self, primals, tangents, argnums):
        if 1 in argnums:
            raise ValueError("[masked_scatter] invalid arg index in JVP")
        x, mask, src = primals
        tx = tangents[argnums.index(0)] if 0 in argnums else O.zeros_like(x)
        ts = tangents[argnums.index(2)] if 2 in argnums else O.zeros_like(src)
        return [_ix()._masked_scatter(tx, mask, ts, self.batched)]

    def vmap(self, inputs, axes):
        if self.batched:
            raise ValueError("[masked_scatter] Nested vmap is not supported.")
        ix = _ix()
        x, mask, src = inputs
        nb = _batch_size(inputs, axes)
        if axes[1] is None:
            # the mask is shared: put the batch dim right after the masked dims
            k = mask.ndim
            x = O.moveaxis(_batched(x, axes[0], nb), 0, k)
            src = O.moveaxis(_batched(src, axes[2], nb), 0, 1)
            return [ix._masked_scatter(x, mask, src, False)], [k]
        x = _batched(x, axes[0], nb)
        mask = to_front(mask, axes[1])
        src = _batched(src, axes[2], nb)
        return [ix._masked_scatter(x, mask, src, True)], [0]


class MaskedGather(Primitive):
    """The transpose of MaskedScatter in its source: the rows of g under the mask, in
    order, into an array of shape `shape` (zeros past the masked count)."""

    __slots__ = ("shape", "batched")
    name = "MaskedGather"

    def __init__(self, shape, batched):
        self.shape, self.batched = shape, batched

    def params(self):
        return (self.shape, self.batched)

    def vjp(self, primals, cotangents, argnums, outputs):
        if 1 in argnums:
            raise ValueError(_MASK_VJP)
        g, mask = primals
        return [_ix()._masked_scatter(O.zeros_like(g), mask, cotangents[0], self.batched)]

    def jvp(self, primals, tangents, argnums):
        return [_ix()._masked_gather(tangents[0], primals[1], self.shape, self.batched)]

    def vmap(self, inputs, axes):
        if self.batched:
            raise ValueError("[masked_scatter] Nested vmap is not supported.")
        g, mask = inputs
        nb = _batch_size(inputs, axes)
        g = _batched(g, axes[0], nb)
        mask = _batched(mask, axes[1], nb)
        return [_ix()._masked_gather(g, mask, (nb,) + self.shape, True)], [0]
