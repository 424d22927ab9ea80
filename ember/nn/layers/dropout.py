"""Dropout layers: element-wise (Dropout) and channel-wise (Dropout2d, Dropout3d).

In training each element (or channel) is kept with probability 1 - p and scaled by
1 / (1 - p); in eval the input passes through. Masks come from `mx.random.bernoulli`
with the keep probability, so a seeded run draws the same masks as MLX.
"""

import ember.core as mx
from ember.nn.layers._naming import own_methods
from ember.nn.layers.base import Module

__all__ = ["Dropout", "Dropout2d", "Dropout3d"]


class _Dropout(Module):
    # number of axes before the channel axis that share one mask value
    _shared = 0
    _ndims = ()

    def __init__(self, p: float = 0.5):
        super().__init__()
        if p < 0 or p >= 1:
            raise ValueError(f"The dropout probability {p} is not in [0, 1)")
        # the repr derives p back from the keep probability, as MLX's does
        self._p_1 = 1 - p
        self._scale = 1 / self._p_1

    def _extra_repr(self) -> str:
        return f"p={1 - self._p_1}"

    def __call__(self, x: mx.array) -> mx.array:
        if self._ndims and x.ndim not in self._ndims:
            a, b = self._ndims
            raise ValueError(
                f"Received input with {x.ndim} dimensions. Expected {a} or {b} dimensions.")
        if self._p_1 == 1 or not self._training:
            return x
        shape = x.shape
        if self._shared:
            shape = shape[:-1 - self._shared] + (1,) * self._shared + shape[-1:]
        mask = mx.random.bernoulli(self._p_1, shape)
        return (mask * x) * self._scale


@own_methods("__init__", "__call__")
class Dropout(_Dropout):
    """Zeroes each element with probability `p` in training and scales the others by
    1 / (1 - p)."""


@own_methods("__init__", "__call__")
class Dropout2d(_Dropout):
    """Zeroes whole channels of an NHWC or HWC input with probability `p` in training
    (one draw per sample and channel) and scales the others by 1 / (1 - p)."""

    _shared = 2
    _ndims = (3, 4)


@own_methods("__init__", "__call__")
class Dropout3d(_Dropout):
    """Zeroes whole channels of an NDHWC or DHWC input with probability `p` in training
    (one draw per sample and channel) and scales the others by 1 / (1 - p)."""

    _shared = 3
    _ndims = (4, 5)
