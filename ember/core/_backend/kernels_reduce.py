"""Kernels of the reductions and scans.

Inputs come in storage dtypes: uint16 as int32, uint32/uint64 as int64. Orderings of
uint64 go through a sign-bit flip (an order-preserving map onto int64); complex values
order lexicographically (real, then imaginary part), as upstream orders them.
"""

import collections
import itertools
import math

import numpy as np
import torch

from ember.core import dtypes as D
from ember.core._backend import half_scan
from ember.core._backend.kernels import (
    _INT_OF_SIZE,
    EXACT_SQRT,
    _lexicographic,
    _multiply,
    _sqrt,
    numpy_fits,
    register,
)
from ember.core._backend.memory import cpu_empty, cpu_out
from ember.core._backend.triton_reduce import middle_sum
from ember.core.primitives import reduce as R
from ember.core.primitives import scan as SC

_SIGN = -(1 << 63)
_M32 = 0xFFFFFFFF
_INF = float("inf")
_HALF = (torch.float16, torch.bfloat16)
# sum/prod accumulator storage dtype and wrap mask per input dtype (upstream's
# int32/uint32 accumulation of narrow types)
_ACC = {D.bool_: (torch.int32, 0), D.int8: (torch.int32, 0), D.int16: (torch.int32, 0),
        D.uint8: (torch.int64, _M32), D.uint16: (torch.int64, _M32),
        D.uint32: (torch.int64, _M32)}


def _lex_key(x):
    """int64 ranks of complex x in (real, imag) order; equal values share a rank."""
    flat = x.reshape(-1)
    order = torch.argsort(flat.imag, stable=True)
    order = order[torch.argsort(flat.real[order], stable=True)]
    s = flat[order]
    new = torch.ones(s.shape, dtype=torch.int64, device=s.device)
    if s.numel() > 1:
        new[1:] = (s[1:] != s[:-1]).to(torch.int64)
    key = torch.empty_like(new)
    key[order] = torch.cumsum(new, 0)
    return key.reshape(x.shape)


def _ordered(x, dt):
    """x as a real tensor with the same ordering (complex: ranks; uint64: flipped)."""
    if x.is_complex():
        return _lex_key(x)
    if dt is D.uint64:
        return x ^ _SIGN
    if x.dtype is torch.bool:
        return x.to(torch.uint8)
    return x


# -- Reduce ------------------------------------------------------------------------------

_NP_SUM = (torch.float32, torch.float64)
_NP_SUM_MIN = 4096  # elements from which a CPU sum over leading axes runs on numpy


def _sum(p, x):
    axes = p.axes
    if (x.dtype in _NP_SUM and x.device.type == "cpu" and x.numel() >= _NP_SUM_MIN
            and axes == tuple(range(len(axes))) and len(axes) < x.dim()
            and x.is_contiguous()):
        # rows added one after another, as upstream sums over outer axes (the same bits);
        # ATen's outer reduction is several times slower single-threaded
        rows = math.prod(x.shape[:len(axes)])
        r = torch.from_numpy(np.add.reduce(x.numpy().reshape(rows, -1), axis=0))
        shape = x.shape[len(axes):]
        return r.reshape((1,) * len(axes) + shape if p.keepdims else shape)
    acc, mask = _ACC.get(p.dtype, (x.dtype, 0))
    if x.is_cuda and not mask:
        r = _middle_sum(x, axes, p.keepdims)
        if r is not None:
            return r
    r = torch.sum(x, dim=p.axes, keepdim=p.keepdims, dtype=acc)
    return r & mask if mask else r


def _middle_sum(x, axes, keep):
    """A sum over a run of axes that leaves at least 32 trailing elements (the bias and
    norm-weight gradients), on Triton's kernel (`triton_reduce`), or None."""
    if not axes:
        return None
    lo, hi = min(axes), max(axes) + 1
    if hi - lo != len(axes) or hi == x.dim():
        return None
    shape = x.shape
    c = math.prod(shape[hi:])
    if c < 32:
        return None
    r = middle_sum(x, math.prod(shape[:lo]), math.prod(shape[lo:hi]), c)
    if r is None:
        return None
    if keep:
        return r.view(shape[:lo] + (1,) * (hi - lo) + shape[hi:])
    return r.view(shape[:lo] + shape[hi:])


