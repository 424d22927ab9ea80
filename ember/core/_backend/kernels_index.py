"""Kernels of the indexing primitives (see `primitives/index.py` for the conventions).

Kernels never write into their inputs: updates go into a clone. Static slices are torch
views.
"""

import math

import torch

from ember.core._backend.kernels import register
from ember.core._backend.memory import cpu_empty, cpu_out
from ember.core.primitives import index as P

_INDEX_DTYPES = (torch.int64, torch.int32)
_REDUCE = {"prod": "prod", "max": "amax", "min": "amin"}
_BOOL_REDUCE = {"prod": "amin", "max": "amax", "min": "amin"}


def _index(i):
    # torch reads uint8 index tensors as masks and rejects narrow ints
    return i if i.dtype in _INDEX_DTYPES else i.long()


def _flip(t, dims):
    dims = [d for d in dims if -d <= t.ndim]
    return t.flip(dims) if dims else t


@register(P.Slice)
def _slice(p, x):
    y = x[p.tkey]
    return y.flip(p.flip) if p.flip else y


@register(P.SliceUpdate)
def _slice_update(p, x, u):
    out = x.clone()
    out[p.tkey] = _flip(u, p.flip) if p.flip else u
    return out


def _perm(ndim, axes):
    return list(axes) + [d for d in range(ndim) if d not in axes]


_SELECT_MIN = 4096  # output elements from which index_select's bounds check pays


def _out_of_bounds(err):
    return "out of bounds" in str(err)


def _wrapped(idx, x, axes):
    """Indices taken modulo their axes' sizes (upstream reads whatever lies out of bounds,
    without raising: here every index lands somewhere in the array)."""
    return tuple(torch.remainder(i, x.shape[a]) if x.shape[a] else i
                 for i, a in zip(idx, axes))


@register(P.Gather)
def _gather(p, x, *idx):
    try:
        return _gather_in(p, x, idx)
    except (IndexError, RuntimeError) as err:  # (on the CPU; a GPU gather asserts)
        if not _out_of_bounds(err):
            raise
        return _gather_in(p, x, _wrapped([_index(i) for i in idx], x, p.axes))


