"""Transposed convolutions over channels-last inputs (NLC, NHWC, NDHWC).

Weights are (out_channels, *kernel_size, in_channels), uniform in [-k, k] with
k = 1 / sqrt(in_channels * prod(kernel_size)); biases start at zero.
"""

from typing import Union

import ember.core as mx
from ember.core.primitives.conv import with_bias
from ember.nn.layers._naming import own_methods
from ember.nn.layers.base import Module
from ember.nn.layers.convolution import _init, _repr

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _ConvTranspose(Module):
    """Shared constructor, repr and call; subclasses fix the rank and the core op. Int
    arguments of a 2-d or 3-d layer apply to all axes."""

    _ndim: int
    _op = None

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        super().__init__()
        _init(self, in_channels, out_channels, kernel_size, None, bias, padding, stride,
              dilation, output_padding=output_padding)

    def _extra_repr(self):
        return _repr(self, self.weight.shape[-1], f"output_padding={self.output_padding}, ")

    def __call__(self, x):
        y = type(self)._op(x, self["weight"], self.stride, self.padding, self.dilation,
                           self.output_padding)
        if "bias" in self:
            y = with_bias(y, self["bias"])  # (added in the convolution's call)
        return y


@own_methods("__init__", "__call__")
class ConvTranspose1d(_ConvTranspose):
    """1-d transposed convolution over (N, L, C) inputs."""

    _ndim = 1
    _op = mx.conv_transpose1d


@own_methods("__init__", "__call__")
class ConvTranspose2d(_ConvTranspose):
    """2-d transposed convolution over (N, H, W, C) inputs."""

    _ndim = 2
    _op = mx.conv_transpose2d


@own_methods("__init__", "__call__")
class ConvTranspose3d(_ConvTranspose):
    """3-d transposed convolution over (N, D, H, W, C) inputs."""

    _ndim = 3
    _op = mx.conv_transpose3d