def _prod(p, x):
    acc, mask = _ACC.get(p.dtype, (x.dtype, 0))
    if acc in _HALF:  # upstream multiplies half types in float32: no overflow on the way
        acc = torch.float32
    axes, keep = p.axes, p.keepdims
    if len(axes) == 1:
        r = torch.prod(x, axes[0], keepdim=keep, dtype=acc)
    elif len(axes) == x.dim():
        r = torch.prod(x, dtype=acc)
        if keep:
            r = r.reshape((1,) * x.dim())
    elif axes[-1] - axes[0] == len(axes) - 1:
        # adjacent axes as one, multiplied in row-major order as upstream does
        r = torch.prod(x.flatten(axes[0], axes[-1]), axes[0], dtype=acc)
        if keep:
            r = r.reshape([1 if i in axes else d for i, d in enumerate(x.shape)])
    else:
        r = x.to(acc)
        for ax in reversed(axes):
            r = torch.prod(r, ax, keepdim=keep, dtype=acc)
    if mask:
        r = r & mask
    return r.to(x.dtype) if x.dtype in _HALF else r


def _extreme(p, x):
    big = p.op == "max"
    axes, keep = p.axes, p.keepdims
    if x.dtype is torch.bool:
        return _all_any(p, x)
    if x.is_complex():
        if x.device.type == "cpu" and bool(x.isnan().any()):
            return _complex_nan_extreme(x, axes, big, keep, False)
        return _complex_extreme(x, axes, big, keep)
    if p.dtype is D.uint64:
        x = x ^ _SIGN
        return (torch.amax if big else torch.amin)(x, dim=axes, keepdim=keep) ^ _SIGN
    if x.device.type == "cpu" and len(axes) > 1 and x.is_floating_point():
        window = math.prod(x.shape[a] for a in axes)
        if 1 < window <= 16 and window < x.numel():
            return _fold_extreme(x, axes, big, keep)
    return (torch.amax if big else torch.amin)(x, dim=axes, keepdim=keep)


def _fold_extreme(x, axes, big, keep):
    """max/min over a few elements per output (pooling windows), one elementwise pass per
    window element: ATen's CPU amax over several strided axes is many times slower."""
    pick = torch.maximum if big else torch.minimum
    out = None
    for idx in itertools.product(*(range(x.shape[a]) for a in axes)):
        key = [slice(None)] * x.ndim
        for a, i in zip(axes, idx):
            key[a] = slice(i, i + 1) if keep else i
        part = x[tuple(key)]
        out = part if out is None else pick(out, part)
    return out  # a new tensor: the window has at least two elements


def _complex_extreme(x, axes, big, keep):
    re, im = x.real, x.imag
    mr = (torch.amax if big else torch.amin)(re, dim=axes, keepdim=True)
    im = torch.where(re == mr, im, -_INF if big else _INF)
    mi = (torch.amax if big else torch.amin)(im, dim=axes, keepdim=True)
    r = torch.complex(mr, mi)
    return r if keep else r.squeeze(axes)