def _gather_in(p, x, idx):
    idx = tuple(_index(i) for i in idx)
    axes, pos = p.axes, p.pos
    a0 = axes[0]
    if len(idx) == 1 and pos == a0 and x.device.type == "cpu":
        i = idx[0]
        n = i.numel()
        if n and n * (x.numel() // max(x.shape[a0], 1)) >= _SELECT_MIN and x.shape[a0]:
            # one index along one axis: index_select copies whole rows, where advanced
            # indexing computes an offset per element; indices out of [0, n) (negative
            # ones, and the error for bad ones) take the general path
            lo, hi = torch.aminmax(i)
            if lo.item() >= 0 and hi.item() < x.shape[a0]:
                out = cpu_out(x.shape[:a0] + (n,) + x.shape[a0 + 1:], x.dtype, x.device)
                y = torch.index_select(x, a0, i.reshape(-1), out=out)
                return y.reshape(x.shape[:a0] + i.shape + x.shape[a0 + 1:])
    if pos == a0 and axes == tuple(range(a0, a0 + len(axes))):
        # torch keeps adjacent index dims in place, as numpy does
        return x[(slice(None),) * a0 + idx]
    y = x.permute(_perm(x.ndim, axes))[idx]
    if pos:
        nb = y.ndim - (x.ndim - len(axes))
        y = y.movedim(tuple(range(nb)), tuple(range(pos, pos + nb)))
    return y


def _front_update(u, pos, nb, ndim):
    """The update in (index dims..., remaining dims...) layout."""
    if u.ndim < ndim:
        u = u.reshape((1,) * (ndim - u.ndim) + tuple(u.shape))
    if pos and nb:
        u = u.movedim(tuple(range(pos, pos + nb)), tuple(range(nb)))
    return u


def _in_range(idx, x, axes):
    """Where every index lies in [-n, n) of its axis: the updates that upstream's CPU
    scatter writes inside the array (the others land outside it)."""
    ok = None
    for i, a in zip(idx, axes):
        n = x.shape[a]
        o = (i >= -n) & (i < n)
        ok = o if ok is None else ok & o
    return ok


_PARALLEL_MIN = 32768  # updated elements from which ATen's CPU index_put_ uses threads


def _last_writes(idx, u, x, axes, rest):
    """The indices and updates of the last write to each position (and none out of
    range): upstream's CPU scatter writes in order, so the last repeated index wins, where
    threads would make any of them win."""
    ok = _in_range(idx, x, axes)
    lin = None
    for i, a in zip(idx, axes):
        n = x.shape[a]
        i = _wrap_negative(i, n).long()
        lin = i if lin is None else lin * n + i
    size = math.prod(x.shape[a] for a in axes)
    lin = torch.where(ok, lin, size).reshape(-1)
    last = torch.full((size + 1,), -1, dtype=torch.long)
    last.scatter_reduce_(0, lin, torch.arange(lin.numel()), "amax")
    last = last[:size]
    last = last[last >= 0]  # the position of the last write to each position written
    u = u.expand(tuple(ok.shape) + rest)
    return tuple(i.reshape(-1)[last] for i in idx), u.flatten(0, ok.ndim - 1)[last]


# rows added at one index array on CUDA (an embedding's gradient): a one-hot matrix
# product, deterministic as torch's index_put_ with accumulate is, in about 5 kernels
# instead of its sort's 14 (28 of a small GPT step's 208 went there); the one-hot
# matrix stays small
_ONEHOT_MAX = 1 << 22


def _by_matmul(view, idx):
    return (len(idx) == 1 and view.is_cuda and view.dtype is torch.float32
            and view.shape[0] * idx[0].numel() <= _ONEHOT_MAX)


def _add_rows(view, i, u):
    """view[i[k]] += u[k] for every k (repeats summed), as a float32 product."""
    v = view.shape[0]
    u = u.expand(tuple(i.shape) + tuple(view.shape[1:]))
    i = i.reshape(-1).long()
    if v:  # (negative indices wrapped in one kernel, where `_wrap_negative` takes three)
        i = torch.remainder(i, v)
    onehot = torch.zeros((v, i.numel()), dtype=view.dtype, device=view.device)
    onehot.scatter_(0, i.unsqueeze(0), 1.0)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # (exact float32 sums, not TF32)
    try:
        rows = u.reshape(i.numel(), math.prod(view.shape[1:]))
        if view.is_contiguous():
            view.view(v, -1).addmm_(onehot, rows)
        else:
            view.add_(torch.mm(onehot, rows).view(view.shape))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


@register(P.Scatter)
def _scatter(p, x, u, *idx):
    idx = torch.broadcast_tensors(*[_index(i) for i in idx])
    axes = p.axes
    nb = idx[0].ndim
    rest = [d for d in range(x.ndim) if d not in axes]
    u = _front_update(u, p.pos, nb, nb + len(rest))
    perm = list(axes) + rest
    if p.mode is None or p.mode == "add":
        out = x.clone()
        view = out.permute(perm)
        n = idx[0].numel()
        if p.mode is None and x.device.type == "cpu" and n > 1 and \
                n * math.prod(view.shape[len(axes):]) >= _PARALLEL_MIN:
            idx, u = _last_writes(idx, u, x, axes, tuple(view.shape[len(axes):]))
        if p.mode == "add" and _by_matmul(view, idx):
            _add_rows(view, idx[0], u)
            return out
        try:
            view.index_put_(idx, u, accumulate=p.mode == "add")
        except (IndexError, RuntimeError) as err:  # (on the CPU; a GPU scatter asserts)
            if not _out_of_bounds(err):
                raise
            ok = _in_range(idx, x, axes)
            u = u.expand(tuple(ok.shape) + tuple(view.shape[len(axes):]))
            view.index_put_(tuple(i[ok] for i in idx), u[ok], accumulate=p.mode == "add")
        return out
    # prod, max, min: reduce into the indexed dims flattened to one
    dims = [x.shape[a] for a in axes]
    rshape = [x.shape[d] for d in rest]
    lin = None
    for i, d in zip(idx, dims):
        i = torch.remainder(i, d)
        lin = i if lin is None else lin * d + i
    xp = x.permute(perm).clone(memory_format=torch.contiguous_format)
    n = 1
    for d in dims:
        n *= d
    flat = xp.view([n] + rshape)
    bshape = list(idx[0].shape)
    src = u.expand(bshape + rshape).reshape([idx[0].numel()] + rshape)
    lin = lin.reshape(-1).long()
    if x.device.type == "cpu":
        ok = _in_range(idx, x, axes).reshape(-1)
        if not ok.all():
            lin, src = lin[ok], src[ok]
    if x.dtype.is_complex:
        _complex_reduce(flat, lin, src, p.mode)
    elif x.dtype is torch.bool:
        f8 = flat.to(torch.uint8)
        f8.scatter_reduce_(0, _expand_index(lin, src), src.to(torch.uint8),
                           _BOOL_REDUCE[p.mode])
        flat.copy_(f8)
    elif not (p.mode == "prod" and x.dtype in _HALF and x.device.type == "cpu"
              and _rounded_prod(flat, lin, src)):
        flat.scatter_reduce_(0, _expand_index(lin, src), src, _REDUCE[p.mode])
    inv = [0] * len(perm)
    for i, d in enumerate(perm):
        inv[d] = i
    return xp.permute(inv)


_HALF = (torch.float16, torch.bfloat16)
_ROUNDS_MAX = 256


def _rounded_prod(flat, lin, src):
    """flat[lin[k]] *= src[k] in the order of k, rounding to the half dtype after every
    factor as upstream's CPU scatter does (torch's product of a repeated index rounds once):
    in rounds, the j-th round multiplying in the j-th update of every position. False (and
    nothing done) when no index repeats, or one repeats too often for rounds."""
    if lin.numel() < 2:
        return False
    order = torch.argsort(lin, stable=True)
    ordered = lin[order]
    rank = torch.arange(ordered.numel()) - torch.searchsorted(ordered, ordered)
    rounds = int(rank.max()) + 1
    if rounds == 1 or rounds > _ROUNDS_MAX:
        return False
    for j in range(rounds):
        pick = order[rank == j]
        i = lin[pick]
        flat[i] = flat[i] * src[pick]
    return True


def _expand_index(lin, src):
    return lin.view([-1] + [1] * (src.ndim - 1)).expand(src.shape)


def _complex_reduce(flat, lin, src, mode):
    # torch has no complex prod/max/min scatter: fold the updates in one at a time
    for j, k in enumerate(lin.tolist()):
        cur, v = flat[k], src[j]
        if mode == "prod":
            flat[k] = cur * v
        else:
            gt = (v.real > cur.real) | ((v.real == cur.real) & (v.imag > cur.imag))
            take = gt if mode == "max" else ~gt & (v != cur)
            flat[k] = torch.where(take, v, cur)


def _wrap_negative(i, n):
    return torch.where(i < 0, i + n, i)


_WIDEN_MIN = 1 << 14


@register(P.GatherAxis)
def _gather_axis(p, x, idx):
    if idx.dtype is torch.bool or idx.is_floating_point() or idx.is_complex():
        # (as upstream, when evaluated: under grad its vjp refuses the indices first)
        where = "cpu" if idx.device.type == "cpu" else "gpu"
        raise RuntimeError(f"[GatherAxis::eval_{where}] Cannot gather with indices type.")
    axis = p.axis
    if idx.is_cuda:  # (as measured on the GPU: int64 indices, wrapped without asking
        # whether any need it, which would wait for the device; out-of-range ones too, as
        # a device-side assert would end the process's use of the GPU)
        n = x.shape[axis]
        return torch.take_along_dim(x, torch.remainder(idx.long(), n) if n else idx.long(),
                                    dim=axis)
    idx = _index(idx)  # torch.gather takes int32 indices: no int64 copy of a large map
    if idx.numel() and idx.min() < 0:
        idx = _wrap_negative(idx, x.shape[axis])
    if x.shape != idx.shape:  # broadcast every dim but the axis, as take_along_dim does
        xs, js = list(x.shape), list(idx.shape)
        for d in range(x.ndim):
            if d != axis:
                xs[d] = js[d] = max(xs[d], js[d]) if xs[d] and js[d] else 0
        x, idx = x.expand(xs), idx.expand(js)
    if idx.dtype is torch.int32 and idx.numel() >= _WIDEN_MIN:
        # ATen's gather runs 4x slower on int32 indices than on int64 (2048 x 2048: 20
        # against 4.8 ms); the widened copy costs less than that
        idx = cpu_empty(tuple(idx.shape), torch.int64).copy_(idx)
    elif idx.dtype is torch.int32 and not idx.is_contiguous():
        # ATen's gather misreads int32 indices with zero strides (expanded ones)
        idx = idx.contiguous()
    out = cpu_out(tuple(idx.shape), x.dtype, x.device)  # (large: a cached buffer)
    try:
        return torch.gather(x, axis, idx, out=out)
    except RuntimeError as err:
        if not _out_of_bounds(err):
            raise
        return torch.gather(x, axis, _wrapped([idx], x, [axis])[0], out=out)


def _axis_target(x, idx, u, axis):
    shape = []
    for d in range(x.ndim):
        if d == axis:
            shape.append(max(idx.shape[d], u.shape[d]) if idx.shape[d] * u.shape[d] else 0)
        else:
            shape.append(max(x.shape[d], idx.shape[d], u.shape[d]))
    return shape


@register(P.ScatterAxis)
def _scatter_axis(p, x, idx, u):
    axis = p.axis
    shape = _axis_target(x, idx, u, axis)
    xs = list(shape)
    xs[axis] = x.shape[axis]
    if list(x.shape) != xs:
        x = x.expand(xs)
    idx = _wrap_negative(idx.long(), x.shape[axis]).expand(shape)
    u = u.expand(shape)
    fn = torch.scatter_add if p.mode == "add" else torch.scatter
    try:
        return fn(x, axis, idx, u)
    except RuntimeError as err:  # (on the CPU; a GPU scatter asserts)
        if not _out_of_bounds(err):
            raise
    # out-of-range updates go to one extra slot past the end, dropped afterwards
    n = x.shape[axis]
    pad = torch.cat([x, x.narrow(axis, 0, 1)], axis) if n else x
    idx = torch.where((idx >= 0) & (idx < n), idx, n)
    return fn(pad, axis, idx, u).narrow(axis, 0, n)


def _dynamic_index(x, start, j, ax, size):
    n = x.shape[ax]
    st = start[j].clamp(0, max(n - size, 0))
    return st + torch.arange(size, device=x.device)


def _static_part(x, axes, sizes):
    key = tuple(slice(None) if d in axes or s == x.shape[d] else slice(0, s)
                for d, s in enumerate(sizes))
    return x[key]


@register(P.DynamicSlice)
def _dynamic_slice(p, x, start):
    y = _static_part(x, p.axes, p.sizes)
    start = start.reshape(-1).long()
    for j, ax in enumerate(p.axes):
        y = y.index_select(ax, _dynamic_index(x, start, j, ax, p.sizes[ax]))
    return y


@register(P.DynamicSliceUpdate)
def _dynamic_slice_update(p, x, u, start):
    out = x.clone()
    view = _static_part(out, p.axes, p.sizes)
    u = u.expand(p.sizes)
    axes = p.axes
    start = start.reshape(-1).long()
    if not axes:
        view.copy_(u)
    elif len(axes) == 1:
        ax = axes[0]
        view.index_copy_(ax, _dynamic_index(x, start, 0, ax, p.sizes[ax]), u)
    else:
        k = len(axes)
        idx = []
        for j, ax in enumerate(axes):
            i = _dynamic_index(x, start, j, ax, p.sizes[ax])
            idx.append(i.view([1] * j + [-1] + [1] * (k - 1 - j)))
        perm = _perm(x.ndim, axes)
        view.permute(perm)[tuple(idx)] = u.permute(perm)
    return out


def _mask_like(mask, x):
    """The mask broadcast over the trailing dims of x."""
    return mask.reshape(tuple(mask.shape) + (1,) * (x.ndim - mask.ndim)).expand(x.shape)


def _ranks(mask, nb):
    """Position of each masked element among its example's masked elements."""
    flat = mask.reshape(nb, -1)
    return flat, flat.long().cumsum(1) - 1


@register(P.MaskedScatter)
def _masked_scatter(p, x, mask, src):
    if not p.batched and x.device.type == "cpu":
        # upstream checks the count; on the GPU that would cost a sync
        if x.numel() and int(mask.sum()) > src.shape[0]:
            raise RuntimeError("[MaskedScatter::eval_cpu] Source does not have enough elements for "
                               "mask.")
        return x.masked_scatter(_mask_like(mask, x), src.contiguous())
    if not p.batched:
        return _masked_scatter_rows(x[None], mask[None], src[None])[0]
    return _masked_scatter_rows(x, mask, src)


def _masked_scatter_rows(x, mask, src):
    """Per example b: the k-th masked row of x[b] gets src[b, k] (never read past src)."""
    nb = x.shape[0]
    rows = src.shape[1]
    if rows == 0:
        return x.clone()
    _, rank = _ranks(mask, nb)
    rank = rank.clamp(0, rows - 1)
    picked = src[torch.arange(nb, device=x.device)[:, None], rank]
    picked = picked.reshape(tuple(mask.shape) + tuple(x.shape[mask.ndim:]))
    return torch.where(_mask_like(mask, x), picked, x)


@register(P.MaskedGather)
def _masked_gather(p, g, mask):
    shape = p.shape
    if not p.batched:
        g, mask, shape = g[None], mask[None], (1,) + tuple(shape)
    nb = g.shape[0]
    rows = shape[1]
    tail = tuple(g.shape[mask.ndim:])
    flat, rank = _ranks(mask, nb)
    out = torch.zeros((nb, rows) + tail, dtype=g.dtype, device=g.device)
    ok = flat & (rank < rows)
    b, q = ok.nonzero(as_tuple=True)
    gflat = g.reshape((nb, flat.shape[1]) + tail)
    out[b, rank[b, q]] = gflat[b, q]
    return out if p.batched else out[0]
