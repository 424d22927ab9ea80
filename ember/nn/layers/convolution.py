"""Convolutions over channels-last inputs (NLC, NHWC, NDHWC).

Weights are (out_channels, *kernel_size, in_channels // groups), uniform in [-k, k] with
k = 1 / sqrt(fan_in); biases start at zero.
"""

import math
from typing import Union

import ember.core as mx
from ember.core.primitives.conv import with_bias
from ember.nn.layers._naming import own_methods
from ember.nn.layers.base import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


def _tuple(x, n):
    """An int repeated n times; a tuple or list as given."""
    return (x,) * n if isinstance(x, int) else x


def _check_groups(in_channels, groups):
    if in_channels % groups != 0:
        raise ValueError(f"The number of input channels ({in_channels}) must be "
                         f"divisible by the number of groups ({groups})")


def _init(module, in_channels, out_channels, kernel_size, groups, bias, padding, stride,
          dilation, **more):
    """Weight, bias and settings of a (transposed) convolution of rank `module._ndim`.
    Settings (stride, padding...) are repeated over the axes, except in 1-d layers,
    which keep them as given; `dilation` is always kept as given. They are set in
    upstream's order (it shows in the module's items)."""
    n = module._ndim
    kernel_size = (kernel_size,) if n == 1 else _tuple(kernel_size, n)
    # layers without groups (groups=None) use in_channels as is: a bad in_channels then
    # fails in the same Python operator as in MLX
    per_group = in_channels if groups is None else in_channels // groups
    fan_in = per_group
    for i in range(n):  # indexing (not len): a short tuple raises IndexError as in MLX
        fan_in = fan_in * kernel_size[i]
    k = math.sqrt(1 / fan_in)
    module.weight = mx.random.uniform(
        low=-k, high=k, shape=(out_channels, *kernel_size, per_group))
    if bias:
        module.bias = mx.zeros((out_channels,))
    settings = ({"padding": padding, "dilation": dilation, "stride": stride} if n == 1 else
                {"padding": padding, "stride": stride, "dilation": dilation})
    settings.update(more)
    for name, value in settings.items():
        setattr(module, name, value if n == 1 or name == "dilation" else _tuple(value, n))


def _repr(module, in_channels, more=""):
    """The repr of a (transposed) convolution; `more` goes between dilation and bias."""
    w = module.weight.shape
    ks = w[1] if module._ndim == 1 else w[1:1 + module._ndim]
    return (f"{in_channels}, {w[0]}, kernel_size={ks}, stride={module.stride}, "
            f"padding={module.padding}, dilation={module.dilation}, {more}"
            f"bias={'bias' in module}")


class _Conv(Module):
    """Conv1d and Conv2d; subclasses fix the rank and the core op. Int arguments of a
    2-d layer apply to both axes."""

    _ndim: int
    _op = None

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        _check_groups(in_channels, groups)
        _init(self, in_channels, out_channels, kernel_size, groups, bias, padding, stride,
              dilation)
        self.groups = groups

    def _extra_repr(self):
        return _repr(self, self.weight.shape[-1] * self.groups, f"groups={self.groups}, ")

    def __call__(self, x):
        y = type(self)._op(x, self["weight"], self.stride, self.padding, self.dilation,
                           self.groups)
        if "bias" in self:
            y = with_bias(y, self["bias"])  # (added in the convolution's call)
        return y


@own_methods("__init__", "__call__")
class Conv1d(_Conv):
    """1-d convolution over (N, L, C) inputs."""

    _ndim = 1
    _op = mx.conv1d


@own_methods("__init__", "__call__")
class Conv2d(_Conv):
    """2-d convolution over (N, H, W, C) inputs."""

    _ndim = 2
    _op = mx.conv2d


class Conv3d(Module):
    """3-d convolution over (N, D, H, W, C) inputs; int arguments apply to all axes."""

    _ndim = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, bias: bool = True):
        super().__init__()
        _init(self, in_channels, out_channels, kernel_size, None, bias, padding, stride,
              dilation)

    def _extra_repr(self):
        return _repr(self, self.weight.shape[-1])

    def __call__(self, x):
        y = mx.conv3d(x, self["weight"], self.stride, self.padding, self.dilation)
        if "bias" in self:
            y = with_bias(y, self["bias"])  # (added in the convolution's call)
        return y