def _complex_nan_extreme(x, axes, big, keep, arg):
    """max/min (or with `arg` argmax/argmin) of complex x with NaNs, as upstream's, one
    element at a time in row-major order: a value with a NaN part replaces the running max
    (min), which a greater (smaller) value replaces in turn; reduced along the innermost
    axis, a result with a NaN part is NaN (the index moves to the first NaN unless it
    already holds one). Values compare lexicographically and NaNs never compare."""
    rest = [i for i in range(x.ndim) if i not in axes]
    y = x.permute(rest + list(axes)).reshape([x.shape[i] for i in rest] + [-1])
    cols = y.unbind(-1)
    acc = cols[0]
    idx = torch.zeros(acc.shape, dtype=torch.int64, device=x.device)
    order = _lexicographic(torch.gt, torch.gt) if big else _lexicographic(torch.lt, torch.lt)
    for i, v in enumerate(cols[1:], 1):
        beats = order(v, acc)
        nan = v.isnan()
        take = beats | (nan & ~acc.isnan()) if arg else beats | nan
        acc = torch.where(take, v, acc)
        if arg:
            idx = torch.where(take, i, idx)
    inner = [i for i, d in enumerate(x.shape) if d > 1][-1:]
    if arg:
        r = idx
    elif not inner or inner[0] in axes:
        r = torch.where(acc.isnan(), complex(float("nan"), 0.0), acc)
    else:
        r = acc.clone()
    if keep:
        r = r.reshape([1 if i in axes else d for i, d in enumerate(x.shape)])
    return r


_BOOL = (torch.bool,)


def _all_any(p, x):
    big = p.op in ("any", "max")
    if p.axes and numpy_fits(x, _BOOL):  # (numpy's are many times faster still)
        r = (np.any if big else np.all)(x.numpy(), axis=tuple(p.axes), keepdims=p.keepdims)
        return torch.from_numpy(np.asarray(r))
    if x.dtype is torch.bool and x.device.type == "cpu" and x.numel() and p.axes:
        # the same values: ATen's CPU amax/amin of bools is several times faster than its
        # any/all
        return (torch.amax if big else torch.amin)(x, dim=p.axes, keepdim=p.keepdims)
    return (torch.any if big else torch.all)(x, dim=p.axes, keepdim=p.keepdims)


def _mean(p, x):
    # as upstream: the sum times 1/n, both in the input's dtype (1/n rounded to it)
    n = math.prod(x.shape[a] for a in p.axes)
    if not n or x.device.type != "cpu" and x.dtype not in _HALF and p.axes:
        return torch.mean(x, dim=p.axes, keepdim=p.keepdims)
    if x.dtype in _HALF:
        # (1/n rounded to the half type on the host, as a Python number: the product of two
        # half values is exact in float32, so torch's one rounding gives the half product)
        inv = float(torch.tensor(1.0 / n, dtype=x.dtype))
        r = torch.sum(x, dim=p.axes, keepdim=p.keepdims, dtype=torch.float32).to(x.dtype)
        return r * inv
    if x.is_complex():  # (over no axes too: x times 1)
        r = _sum(p, x) if p.axes else x
        return _multiply(r, torch.tensor(complex(1.0 / n, 0.0), dtype=x.dtype,
                                         device=x.device))
    return _sum(p, x).mul_(1.0 / n)


_REDUCE = {
    "sum": _sum,
    "prod": _prod,
    "max": _extreme,
    "min": _extreme,
    "all": _all_any,
    "any": _all_any,
    "mean": _mean,
}


@register(R.Reduce)
def _reduce(p, x):
    return _REDUCE[p.op](p, x)


@register(R.ArgReduce)
def _arg_reduce(p, x):
    if x.is_complex() and x.device.type == "cpu" and bool(x.isnan().any()):
        return _complex_nan_extreme(x, (p.axis,), p.op == "argmax", p.keepdims, True)
    x = _ordered(x, p.dtype)
    if numpy_fits(x):
        # numpy's one-thread argmax/argmin along the last axis is several times ATen's
        # (and takes NaNs and ties as upstream does); another axis goes last in a copy
        # first, as both step through memory with a stride along an outer one
        ax = p.axis % x.ndim
        if ax != x.ndim - 1:
            moved = x.movedim(ax, -1)
            x = cpu_empty(tuple(moved.shape), x.dtype).copy_(moved)
        r = (np.argmax if p.op == "argmax" else np.argmin)(x.numpy(), axis=-1)
        r = torch.from_numpy(np.asarray(r))
        return r.unsqueeze(ax) if p.keepdims else r
    f = torch.argmax if p.op == "argmax" else torch.argmin
    return f(x, p.axis, keepdim=p.keepdims)


