"""Multi-head attention and the encoder-decoder Transformer built from it.

Encoder and decoder layers come in two flavours: `norm_first=True` (pre-norm: each block is
`x + f(norm(x))`) and `norm_first=False` (post-norm: `norm(x + f(x))`).
"""

import math
from typing import Any, Callable, Optional

import ember.core as mx
from ember.core.primitives.shape import merge_heads, split_heads
from ember.nn.layers._naming import own_methods
from ember.nn.layers.activations import relu
from ember.nn.layers.base import Module
from ember.nn.layers.dropout import Dropout
from ember.nn.layers.linear import Linear
from ember.nn.layers.normalization import LayerNorm
from ember.nn.utils import checkpoint

__all__ = ["MultiHeadAttention", "TransformerEncoderLayer", "TransformerEncoder",
           "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]


class MultiHeadAttention(Module):
    """Scaled dot-product attention over `num_heads` heads, with linear projections of the
    queries, keys, values and output (bias-free unless `bias`).

    Inputs are (batch, length, features). `mask` is an additive mask broadcastable to
    (batch, heads, queries, keys) (or anything `mx.fast.scaled_dot_product_attention`
    accepts).

    Args:
        dims: model size; projected queries and keys have this size.
        num_heads: number of heads (must divide `dims`).
        query_input_dims, key_input_dims: input sizes (default `dims`).
        value_input_dims: value input size (default `key_input_dims`).
        value_dims: projected value size (default `dims`).
        value_output_dims: output size (default `dims`).
        bias: whether the projections have biases. Default: False.
    """

    def __init__(self, dims: int, num_heads: int, query_input_dims: Optional[int] = None,
                 key_input_dims: Optional[int] = None, value_input_dims: Optional[int] = None,
                 value_dims: Optional[int] = None, value_output_dims: Optional[int] = None,
                 bias: bool = False):
        super().__init__()
        if dims % num_heads != 0:
            raise ValueError("The input feature dimensions should be divisible by the "
                             f"number of heads ({dims} % {num_heads}) != 0")
        query_input_dims = query_input_dims or dims
        key_input_dims = key_input_dims or dims
        value_input_dims = value_input_dims or key_input_dims
        value_dims = value_dims or dims
        value_output_dims = value_output_dims or dims

        self.num_heads = num_heads
        self.query_proj = Linear(query_input_dims, dims, bias=bias)
        self.key_proj = Linear(key_input_dims, dims, bias=bias)
        self.value_proj = Linear(value_input_dims, value_dims, bias=bias)
        self.out_proj = Linear(value_dims, value_output_dims, bias=bias)

    def __call__(self, queries, keys, values, mask=None):
        h = self.num_heads
        # (B, L, h * d) -> (B, h, L, d): unflatten and transpose, as one node
        q = split_heads(self.query_proj(queries), h)
        k = split_heads(self.key_proj(keys), h)
        v = split_heads(self.value_proj(values), h)
        out = mx.fast.scaled_dot_product_attention(
            q, k, v, scale=math.sqrt(1 / q.shape[-1]), mask=mask)
        return self.out_proj(merge_heads(out))

    @staticmethod
    def create_additive_causal_mask(N: int, dtype: mx.Dtype = mx.float32):
        """(N, N) mask: 0 on and below the diagonal, the dtype's lowest value above it."""
        idx = mx.arange(N)
        return (idx[:, None] < idx[None]).astype(dtype) * mx.finfo(dtype).min


def _maybe_checkpoint(layer, enabled):
    return checkpoint(layer) if enabled else layer


class TransformerEncoderLayer(Module):
    """Self-attention block then MLP block (`dims -> mlp_dims -> dims`, default
    `mlp_dims = 4 * dims`), each with a residual connection, layer norm and dropout."""

    def __init__(self, dims: int, num_heads: int, mlp_dims: Optional[int] = None,
                 dropout: float = 0.0, activation: Callable[[Any], Any] = relu,
                 norm_first: bool = True):
        super().__init__()
        mlp_dims = mlp_dims or dims * 4
        self.attention = MultiHeadAttention(dims, num_heads)
        self.ln1 = LayerNorm(dims)
        self.ln2 = LayerNorm(dims)
        self.linear1 = Linear(dims, mlp_dims)
        self.linear2 = Linear(mlp_dims, dims)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = activation
        self.norm_first = norm_first

    def _mlp(self, x):
        return self.linear2(self.dropout2(self.activation(self.linear1(x))))

    def __call__(self, x, mask):
        if self.norm_first:
            y = self.ln1(x)
            x = x + self.dropout1(self.attention(y, y, y, mask))
            return x + self._mlp(self.ln2(x))
        x = self.ln1(x + self.dropout1(self.attention(x, x, x, mask)))
        return self.ln2(x + self._mlp(x))


class _Stack(Module):
    """`num_layers` layers of type `_layer` followed by a final layer norm; `checkpoint`
    recomputes each layer in the backward pass to save memory."""

    _layer: type

    def __init__(self, num_layers: int, dims: int, num_heads: int,
                 mlp_dims: Optional[int] = None, dropout: float = 0.0, activation=relu,
                 norm_first: bool = True, checkpoint: bool = False):
        super().__init__()
        self.layers = [self._layer(dims, num_heads, mlp_dims, dropout, activation, norm_first)
                       for _ in range(num_layers)]
        self.ln = LayerNorm(dims)
        self.checkpoint = checkpoint


@own_methods("__init__")
class TransformerEncoder(_Stack):
    """A stack of `TransformerEncoderLayer`s; see `_Stack`."""

    _layer = TransformerEncoderLayer

    def __call__(self, x, mask):
        for layer in self.layers:
            x = _maybe_checkpoint(layer, self.checkpoint)(x, mask)
        return self.ln(x)


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over `memory`, then MLP block, each with a residual
    connection, layer norm and dropout."""

    def __init__(self, dims: int, num_heads: int, mlp_dims: Optional[int] = None,
                 dropout: float = 0.0, activation: Callable[[Any], Any] = relu,
                 norm_first: bool = True):
        super().__init__()
        mlp_dims = mlp_dims or dims * 4
        self.self_attention = MultiHeadAttention(dims, num_heads)
        self.cross_attention = MultiHeadAttention(dims, num_heads)
        self.ln1 = LayerNorm(dims)
        self.ln2 = LayerNorm(dims)
        self.ln3 = LayerNorm(dims)
        self.linear1 = Linear(dims, mlp_dims)
        self.linear2 = Linear(mlp_dims, dims)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = activation
        self.norm_first = norm_first

    def _mlp(self, x):
        return self.linear2(self.dropout3(self.activation(self.linear1(x))))

    def __call__(self, x, memory, x_mask, memory_mask):
        if self.norm_first:
            y = self.ln1(x)
            x = x + self.dropout1(self.self_attention(y, y, y, x_mask))
            y = self.ln2(x)
            x = x + self.dropout2(self.cross_attention(y, memory, memory, memory_mask))
            return x + self._mlp(self.ln3(x))
        x = self.ln1(x + self.dropout1(self.self_attention(x, x, x, x_mask)))
        x = self.ln2(x + self.dropout2(self.cross_attention(x, memory, memory, memory_mask)))
        return self.ln3(x + self._mlp(x))


@own_methods("__init__")
class TransformerDecoder(_Stack):
    """A stack of `TransformerDecoderLayer`s; see `_Stack`."""

    _layer = TransformerDecoderLayer

    def __call__(self, x, memory, x_mask, memory_mask):
        for layer in self.layers:
            x = _maybe_checkpoint(layer, self.checkpoint)(x, memory, x_mask, memory_mask)
        return self.ln(x)


class Transformer(Module):
    """Encoder-decoder Transformer ("Attention Is All You Need").

    Args:
        dims: model size. Default: 512.
        num_heads: attention heads. Default: 8.
        num_encoder_layers, num_decoder_layers: depths. Default: 6 each.
        mlp_dims: hidden size of the MLP blocks (default `4 * dims`).
        dropout: dropout after attention and in the MLP. Default: 0.0.
        activation: MLP activation. Default: `relu`.
        custom_encoder, custom_decoder: modules used instead of the standard ones.
        norm_first: pre-norm (True) or post-norm layers. Default: True.
        checkpoint: recompute layers in the backward pass. Default: False.
    """

    def __init__(self, dims: int = 512, num_heads: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, mlp_dims: Optional[int] = None,
                 dropout: float = 0.0, activation: Callable[[Any], Any] = relu,
                 custom_encoder: Optional[Any] = None, custom_decoder: Optional[Any] = None,
                 norm_first: bool = True, checkpoint: bool = False):
        super().__init__()
        args = (dims, num_heads, mlp_dims, dropout, activation, norm_first, checkpoint)
        # built in this order (encoder first) so a seeded init matches upstream's
        self.encoder = (custom_encoder if custom_encoder is not None
                        else TransformerEncoder(num_encoder_layers, *args))
        self.decoder = (custom_decoder if custom_decoder is not None
                        else TransformerDecoder(num_decoder_layers, *args))

    def __call__(self, src, tgt, src_mask, tgt_mask, memory_mask):
        memory = self.encoder(src, src_mask)
        return self.decoder(tgt, memory, tgt_mask, memory_mask)
