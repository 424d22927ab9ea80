"""Whole recurrent layers (Elman RNN, GRU, LSTM) as one node each.

`Recurrent` runs a layer over the whole sequence in one kernel (torch's fused RNN: cuDNN
on CUDA); its vjp is one `RecurrentVJP` node (torch's fused backward). Both also know
their outputs as a formula in Ember's ops (`math`, the step-by-step unrolling that
upstream's layers compute), which gives their jvp, their vmap where the weights are
batched, and higher derivatives.

Layout: x is (N, L, D), weights are MLX's: Wx (G*H, D), Wh (G*H, H) with G = 1, 3 (r, z,
n) or 4 (i, f, g, o) -- torch's gate orders --, the input-side bias b (G*H), GRU's
hidden-side bias of the n gate bhn (H), initial states (N, H). Outputs are the hidden
state of every step, (N, L, H). An LSTM is two nodes: its hidden states ("lstm"), and
its cell states ("lstm_cells") recomputed from them in one pass of matmuls and a short
scan, so a caller that never reads the cells never computes them.
"""

import ember.core.ops as O
from ember.core.array import node, nodes
from ember.core.primitives.fast_grad import Composite, _fill
from ember.core.primitives.vmap import to_front

KINDS = ("rnn_tanh", "rnn_relu", "gru", "lstm", "lstm_cells")
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4, "lstm_cells": 4}


# -- the unrolled formulas (any leading dims; hidden / cell None means zeros) -------------

def _steps(x):
    """The time steps of a (..., L, F) array, all taken from one node."""
    return O.moveaxis(x, -2, 0)


def _project(x, w, b):
    """x @ w.T (+ b) for the whole sequence at once."""
    return x @ w.T if b is None else O.addmm(b, x, w.T)


def relu(v):
    return O.maximum(v, 0)


def rnn_unrolled(x, wxh, whh, bias, hidden, act):
    """Elman RNN: h = act(Wxh x_t + bias + Whh h)."""
    x = _project(x, wxh, bias)
    whh_t = whh.T
    out = []
    for xt in _steps(x):
        hidden = act(xt if hidden is None else O.addmm(xt, hidden, whh_t))
        out.append(hidden)
    return O.stack(out, axis=-2)


def gru_unrolled(x, wx, wh, b, bhn, hidden):
    H = wh.shape[-1]
    x = _project(x, wx, b)
    x_rz, x_n = x[..., :-H], x[..., -H:]
    wh_t = wh.T
    out = []
    for rz, n in zip(_steps(x_rz), _steps(x_n)):
        if hidden is None:
            # no previous state: its projection is zero, only bhn remains
            r, z = O.split(O.sigmoid(rz), 2, axis=-1)
            if bhn is not None:
                n = n + r * bhn
            hidden = (1 - z) * O.tanh(n)
        else:
            h_proj = hidden @ wh_t
            h_n = h_proj[..., -H:]
            if bhn is not None:
                h_n = h_n + bhn
            r, z = O.split(O.sigmoid(rz + h_proj[..., :-H]), 2, axis=-1)
            n = O.tanh(n + r * h_n)
            hidden = (1 - z) * n + z * hidden
        out.append(hidden)
    return O.stack(out, axis=-2)


def lstm_unrolled(x, wx, wh, bias, hidden, cell):
    """(hidden states, cell states)."""
    x = _project(x, wx, bias)
    wh_t = wh.T
    hs, cs = [], []
    for ifgo in _steps(x):
        if hidden is not None:
            ifgo = O.addmm(ifgo, hidden, wh_t)
        i, f, g, o = O.split(ifgo, 4, axis=-1)
        i = O.sigmoid(i)
        f = O.sigmoid(f)
        g = O.tanh(g)
        o = O.sigmoid(o)
        cell = i * g if cell is None else f * cell + i * g
        hidden = o * O.tanh(cell)
        hs.append(hidden)
        cs.append(cell)
    return O.stack(hs, axis=-2), O.stack(cs, axis=-2)


def lstm_cells(x, wx, wh, bias, hidden, cell, hs):
    """The cell states of an LSTM from its hidden states `hs` (..., L, H): the gates of
    every step in one matmul each, then the scan c = f * c + i * g."""
    H = wh.shape[-1]
    k = 3 * H  # i, f, g: the o gate plays no part in the cells
    prev = hs[..., :-1, :]
    if hidden is not None:
        prev = O.concatenate([O.expand_dims(hidden, -2), prev], axis=-2)
    gates = _project(x, wx[:k], None if bias is None else bias[:k])
    hg = prev @ wh[:k].T
    if hidden is None:  # the first step has no previous state
        hg = O.concatenate([O.zeros_like(gates[..., :1, :]), hg], axis=-2)
    i, f, g = O.split(gates + hg, 3, axis=-1)
    u = O.sigmoid(i) * O.tanh(g)
    f = O.sigmoid(f)
    out = []
    for ft, ut in zip(_steps(f), _steps(u)):
        cell = ut if cell is None else ft * cell + ut
        out.append(cell)
    return O.stack(out, axis=-2)


