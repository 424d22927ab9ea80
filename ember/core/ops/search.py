"""Searches in sorted data: searchsorted, unique."""

import operator

from ember.core import dtypes as D
from ember.core.array import array, node
from ember.core.ops._base import PROMOTE, as_array, resolve
from ember.core.primitives.search import SearchSorted

__all__ = ["searchsorted", "unique"]

_PRIMS = {(r, rows): SearchSorted(r, rows) for r in (False, True) for rows in (False, True)}
_SS_SIG = ("searchsorted(): incompatible function arguments. The following argument types "
           "are supported:\n    1. searchsorted(sorted_sequence: array, values: array, /, "
           "side: str = 'left', *, stream: StreamOrDevice = None) -> array")
_U_SIG = ("unique(): incompatible function arguments. The following argument types are "
          "supported:\n    1. unique(a: array, /, size: int, return_index: bool = False, "
          "return_inverse: bool = False, return_counts: bool = False, fill_value: scalar | "
          "array | None = None, *, stream: StreamOrDevice = None) -> array | tuple[array, ...]")


def searchsorted(sorted_sequence, values, /, side="left", *, stream=None):
    if not isinstance(sorted_sequence, array) or not isinstance(values, array) \
            or not isinstance(side, str):
        raise TypeError(_SS_SIG)
    if side != "left" and side != "right":
        raise ValueError(f"[searchsorted] Invalid side '{side}'. Expected 'left' or 'right'.")
    if sorted_sequence.ndim != 1:
        raise ValueError(f"[searchsorted] The sorted sequence must be 1-D but has "
                         f"{sorted_sequence.ndim} dimensions.")
    return _search(sorted_sequence, values, side == "right", False, stream)


def _search(seq, v, right, rows, stream=None):
    s = resolve(stream)
    seq, v = as_array(seq, s), as_array(v, s)
    dt = PROMOTE[seq._dtype, v._dtype]
    if seq._dtype is not dt:
        seq = seq.astype(dt, stream=s)
    if v._dtype is not dt:
        v = v.astype(dt, stream=s)
    if dt is D.uint64:  # stored as int64: flip the top bit to search in int64's order
        seq, v = (_signed_key(x, s) for x in (seq, v))
    return node(v._shape, D.uint32, _PRIMS[right, rows], (seq, v), s)


def _signed_key(x, s):
    import ember.core.ops as O
    return O.bitwise_xor(O.view(x, D.int64, stream=s), O.array(-(1 << 63), D.int64), stream=s)


def _bool(v):
    if not isinstance(v, bool):
        raise TypeError(_U_SIG)
    return v


def unique(a, /, size, return_index=False, return_inverse=False, return_counts=False,
           fill_value=None, *, stream=None):
    import ember.core.ops as O
    if not isinstance(a, array) or isinstance(size, (bool, float)) \
            or not hasattr(size, "__index__"):
        raise TypeError(_U_SIG)
    size = operator.index(size)
    want = (_bool(return_index), _bool(return_inverse), _bool(return_counts))
    if fill_value is not None and not isinstance(fill_value, (array, bool, int, float, complex)) \
            and not hasattr(fill_value, "__array__"):
        # (upstream converts the fill value before it checks the size)
        raise ValueError(f"Invalid type {type(fill_value).__name__} received in array "
                         "initialization.")
    if size < 0:
        raise ValueError(f"[unique] Received negative size {size}.")
    s = resolve(stream)
    a = as_array(a, s)
    dt = a._dtype
    if fill_value is not None:
        if isinstance(fill_value, int) and dt.kind in "ui" and not isinstance(fill_value, bool):
            info = D.iinfo(dt)
            if not info.min <= fill_value <= info.max:
                raise ValueError(f"Converting {fill_value} to {dt.name} would result in "
                                 "overflow.")
        fill = as_array(fill_value, s)
        if fill.size != 1:
            shape = "(" + ",".join(map(str, fill.shape)) + ")"
            raise ValueError(f"[unique] Fill value must have one element, but got shape "
                             f"{shape}.")
        fill = O.reshape(fill.astype(dt, stream=s), (), stream=s)
    n = a.size
    if n == 0:
        if size and fill_value is None:
            raise ValueError("[unique] A fill value is required for an empty input with a "
                             "non-zero size.")
        vals = O.zeros((size,), dt, stream=s) if fill_value is None else \
            O.broadcast_to(fill, (size,), stream=s)
        extra = [O.zeros((size,), D.uint32, stream=s), O.zeros(a.shape, D.uint32, stream=s),
                 O.zeros((size,), D.int32, stream=s)]
        return _pack(vals, extra, want)
    flat = O.reshape(a, (-1,), stream=s)
    key = O.stop_gradient(flat, stream=s)  # only the values gathered at the end carry grads
    order = O.argsort(key, stream=s)
    srt = O.take(key, order, stream=s)
    # a new group starts wherever the sorted value differs from its predecessor (so each
    # NaN is its own group, as upstream)
    first = O.ones((1,), D.bool_, stream=s)
    new = O.concatenate([first, O.not_equal(srt[1:], srt[:-1], stream=s)], stream=s)
    group = O.subtract(O.cumsum(new, stream=s), 1, stream=s)  # group of each sorted slot
    slots = O.arange(size, dtype=D.int32, stream=s)
    starts = _search(group, slots, False, True, s)
    counts = O.subtract(_search(group, slots, True, True, s), starts,
                        stream=s).astype(D.int32, stream=s)
    valid = O.greater(counts, 0, stream=s)
    # stable sort: a group's first slot holds its first occurrence; past the last group
    # the slot repeats the first group's (so values fall back to the first unique)
    first_slot = O.where(valid, starts, 0, stream=s)
    index = O.take(order, first_slot, stream=s).astype(D.uint32, stream=s)
    vals = O.take(flat, index, stream=s)
    if fill_value is not None:
        vals = O.where(valid, vals, fill, stream=s)
    extra = [index, None, counts]
    if want[1]:
        inv = O.put_along_axis(O.zeros((n,), D.int32, stream=s), order, group, 0, stream=s)
        inv = O.clip(inv, 0, max(size - 1, 0), stream=s).astype(D.uint32, stream=s)
        extra[1] = O.reshape(inv, a.shape, stream=s)
    return _pack(vals, extra, want)


def _pack(vals, extra, want):
    if not any(want):
        return vals
    return (vals,) + tuple(x for x, w in zip(extra, want) if w)
