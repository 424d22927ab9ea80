"""Max and average pooling over channels-last inputs (NLC, NHWC, NDHWC).

Windows are views of the (padded) input: a reshape when they tile it exactly (stride ==
kernel size), an `as_strided` view otherwise; the pooling function then reduces the
window axes. Max pooling pads with -inf, average pooling with 0 (the padding counts in
the average).
"""

from typing import Optional, Tuple, Union

import ember.core as mx
from ember.nn.layers._naming import own_methods
from ember.nn.layers.base import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]


def _as_list(x, n, msg):
    if isinstance(x, (list, tuple)):
        if len(x) != n:
            raise ValueError(msg)
        return list(x)
    if not isinstance(x, int):
        raise ValueError(msg)
    return [x] * n


def _windows(x, kernel, stride):
    """(view of x with the windows on their own axes, those axes)."""
    n = len(kernel)
    if x.ndim < 3:
        raise ValueError("To extract sliding windows at least 1 spatial dimension (3 total) "
                         f"is needed but the input only has {x.ndim} dimensions.")
    shape = x.shape
    spatial = shape[1:-1]
    if len(spatial) != n:
        raise ValueError(
            "To extract sliding windows the window shapes and strides must have the same "
            "number of spatial dimensions as the signal but the signal has "
            f"{len(spatial)} dims and the window shape has {n} and strides have {n}.")
    if kernel == stride:
        # the windows tile the input: drop the ragged ends and split each axis in two
        out = [s // k for s, k in zip(spatial, kernel)]
        if any(o * k != s for o, k, s in zip(out, kernel, spatial)):
            x = x[(slice(None), *(slice(0, o * k) for o, k in zip(out, kernel)))]
        split = [shape[0]]
        for o, k in zip(out, kernel):
            split += [o, k]
        split.append(shape[-1])
        return x.reshape(split), tuple(range(2, 2 * n + 1, 2))
    # overlapping or gapped windows: a strided view over the row-major layout
    elem = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        elem[i] = elem[i + 1] * shape[i + 1]
    out = [(s - k) // st + 1 for s, k, st in zip(spatial, kernel, stride)]
    view = mx.as_strided(
        x, [shape[0], *out, *kernel, shape[-1]],
        [elem[0], *(e * st for e, st in zip(elem[1:-1], stride)), *elem[1:-1], 1])
    return view, tuple(range(1 + n, 1 + 2 * n))


class _Pool(Module):
    """Pooling with `reduce` over windows of `kernel_size` taken every `stride`, after
    padding each spatial axis by `padding` on both sides with `padding_value`."""

    _reduce = None
    _padding_value = None
    _rank: int

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        name, n = type(self).__name__, self._rank
        msg = (f"[{name}] '{{}}' must be an integer or a tuple containing {n} "
               + ("integer" if n == 1 else "integers"))
        kernel_size = _as_list(kernel_size, n, msg.format("kernel_size"))
        stride = kernel_size if stride is None else _as_list(stride, n, msg.format("stride"))
        padding = _as_list(padding, n, msg.format("padding"))
        for what, values in (("kernel_size", kernel_size), ("stride", stride)):
            if any(v <= 0 for v in values):
                raise ValueError(f"[{name}] '{what}' must be positive but got {tuple(values)}.")
        if any(p < 0 for p in padding):
            raise ValueError(
                f"[{name}] 'padding' must be non-negative but got {tuple(padding)}.")
        self._kernel_size = kernel_size
        self._stride = stride
        self._padding = [(p, p) for p in padding]
        self._pad = any(p > 0 for p in padding)
        # unused here, but upstream keeps the pooled axes among the module's items
        self._axes = tuple(range(-n - 1, -1))

    def _extra_repr(self):
        return (f"kernel_size={tuple(self._kernel_size)}, stride={tuple(self._stride)}, "
                f"padding={tuple(p for p, _ in self._padding)}")

    def __call__(self, x):
        if self._pad:
            x = mx.pad(x, [(0, 0), *self._padding, (0, 0)],
                       constant_values=self._padding_value)
        view, axes = _windows(x, self._kernel_size, self._stride)
        return type(self)._reduce(view, axes)


class _Max:
    _reduce = mx.max
    _padding_value = -float("inf")


class _Avg:
    _reduce = mx.mean
    _padding_value = 0


class _Pool1d(_Pool):
    _rank = 1

    def __init__(self, kernel_size: Union[int, Tuple[int]],
                 stride: Optional[Union[int, Tuple[int]]] = None,
                 padding: Union[int, Tuple[int]] = 0):
        super().__init__(kernel_size, stride, padding)


class _Pool2d(_Pool):
    _rank = 2

    def __init__(self, kernel_size: Union[int, Tuple[int, int]],
                 stride: Optional[Union[int, Tuple[int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int]]] = 0):
        super().__init__(kernel_size, stride, padding)


class _Pool3d(_Pool):
    _rank = 3

    def __init__(self, kernel_size: Union[int, Tuple[int, int, int]],
                 stride: Optional[Union[int, Tuple[int, int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int, int]]] = 0):
        super().__init__(kernel_size, stride, padding)


@own_methods("__init__")
class MaxPool1d(_Max, _Pool1d):
    """Maximum over windows of an (N, L, C) input; `stride` defaults to `kernel_size`,
    `padding` adds -inf on both ends."""


@own_methods("__init__")
class MaxPool2d(_Max, _Pool2d):
    """Maximum over windows of an (N, H, W, C) input; `stride` defaults to `kernel_size`,
    `padding` adds -inf on both sides of each axis."""


@own_methods("__init__")
class MaxPool3d(_Max, _Pool3d):
    """Maximum over windows of an (N, D, H, W, C) input; `stride` defaults to
    `kernel_size`, `padding` adds -inf on both sides of each axis."""


@own_methods("__init__")
class AvgPool1d(_Avg, _Pool1d):
    """Mean over windows of an (N, L, C) input; `stride` defaults to `kernel_size`,
    `padding` adds zeros on both ends (counted in the mean)."""


@own_methods("__init__")
class AvgPool2d(_Avg, _Pool2d):
    """Mean over windows of an (N, H, W, C) input; `stride` defaults to `kernel_size`,
    `padding` adds zeros on both sides of each axis (counted in the mean)."""


@own_methods("__init__")
class AvgPool3d(_Avg, _Pool3d):
    """Mean over windows of an (N, D, H, W, C) input; `stride` defaults to
    `kernel_size`, `padding` adds zeros on both sides of each axis (counted in the mean)."""