# -- the primitives ---------------------------------------------------------------------

class Recurrent(Composite):
    """One recurrent layer over a whole sequence. Inputs: x, Wx, Wh, then b if `has_b`,
    bhn if `has_bhn` (GRU), h0 if `has_h`, c0 if `has_c` (LSTM), hs ("lstm_cells": the
    hidden states). `save` holds the argnums a vjp asked for before the forward ran: the
    kernel then keeps torch's autograd state for the backward."""

    __slots__ = ("kind", "has_b", "has_bhn", "has_h", "has_c", "save")
    name = "Recurrent"

    def __init__(self, kind, has_b, has_bhn, has_h, has_c):
        self.kind, self.has_b, self.has_bhn = kind, has_b, has_bhn
        self.has_h, self.has_c = has_h, has_c
        self.save = frozenset()

    def params(self):
        return (self.kind, self.has_b, self.has_bhn, self.has_h, self.has_c)

    def split(self, ins):
        """[x, Wx, Wh, b, bhn, h0, c0, hs] from the inputs (None where absent)."""
        out = [ins[0], ins[1], ins[2], None, None, None, None, None]
        i = 3
        for j, has in ((3, self.has_b), (4, self.has_bhn), (5, self.has_h), (6, self.has_c),
                       (7, self.kind == "lstm_cells")):
            if has:
                out[j] = ins[i]
                i += 1
        return out

    def math(self, ins):
        x, wx, wh, b, bhn, h0, c0, hs = self.split(ins)
        kind = self.kind
        if kind == "rnn_tanh":
            return [rnn_unrolled(x, wx, wh, b, h0, O.tanh)]
        if kind == "rnn_relu":
            return [rnn_unrolled(x, wx, wh, b, h0, relu)]
        if kind == "gru":
            return [gru_unrolled(x, wx, wh, b, bhn, h0)]
        if kind == "lstm":
            return [lstm_unrolled(x, wx, wh, b, h0, c0)[0]]
        return [lstm_cells(x, wx, wh, b, h0, c0, hs)]

    def vjp(self, primals, cotangents, argnums, outputs):
        out = outputs[0]
        if out._data is None:
            self.save = self.save | frozenset(argnums)
        prim = RecurrentVJP(self, tuple(argnums))
        return nodes([primals[i].shape for i in argnums], [primals[i].dtype for i in argnums],
                     prim, tuple(primals) + (out, cotangents[0]), out._stream)

    def vmap(self, inputs, axes):
        # weights shared by the batch: fold the vmapped axis into the layer's batch
        if any(a is not None for a in axes[1:3]) or (self.has_b and axes[3] is not None) \
                or (self.has_bhn and axes[3 + self.has_b] is not None):
            return Composite.vmap(self, inputs, axes)
        n = next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)
        ins = list(inputs)
        for i, (x, a) in enumerate(zip(inputs, axes)):
            if i in (0,) or (i >= 3 + self.has_b + self.has_bhn):  # x and the states
                x = to_front(x, a) if a is not None else O.broadcast_to(x, (n,) + x.shape)
                ins[i] = O.reshape(x, (n * x.shape[1],) + x.shape[2:])
        x, wh = ins[0], ins[2]
        out = node((x.shape[0], x.shape[1], wh.shape[1]), x.dtype, self.like(), tuple(ins),
                   x._stream)
        return [O.reshape(out, (n, -1) + out.shape[1:])], [0]

    def like(self):
        """A fresh primitive with the same parameters (its own `save`)."""
        return Recurrent(self.kind, self.has_b, self.has_bhn, self.has_h, self.has_c)


class RecurrentVJP(Composite):
    """Cotangents of the inputs `argnums` of `fwd` (one output each) from inputs
    (primals..., out, g), through torch's fused backward."""

    __slots__ = ("fwd", "argnums")
    name = "RecurrentVJP"

    def __init__(self, fwd, argnums):
        self.fwd, self.argnums = fwd, argnums

    def params(self):
        return (self.fwd.params(), self.argnums)

    def math(self, ins):
        from ember.core.transforms.autodiff import vjp
        primals, g = ins[:-2], ins[-1]
        nums = self.argnums
        _, cts = vjp(lambda *xs: self.fwd.math(_fill(primals, nums, xs)),
                     [primals[i] for i in nums], [g])
        return cts
