"""Kernels of the unsigned variants of ops on uint64, which is stored as int64.

Flipping the sign bit maps uint64 order onto int64 order; division and shifts are built
from int64 ones on values with the top bit cleared.
"""

import torch

from ember.core._backend.kernels import _any, _astype, register, shift_count
from ember.core.primitives import elementwise as E
from ember.core.primitives import misc as M

_SIGN = -(1 << 63)
_LOW = (1 << 63) - 1  # every bit but the top one


def _key(x):
    return x ^ _SIGN


def _compare(cmp):
    return lambda p, x, y: cmp(_key(x), _key(y))


for _op, _cmp in (("less", torch.lt), ("less_equal", torch.le), ("greater", torch.gt),
                  ("greater_equal", torch.ge)):
    register(E.UNSIGNED[_op])(_compare(_cmp))


@register(E.UNSIGNED["maximum"])
def _maximum(p, x, y):
    return torch.where(_key(x) >= _key(y), x, y)


@register(E.UNSIGNED["minimum"])
def _minimum(p, x, y):
    return torch.where(_key(x) <= _key(y), x, y)


def _divmod(x, y):
    """Unsigned quotient and remainder; division by zero gives (0, x) as upstream."""
    x, y = torch.broadcast_tensors(x, y)
    zero = y == 0
    big = y < 0  # a divisor of 2^63 or more: the quotient is 0 or 1
    q_big = (_key(x) >= _key(y)).to(x.dtype)
    # otherwise halve x (a logical shift), divide, double, and correct once
    ys = torch.where(zero | big, torch.ones_like(y), y)
    q = torch.floor_divide((x >> 1) & _LOW, ys) << 1
    r = x - q * ys
    over = _key(r) >= _key(ys)
    q = torch.where(over, q + 1, q)
    q = torch.where(big, q_big, torch.where(zero, torch.zeros_like(q), q))
    r = x - q * torch.where(zero, torch.zeros_like(y), y)
    return q, r


register(E.UNSIGNED["floor_divide"])(lambda p, x, y: _divmod(x, y)[0])
register(E.UNSIGNED["remainder"])(lambda p, x, y: _divmod(x, y)[1])


@register(E.UNSIGNED["right_shift"])
def _right_shift(p, x, y):
    x, y = torch.broadcast_tensors(x, shift_count(x, y))
    logical = ((x >> 1) & _LOW) >> (y - 1).clamp(0, 63)
    return torch.where(y == 0, x, logical)


@register(E.UNSIGNED["power"])
def _power(p, x, y):
    big = y < 0  # an exponent of 2^63 or more: no torch power takes it
    if not _any(big):
        return torch.pow(x, y)
    # square and multiply over all 64 bits of the exponent, wrapping as upstream's loop
    x, y = torch.broadcast_tensors(x, y)
    r = torch.ones_like(x)
    for _ in range(64):
        r = torch.where((y & 1) == 1, r * x, r)
        x = x * x
        y = (y >> 1) & _LOW
    return r


register(E.UNSIGNED_UNARY["abs"])(lambda p, x: x.clone())
register(E.UNSIGNED_UNARY["sign"])(lambda p, x: (x != 0).to(x.dtype))


@register(M.AsTypeU64)
def _astype_u64(p, x):
    return _astype(p, x.view(torch.uint64))
