"""Recurrent layers: Elman RNN, GRU and LSTM, unrolled in Python over the sequence axis.

Inputs are `NLD` (batched) or `LD`; every layer returns the hidden state of every step
(`NLH` or `LH`). The input projection of the whole sequence is one matmul up front, so
each step only multiplies the hidden state.
"""

import math
from typing import Callable, Optional

import ember.core as mx
from ember.nn.layers.activations import tanh
from ember.nn.layers.base import Module

__all__ = ["RNN", "GRU", "LSTM"]


def _uniform(scale, shape):
    return mx.random.uniform(low=-scale, high=scale, shape=shape)


def _steps(x):
    """The time steps of an `NLD` or `LD` array: iterating over the time axis moved to
    the front takes all of them from one node, instead of one slice per step."""
    return mx.moveaxis(x, -2, 0)


def _project(x, w, b):
    """x @ w.T (+ b) for the whole sequence at once."""
    return x @ w.T if b is None else mx.addmm(b, x, w.T)


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
        x = _project(x, self.Wxh, self.bias)
        whh_t = self.Whh.T
        act = self.nonlinearity
        out = []
        for xt in _steps(x):
            hidden = act(xt if hidden is None else mx.addmm(xt, hidden, whh_t))
            out.append(hidden)
        return mx.stack(out, axis=-2)


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
        H = self.hidden_size
        x = _project(x, self.Wx, self.b)
        x_rz, x_n = x[..., :-H], x[..., -H:]
        wh_t = self.Wh.T
        bhn = self.bhn
        out = []
        for rz, n in zip(_steps(x_rz), _steps(x_n)):
            if hidden is None:
                # no previous state: its projection is zero, only bhn remains
                r, z = mx.split(mx.sigmoid(rz), 2, axis=-1)
                if bhn is not None:
                    n = n + r * bhn
                hidden = (1 - z) * mx.tanh(n)
            else:
                h_proj = hidden @ wh_t
                h_n = h_proj[..., -H:]
                if bhn is not None:
                    h_n = h_n + bhn
                r, z = mx.split(mx.sigmoid(rz + h_proj[..., :-H]), 2, axis=-1)
                n = mx.tanh(n + r * h_n)
                hidden = (1 - z) * n + z * hidden
            out.append(hidden)
        return mx.stack(out, axis=-2)


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
        x = _project(x, self.Wx, self.bias)
        wh_t = self.Wh.T
        hs, cs = [], []
        for ifgo in _steps(x):
            if hidden is not None:
                ifgo = mx.addmm(ifgo, hidden, wh_t)
            i, f, g, o = mx.split(ifgo, 4, axis=-1)
            i = mx.sigmoid(i)
            f = mx.sigmoid(f)
            g = mx.tanh(g)
            o = mx.sigmoid(o)
            cell = i * g if cell is None else f * cell + i * g
            hidden = o * mx.tanh(cell)
            hs.append(hidden)
            cs.append(cell)
        return mx.stack(hs, axis=-2), mx.stack(cs, axis=-2)
