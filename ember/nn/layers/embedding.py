"""Embedding: a lookup table from integer ids to vectors."""

import math
from typing import Optional

import ember.core as mx
from ember.nn.layers.base import Module
from ember.nn.layers.quantized import QuantizedEmbedding  # importable from here too, as in MLX

__all__ = ["Embedding"]


class Embedding(Module):
    """Maps each integer in [0, num_embeddings) to a row of `weight`
    (num_embeddings, dims), which starts normal with std 1 / sqrt(dims)."""

    def __init__(self, num_embeddings: int, dims: int):
        super().__init__()
        self.weight = mx.random.normal(shape=(num_embeddings, dims),
                                       scale=math.sqrt(1 / dims))

    def _extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"

    def __call__(self, x):
        return self["weight"][x]

    def as_linear(self, x):
        """`x @ weight.T`: the table used as an output projection (tied embeddings)."""
        return x @ self["weight"].T

    def to_quantized(self, group_size: Optional[int] = None, bits: Optional[int] = None,
                     mode: str = "affine", quantize_input: bool = False):
        """A QuantizedEmbedding copy of this layer."""
        if quantize_input:
            raise ValueError("Quantized input is not supported.")
        return QuantizedEmbedding.from_embedding(self, group_size, bits, mode)
