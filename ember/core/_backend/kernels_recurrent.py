"""Kernels of whole recurrent layers: torch's fused RNN (`torch._VF.rnn_tanh`, `rnn_relu`,
`gru`, `lstm`: cuDNN on CUDA), one layer, unidirectional, batch first, no dropout.

MLX's parameters map onto torch's as: w_ih = Wx, w_hh = Wh, b_ih = b, b_hh = 0 -- for a
GRU b_hh = [0, 0, bhn], since torch adds b_hh of the n gate inside r * (.) as MLX adds
bhn --; the gate orders are the same (GRU r, z, n; LSTM i, f, g, o).

The backward recomputes the forward under torch's autograd (in training mode, so cuDNN
keeps what its backward needs) and calls torch's backward, unless the forward already
ran under autograd because a vjp was asked for before it (`Recurrent.save`): then the
autograd state rides on the output tensor (`_ember_rnn`) until the backward consumes it.
"""

import warnings
import weakref

import torch
import torch.nn.functional as F

from ember.core._backend.kernels import register
from ember.core._backend.kernels_fast import _grad, _leaf
from ember.core.primitives import recurrent as P

# cuDNN copies weights that are not views of one flat buffer (as under autograd), and says so
warnings.filterwarnings("ignore", message="RNN module weights are not part of single")

