"""Shape ops: reshape, broadcasting, transposition and friends."""

from ember.core.array import node
from ember.core.ops._base import (
    as_array,
    broadcast_pair,
    broadcast_shapes,
    check_axis,
    norm_axes,
    resolve,
)
from ember.core.primitives.shape import Broadcast, Reshape, Transpose

__all__ = ["reshape", "broadcast_to", "broadcast_shapes", "transpose", "permute_dims",
           "moveaxis", "swapaxes", "expand_dims", "squeeze", "flatten"]


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _infer_shape(shape, size, op):
    shape = tuple(int(d) for d in ([shape] if isinstance(shape, int) else shape))
    if shape.count(-1) > 1:
        raise ValueError(f"[{op}] Reshape can only infer one dimension.")
    if -1 in shape:
        known = _prod(d for d in shape if d != -1)
        if known == 0 or size % known:
            raise ValueError(f"[{op}] Cannot infer the shape of an empty array" if known == 0
                             else f"[{op}] Cannot reshape array of size {size} into shape "
                             f"({','.join(str(d) for d in shape)}).")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if any(d < 0 for d in shape) or _prod(shape) != size:
        raise ValueError(f"[{op}] Cannot reshape array of size {size} into shape "
                         f"({','.join(str(d) for d in shape)}).")
    return shape


def reshape(a, /, shape, *, stream=None):
    s = resolve(stream)
    a = as_array(a, s)
    shape = _infer_shape(shape, a.size, "reshape")
    if shape == a._shape:
        return a
    return node(shape, a._dtype, Reshape(shape), (a,), s)


def broadcast_to(a, /, shape, *, stream=None):
    s = resolve(stream)
    a = as_array(a, s)
    shape = tuple(int(d) for d in ([shape] if isinstance(shape, int) else shape))
    if shape == a._shape:
        return a
    if len(shape) < a.ndim or broadcast_pair(a._shape, shape, "broadcast_shapes") != shape:
        raise ValueError(f"[broadcast_to] Cannot broadcast array of shape "
                         f"({','.join(map(str, a._shape))}) to shape "
                         f"({','.join(map(str, shape))}).")
    return node(shape, a._dtype, Broadcast(shape), (a,), s)


def transpose(a, /, axes=None, *, stream=None):
    s = resolve(stream)
    a = as_array(a, s)
    n = a.ndim
    if axes is None:
        axes = tuple(range(n - 1, -1, -1))
    else:
        axes = tuple(axes)
        if len(axes) != n:
            raise ValueError(f"[transpose] Recived {len(axes)} axes for array with {n} "
                             "dimensions.")
        axes = tuple(check_axis(ax, n, "transpose") for ax in axes)
        if len(set(axes)) != n:
            raise ValueError("[transpose] Repeat axes not allowed in transpose.")
    if axes == tuple(range(n)):
        return a
    shape = tuple(a._shape[i] for i in axes)
    return node(shape, a._dtype, Transpose(axes), (a,), s)


def permute_dims(a, /, axes=None, *, stream=None):
    return transpose(a, axes, stream=stream)


def moveaxis(a, /, source, destination, *, stream=None):
    a = as_array(a, resolve(stream))
    n = a.ndim
    src = check_axis(source, n, "moveaxis")
    dst = check_axis(destination, n, "moveaxis")
    order = [i for i in range(n) if i != src]
    order.insert(dst, src)
    return transpose(a, order, stream=stream)


def swapaxes(a, /, axis1, axis2, *, stream=None):
    a = as_array(a, resolve(stream))
    n = a.ndim
    i = check_axis(axis1, n, "swapaxes")
    j = check_axis(axis2, n, "swapaxes")
    order = list(range(n))
    order[i], order[j] = order[j], order[i]
    return transpose(a, order, stream=stream)


def expand_dims(a, /, axis, *, stream=None):
    a = as_array(a, resolve(stream))
    axes = [axis] if isinstance(axis, int) else list(axis)
    out_n = a.ndim + len(axes)
    axes = sorted(check_axis(ax, out_n, "expand_dims") for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError("[expand_dims] Received duplicate axes.")
    shape = list(a._shape)
    for ax in axes:
        shape.insert(ax, 1)
    return reshape(a, shape, stream=stream)


def squeeze(a, /, axis=None, *, stream=None):
    a = as_array(a, resolve(stream))
    if axis is None:
        axes = tuple(i for i, d in enumerate(a._shape) if d == 1)
    else:
        axes = norm_axes(axis, a.ndim, "squeeze")
        for ax in axes:
            if a._shape[ax] != 1:
                raise ValueError("[squeeze] Cannot squeeze axis with size != 1.")
    shape = tuple(d for i, d in enumerate(a._shape) if i not in axes)
    return reshape(a, shape, stream=stream)


def flatten(a, /, start_axis=0, end_axis=-1, *, stream=None):
    a = as_array(a, resolve(stream))
    n = a.ndim
    if n == 0:
        return reshape(a, (1,), stream=stream)
    st = check_axis(start_axis, n, "flatten")
    en = check_axis(end_axis, n, "flatten")
    if st > en:
        raise ValueError("[flatten] start_axis must be less than or equal to end_axis")
    shape = a._shape[:st] + (_prod(a._shape[st:en + 1]),) + a._shape[en + 1:]
    return reshape(a, shape, stream=stream)


broadcast_shapes = broadcast_shapes
