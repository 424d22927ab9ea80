"""Scans of the half types along few long axes, rounded at every step as upstream's CPU
scans round them: its accumulator has the input's type, and each step (each operation of a
logcumsumexp step) is computed in float32 and rounded to that type. numpy has no bfloat16,
and a torch call per step costs microseconds; these work on float64 copies of the values.

The sum of two bfloat16 values is exact in float64 (or its smaller term is far below half
a bfloat16 ulp of the larger), and so is their product, so upstream's step is the exact
result rounded once to bfloat16 (`_round`). A run of sums whose results stay within one
binade [2^(e-1), 2^e) rounds to one fixed quantum q = 2^(e-8); there numpy's float64
accumulate over values offset by C = 1.5 * 2^52 * q (whose float64 ulp is q, and whose
last significand bit is even) rounds each step to q, ties to even, as bfloat16 does. A sum
goes by such runs, each checked afterwards, with scalar steps where the runs are short.

A logcumsumexp step, max + log1p(exp(min - max)), rounds min - max to the type: the rest
of the step up to the last addition is then a table over the type's values <= 0.
"""

import math

import numpy as np
import torch

_INF = math.inf
_OVER = 2.0 ** 128  # the bfloat16 rounding of anything this large is infinite
_SUB = -133  # exponent of the bfloat16 subnormal quantum (2^-133)


def _rounder(bits, sub, over):
    """Rounding of a float64 to the nearest value of a binary type with `bits` significant
    bits, subnormal quantum 2^sub, and infinity from `over` on; ties to even."""
    def rnd(v):
        if v != v or v in (_INF, -_INF) or v == 0:
            return v
        m, e = math.frexp(v)  # |m| in [0.5, 1)
        q = max(e - bits, sub)
        r = math.ldexp(round(math.ldexp(m, e - q)), q)  # round(): ties to even
        return math.copysign(_INF, r) if abs(r) >= over else r
    return rnd


_round = _rounder(8, _SUB, _OVER)
_ROUND = {torch.bfloat16: _round, torch.float16: _rounder(11, -24, 2.0 ** 16)}


def _scalar_steps(x, out, i, n, acc, mul):
    """Scalar steps i..n-1 from `acc`; returns the last result."""
    res = []
    for v in x[i:n].tolist():
        acc = _round(acc * v if mul else acc + v)
        res.append(acc)
    out[i:n] = res
    return acc


_MIN_RUN = 8  # a run shorter than this is followed by _SCALAR scalar steps
_SCALAR = 32


def _sum(x, out):
    """The stepwise bfloat16 sum of finite 1-D float64 x (n > 0) into out."""
    n = len(x)
    acc = out[0] = float(x[0])
    i, chunk = 1, 256
    while i < n:
        if abs(acc) >= _OVER:  # infinite from here on: inf plus finite values
            break
        v = acc + float(x[i])
        if v == 0:  # (the sign of a zero sum: a scalar step)
            acc = _scalar_steps(x, out, i, i + 1, acc, False)
            i += 1
            continue
        e = math.frexp(v)[1]  # |v| in [2^(e-1), 2^e)
        q = e - 8
        if q <= _SUB:  # subnormal results share the quantum of the lowest binade
            q, e, lo = _SUB, _SUB + 8, 0.0
        else:
            lo = math.ldexp(1.0, e - 1)
        hi = math.ldexp(1.0, e)
        c = 1.5 * math.ldexp(1.0, q + 52)
        seg = x[i:i + chunk].copy()
        seg[0] = c + v
        r = np.add.accumulate(seg, out=seg)
        r -= c
        # step j of the run is right if its exact sum r[j-1] + x[j] is in [lo, hi], where
        # the quantum is q (the ends are multiples of q; a zero sum leaves the run)
        w = r[:-1] + x[i + 1:i + len(r)]
        np.abs(w, out=w)
        w -= (lo + hi) / 2
        np.abs(w, out=w)
        bad = np.flatnonzero(w > (hi - lo) / 2)
        k = len(r) if bad.size == 0 else int(bad[0]) + 1
        out[i:i + k] = r[:k]
        acc = float(r[k - 1])
        i += k
        chunk = min(chunk * 2, 1 << 16) if k == len(r) else max(256, 2 * k)
        if k < _MIN_RUN and i < n:
            end = min(n, i + _SCALAR)
            acc = _scalar_steps(x, out, i, end, acc, False)
            i = end
    big = np.flatnonzero(np.abs(out) >= _OVER)
    if big.size:
        out[big[0]:] = math.copysign(_INF, out[big[0]])


_LOG1P_EXP = {}  # per half type: {d: log1p(exp(d))} over every d <= 0, as upstream rounds it


def _log1p_exp(dtype, step):
    tab = _LOG1P_EXP.get(dtype)
    if tab is None:
        d = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16).view(dtype)
        d = d[d <= 0]
        zero = torch.zeros_like(d)
        # step(0, d) is 0 + log1p(exp(d)), the sum exact: the term itself
        tab = _LOG1P_EXP[dtype] = dict(zip(d.tolist(), step(zero, d, None).tolist()))
    return tab


def _log_add_exp(x, out, rnd, tab):
    """Stepwise logcumsumexp of 1-D float64 x into out: max + log1p(exp(min - max))."""
    acc = float(x[0])
    res = [acc]
    for v in x[1:].tolist():
        if acc != acc or v != v:  # NaN from here on
            break
        hi, lo = (acc, v) if acc >= v else (v, acc)
        if lo != -_INF and hi != _INF:
            acc = rnd(hi + tab[rnd(lo - hi)])
        else:
            acc = hi
        res.append(acc)
    res += [math.nan] * (len(x) - len(res))
    out[:] = res


def scan(x, op, dtype, step=None):
    """Stepwise inclusive scans `op` along the last axis of float64 x holding values of half
    type `dtype` ("cumsum" and "cumprod" of bfloat16; "logcumsumexp" of either, whose vector
    `step` gives its table), in place order (the caller flips for reverse scans)."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape)
    if x.shape[-1] == 0:
        return out
    rows, orows = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
    mul = op == "cumprod"
    for row, orow in zip(rows, orows):
        if op == "logcumsumexp":
            _log_add_exp(row, orow, _ROUND[dtype], _log1p_exp(dtype, step))
        elif not mul and bool(np.isfinite(row).all()):
            _sum(row, orow)
        else:
            orow[0] = row[0]
            _scalar_steps(row, orow, 1, len(row), float(row[0]), mul)
    return out
