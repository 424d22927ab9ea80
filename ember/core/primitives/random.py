"""Random primitives: `RandomBits` (Threefry-keyed bits, the root of all of `mx.random`),
samplers that fuse the first ops over the bits into one node on the host (`Uniform`,
`Gumbel`, `Laplace`, `Bernoulli`; `StandardNormal` on both devices), and the two helpers
the distributions need that have no public op: a right/left searchsorted (inverse-CDF
sampling) and the covariance square root U·sqrt(S)·Vᵀ (multivariate normal).

Distributions are compositions of ordinary ops over these, so their derivatives with
respect to the distribution parameters come from those ops; the bits themselves have no
derivative (as upstream, asking for one raises).
"""

import sys

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _R():
    return sys.modules["ember.core.random"]


class RandomBits(Primitive):
    """Random words of `width` bytes: keys (..., 2) uint32 -> (...,) + shape."""

    __slots__ = ("shape", "width")
    name = "RandomBits"

    def __init__(self, shape, width):
        self.shape, self.width = shape, width

    def params(self):
        return (self.shape, self.width)

    def vmap(self, inputs, axes):
        # batched keys give one independent block per key, the batch first
        keys = to_front(inputs[0], axes[0])
        return [_R()._bits_node(keys, self.shape, self.width, keys._stream)], [0]


class Uniform(Primitive):
    """Uniform samples of `dtype` from keys (..., 2) -> (...,) + shape, in one node as
    `uniform` composes them from ops: each bits word over 2^32, below 1 in `dtype`, then
    (`span` not None) lo + span · u in float32 (host only: on CUDA the composite runs)."""

    __slots__ = ("shape", "dtype", "lo", "span")
    name = "Uniform"

    def __init__(self, shape, dtype, lo=None, span=None):
        self.shape, self.dtype, self.lo, self.span = shape, dtype, lo, span

    def params(self):
        return (self.shape, self.dtype, self.lo, self.span)

    def vmap(self, inputs, axes):
        keys = to_front(inputs[0], axes[0])
        return [_R()._unit_node(keys, self, keys._stream)], [0]


class Gumbel(Uniform):
    """-log(-log(u)) of `Uniform`'s samples, as `gumbel` composes it (host only)."""

    __slots__ = ()
    name = "Gumbel"


class Laplace(Uniform):
    """sign(u) · log1p(-|u|) of `Uniform`'s samples in (-1, 1), as `laplace` composes it
    (host only)."""

    __slots__ = ()
    name = "Laplace"


class Bernoulli(Primitive):
    """bool samples from keys (..., 2) -> (...,) + shape: each bits word, in float32 as
    `bernoulli` compares it, below `threshold` (a float32 value), in one node (host only)."""

    __slots__ = ("shape", "threshold")
    name = "Bernoulli"
    dtype = D.bool_

    def __init__(self, shape, threshold):
        self.shape, self.threshold = shape, threshold

    def params(self):
        return (self.shape, self.threshold)

    vmap = Uniform.vmap


class StandardNormal(Primitive):
    """float32 N(0, 1) samples of `shape` from one key (2,): sqrt(2)·erfinv of the uniform
    (-1, 1) value of each bits word, as `normal` composes it from ops, fused into one kernel
    (one pass on CUDA instead of eight)."""

    __slots__ = ("shape",)
    name = "StandardNormal"

    def __init__(self, shape):
        self.shape = shape

    def params(self):
        return (self.shape,)

    def vmap(self, inputs, axes):
        keys = to_front(inputs[0], axes[0])
        bits = _R()._bits_node(keys, self.shape, 4, keys._stream)
        return [_R()._normal_of_bits(bits, keys._stream)], [0]


class SearchSorted(Primitive):
    """Insertion indices (int64) of values into seq, sorted along its last axis.

    seq has shape L + (n,); values have shape L + rest, one search per leading index."""

    __slots__ = ("right",)
    name = "SearchSorted"

    def __init__(self, right):
        self.right = right

    def params(self):
        return (self.right,)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.zeros_like(primals[i]) for i in argnums]

    def jvp(self, primals, tangents, argnums):
        return [O.zeros_like(_R()._searchsorted(primals[0], primals[1], self.right))]

    def vmap(self, inputs, axes):
        seq, values = inputs
        sa, va = axes
        if sa is None and seq.ndim == 1:
            return [_R()._searchsorted(seq, values, self.right)], [va]
        n = (seq if sa is not None else values).shape[sa if sa is not None else va]
        seq, values = (to_front(x, ax) if ax is not None
                       else O.broadcast_to(O.expand_dims(x, 0), (n,) + x.shape)
                       for x, ax in zip((seq, values), (sa, va)))
        return [_R()._searchsorted(seq, values, self.right)], [0]


class CovSqrt(Primitive):
    """U·sqrt(S)·Vᵀ of the SVD of each trailing (n, n) matrix."""

    __slots__ = ()
    name = "CovSqrt"

    def vmap(self, inputs, axes):
        cov = to_front(inputs[0], axes[0])
        return [_R()._cov_sqrt(cov)], [0]
