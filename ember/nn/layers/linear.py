"""Affine layers: Identity, Linear, Bilinear."""

import math
from typing import Any, Optional

import ember.core as mx
from ember.core.primitives.linalg import linear as _linear
from ember.nn.layers.base import Module
from ember.nn.layers.quantized import QQLinear, QuantizedLinear  # (as in MLX)

__all__ = ["Identity", "Linear", "Bilinear"]


class Identity(Module):
    """Returns its input; any constructor arguments are ignored."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __call__(self, x: mx.array) -> mx.array:
        return x


class Linear(Module):
    """`y = x @ weight.T + bias`, with `weight` of shape (output_dims, input_dims).

    Weight and bias start uniform in [-k, k], k = 1 / sqrt(input_dims).
    """

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True) -> None:
        super().__init__()
        k = math.sqrt(1.0 / input_dims)
        self.weight = mx.random.uniform(low=-k, high=k, shape=(output_dims, input_dims))
        if bias:
            self.bias = mx.random.uniform(low=-k, high=k, shape=(output_dims,))

    def _extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"input_dims={inp}, output_dims={out}, bias={'bias' in self}"

    def __call__(self, x: mx.array) -> mx.array:
        # item access skips Module.__getattr__; one node for upstream's
        # addmm(bias, x, weight.T), with no transposes of the weight or its gradient
        return _linear(x, self["weight"], self["bias"] if "bias" in self else None)

    def to_quantized(self, group_size: Optional[int] = None, bits: Optional[int] = None,
                     mode: str = "affine", quantize_input: bool = False):
        """A quantized copy of this layer: QuantizedLinear, or QQLinear (weights and
        inputs quantized, for the "nvfp4" and "mxfp8" modes) when `quantize_input`."""
        if quantize_input:
            if mode not in ("nvfp4", "mxfp8"):
                raise ValueError(
                    "Quantized activations are only supported for 'nvfp4' and 'mxfp8' "
                    f"modes, got {mode}.")
            return QQLinear.from_linear(self, group_size, bits, mode)
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class Bilinear(Module):
    """`y[..., i] = x2 @ weight[i] @ x1 + bias[i]`, with `weight` of shape
    (output_dims, input2_dims, input1_dims).

    Weight and bias start uniform in [-k, k], k = 1 / sqrt(input1_dims).
    """

    def __init__(self, input1_dims: int, input2_dims: int, output_dims: int,
                 bias: bool = True) -> None:
        super().__init__()
        k = math.sqrt(1.0 / input1_dims)
        self.weight = mx.random.uniform(
            low=-k, high=k, shape=(output_dims, input2_dims, input1_dims))
        if bias:
            self.bias = mx.random.uniform(low=-k, high=k, shape=(output_dims,))

    def _extra_repr(self) -> str:
        out, in2, in1 = self.weight.shape
        return (f"input1_dims={in1}, input2_dims={in2}, output_dims={out}, "
                f"bias={'bias' in self}")

    def __call__(self, x1: mx.array, x2: mx.array) -> mx.array:
        w = self["weight"]
        out, in2, in1 = w.shape
        lead = x1.shape[:-1]
        # two matmuls: contract x1 against every (i, j) row of the weight, then x2
        # (reshaped as upstream's, so that bad shapes raise the same message)
        x1 = x1.reshape(-1, in1)
        x2 = x2.reshape(-1, 1, in2)
        t = (x1 @ w.reshape(out * in2, in1).T).reshape(-1, out, in2)
        if x1.shape[0] == x2.shape[0]:
            y = t @ x2.reshape(-1, in2, 1)  # untransposed: a faster backward
        else:  # one side broadcast, or a mismatch
            y = x2 @ t.swapaxes(-2, -1)
        y = y.reshape(*lead, out)
        if "bias" in self:
            y = y + self["bias"]
        return y
