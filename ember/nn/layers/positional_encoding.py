"""Positional encodings: rotary (RoPE), sinusoidal, and ALiBi attention biases."""

import math
from typing import Optional

import ember.core as mx
from ember.nn.layers.base import Module

__all__ = ["RoPE", "SinusoidalPositionalEncoding", "ALiBi"]


class RoPE(Module):
    """Rotary positional encoding of the first `dims` features of the last axis, the
    positions being the second-to-last axis (plus `offset`), each scaled by `scale`.

    `traditional` rotates consecutive pairs of features; the default rotates feature i
    with feature i + dims / 2. Frequencies are `base ** (-2i / dims)`.
    """

    def __init__(self, dims: int, traditional: bool = False, base: float = 10000,
                 scale: float = 1.0):
        super().__init__()
        self.dims = dims
        self.traditional = traditional
        self.base = base
        self.scale = scale

    def _extra_repr(self):
        return f"{self.dims}, traditional={self.traditional}"

    def __call__(self, x: mx.array, offset: int = 0) -> mx.array:
        return mx.fast.rope(x, self.dims, traditional=self.traditional, base=self.base,
                            scale=self.scale, offset=offset)


class SinusoidalPositionalEncoding(Module):
    """Maps each value of the input to `dims` features: the sines then the cosines (or
    the reverse with `cos_first`) of the value times `dims // 2` frequencies spaced
    geometrically from `max_freq` down to `min_freq` (times 2 pi with `full_turns`),
    all multiplied by `scale` (default sqrt(2 / dims))."""

    def __init__(self, dims: int, min_freq: float = 0.0001, max_freq: float = 1,
                 scale: Optional[float] = None, cos_first: bool = False,
                 full_turns: bool = False):
        super().__init__()
        if dims <= 0 or dims % 2 != 0:
            raise ValueError(
                f"[SinusoidalPositionalEncoding] dims must be positive and even but got "
                f"{dims}.")
        half = dims // 2
        # position 1 -> 0 along the frequencies; one frequency only when dims == 2
        t = mx.array([1.0]) if half == 1 else 1 - mx.arange(0, half) / (half - 1)
        lo, hi = math.log(min_freq), math.log(max_freq)
        sigmas = mx.exp(t * (hi - lo) + lo)
        if full_turns:
            sigmas = sigmas * (2 * math.pi)
        # private: a constant, not a parameter
        self._sigmas = sigmas
        self.scale = scale if scale is not None else (2 / dims) ** 0.5
        self.cos_first = cos_first

    def __call__(self, x: mx.array) -> mx.array:
        y = x[..., None] * self["_sigmas"]
        cos, sin = mx.cos(y), mx.sin(y)
        y = mx.concatenate([cos, sin] if self.cos_first else [sin, cos], axis=-1)
        return y * self.scale if self.scale != 1 else y


def _slopes(n):
    # geometric slopes 2^(-8/n), 2^(-16/n), ... for a power of two n; otherwise those of
    # the power of two below, then every other slope of the power of two above
    if math.log2(n).is_integer():
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]
    p = 2 ** math.floor(math.log2(n))
    return _slopes(p) + _slopes(2 * p)[0::2][: n - p]


class ALiBi(Module):
    """Attention with Linear Biases: adds `-slope[h] * |i - j|` to the attention scores
    (batch, heads, queries, keys), with a fixed geometric slope per head."""

    @staticmethod
    def create_alibi_matrix(q_sequence_length: int, k_sequence_length: int,
                            num_heads: int, offset: int = 0,
                            dtype: mx.Dtype = mx.float32) -> mx.array:
        """The (1, num_heads, q_sequence_length - offset, k_sequence_length) biases for
        queries at positions offset .. q_sequence_length - 1."""
        q = mx.arange(offset, q_sequence_length)
        k = mx.arange(0, k_sequence_length)
        distance = -mx.abs(q[:, None] - k[None, :])[None, None]
        slope = ALiBi.create_alibi_slope(num_heads=num_heads, dtype=dtype)
        return (distance * slope).astype(dtype)

    @staticmethod
    def create_alibi_slope(num_heads: int, dtype: mx.Dtype = mx.float32) -> mx.array:
        """The per-head slopes, shaped (num_heads, 1, 1)."""
        return mx.array(_slopes(num_heads), dtype=dtype)[:, None, None]

    def __call__(self, attention_scores: mx.array, offset: int = 0,
                 mask: Optional[mx.array] = None) -> mx.array:
        shape = attention_scores.shape
        bias = ALiBi.create_alibi_matrix(
            q_sequence_length=shape[-2] + offset, k_sequence_length=shape[-1],
            num_heads=shape[1], offset=offset, dtype=attention_scores.dtype)
        if mask is not None:
            bias = bias + mask
        return attention_scores + bias