@register(R.LogSumExp)
def _logsumexp(p, x):
    if x.is_complex():  # shift by the (lexicographic) max: upstream's branch of the log
        m = _complex_extreme(x, p.axes, True, True)
        r = torch.log(torch.sum(torch.exp(x - m), dim=p.axes, keepdim=True)) + m
        return r if p.keepdims else r.squeeze(p.axes)
    if p.axes == (x.ndim - 1,) or x.device.type != "cpu":
        if x.dtype in _HALF:  # accumulated in float32 and rounded once, as upstream
            return torch.logsumexp(x.float(), dim=p.axes, keepdim=p.keepdims).to(x.dtype)
        return torch.logsumexp(x, dim=p.axes, keepdim=p.keepdims)
    # elsewhere upstream composes it of ops in x's dtype (an infinite max shifts by 0)
    m = torch.amax(x, dim=p.axes, keepdim=True)
    m = torch.where(m.isinf(), 0, m)
    e = torch.exp(x - m)
    if x.dtype in _HALF:
        r = torch.sum(e, dim=p.axes, keepdim=True, dtype=torch.float32).to(x.dtype)
    else:
        r = _sum(R.Reduce("sum", p.axes, True, None), e)
    r = r.log_() + m
    return r if p.keepdims else r.squeeze(p.axes)


@register(R.Softmax)
def _softmax(p, x):
    axes = p.axes
    if not axes:  # a softmax over no axes: exp(x - x) / exp(x - x)
        e = torch.exp(x - x)
        return e / e
    up = p.precise and x.dtype in _HALF
    if len(axes) == 1 and not x.is_complex():
        if up:
            return torch.softmax(x, axes[0], dtype=torch.float32).to(x.dtype)
        return torch.softmax(x, axes[0])
    xf = x.float() if up else x
    m = torch.amax(xf.real if xf.is_complex() else xf, dim=axes, keepdim=True)
    e = torch.exp(xf - m)
    r = e / torch.sum(e, dim=axes, keepdim=True)
    return r.to(x.dtype) if up else r


_BLOCK = 1 << 19  # bytes of a block of rows that stays in the L2 cache


