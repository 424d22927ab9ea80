"""Quantized layers (weights packed by `mx.quantize`) and `quantize`, which swaps a model's
quantizable leaf modules for their quantized versions in place."""

import math
from typing import Callable, Optional, Union

import ember.core as mx
from ember.nn.layers.base import Module
from ember.utils import tree_map_with_path

__all__ = ["QQLinear", "QuantizedEmbedding", "QuantizedLinear", "quantize"]

# mode -> (group_size, bits) used when the caller passes None
_MODE_DEFAULTS = {
    "affine": (64, 4),
    "mxfp4": (32, 4),
    "nvfp4": (16, 4),
    "mxfp8": (32, 8),
}


def _defaults_for_mode(mode, group_size, bits):
    if mode not in _MODE_DEFAULTS:
        raise ValueError(f"Invalid quantization mode '{mode}'. "
                         f"Valid modes are: {', '.join(_MODE_DEFAULTS)}.")
    dg, db = _MODE_DEFAULTS[mode]
    return group_size or dg, bits or db


def _set_quantized(layer, weight, group_size, bits, mode):
    """Store weight's packed form, scales and (affine mode only) biases on `layer`."""
    layer.weight, layer.scales, *biases = mx.quantize(weight, group_size, bits, mode=mode)
    layer.biases = biases[0] if biases else None


def quantize(model: Module, group_size: int = None, bits: int = None, *,
             mode: str = "affine", quantize_input: bool = False,
             class_predicate: Optional[Callable[[str, Module], Union[bool, dict]]] = None):
    """Replace, in place, every leaf module of `model` that `class_predicate(path, module)`
    selects (by default: every one with a `to_quantized` method) by
    `module.to_quantized(...)`. The predicate may return a dict of keyword arguments for
    `to_quantized` instead of True."""
    class_predicate = class_predicate or (lambda _, m: hasattr(m, "to_quantized"))

    def maybe_quantize(path, m):
        chosen = class_predicate(path, m)
        if not chosen:
            return m
        if not hasattr(m, "to_quantized"):
            raise ValueError(f"Unable to quantize model of type {type(m)}")
        if isinstance(chosen, bool):
            kwargs = {"group_size": group_size, "bits": bits, "mode": mode}
            if quantize_input:
                kwargs["quantize_input"] = quantize_input
            return m.to_quantized(**kwargs)
        if isinstance(chosen, dict):
            # a False quantize_input is dropped so layers without that argument accept it
            if "quantize_input" in chosen and not chosen["quantize_input"]:
                chosen.pop("quantize_input")
            return m.to_quantized(**chosen)
        raise ValueError("``class_predicate`` must return a bool"
                         " or a dict of parameters to pass to ``to_quantized``")

    leaves = tree_map_with_path(maybe_quantize, model.leaf_modules(), is_leaf=Module.is_module)
    model.update_modules(leaves)


class QuantizedEmbedding(Module):
    """An `Embedding` whose table is quantized; its parameters are frozen.

    Args:
        num_embeddings: vocabulary size.
        dims: embedding size.
        group_size, bits: quantization settings (None: the mode's defaults).
        mode: "affine", "mxfp4", "nvfp4" or "mxfp8". Default: "affine".
    """

    def __init__(self, num_embeddings: int, dims: int, group_size: int = None,
                 bits: int = None, mode: str = "affine"):
        super().__init__()
        self.group_size, self.bits = _defaults_for_mode(mode, group_size, bits)
        self.mode = mode
        weight = mx.random.normal(shape=(num_embeddings, dims), scale=math.sqrt(1 / dims))
        _set_quantized(self, weight, group_size, bits, mode)
        self.num_embeddings = num_embeddings
        self.dims = dims
        self.freeze()

    def __call__(self, x):
        biases = self.get("biases")
        return mx.dequantize(self["weight"][x], scales=self["scales"][x],
                             biases=None if biases is None else biases[x],
                             group_size=self.group_size, bits=self.bits, mode=self.mode)

    def as_linear(self, x):
        """x times the transposed table (for output projections tied to the embedding)."""
        return mx.quantized_matmul(x, self["weight"], scales=self["scales"],
                                   biases=self.get("biases"), transpose=True,
                                   group_size=self.group_size, bits=self.bits, mode=self.mode)

    def _extra_repr(self):
        return (f"{self.num_embeddings}, {self.dims}, group_size={self.group_size}, "
                f"bits={self.bits}, mode={self.mode}")

    @classmethod
    def from_embedding(cls, embedding_layer: Module, group_size: int = None,
                       bits: int = None, mode: str = "affine"):
        """A `QuantizedEmbedding` approximating `embedding_layer`."""
        num, dims = embedding_layer.weight.shape
        # the constructor's random table stays lazy and is never computed
        ql = cls(num, dims, group_size, bits, mode=mode)
        _set_quantized(ql, embedding_layer.weight, group_size, bits, mode)
        return ql


