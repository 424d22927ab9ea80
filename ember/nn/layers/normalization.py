"""Normalization layers: InstanceNorm, LayerNorm, RMSNorm, GroupNorm, BatchNorm.

All of them take channels last. LayerNorm, RMSNorm, InstanceNorm and PyTorch-style
GroupNorm go through `mx.fast` kernels, which accumulate in float32 for half inputs.
"""

import ember.core as mx
from ember.nn.layers.base import Module

__all__ = ["InstanceNorm", "LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm"]


def _check_eps(name, eps):
    if eps <= 0.0:
        raise ValueError(f"[{name}] 'eps' must be positive but got {eps}.")


def _affine(module, x):
    # weight and bias are created together in the layers that use this
    if "weight" in module:
        return module["weight"] * x + module["bias"]
    return x


class InstanceNorm(Module):
    """Normalizes each channel of each sample over its spatial positions; the input is
    (N, ..., C) with at least one spatial dimension. `affine` adds a learned per-channel
    scale (ones) and shift (zeros)."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = False):
        super().__init__()
        _check_eps("InstanceNorm", eps)
        if affine:
            self.weight = mx.ones((dims,))
            self.bias = mx.zeros((dims,))
        self.dims = dims
        self.eps = eps

    def _extra_repr(self):
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim < 3:
            raise ValueError(
                f"InstanceNorm expects inputs with at least 3 dimensions (N, ..., C) "
                f"but the input has {x.ndim} dimensions.")
        shape = x.shape
        # (N, S, C) -> (N, C, S): one layer norm per (sample, channel) row
        y = mx.swapaxes(x.reshape(shape[0], -1, shape[-1]), 1, 2)
        y = mx.fast.layer_norm(y, None, None, self.eps)
        return _affine(self, mx.swapaxes(y, 1, 2).reshape(shape))


class LayerNorm(Module):
    """Normalizes over the last axis (of size `dims`); `affine` adds a learned scale
    (ones) and, with `bias`, a learned shift (zeros)."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = True, bias: bool = True):
        super().__init__()
        _check_eps("LayerNorm", eps)
        if affine:
            self.weight = mx.ones((dims,))
            if bias:
                self.bias = mx.zeros((dims,))
        self.eps = eps
        self.dims = dims

    def _extra_repr(self):
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.layer_norm(x, self.get("weight"), self.get("bias"), self.eps)


class RMSNorm(Module):
    """`x / sqrt(mean(x**2) + eps) * weight` over the last axis; weight starts at ones."""

    def __init__(self, dims: int, eps: float = 1e-5):
        super().__init__()
        _check_eps("RMSNorm", eps)
        self.weight = mx.ones((dims,))
        self.eps = eps

    def _extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}"

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.rms_norm(x, self["weight"], self.eps)


class GroupNorm(Module):
    """Normalizes each sample over its spatial positions and each group of channels.

    Channel c belongs to group `c % num_groups` by default (MLX's layout); with
    `pytorch_compatible` the groups are contiguous runs of `dims // num_groups` channels,
    as in PyTorch.
    """

    def __init__(self, num_groups: int, dims: int, eps: float = 1e-5, affine: bool = True,
                 pytorch_compatible: bool = False):
        super().__init__()
        _check_eps("GroupNorm", eps)
        if num_groups <= 0:
            raise ValueError(
                f"The number of groups ({num_groups}) must be a positive integer.")
        if dims <= 0:
            raise ValueError(
                f"The number of features ({dims}) must be a positive integer.")
        if dims % num_groups != 0:
            raise ValueError(
                f"The number of features ({dims}) must be evenly divisible "
                f"by the number of groups ({num_groups}).")
        if affine:
            self.bias = mx.zeros((dims,))
            self.weight = mx.ones((dims,))
        self.num_groups = num_groups
        self.dims = dims
        self.eps = eps
        self.pytorch_compatible = pytorch_compatible

    def _extra_repr(self):
        return (f"{self.num_groups}, {self.dims}, eps={self.eps}, "
                f"affine={'weight' in self}, pytorch_compatible={self.pytorch_compatible}")

    def __call__(self, x: mx.array) -> mx.array:
        shape = x.shape
        # unpacked as in MLX: fewer than 2 axes raise its ValueError
        batch, *_, dims = shape
        groups = self.num_groups
        if self.pytorch_compatible:
            size = dims // groups
            # (B, S, G, size) -> (B, G, S * size): one layer norm row per group
            y = x.reshape(batch, -1, groups, size).transpose(0, 2, 1, 3)
            y = mx.fast.layer_norm(y.reshape(batch, groups, -1), None, None, self.eps)
            y = y.reshape(batch, groups, -1, size).transpose(0, 2, 1, 3)
        else:
            y = x.reshape(batch, -1, groups)
            mean = mx.mean(y, axis=1, keepdims=True)
            var = mx.var(y, axis=1, keepdims=True)
            y = (y - mean) * mx.rsqrt(var + self.eps)
        return _affine(self, y.reshape(shape))


class BatchNorm(Module):
    """Normalizes each channel (last axis) over the batch and spatial axes of an NC, NLC
    or NHWC input.

    In training the batch statistics are used and, with `track_running_stats`, folded
    into `running_mean` / `running_var` (unbiased) with weight `momentum`; in eval the
    running statistics are used. The running statistics are parameters that always
    stay frozen, so they are saved with the model but never trained.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        _check_eps("BatchNorm", eps)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = mx.ones((num_features,))
            self.bias = mx.zeros((num_features,))
        if track_running_stats:
            self.running_mean = mx.zeros((num_features,))
            self.running_var = mx.ones((num_features,))
            self.freeze(keys=["running_mean", "running_var"], recurse=False)

    def unfreeze(self, *args, **kwargs):
        """Unfreeze as `Module.unfreeze`, except the running statistics."""
        super().unfreeze(*args, **kwargs)
        self.freeze(keys=["running_mean", "running_var"], recurse=False)
        return self

    def _extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={'weight' in self}, track_running_stats={self.track_running_stats}")

    def __call__(self, x: mx.array) -> mx.array:
        ndim = x.ndim
        if ndim < 2 or ndim > 4:
            raise ValueError(
                f"Expected input tensor to have 2, 3 or 4 dimensions, but got {ndim}")
        axes = tuple(range(ndim - 1))
        if self.training:
            n = 1
            for d in x.shape[:-1]:
                n *= d
            if n == 1:
                raise ValueError(
                    "BatchNorm training requires more than one value per channel.")
            mean = mx.mean(x, axis=axes)
            var = mx.var(x, axis=axes)
            if self.track_running_stats:
                mu = self.momentum
                # the unbiased variance from the biased one, without a second reduction
                self.running_mean = (1 - mu) * self["running_mean"] + mu * mean
                self.running_var = (1 - mu) * self["running_var"] + mu * (var * (n / (n - 1)))
        elif self.track_running_stats:
            mean, var = self["running_mean"], self["running_var"]
        else:
            mean = mx.mean(x, axis=axes)
            var = mx.var(x, axis=axes)
        # the weight joins the per-channel factor: one pass less over x
        scale = mx.rsqrt(var + self.eps)
        if "weight" in self:
            return (x - mean) * (self["weight"] * scale) + self["bias"]
        return (x - mean) * scale