def _leading_sq_dev(x, m):
    """sum((x - m)^2) over the rows of (n, k) `x`, a block of rows at a time: the
    deviations never take a full-size buffer, and the per-block sums add as ATen's would."""
    n, k = x.shape
    step = max(1, _BLOCK // (k * x.element_size()))
    buf = torch.empty((min(step, n), k), dtype=x.dtype)
    parts = torch.empty((-(-n // step), k), dtype=x.dtype)
    for j, i in enumerate(range(0, n, step)):
        b = buf[:min(step, n - i)]
        torch.sub(x[i:i + step], m, out=b)
        torch.sum(b.square_(), 0, out=parts[j])
    return parts.sum(0)


@register(R.Var)
def _var(p, x):
    axes = p.axes
    n = 1
    for a in axes:
        n *= x.shape[a]
    if not axes:  # over nothing: 0 (nan where x is not finite) / (1 - ddof)
        d = (x - x).abs()
        d = d * d / (1 - p.ddof) if p.ddof < 1 else d * _INF
        return d.sqrt() if p.sqrt else d
    if x.numel() == 0:  # a sum of nothing over max(n - ddof, 0): 0 or nan (or empty)
        shape = [1 if i in axes else s for i, s in enumerate(x.shape)] if p.keepdims else \
            [s for i, s in enumerate(x.shape) if i not in axes]
        dt = x.real.dtype if x.is_complex() else x.dtype
        return torch.full(shape, 0.0 if n > p.ddof else float("nan"), dtype=dt,
                          device=x.device)
    if n - p.ddof <= 0:  # upstream's divisor 1 / 0: inf, nan without spread
        r = torch.var(x, dim=axes, correction=0, keepdim=p.keepdims) * _INF
        return r.sqrt() if p.sqrt else r
    if x.device.type == "cpu":
        # as upstream: two passes (the mean, then the squared deviations), the sum of
        # squares times 1/n for ddof 0 (as a mean), else over n - ddof; ATen's Welford
        # update runs one element at a time on the CPU and is 5-10x slower
        m = _mean(R.Reduce("mean", axes, True, None), x)
        if sorted(axes) == list(range(len(axes))) and x.dtype in _NP_SUM \
                and x.numel() * x.element_size() > _BLOCK:
            r = _leading_sq_dev(x.reshape(n, -1), m.reshape(-1)).view(m.shape)
            if not p.keepdims:
                r = r.view(x.shape[len(axes):])
        else:
            d = x - m
            d = d.real * d.real + d.imag * d.imag if d.is_complex() else d.mul_(d)
            if x.dtype in _HALF:  # accumulated in float32, rounded once
                r = torch.sum(d, dim=axes, keepdim=p.keepdims, dtype=torch.float32).to(x.dtype)
            else:
                r = _sum(R.Reduce("sum", axes, p.keepdims, None), d)
        if p.ddof:
            r = r / (n - p.ddof)
        elif x.dtype in _HALF:
            r = r * float(torch.tensor(1.0 / n, dtype=x.dtype))
        else:
            r = r.mul_(1.0 / n)
        if p.sqrt:  # correctly rounded (half types by way of float64)
            r = _sqrt(r) if r.dtype in EXACT_SQRT else r.double().sqrt_().to(r.dtype)
        return r
    f = torch.std if p.sqrt else torch.var
    return f(x, dim=axes, correction=p.ddof, keepdim=p.keepdims)


# -- Scan --------------------------------------------------------------------------------

def _identity(op, dt):
    """The value an exclusive scan starts from."""
    if op == "cumsum":
        return 0
    if op == "cumprod":
        return 1
    if op == "logcumsumexp":
        return -_INF
    hi = op == "cummin"
    if dt.kind == "f":
        return _INF if hi else -_INF
    if dt.kind == "c":
        return complex(_INF, _INF) if hi else complex(-_INF, -_INF)
    if dt is D.bool_:
        return hi
    if dt is D.uint64:
        return -1 if hi else 0  # all bits set: 2**64 - 1
    info = D.iinfo(dt)
    return info.max if hi else info.min


def _shift(y, ax, fill):
    """y moved one step along `ax`, `fill` in front (inclusive -> exclusive)."""
    n = y.shape[ax]
    if n == 0:
        return y
    head = torch.full_like(y.narrow(ax, 0, 1), fill)
    return torch.cat([head, y.narrow(ax, 0, n - 1)], ax)


def _cumext(x, ax, op, dt):
    """(values, indices) of cummax/cummin along ax; ties go to the latest position."""
    f = torch.cummax if op == "cummax" else torch.cummin
    if x.is_complex():
        idx = f(_lex_key(x), ax).indices
        return torch.gather(x, ax, idx), idx
    if dt is D.uint64:
        v, idx = f(x ^ _SIGN, ax)
        return v ^ _SIGN, idx
    return f(x, ax)


def _cummin_ties(x, y, ax, breaks=None):
    """y (cummin of real x) with upstream's choice among tied values, seen in signed zeros:
    it keeps the earlier one (torch the later), so a run of zero minima takes the sign of
    the zero that began it (a run also begins where `breaks` is set)."""
    bits = x.view(_INT_OF_SIZE[x.itemsize])
    if not bits.eq(torch.iinfo(bits.dtype).min).any():  # the bits of -0.0: else no tie shows
        return y
    zero = y == 0
    start = zero & ~_shift(zero, ax, False)
    if breaks is not None:
        start |= zero & breaks
    view = [1] * x.ndim
    view[ax] = x.shape[ax]
    pos = torch.arange(x.shape[ax]).view(view)
    first = torch.where(start, pos, -1).cummax(ax).values.clamp(min=0)
    return torch.where(zero, x.gather(ax, first), y)


def _half_nan_ext(p, x, ax):
    """cummax/cummin of half x with NaNs, as upstream's: a step with a NaN on either side
    gives 0, so each NaN restarts the scan from 0 there, as does the step after a NaN first
    value (which itself stays). `x` runs in scan order; the exclusive scan is the inclusive
    one of x behind the identity."""
    n = x.shape[ax]
    if not p.inclusive:
        head = torch.full_like(x.narrow(ax, 0, 1), _identity(p.op, p.dtype))
        x = torch.cat([head, x.narrow(ax, 0, n - 1)], ax)
    reset = x.isnan()
    if n > 1:
        reset.narrow(ax, 1, 1).logical_or_(reset.narrow(ax, 0, 1))
    z = torch.where(reset, 0, x)
    # a key ordering first by the restart, then by value (16 bits: sign and magnitude)
    bits = z.view(torch.int16).to(torch.int32)
    key = torch.where(bits < 0, -(bits & 0x7FFF), bits)
    seg = reset.cumsum(ax) << 16
    if p.op == "cummax":
        y = z.gather(ax, (seg + key).cummax(ax).indices)
    else:
        y = _cummin_ties(z, z.gather(ax, (key - seg).cummin(ax).indices), ax, reset)
    y.narrow(ax, 0, 1).copy_(x.narrow(ax, 0, 1))
    return y


def _complex_nan_ext(p, x, ax):
    """cummax/cummin of complex x with NaNs, as upstream's, one step at a time: values
    compare lexicographically and NaNs never compare, the max keeping the running value
    only when greater than the new one, the min unless greater. `x` runs in scan order."""
    src = x.movedim(ax, 0)
    out = torch.empty_like(src)
    acc = src[0] if p.inclusive else torch.full_like(src[0], _identity(p.op, p.dtype))
    out[0] = acc
    greater = _lexicographic(torch.gt, torch.gt)
    for i, v in enumerate(src[1:] if p.inclusive else src[:-1], 1):
        gt = greater(acc, v)
        acc = torch.where(gt, acc, v) if p.op == "cummax" else torch.where(gt, v, acc)
        out[i] = acc
    return out.movedim(0, ax)


def _np_scan(p, x, ax):
    """A float16 sum or product by numpy's accumulate, which rounds each step to the dtype
    as upstream does, for scans too few to step over all at once. (The error of ATen's
    wider sums, next to upstream's, grows with the length in the half types: float32 and
    complex64 keep ATen's faster scan, a last bit apart.)"""
    y = x.resolve_conj().resolve_neg().numpy()
    if p.reverse:
        y = np.flip(y, ax)
    with np.errstate(all="ignore"):
        out = torch.from_numpy(_NP_STEP[p.op].accumulate(y, axis=ax))
    if not p.inclusive:
        out = _shift(out, ax, _identity(p.op, p.dtype))
        if p.op == "cumsum":  # sums from upstream's +0.0 start are never -0.0
            out += 0
    return out.flip(ax) if p.reverse else out


def _scan_values(op, x, ax, dt):
    if op == "cumsum":
        if x.dtype is torch.bool:
            return torch.cumsum(x, ax, dtype=torch.int32)
        # (a large CPU output from the buffer cache: a fresh one faults in every page)
        return torch.cumsum(x, ax, dtype=x.dtype, out=cpu_out(x.shape, x.dtype, x.device))
    if op == "cumprod":
        if x.dtype is torch.bool:
            return torch.cumprod(x.to(torch.uint8), ax).bool()
        return torch.cumprod(x, ax, dtype=x.dtype, out=cpu_out(x.shape, x.dtype, x.device))
    if op == "logcumsumexp":
        return torch.logcumsumexp(x, ax)
    if op == "cummin" and x.is_complex() and x.device.type == "cpu":
        # upstream keeps the earlier of tied values (signed zeros show it): ranks made
        # distinct by position, the earlier lower
        view = [1] * x.ndim
        view[ax] = n = x.shape[ax]
        key = _lex_key(x) * n + torch.arange(n).view(view)
        return x.gather(ax, key.cummin(ax).indices)
    # (upstream's cummin keeps the earlier of tied values, which only -0.0 against 0.0
    # shows; checking float32 inputs for -0.0 doubled the time of every cummin: done for
    # the half types alone)
    y = _cumext(x, ax, op, dt)[0]
    if op == "cummin" and x.dtype in _HALF and x.device.type == "cpu":
        return _cummin_ties(x, y, ax)
    return y


_MOVE_MIN = 4096  # elements from which an inner-axis scan runs on a transposed copy
# Sums and products one step at a time in the input's dtype, as upstream accumulates: ATen's
# CPU scans of these dtypes accumulate wider (double, or float for the half types) and round
# once per output, which differs in the last bits. (Upstream's complex product rounds
# unlike numpy's and torch's at times: complex cumprod keeps ATen's.)
_HALF_F32 = {torch.float32, torch.float16, torch.bfloat16}
_STEPWISE = {"cumsum": _HALF_F32 | {torch.complex64}, "cumprod": _HALF_F32}
_NP_STEP = {"cumsum": np.add, "cumprod": np.multiply}
# upstream's exp (a float32 approximation) gives 0 below about this, not a subnormal (of
# the half types' values only bfloat16's from -88 down reach it)
_EXP_FLUSH = -87.683


def _log_add_exp(a, b, out):
    """One logcumsumexp step of the half types as upstream's: max + log1p(exp(min - max)),
    each operation rounded to the type (torch's half ops round each result)."""
    hi, lo = torch.maximum(a, b), torch.minimum(a, b)
    d = lo - hi
    e = torch.exp(d).masked_fill_(d < _EXP_FLUSH, 0)
    keep = (lo == -_INF) | (hi == _INF)  # (no inf - inf: the max stands)
    return torch.where(keep, hi, hi + torch.log1p(e), out=out)


_TORCH_STEP = {"cumsum": torch.add, "cumprod": torch.mul, "logcumsumexp": _log_add_exp}
# independent scans from which a step over all of them beats ATen's scan on a transposed
# copy (each step costs a call: a few tenths of a microsecond in numpy, over one in torch)
_STEP_MIN = 256
# half-type scans from which a step over all of them beats half_scan's, one after another
_HALF_STEP_MIN = {"cumprod": 4, "logcumsumexp": 16}


def _steps(p, x, ax):
    """The scan along `ax` as a loop along it, each step one vector op over all the scans."""
    y = x.movedim(ax, 0).contiguous().resolve_conj()
    # (a large output from the buffer cache: a fresh one costs a page fault per page)
    out = cpu_empty(tuple(y.shape), y.dtype)
    if x.dtype in _HALF:  # (torch's half-precision ops are faster than numpy's)
        op = _TORCH_STEP[p.op]
        f, src, dst = (lambda a, b, c: op(a, b, out=c)), y.unbind(0), out.unbind(0)
    else:
        f, src, dst = _NP_STEP[p.op], list(y.numpy()), list(out.numpy())
    if p.reverse:
        src, dst = src[::-1], dst[::-1]
    dst[0][...] = src[0] if p.inclusive else _identity(p.op, p.dtype)
    with np.errstate(all="ignore"):
        # map (drained by deque) runs the steps in order, each reading the one before
        collections.deque(map(f, dst[:-1], src[1:] if p.inclusive else src, dst[1:]), 0)
    return out.movedim(0, ax)


def _rows_pay(p, x, ax):
    """Whether half_scan's scans, one after another, beat a step over all of them."""
    n = x.shape[ax]
    rows = x.numel() // n
    if p.op != "cumsum":
        return rows < _HALF_STEP_MIN[p.op]
    if rows == 1:
        return True
    # a bfloat16 sum costs about 15 us per change of binade of its partial sums and 0.03 us
    # an element, a step about 2.3 us: the changes counted in float32 sums of the first scan
    y = x.movedim(ax, -1)
    first = torch.cumsum(y[(0,) * (y.ndim - 1)].float(), 0)
    changes = int(torch.frexp(first).exponent.diff().count_nonzero())
    return rows * (15 * changes + 0.03 * n) < 2.3 * n


def _half_rows(p, x, ax):
    """A scan of a half type rounded each step as upstream's, one scan after another (for
    few scans: bfloat16 sums and products, logcumsumexp)."""
    y = x.movedim(ax, -1)
    if p.reverse:
        y = y.flip(-1)
    out = half_scan.scan(y.double().numpy(), p.op, x.dtype, _TORCH_STEP.get(p.op))
    out = torch.from_numpy(out).to(x.dtype)
    if not p.inclusive:
        out = _shift(out, -1, _identity(p.op, p.dtype))
        if p.op == "cumsum":  # sums from upstream's +0.0 start are never -0.0
            out += 0
    if p.reverse:
        out = out.flip(-1)
    return out.movedim(-1, ax)


# CPU cummax/cummin of inputs with NaNs whose results upstream's order of steps shapes
_NAN_EXT = {torch.float16: _half_nan_ext, torch.bfloat16: _half_nan_ext,
            torch.complex64: _complex_nan_ext}


@register(SC.Scan)
def _scan(p, x):
    ax = p.axis % x.ndim if x.ndim else p.axis
    # (float32 elsewhere keeps ATen's scan, as accurate but not bit-identical, and faster:
    # along the last axis the exact sums need a transposed copy, and few scans pay a call
    # per step; the half types' larger differences are worth the exact steps everywhere)
    if (x.dtype in _STEPWISE.get(p.op, ()) and x.device.type == "cpu" and x.ndim > 1
            and (ax != x.ndim - 1 or x.dtype in _HALF)
            and x.numel() >= _STEP_MIN * x.shape[ax] > 0):
        return _steps(p, x, ax)
    if x.device.type == "cpu" and x.numel():
        if x.dtype is torch.float16 and p.op in _NP_STEP:
            return _np_scan(p, x, ax)
        if x.dtype is torch.bfloat16 and p.op in _NP_STEP or \
                x.dtype in _HALF and p.op == "logcumsumexp":
            return _half_rows(p, x, ax) if _rows_pay(p, x, ax) else _steps(p, x, ax)
        nan_ext = _NAN_EXT.get(x.dtype) if p.op in ("cummax", "cummin") else None
        if nan_ext is not None and bool(x.isnan().any()):
            y = nan_ext(p, x.flip(ax) if p.reverse else x, ax)
            return y.flip(ax) if p.reverse else y
    moved = ax != x.ndim - 1 and x.device.type == "cpu" and x.numel() >= _MOVE_MIN
    if moved:
        # ATen's CPU scans along an outer axis step through memory with a stride per
        # element; along the last axis they run over contiguous rows (the same sequence of
        # additions either way), so the copy to that layout and back is cheaper
        x = x.movedim(ax, -1).contiguous()
        ax = x.ndim - 1
    if p.reverse:
        x = x.flip(ax)
    y = _scan_values(p.op, x, ax, p.dtype)
    if not p.inclusive:
        y = _shift(y, ax, _identity(p.op, p.dtype))
    if p.reverse:
        y = y.flip(ax)
    return y.movedim(-1, p.axis % y.ndim) if moved else y


@register(SC.ScanSelect)
def _scan_select(p, x, v):
    ax = p.axis
    if p.reverse:
        x, v = x.flip(ax), v.flip(ax)
    idx = _cumext(x, ax, p.op, p.dtype)[1]
    if not p.inclusive:
        idx = _shift(idx, ax, -1)
    valid = idx >= 0
    idx = idx.clamp(min=0)
    if p.scatter:
        out = torch.zeros(v.shape, dtype=v.dtype, device=v.device)
        out.scatter_add_(ax, idx, torch.where(valid, v, 0))
    else:
        out = torch.where(valid, torch.gather(v, ax, idx), 0)
    return out.flip(ax) if p.reverse else out