class QuantizedLinear(Module):
    """A `Linear` whose weight is quantized; weight, scales, biases (and the bias, when
    built directly) are frozen.

    Args:
        input_dims, output_dims: feature sizes.
        bias: whether to add a bias. Default: True.
        group_size, bits: quantization settings (None: the mode's defaults).
        mode: "affine", "mxfp4", "nvfp4" or "mxfp8". Default: "affine".
    """

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True,
                 group_size: int = None, bits: int = None, mode: str = "affine"):
        super().__init__()
        self.group_size, self.bits = _defaults_for_mode(mode, group_size, bits)
        self.mode = mode
        scale = math.sqrt(1 / input_dims)
        weight = mx.random.uniform(low=-scale, high=scale, shape=(output_dims, input_dims))
        _set_quantized(self, weight, group_size, bits, mode)
        if bias:
            self.bias = mx.zeros((output_dims,))
        self.freeze()

    def _extra_repr(self):
        out_dims, in_dims = self.weight.shape
        in_dims = (in_dims * 32) // self.bits
        return (f"input_dims={in_dims}, output_dims={out_dims}, bias={'bias' in self}, "
                f"group_size={self.group_size}, bits={self.bits}, mode={self.mode}")

    def __call__(self, x):
        x = mx.quantized_matmul(x, self["weight"], scales=self["scales"],
                                biases=self.get("biases"), transpose=True,
                                group_size=self.group_size, bits=self.bits, mode=self.mode)
        if "bias" in self:
            x = x + self["bias"]
        return x

    @classmethod
    def from_linear(cls, linear_layer: Module, group_size: int = None, bits: int = None,
                    mode: str = "affine"):
        """A `QuantizedLinear` approximating `linear_layer`; its bias (if any) is copied
        and stays trainable."""
        output_dims, input_dims = linear_layer.weight.shape
        ql = cls(input_dims, output_dims, False, group_size, bits, mode=mode)
        _set_quantized(ql, linear_layer.weight, group_size, bits, mode)
        if "bias" in linear_layer:
            ql.bias = linear_layer.bias
        return ql


class QQLinear(Module):
    """A bias-free linear layer that quantizes its input as well as its weight
    (`mx.qqmm`). In training mode the weight is kept in full precision (and is trainable);
    `eval()` quantizes it, `train()` dequantizes it back.

    Args:
        input_dims, output_dims: feature sizes.
        group_size, bits: quantization settings (None: the mode's defaults).
        mode: "nvfp4" or "mxfp8". Default: "nvfp4".
    """

    def __init__(self, input_dims: int, output_dims: int, group_size: int = None,
                 bits: int = None, mode: str = "nvfp4"):
        super().__init__()
        self.group_size, self.bits = _defaults_for_mode(mode, group_size, bits)
        self.mode = mode
        scale = math.sqrt(1 / input_dims)
        self.weight = mx.random.uniform(low=-scale, high=scale,
                                        shape=(output_dims, input_dims))
        self._quantized = False

    def _extra_repr(self):
        out_dims, in_dims = self.weight.shape
        if self.weight.dtype == mx.uint32:
            in_dims = (in_dims * 32) // self.bits
        return (f"input_dims={in_dims}, output_dims={out_dims}, "
                f"group_size={self.group_size}, bits={self.bits}, mode={self.mode}")

    def quantize(self):
        """Pack the weight (no-op when already packed)."""
        if not self._quantized:
            self.weight, self.scales = mx.quantize(self.weight, self.group_size, self.bits,
                                                   mode=self.mode)
            self._quantized = True

    def dequantize(self):
        """Unpack the weight back to floating point (no-op when not packed)."""
        if self._quantized:
            self.weight = mx.dequantize(self.weight, scales=self.scales,
                                        group_size=self.group_size, bits=self.bits,
                                        mode=self.mode)
            del self.scales
            self._quantized = False

    def _set_training_mode(self, mode: bool):
        super()._set_training_mode(mode)
        if self._training:
            self.dequantize()
        else:
            self.quantize()

    def __call__(self, x):
        return mx.qqmm(x, self["weight"], scales=self.get("scales"),
                       group_size=self.group_size, bits=self.bits, mode=self.mode)

    @classmethod
    def from_linear(cls, linear_layer: Module, group_size: int = None, bits: int = None,
                    mode: str = "nvfp4"):
        """A `QQLinear` sharing `linear_layer`'s weight (which must have no bias), in the
        same training mode."""
        output_dims, input_dims = linear_layer.weight.shape
        if linear_layer.get("bias") is not None:
            raise NotImplementedError("QQLinear does not support bias yet.")
        ql = cls(input_dims, output_dims, group_size, bits, mode=mode)
        ql.weight = linear_layer.weight
        ql.train(linear_layer.training)
        return ql
