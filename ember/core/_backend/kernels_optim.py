"""Kernel of the fused optimizer update: torch's multi-tensor ops over all parameters.

Each rule repeats, operation for operation, the parameter-by-parameter rule of
`ember.optimizers` (the comment above each gives it), so the results are the same bits:
every binary op rounds to the parameters' dtype as Ember's ops do, Python constants are
first rounded to that dtype (as Ember's weakly typed scalars are), and the step's scalars
arrive as 0-d tensors of that dtype. In-place ops only ever write tensors made here.
"""

import torch

from ember.core._backend import triton_optim
from ember.core._backend.kernels import EXACT_SQRT, exact_sqrt, register
from ember.core.primitives.optim import OptimizerUpdate

_mul, _mul_ = torch._foreach_mul, torch._foreach_mul_
_add, _add_ = torch._foreach_add, torch._foreach_add_
_sub, _sub_ = torch._foreach_sub, torch._foreach_sub_
_div_ = torch._foreach_div_


def _sqrt(xs, inplace=False):
    """Square roots as Ember's sqrt takes them: correctly rounded on the CPU."""
    if not (xs and xs[0].dtype in EXACT_SQRT and xs[0].device.type == "cpu"):
        return torch._foreach_sqrt_(xs) if inplace else torch._foreach_sqrt(xs)
    return exact_sqrt(xs, xs if inplace else [torch.empty(x.shape, dtype=x.dtype) for x in xs])


def _sqrt_(xs):
    _sqrt(xs, inplace=True)


_CONSTS = {}


def _c(v, td):
    """Python number `v` as the constant Ember's ops would use in dtype `td`."""
    key = (v, td, str(v) if v == 0 else None)  # -0.0 == 0.0, but not as a factor
    r = _CONSTS.get(key)
    if r is None:
        r = _CONSTS[key] = torch.tensor(v, dtype=td).item()
    return r


def _square(xs):
    return _mul(xs, xs)


def _ema(xs, beta, ys, td):
    """beta * xs + (1 - beta) * ys (ys is only read)."""
    out = _mul(xs, _c(beta, td))
    _add_(out, _mul(ys, _c(1 - beta, td)))
    return out


def _ema_(xs, beta, ys, td):
    """beta * xs + (1 - beta) * ys, scaling the fresh tensors ys in place."""
    out = _mul(xs, _c(beta, td))
    _mul_(ys, _c(1 - beta, td))
    _add_(out, ys)
    return out


def _sgd(h, lr, extra, g, p, slots, td):
    momentum, weight_decay, dampening, nesterov = h
    if weight_decay != 0:
        # g = g + wd * p
        g = _add(g, _mul(p, _c(weight_decay, td)))
    if momentum <= 0:
        # p - lr * g
        return [_sub(p, _mul(g, lr))]
    # v = momentum * v + (1 - dampening) * g  (+ g when no dampening)
    v = _mul(slots[0], _c(momentum, td))
    _add_(v, _mul(g, _c(1 - dampening, td)) if dampening > 0 else g)
    if nesterov:
        # p - lr * (g + momentum * v)
        u = _mul(v, _c(momentum, td))
        u = _add(g, u)
    else:
        u = v
    # p - lr * u
    return [_sub(p, _mul(u, lr)), v]


def _rms_step(p, lr, g, v, eps, td):
    # p - lr * g / (sqrt(v) + eps)
    num = _mul(g, lr)
    den = _sqrt(v)
    _add_(den, _c(eps, td))
    _div_(num, den)
    return _sub(p, num)


def _rmsprop(h, lr, extra, g, p, slots, td):
    alpha, eps = h
    # v = alpha * v + (1 - alpha) * g^2
    v = _ema_(slots[0], alpha, _square(g), td)
    return [_rms_step(p, lr, g, v, eps, td), v]


def _adagrad(h, lr, extra, g, p, slots, td):
    (eps,) = h
    # v = v + g^2
    v = _square(g)
    v = _add(slots[0], v)
    return [_rms_step(p, lr, g, v, eps, td), v]


