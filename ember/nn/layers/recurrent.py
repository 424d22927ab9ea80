"""Recurrent layers: Elman RNN, GRU and LSTM.

Inputs are `NLD` (batched, any number of leading dims) or `LD`; every layer returns the
hidden state of every step (`NLH` or `LH`). A layer runs as one fused node (torch's fused
RNN, see `ember.core.primitives.recurrent`) when its inputs fit; otherwise, and for an
RNN with a nonlinearity other than tanh or relu, it computes the same formula unrolled
step by step.
"""

import math
from typing import Callable, Optional

import ember.core as mx
from ember.core.ops.recurrent import fused, gru_unrolled, lstm_unrolled, rnn_unrolled
from ember.nn.layers.activations import ReLU, Tanh, relu, tanh
from ember.nn.layers.base import Module

__all__ = ["RNN", "GRU", "LSTM"]


def _uniform(scale, shape):
    return mx.random.uniform(low=-scale, high=scale, shape=shape)


def _check_steps(x, wx):
    """MLX projects the input first and then counts the steps with `x.shape[-2]`: a
    1-d input of the right size fails at that count with Python's IndexError (a wrong
    size fails in the projection, as it does here)."""
    if getattr(x, "ndim", None) == 1 and x.shape[0] == wx.shape[1]:
        raise IndexError("tuple index out of range")


def _rnn_kind(act):
    """The fused kernel for nonlinearity `act`, or None (any other callable)."""
    if act is tanh or act is mx.tanh or type(act) is Tanh:
        return "rnn_tanh"
    if act is relu or type(act) is ReLU:
        return "rnn_relu"
    return None


class RNN(Module):
    """Elman recurrent layer: h_{t+1} = nonlinearity(Wxh x_t + Whh h_t + bias).

    Args:
        input_size: feature size D of the input.
        hidden_size: size H of the hidden state.
        bias: whether to add a bias. Default: True.
        nonlinearity: callable applied to each new state; None means `tanh`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: Optional[Callable] = None):
        super().__init__()
        self.nonlinearity = nonlinearity or tanh
        if not callable(self.nonlinearity):
            raise ValueError(f"Nonlinearity must be callable. Current value: {nonlinearity}.")
        # drawn in this order so a seeded init matches upstream's
        scale = 1.0 / math.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.Wxh = _uniform(scale, (hidden_size, input_size))
        self.Whh = _uniform(scale, (hidden_size, hidden_size))
        self.bias = _uniform(scale, (hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wxh.shape[1]}, hidden_size={self.hidden_size}, "
                f"nonlinearity={self.nonlinearity}, bias={self.bias is not None}")

    def __call__(self, x, hidden=None):
        _check_steps(x, self.Wxh)
        act = self.nonlinearity
        kind = _rnn_kind(act)
        if kind is not None:
            y = fused(kind, x, self.Wxh, self.Whh, self.bias, None, hidden)
            if y is not None:
                return y
        return rnn_unrolled(x, self.Wxh, self.Whh, self.bias, hidden, act)


class GRU(Module):
    """Gated recurrent unit. `Wx`/`Wh` stack the r, z, n gates (3H rows); `b` is the
    input-side bias of all gates and `bhn` the hidden-side bias of the n gate.

    Args:
        input_size: feature size D of the input.
        hidden_size: size H of the hidden state.
        bias: whether to use the biases `b` and `bhn`. Default: True.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        scale = 1.0 / math.sqrt(hidden_size)
        self.Wx = _uniform(scale, (3 * hidden_size, input_size))
        self.Wh = _uniform(scale, (3 * hidden_size, hidden_size))
        self.b = _uniform(scale, (3 * hidden_size,)) if bias else None
        self.bhn = _uniform(scale, (hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wx.shape[1]}, hidden_size={self.hidden_size}, "
                f"bias={self.b is not None}")

    def __call__(self, x, hidden=None):
        _check_steps(x, self.Wx)
        y = fused("gru", x, self.Wx, self.Wh, self.b, self.bhn, hidden)
        if y is not None:
            return y
        return gru_unrolled(x, self.Wx, self.Wh, self.b, self.bhn, hidden)


class LSTM(Module):
    """Long short-term memory layer. `Wx`/`Wh` stack the i, f, g, o gates (4H rows).
    Returns (hidden states, cell states), each `NLH` or `LH`.

    Args:
        input_size: feature size D of the input.
        hidden_size: size H of the hidden and cell states.
        bias: whether to add a bias. Default: True.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        scale = 1.0 / math.sqrt(hidden_size)
        self.Wx = _uniform(scale, (4 * hidden_size, input_size))
        self.Wh = _uniform(scale, (4 * hidden_size, hidden_size))
        self.bias = _uniform(scale, (4 * hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wx.shape[1]}, hidden_size={self.hidden_size}, "
                f"bias={self.bias is not None}")

    def __call__(self, x, hidden=None, cell=None):
        _check_steps(x, self.Wx)
        y = fused("lstm", x, self.Wx, self.Wh, self.bias, None, hidden, cell)
        if y is not None:
            return y
        return lstm_unrolled(x, self.Wx, self.Wh, self.bias, hidden, cell)
