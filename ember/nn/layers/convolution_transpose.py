"""Transposed convolutions over channels-last inputs (NLC, NHWC, NDHWC).

Weights are (out_channels, *kernel_size, in_channels), uniform in [-k, k] with
k = 1 / sqrt(in_channels * prod(kernel_size)); biases start at zero.
"""

from typing import Union

import ember.core as mx
from ember.nn.layers.base import Module
from ember.nn.layers.convolution import _init, _tuple

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _ConvTranspose(Module):
    """Shared constructor, repr and call; subclasses fix the rank and the core op."""

    _ndim: int
    _op = None

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
               output_padding, bias):
        super().__init__()
        n = self._ndim
        # a 1-d layer keeps its int arguments as given
        as_n = (lambda v: v) if n == 1 else (lambda v: _tuple(v, n))
        kernel_size = (kernel_size,) if n == 1 else _tuple(kernel_size, n)
        _init(self, in_channels, out_channels, kernel_size, 1, bias)
        self.padding = as_n(padding)
        self.stride = as_n(stride)
        self.dilation = dilation
        self.output_padding = as_n(output_padding)

    def _extra_repr(self):
        w = self.weight.shape
        ks = w[1] if self._ndim == 1 else w[1:1 + self._ndim]
        return (f"{w[-1]}, {w[0]}, kernel_size={ks}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"output_padding={self.output_padding}, bias={'bias' in self}")

    def __call__(self, x):
        y = type(self)._op(x, self["weight"], self.stride, self.padding, self.dilation,
                           self.output_padding)
        if "bias" in self:
            y = y + self["bias"]
        return y


class ConvTranspose1d(_ConvTranspose):
    """1-d transposed convolution over (N, L, C) inputs."""

    _ndim = 1
    _op = mx.conv_transpose1d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, dilation: int = 1,
                 output_padding: int = 0, bias: bool = True):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation,
                    output_padding, bias)


class ConvTranspose2d(_ConvTranspose):
    """2-d transposed convolution over (N, H, W, C) inputs."""

    _ndim = 2
    _op = mx.conv_transpose2d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation,
                    output_padding, bias)


class ConvTranspose3d(_ConvTranspose):
    """3-d transposed convolution over (N, D, H, W, C) inputs."""

    _ndim = 3
    _op = mx.conv_transpose3d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation,
                    output_padding, bias)
