"""Convolutions over channels-last inputs (NLC, NHWC, NDHWC).

Weights are (out_channels, *kernel_size, in_channels // groups), uniform in [-k, k] with
k = 1 / sqrt(fan_in); biases start at zero.
"""

import math
from typing import Union

import ember.core as mx
from ember.nn.layers.base import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


def _tuple(x, n):
    """An int repeated n times; a tuple or list as given."""
    return (x,) * n if isinstance(x, int) else x


def _check_groups(in_channels, groups):
    if in_channels % groups != 0:
        raise ValueError(f"The number of input channels ({in_channels}) must be "
                         f"divisible by the number of groups ({groups})")


def _init(module, in_channels, out_channels, kernel_size, groups, bias):
    # indexing (not len) the kernel sizes: a short tuple raises IndexError as in MLX
    fan_in = in_channels // groups * math.prod(kernel_size[i] for i in range(module._ndim))
    k = math.sqrt(1 / fan_in)
    module.weight = mx.random.uniform(
        low=-k, high=k, shape=(out_channels, *kernel_size, in_channels // groups))
    if bias:
        module.bias = mx.zeros((out_channels,))


class Conv1d(Module):
    """1-d convolution over (N, L, C) inputs."""

    _ndim = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1,
                 bias: bool = True):
        super().__init__()
        _check_groups(in_channels, groups)
        _init(self, in_channels, out_channels, (kernel_size,), groups, bias)
        self.padding = padding
        self.dilation = dilation
        self.stride = stride
        self.groups = groups

    def _extra_repr(self):
        w = self.weight.shape
        return (f"{w[-1] * self.groups}, {w[0]}, kernel_size={w[1]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={'bias' in self}")

    def __call__(self, x):
        y = mx.conv1d(x, self["weight"], self.stride, self.padding, self.dilation, self.groups)
        if "bias" in self:
            y = y + self["bias"]
        return y


class Conv2d(Module):
    """2-d convolution over (N, H, W, C) inputs; int arguments apply to both axes."""

    _ndim = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        _check_groups(in_channels, groups)
        kernel_size = _tuple(kernel_size, 2)
        _init(self, in_channels, out_channels, kernel_size, groups, bias)
        self.padding = _tuple(padding, 2)
        self.stride = _tuple(stride, 2)
        self.dilation = dilation
        self.groups = groups

    def _extra_repr(self):
        w = self.weight.shape
        return (f"{w[-1] * self.groups}, {w[0]}, kernel_size={w[1:3]}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={'bias' in self}")

    def __call__(self, x):
        y = mx.conv2d(x, self["weight"], self.stride, self.padding, self.dilation, self.groups)
        if "bias" in self:
            y = y + self["bias"]
        return y


class Conv3d(Module):
    """3-d convolution over (N, D, H, W, C) inputs; int arguments apply to all axes."""

    _ndim = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, bias: bool = True):
        super().__init__()
        kernel_size = _tuple(kernel_size, 3)
        _init(self, in_channels, out_channels, kernel_size, 1, bias)
        self.padding = _tuple(padding, 3)
        self.stride = _tuple(stride, 3)
        self.dilation = dilation

    def _extra_repr(self):
        w = self.weight.shape
        return (f"{w[-1]}, {w[0]}, kernel_size={w[1:4]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={'bias' in self}")

    def __call__(self, x):
        y = mx.conv3d(x, self["weight"], self.stride, self.padding, self.dilation)
        if "bias" in self:
            y = y + self["bias"]
        return y