_VF = torch._VF
_FUSED = {"rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu, "gru": _VF.gru}
_ZEROS = {}  # (shape, dtype, device) -> zeros made outside inference mode (autograd may save)
_ZEROS_MAX = 64


def _zeros(shape, like):
    key = (shape, like.dtype, like.device)
    z = _ZEROS.get(key)
    if z is None:
        if len(_ZEROS) >= _ZEROS_MAX:
            _ZEROS.clear()
        with torch.inference_mode(False):
            z = _ZEROS[key] = torch.zeros(shape, dtype=like.dtype, device=like.device)
    return z


def _state(h, n, size, like):
    """An initial state as torch wants it: (1, N, H), zeros when absent."""
    return _zeros((1, n, size), like) if h is None else h.unsqueeze(0).contiguous()


_FLAT = {}  # ids of (kind, x's size, wx, wh, b, bhn) -> (weak references, flat params)
_FLAT_MAX = 16
_CUDNN_MODE = {"rnn_relu": 0, "rnn_tanh": 1, "lstm": 2, "gru": 3}


def _flat_params(kind, x, wx, wh, b, bhn):
    """The weights as views of one buffer, as cuDNN wants them: torch otherwise copies
    them into one on every call. Made once per set of weight tensors (the tensors of
    evaluated arrays never change) and kept while they live; for inference only, since
    the copies take no gradient."""
    ws = (wx, wh, b, bhn)
    key = (kind, x.shape[-1]) + tuple(id(t) for t in ws)
    hit = _FLAT.get(key)
    if hit is not None and all(r is None if t is None else r() is t for r, t in zip(hit[0], ws)):
        return hit[1]
    params = _params(kind, x, wx, wh, b, bhn)
    with torch.inference_mode(False), torch.no_grad():
        params = [t.clone() for t in params]
        torch._cudnn_rnn_flatten_weight(params, len(params), x.shape[-1], _CUDNN_MODE[kind],
                                        wh.shape[1], 0, 1, True, False)
    for k in [k for k, (refs, _) in _FLAT.items() if any(r is not None and r() is None
                                                          for r in refs)]:
        del _FLAT[k]  # weights that are gone (a model that was updated)
    if len(_FLAT) >= _FLAT_MAX:
        _FLAT.clear()
    _FLAT[key] = (tuple(None if t is None else weakref.ref(t) for t in ws), params)
    return params


def _params(kind, x, wx, wh, b, bhn):
    """torch's parameter list: w_ih, w_hh and, with biases, b_ih, b_hh."""
    g, size = wx.shape[0], wh.shape[1]
    if kind == "gru":
        params = [wx, wh]
        if b is not None or bhn is not None:
            b_hh = _zeros((g,), x) if bhn is None else torch.cat((_zeros((2 * size,), x), bhn))
            params += [_zeros((g,), x) if b is None else b, b_hh]
        return params
    return [wx, wh] if b is None else [wx, wh, b, _zeros((g,), x)]


def _forward(p, ts, train):
    """The hidden states (N, L, H) of the layer `p` on input tensors `ts`."""
    x, wx, wh, b, bhn, h0, c0, hs = p.split(ts)
    kind = p.kind
    if kind == "lstm_cells":
        return _cells(x, wx, wh, b, h0, c0, hs, train)
    n, size = x.shape[0], wh.shape[1]
    hx = _state(h0, n, size, x)
    if not train and x.is_cuda and torch.backends.cudnn.enabled:
        params = _flat_params(kind, x, wx, wh, b, bhn)
    else:
        params = _params(kind, x, wx, wh, b, bhn)
    has_b = len(params) == 4
    if kind == "lstm":
        hx = (hx, _state(c0, n, size, x))
        return _VF.lstm(x, hx, params, has_b, 1, 0.0, train, False, True)[0]
    return _FUSED[kind](x, hx, params, has_b, 1, 0.0, train, False, True)[0]


def _cells(x, wx, wh, b, h0, c0, hs, record):
    """LSTM cell states from the hidden states: the i, f, g gates of every step from two
    matmuls, then c = f * c + i * g step by step (one fused op per step)."""
    size = wh.shape[1]
    k = 3 * size
    whk = wh[:k]
    gates = F.linear(x, wx[:k], None if b is None else b[:k])
    if hs.shape[1] > 1:
        gates[:, 1:] += F.linear(hs[:, :-1], whk)
    if h0 is not None:
        gates[:, 0] += F.linear(h0, whk)
    i, f, g = gates.chunk(3, -1)
    u = torch.sigmoid(i) * torch.tanh(g)
    f = torch.sigmoid(f)
    steps = hs.shape[1]
    if record:  # under autograd: no writes into one output buffer
        c, cs = c0, []
        for t in range(steps):
            c = u[:, t] if c is None else torch.addcmul(u[:, t], f[:, t], c)
            cs.append(c)
        return torch.stack(cs, 1)
    out = torch.empty_like(u)
    c = c0
    for t in range(steps):
        ct = out[:, t]
        if c is None:
            ct.copy_(u[:, t])
        else:
            torch.addcmul(u[:, t], f[:, t], c, out=ct)
        c = ct
    return out


def _traced(p, ts, nums):
    """Forward under autograd: (output, leaves) with leaves for the inputs in `nums`."""
    with torch.inference_mode(False), torch.enable_grad():
        leaves = [_leaf(t) for t in ts]
        for i in nums:
            leaves[i].requires_grad_(True)
        out = _forward(p, leaves, True)
    return out, leaves


@register(P.Recurrent)
def _recurrent(p, *ts):
    if p.save:
        nums = sorted(p.save)
        out, leaves = _traced(p, ts, nums)
        res = out.detach()
        res._ember_rnn = [out, leaves, p.save]
        return res
    return _forward(p, ts, False)


@register(P.RecurrentVJP)
def _recurrent_vjp(p, *ts):
    primals, out, g = ts[:-2], ts[-2], ts[-1]
    nums = p.argnums
    saved = getattr(out, "_ember_rnn", None)
    if saved is not None and saved[0] is not None and saved[2].issuperset(nums):
        o, leaves = saved[0], saved[1]
        saved[0] = saved[1] = None  # torch frees the graph in backward: use it once
    else:
        o, leaves = _traced(p.fwd, primals, nums)
    grads = _grad(o, [leaves[i] for i in nums], g) if o.requires_grad else [None] * len(nums)
    return [torch.zeros_like(primals[i]) if gr is None else gr for i, gr in zip(nums, grads)]
