"""Initializers of `mlx.nn.init`: each factory returns a function that takes an array and
returns a new array of its shape (the input's values are not used).

They draw from `mx.random` in the same order and with the same shapes as upstream, so a
seeded run gives the same bits as MLX.
"""

import math
from typing import Callable, Literal

import ember.core as mx

__all__ = [
    "constant", "normal", "uniform", "identity", "glorot_normal", "glorot_uniform",
    "he_normal", "he_uniform", "sparse", "orthogonal",
]


def constant(value: float, dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Fill with `value`."""
    def initializer(a: mx.array) -> mx.array:
        return mx.full(a.shape, value, dtype=dtype)
    return initializer


def normal(mean: float = 0.0, std: float = 1.0,
           dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Samples of N(mean, std^2)."""
    def initializer(a: mx.array) -> mx.array:
        return mx.random.normal(shape=a.shape, scale=std, loc=mean, dtype=dtype)
    return initializer


def uniform(low: float = 0.0, high: float = 1.0,
            dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Samples of U[low, high)."""
    def initializer(a: mx.array) -> mx.array:
        return mx.random.uniform(low, high, a.shape, dtype=dtype)
    return initializer


def identity(dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """The identity matrix (the input must be square)."""
    def initializer(arr: mx.array) -> mx.array:
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(
                f"The input array must be a square matrix but got shape {arr.shape}.")
        return mx.eye(n=arr.shape[0], dtype=dtype)
    return initializer


def _fans(x):
    """(fan_in, fan_out) of a weight laid out (out, *receptive field, in)."""
    if x.ndim < 2:
        raise ValueError("Glorot / He initialization requires at least 2 dimensional "
                         f"input but input with {x.ndim} dimensions.")
    receptive = math.prod(x.shape[1:-1])
    return x.shape[-1] * receptive, x.shape[0] * receptive


def _fan(a, mode):
    fan_in, fan_out = _fans(a)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"Invalid mode: {mode}. Valid modes are: fan_in, fan_out")


def glorot_normal(dtype: mx.Dtype = mx.float32) -> Callable[[mx.array, float], mx.array]:
    """Normal with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    def initializer(a: mx.array, gain: float = 1.0) -> mx.array:
        fan_in, fan_out = _fans(a)
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
        return mx.random.normal(shape=a.shape, scale=std, dtype=dtype)
    return initializer


def glorot_uniform(dtype: mx.Dtype = mx.float32) -> Callable[[mx.array, float], mx.array]:
    """Uniform on [-limit, limit], limit = gain * sqrt(6 / (fan_in + fan_out))."""
    def initializer(a: mx.array, gain: float = 1.0) -> mx.array:
        fan_in, fan_out = _fans(a)
        limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return mx.random.uniform(-limit, limit, a.shape, dtype=dtype)
    return initializer


def he_normal(
    dtype: mx.Dtype = mx.float32,
) -> Callable[[mx.array, Literal["fan_in", "fan_out"], float], mx.array]:
    """Normal with std = gain / sqrt(fan), fan picked by `mode` (He et al. 2015)."""
    def initializer(a: mx.array, mode: Literal["fan_in", "fan_out"] = "fan_in",
                    gain: float = 1.0) -> mx.array:
        std = gain / math.sqrt(_fan(a, mode))
        return mx.random.normal(shape=a.shape, scale=std, dtype=dtype)
    return initializer


def he_uniform(
    dtype: mx.Dtype = mx.float32,
) -> Callable[[mx.array, Literal["fan_in", "fan_out"], float], mx.array]:
    """Uniform on [-limit, limit], limit = gain * sqrt(3 / fan), fan picked by `mode`."""
    def initializer(a: mx.array, mode: Literal["fan_in", "fan_out"] = "fan_in",
                    gain: float = 1.0) -> mx.array:
        limit = gain * math.sqrt(3.0 / _fan(a, mode))
        return mx.random.uniform(-limit, limit, a.shape, dtype=dtype)
    return initializer


def sparse(sparsity: float, mean: float = 0.0, std: float = 1.0,
           dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """A 2-D normal(mean, std) matrix with ceil(sparsity * columns) zeros in every row,
    at random columns chosen independently per row (Martens 2010)."""
    def initializer(a: mx.array) -> mx.array:
        if a.ndim != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        num_zeros = int(math.ceil(sparsity * a.shape[1]))
        # a random permutation of the columns of each row; its first entries get zeroed
        order = mx.argsort(mx.random.uniform(shape=a.shape), axis=1)
        w = mx.random.normal(shape=a.shape, scale=std, loc=mean, dtype=dtype)
        # an index assignment, as upstream's (which makes a zero-row array an error)
        w[mx.arange(a.shape[0]).reshape(-1, 1), order[:, :num_zeros]] = 0
        return w
    return initializer


def orthogonal(gain: float = 1.0,
               dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """gain times the leading (rows, cols) block of a random orthogonal matrix (the Q of
    a Gaussian matrix, signs fixed by R's diagonal so it is Haar-distributed)."""
    def initializer(a: mx.array) -> mx.array:
        if a.ndim != 2:
            raise ValueError("Orthogonal initialization requires a 2D array but got"
                             f" a {a.ndim}D array.")
        rows, cols = a.shape
        n = max(rows, cols)
        q, r = mx.linalg.qr(mx.random.normal(shape=(n, n)), stream=mx.cpu)
        q = q * mx.sign(mx.diag(r))
        return (q[:rows, :cols] * gain).astype(dtype)
    return initializer
