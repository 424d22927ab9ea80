"""as_strided: a view of an array's row-contiguous data with any shape and strides."""

from ember.core.array import array, node
from ember.core.ops._base import as_array, resolve
from ember.core.primitives.strided import AsStrided, StridedScatter

__all__ = ["as_strided"]

_SIG = ("as_strided(): incompatible function arguments. The following argument types are "
        "supported:\n    1. as_strided(a: array, /, shape: Sequence[int] | None = None, "
        "strides: Sequence[int] | None = None, offset: int = 0, *, stream: StreamOrDevice = "
        "None) -> array")


def _ints(v):
    try:
        out = tuple(v)
    except TypeError:
        raise TypeError(_SIG) from None
    for d in out:
        if isinstance(d, (float, bool)) or not hasattr(d, "__index__"):
            raise TypeError(_SIG)
    return tuple(int(d.__index__()) for d in out)


def _row_strides(shape):
    out, n = [], 1
    for d in reversed(shape):
        out.append(n)
        n *= d
    return tuple(reversed(out))


def _check_bounds(shape, strides, offset, size):
    """Upstream reads outside the buffer (undefined values); Ember refuses up front."""
    lo = hi = offset
    for d, st in zip(shape, strides):
        if d == 0:
            return
        lo += min(0, (d - 1) * st)
        hi += max(0, (d - 1) * st)
    if lo < 0 or hi >= size:
        raise ValueError(f"[as_strided] The view reads flat elements {lo} to {hi}, outside "
                         f"an array of size {size}.")


def as_strided(a, /, shape=None, strides=None, offset=0, *, stream=None):
    if not isinstance(a, array):
        raise TypeError(_SIG)
    if isinstance(offset, (float, bool)) or not hasattr(offset, "__index__"):
        raise TypeError(_SIG)
    offset = int(offset.__index__())
    if offset < 0:  # upstream's offset is unsigned
        raise TypeError(_SIG)
    s = resolve(stream)
    a = as_array(a, s)
    shape = a.shape if shape is None else _ints(shape)
    if any(d < 0 for d in shape):
        raise ValueError("[as_strided] Negative dimensions not allowed.")
    if strides is None:
        strides = _row_strides(shape)
    else:
        strides = _ints(strides)
        if len(strides) < len(shape):
            raise ValueError(f"[as_strided] Got {len(strides)} strides for a shape with "
                             f"{len(shape)} dimensions.")
        strides = strides[:len(shape)]
    _check_bounds(shape, strides, offset, a.size)
    return node(shape, a.dtype, AsStrided(shape, strides, offset), (a,), s)


def _scatter(g, in_shape, strides, offset, stream=None):
    """The transpose of as_strided (its vjp): zeros of `in_shape` with `g` added in."""
    s = resolve(stream)
    g = as_array(g, s)
    return node(tuple(in_shape), g.dtype, StridedScatter(tuple(in_shape), strides, offset),
                (g,), s)
