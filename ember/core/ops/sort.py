"""Sorting ops: sort, argsort, topk, partition, argpartition."""

import operator

from ember.core import dtypes as D
from ember.core.array import array, fresh, node
from ember.core.ops._base import binding_error, resolve, to_device
from ember.core.ops.shape import reshape
from ember.core.primitives.sort import (
    ArgPartition,
    ArgSort,
    ArgTopK,
    GatherAxis,
    InvertIndex,
    Partition,
    Sort,
    TopK,
)

__all__ = ["sort", "argsort", "topk", "partition", "argpartition"]

_U32 = D.uint32
_INDEX = {ArgSort: True, ArgTopK: True, ArgPartition: True}


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


_S = "*, stream: StreamOrDevice = None) -> array"
# upstream's signatures, quoted by its binding when an argument does not convert
_SIGS = {
    **{op: f"{op}(a: array, /, axis: None | int = -1, " + _S for op in ("sort", "argsort")},
    **{op: f"{op}(a: array, /, kth: int, axis: None | int = -1, " + _S
       for op in ("partition", "argpartition")},
    "topk": "topk(a: array, /, k: int, axis: None | int = -1, " + _S,
}


def _int(v, op):
    """An int as upstream's binding takes it (bools and __index__ objects, no floats)."""
    if isinstance(v, float) or not hasattr(v, "__index__"):
        raise binding_error(op, _SIGS[op])
    try:
        return operator.index(v)
    except TypeError:
        raise binding_error(op, _SIGS[op]) from None


def _prep(a, axis, op, stream):
    """(stream, array on it, non-negative axis) with axis=None flattening the array."""
    if not isinstance(a, array):
        raise binding_error(op, _SIGS[op])
    if axis is not None:
        axis = _int(axis, op)
    s = resolve(stream)
    if a._stream.device is not s.device:
        a = to_device(a, s)
    if axis is None:
        return s, reshape(a, (-1,), stream=s), 0
    n = a.ndim
    if not -n <= axis < n:
        raise IndexError(f"[{op}] Axis {axis} is out of bounds for array with {n} dimensions.")
    return s, a, axis % n


def apply(prim, x, s=None):
    """A node of sorting primitive `prim` over x."""
    shape = x._shape
    k = getattr(prim, "k", None)
    if k is not None:
        shape = shape[:prim.axis] + (k,) + shape[prim.axis + 1:]
    dt = _U32 if type(prim) in _INDEX else x._dtype
    return node(shape, dt, prim, (x,), s or x._stream)


def gather(x, idx, axis):
    """x gathered along `axis` by idx (see GatherAxis)."""
    return node(idx._shape, x._dtype, GatherAxis(axis), (x, idx), x._stream)


def invert(idx, n, axis):
    """The inverse index map of idx, of length n along `axis` (see InvertIndex)."""
    shape = idx._shape[:axis] + (n,) + idx._shape[axis + 1:]
    return node(shape, D.int64, InvertIndex(n, axis), (idx,), idx._stream)


def sort(a, /, axis=-1, *, stream=None):
    s, a, ax = _prep(a, axis, "sort", stream)
    return node(a._shape, a._dtype, Sort(ax, a._dtype is D.uint64), (a,), s)


def argsort(a, /, axis=-1, *, stream=None):
    s, a, ax = _prep(a, axis, "argsort", stream)
    return node(a._shape, _U32, ArgSort(ax, a._dtype is D.uint64), (a,), s)


def _kth(a, kth, ax, axis, op):
    n = a._shape[ax]
    if not -n <= kth < n:
        # (upstream's words: partition's lack the space after kth; axis=None reads as 0)
        sp = "" if op == "partition" else " "
        raise ValueError(f"[{op}] Received invalid kth {kth}{sp}along axis {axis or 0} for "
                         f"array with shape: {_fmt(a._shape)}")
    return kth % n


def partition(a, /, kth, axis=-1, *, stream=None):
    kth = _int(kth, "partition")
    s, a, ax = _prep(a, axis, "partition", stream)
    k = _kth(a, kth, ax, axis, "partition")
    return node(a._shape, a._dtype, Partition(k, ax, a._dtype is D.uint64), (a,), s)


def argpartition(a, /, kth, axis=-1, *, stream=None):
    kth = _int(kth, "argpartition")
    s, a, ax = _prep(a, axis, "argpartition", stream)
    k = _kth(a, kth, ax, axis, "argpartition")
    return node(a._shape, _U32, ArgPartition(k, ax, a._dtype is D.uint64), (a,), s)


def topk(a, /, k, axis=-1, *, stream=None):
    k = _int(k, "topk")
    s, a, ax = _prep(a, axis, "topk", stream)
    if not 0 <= k <= a._shape[ax]:
        raise ValueError(f"[topk] Received invalid k={k} along axis {axis or 0} for array with "
                         f"shape: {_fmt(a._shape)}")
    if k == a._shape[ax] and k:
        return fresh(a)  # upstream hands every element back in place, unpartitioned
    shape = a._shape[:ax] + (k,) + a._shape[ax + 1:]
    return node(shape, a._dtype, TopK(k, ax, a._dtype is D.uint64), (a,), s)