def _adadelta(h, lr, extra, g, p, slots, td):
    rho, eps = h
    v_old, u_old = slots
    e = _c(eps, td)
    # v = rho * v + (1 - rho) * g^2
    v = _ema_(v_old, rho, _square(g), td)
    # d = sqrt(u + eps) / sqrt(v + eps) * g
    d = _add(u_old, e)
    _sqrt_(d)
    den = _add(v, e)
    _sqrt_(den)
    _div_(d, den)
    _mul_(d, g)
    # u = rho * u + (1 - rho) * d^2
    u = _ema_(u_old, rho, _square(d), td)
    # p - lr * d
    _mul_(d, lr)
    return [_sub(p, d), v, u]


def _adam(h, lr, extra, g, p, slots, td):
    b1, b2, eps, bias_correction, decay = h
    if decay:
        # p = p * (1 - lr * weight_decay)
        p = _mul(p, extra[-1])
    # m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2
    m = _ema(slots[0], b1, g, td)
    v = _ema_(slots[1], b2, _square(g), td)
    den = _sqrt(v)
    if bias_correction:
        # p - c1 * m / (sqrt(v) * c2 + eps)
        num = _mul(m, extra[0])
        _mul_(den, extra[1])
    else:
        # p - lr * m / (sqrt(v) + eps)
        num = _mul(m, lr)
    _add_(den, _c(eps, td))
    _div_(num, den)
    if decay:
        _sub_(p, num)
        return [p, m, v]
    return [_sub(p, num), m, v]


def _adamax(h, lr, extra, g, p, slots, td):
    b1, b2, eps = h
    # m = b1 * m + (1 - b1) * g;  v = maximum(b2 * v, |g|)
    m = _ema(slots[0], b1, g, td)
    v = _mul(slots[1], _c(b2, td))
    torch._foreach_maximum_(v, torch._foreach_abs(g))
    # p - lr * m / (v + eps)
    num = _mul(m, lr)
    _div_(num, _add(v, _c(eps, td)))
    return [_sub(p, num), m, v]


def _lion(h, lr, extra, g, p, slots, td):
    b1, b2, decay = h
    m_old = slots[0]
    # c = b1 * m + (1 - b1) * g;  m = b2 * m + (1 - b2) * g
    c = _ema(m_old, b1, g, td)
    m = _ema(m_old, b2, g, td)
    if decay:
        # p = (1 - lr * weight_decay) * p
        p = _mul(p, extra[0])
    # p - lr * sign(c)
    torch._foreach_sign_(c)
    _mul_(c, lr)
    if decay:
        _sub_(p, c)
        return [p, m]
    return [_sub(p, c), m]


_RULES = {"sgd": _sgd, "rmsprop": _rmsprop, "adagrad": _adagrad, "adadelta": _adadelta,
          "adam": _adam, "adamax": _adamax, "lion": _lion}


# Parameters go through the whole rule a chunk of about this many elements at a time. On
# the CPU, each op over every parameter would stream them all through memory a dozen
# times, while a chunk stays in cache between ops (small tensors still share calls). On
# the GPU, chunks only bound the temporaries (a few times the chunk, not the model).
CPU_CHUNK = 1 << 16
GPU_CHUNK = 1 << 24


def _chunks(ts, limit):
    out, start, size = [], 0, 0
    for i, t in enumerate(ts):
        m = t.numel()
        if size and size + m > limit:
            out.append((start, i))
            start, size = i, 0
        size += m
    out.append((start, len(ts)))
    return out


@register(OptimizerUpdate)
def _optimizer_update(p, *xs):
    n, k = p.n, p.n_scalars
    lr = xs[0]
    rule = _RULES[p.rule]
    extra = xs[1:k]
    td = lr.dtype
    lists = [xs[k + i * n:k + (i + 1) * n] for i in range(2 + len(p.slots))]
    if p.rule == "adam":  # float32 on CUDA: one generated kernel for every parameter
        outs = triton_optim.adam(p.hyper, lr, extra, lists[0], lists[1], lists[2:])
        if outs is not None:
            return [t for ts in outs for t in ts]
    outs = [[] for _ in range(1 + len(p.slots))]
    for a, b in _chunks(lists[1], GPU_CHUNK if lr.is_cuda else CPU_CHUNK):
        ls = [list(x[a:b]) for x in lists]
        for out, ts in zip(outs, rule(p.hyper, lr, extra, ls[0], ls[1], ls[2:], td)):
            out += ts
    return [t for ts in outs for t in ts]
