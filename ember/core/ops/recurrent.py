"""Whole recurrent layers as one node (for ember.nn's RNN, GRU and LSTM; not part of
mlx.core's namespace).

`fused` builds the node when the layer fits the fused kernel and returns None otherwise;
the layers then compute the unrolled formulas, which are also the fused primitive's math.
"""

import math

from ember.core import dtypes as D
from ember.core.array import array, node
from ember.core.ops._base import PROMOTE, as_array, broadcast_shapes, resolve
from ember.core.ops.elementwise import astype
from ember.core.ops.shape import broadcast_to, reshape
from ember.core.primitives.recurrent import (  # noqa: F401 (re-exported for ember.nn)
    GATES,
    Recurrent,
    gru_unrolled,
    lstm_unrolled,
    rnn_unrolled,
)

__all__ = []

_FLOATS = frozenset((D.float16, D.bfloat16, D.float32, D.float64))


def _state(v, shape, dt, s, exact):
    """An initial state as the node wants it, or None when it does not fit: cast to `dt`
    and, unless `exact`, broadcast to the layer's state shape (as every step of the
    formula would broadcast it; a state that enters through `addmm` must have the state
    shape already, or upstream's addmm raises)."""
    if type(v) is not array:
        return None
    v = as_array(v, s)
    if PROMOTE[v._dtype, dt] is not dt:
        return None
    if v._dtype is not dt:
        v = astype(v, dt, s)
    if v._shape != shape:
        if exact:
            return None
        try:
            if broadcast_shapes(v._shape, shape) != shape:
                return None
        except ValueError:
            return None
        v = broadcast_to(v, shape, stream=s)
    return v


def fused(kind, x, wx, wh, b=None, bhn=None, hidden=None, cell=None):
    """The hidden states of a recurrent layer (for "lstm": hidden and cell states) from one
    fused node, or None when the layer does not fit it (the caller then unrolls)."""
    if type(x) is not array or type(wx) is not array or type(wh) is not array:
        return None
    sx, sw = x._shape, wh._shape
    if len(sx) < 2 or len(sw) != 2 or 0 in sx:
        return None
    size = sw[1]
    g = GATES[kind] * size
    dt = wh._dtype
    if size == 0 or dt not in _FLOATS or wx._shape != (g, sx[-1]) or sw[0] != g \
            or wx._dtype is not dt:
        return None
    for w, n in ((b, g), (bhn, size)):
        if w is not None and (type(w) is not array or w._shape != (n,) or w._dtype is not dt):
            return None
    if PROMOTE[x._dtype, dt] is not dt:
        return None
    s = resolve(None)
    lead = sx[:-2]
    n = math.prod(lead)
    state = lead + (size,)
    states = []
    for v, exact in ((hidden, kind != "gru"), (cell, False)):
        if v is not None:
            v = _state(v, state, dt, s, exact)
            if v is None:
                return None
            states.append(v if len(lead) == 1 else reshape(v, (n, size), stream=s))
    x = as_array(x, s)
    if x._dtype is not dt:
        x = astype(x, dt, s)
    if len(lead) != 1:
        x = reshape(x, (n,) + sx[-2:], stream=s)
    ins = [x, as_array(wx, s), as_array(wh, s)]
    for w in (b, bhn):
        if w is not None:
            ins.append(as_array(w, s))
    ins += states
    ins = tuple(ins)
    shape = (n, sx[-2], size)
    prim = Recurrent(kind, b is not None, bhn is not None, hidden is not None,
                     cell is not None)
    hs = node(shape, dt, prim, ins, s)
    if kind != "lstm":
        return _unflatten(hs, lead, s)
    cells = Recurrent("lstm_cells", prim.has_b, False, prim.has_h, prim.has_c)
    cs = node(shape, dt, cells, ins + (hs,), s)
    return _unflatten(hs, lead, s), _unflatten(cs, lead, s)


def _unflatten(y, lead, s):
    return y if len(lead) == 1 else reshape(y, lead + y._shape[1:], stream=s)
