"""Statistics and differences built from other ops: median, minmax, count_nonzero, diff;
and upstream's cumulative_sum / cumulative_prod names for cumsum / cumprod."""

import operator

from ember.core import dtypes as D
from ember.core.array import array
from ember.core.ops._base import as_array, binding_error, resolve
from ember.core.ops.reduce import _SIGS, array_arg, norm_axes
from ember.core.ops.scan import cumprod, cumsum

__all__ = ["median", "minmax", "count_nonzero", "diff", "cumulative_sum", "cumulative_prod"]

cumulative_sum = cumsum
cumulative_prod = cumprod


def _O():
    import ember.core.ops as O
    return O


_CNZ_SIG = ("count_nonzero(a: array, /, *, axis: None | int | Sequence[int] = None, keepdims: "
            "bool = False, stream: StreamOrDevice = None) -> array")


def _axes_arg(axis, op, sig):
    """`None | int | Sequence[int]` as upstream's binding takes it: None, or a tuple of
    ints (bools and __index__ objects too, no floats or text)."""
    if axis is None:
        return None
    if isinstance(axis, (str, bytes)) or not hasattr(axis, "__iter__") \
            or isinstance(axis, array):
        axis = (axis,)
    out = []
    for ax in axis:
        if isinstance(ax, float) or not hasattr(ax, "__index__"):
            raise binding_error(op, sig)
        try:
            out.append(operator.index(ax))
        except TypeError:
            raise binding_error(op, sig) from None
    return tuple(out)


def _median_axes(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    out = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise IndexError(f"[median] axis {ax} is out of bounds for array with {ndim} "
                             "dimensions.")
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError("[median] Received duplicate axis.")
    return tuple(sorted(out))


def median(a, /, axis=None, keepdims=False, *, stream=None):
    O = _O()
    s = resolve(stream)
    a = array_arg(a, s, "median")
    axis = _axes_arg(axis, "median", _SIGS["median"])
    if not isinstance(keepdims, bool):
        raise binding_error("median", _SIGS["median"])
    axes = _median_axes(axis, a.ndim)
    if not axes and a.ndim:  # upstream flattens the reduced axes: none is refused
        raise ValueError("[flatten] start_axis must be less than or equal to end_axis")
    if a.dtype.kind not in "fc":
        a = O.astype(a, D.float32, s)
    shape = a.shape
    n = 1
    for ax in axes:
        n *= shape[ax]
    if n == 0:
        raise ValueError("[median] Cannot take median along empty axis.")
    rest = [i for i in range(a.ndim) if i not in axes]
    x = O.transpose(a, rest + list(axes), stream=s)
    x = O.reshape(x, tuple(shape[i] for i in rest) + (n,), stream=s)
    x = O.sort(x, axis=-1, stream=s)
    med = x[..., n // 2]
    if not n % 2:
        med = O.multiply(O.add(x[..., n // 2 - 1], med, stream=s), 0.5, stream=s)
    # any NaN makes the median NaN (real NaNs sort last)
    nan = O.isnan(x[..., n - 1], stream=s) if a.dtype.kind == "f" else \
        O.any(O.isnan(x, stream=s), axis=-1, stream=s)
    med = O.where(nan, float("nan"), med, stream=s)
    if keepdims:
        med = O.reshape(med, tuple(1 if i in axes else d for i, d in enumerate(shape)),
                        stream=s)
    return med


def minmax(a, /, axis=None, keepdims=False, *, stream=None):
    O = _O()
    return (O.min(a, axis, keepdims, stream=stream), O.max(a, axis, keepdims, stream=stream))


def count_nonzero(a, /, axis=None, keepdims=False, *, stream=None):
    O = _O()
    s = resolve(stream)
    if not isinstance(a, array) or not isinstance(keepdims, bool):
        raise binding_error("count_nonzero", _CNZ_SIG)
    axis = _axes_arg(axis, "count_nonzero", _CNZ_SIG)
    a = as_array(a, s)
    axes = norm_axes(axis, a.ndim, "count_nonzero")
    nz = a if a.dtype is D.bool_ else O.not_equal(a, 0, stream=s)
    return O.astype(O.sum(nz, axes, keepdims, stream=s), D.int32, s)


def diff(a, /, n=1, axis=-1, *, stream=None):
    O = _O()
    # (bools pass, as ints do through upstream's binding)
    if not isinstance(a, array) or isinstance(n, float) or not hasattr(n, "__index__") \
            or isinstance(axis, float) or not hasattr(axis, "__index__"):
        raise TypeError("diff(): incompatible function arguments. The following argument types "
                        "are supported:\n    1. diff(a: array, /, n: int = 1, axis: int = -1, "
                        "*, stream: StreamOrDevice = None) -> array")
    n, axis = operator.index(n), operator.index(axis)
    s = resolve(stream)
    a = as_array(a, s)
    if not -a.ndim <= axis < a.ndim:
        raise IndexError("[diff] Axis is out of bounds for the array.")
    if n < 0:
        raise ValueError("[diff] Order `n` must be non-negative.")
    axis %= a.ndim
    lead = (slice(None),) * axis
    length = a.shape[axis]
    for _ in range(min(n, length)):
        hi, lo = a[lead + (slice(1, None),)], a[lead + (slice(None, -1),)]
        a = O.not_equal(hi, lo, stream=s) if a.dtype is D.bool_ else \
            O.subtract(hi, lo, stream=s)
    if n > length:
        a = a[lead + (slice(0, 0),)]
    return a
