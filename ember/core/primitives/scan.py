"""Scans along one axis: cumsum, cumprod, cummax, cummin, logcumsumexp.

`reverse` runs the scan from the end; an exclusive scan (`inclusive=False`) leaves out
the element itself, starting from the op's identity. The scan "over" output j is S(j);
the positions whose outputs include element i form the opposite scan, so transposes
are scans in the other direction with the same inclusivity.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import node
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


class Scan(Primitive):
    __slots__ = ("op", "axis", "reverse", "inclusive", "dtype")
    name = "Scan"

    def __init__(self, op, axis, reverse, inclusive, dtype):
        self.op, self.axis, self.reverse, self.inclusive = op, axis, reverse, inclusive
        self.dtype = dtype  # the input's: kernels need it for unsigned storage

    def params(self):
        return (self.op, self.axis, self.reverse, self.inclusive, self.dtype)

    def _scan(self, op, x, reverse=None):
        return getattr(O, op)(x, axis=self.axis, inclusive=self.inclusive,
                              reverse=self.reverse if reverse is None else reverse)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, g, y = primals[0], cotangents[0], outputs[0]
        op = self.op
        if op == "cumsum":
            return [self._scan("cumsum", g, not self.reverse)]
        if op == "cumprod":
            return [self._cumprod_vjp(x, y, g)]
        if op in ("cummax", "cummin"):
            return [_select(self, x, g, True)]
        return [self._logcumsumexp_vjp(x, y, g)]

    def jvp(self, primals, tangents, argnums):
        x, t = primals[0], tangents[0]
        op = self.op
        if op == "cumsum":
            return [self._scan("cumsum", t)]
        if op in ("cummax", "cummin"):
            return [_select(self, x, t, False)]
        y = self._scan(op, x)
        if op == "cumprod":
            return [self._cumprod_jvp(x, y, t)]
        return [_signed_lse(self, x, t, y)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        return [getattr(O, self.op)(x, axis=self.axis + 1, reverse=self.reverse,
                                    inclusive=self.inclusive)], [0]

    # Products: exact where x has zeros. The factors of y_j that precede i matter: past
    # the first zero everything is 0, at the first zero the product of the others is
    # the scan of x with that zero set to 1, restricted to outputs with a single zero.
    def _zero_parts(self, x):
        zero = O.equal(x, 0)
        safe = O.where(zero, O.ones_like(x), x)
        nz = self._scan("cumsum", O.astype(zero, D.int32))
        return zero, safe, nz

    def _cumprod_vjp(self, x, y, g):
        zero, safe, nz = self._zero_parts(x)
        before = O.cumsum(O.astype(zero, D.int32), axis=self.axis, reverse=self.reverse,
                          inclusive=False)
        back = not self.reverse
        plain = O.divide(self._scan("cumsum", O.multiply(g, y), back), safe)
        h = O.multiply(g, O.where(O.equal(nz, 1), self._scan("cumprod", safe),
                                  O.zeros_like(y)))
        at_zero = self._scan("cumsum", h, back)
        r = O.where(zero, at_zero, plain)
        return O.where(O.equal(before, 0), r, O.zeros_like(r))

    def _cumprod_jvp(self, x, y, t):
        zero, safe, nz = self._zero_parts(x)
        plain = O.multiply(y, self._scan("cumsum", O.divide(t, safe)))
        one = O.multiply(self._scan("cumprod", safe),
                         self._scan("cumsum", O.where(zero, t, O.zeros_like(t))))
        return O.where(O.equal(nz, 0), plain,
                       O.where(O.equal(nz, 1), one, O.zeros_like(one)))

    def _logcumsumexp_vjp(self, x, y, g):
        # dx_i = sum over outputs j including i of g_j exp(x_i - y_j), kept in log space
        # with the positive and negative parts of g apart
        back = not self.reverse

        def part(gp):
            pos = O.greater(gp, 0)
            lg = O.where(pos, O.subtract(_safe_log(pos, gp), y), _neg_inf(y))
            return O.exp(O.add(x, self._scan("logcumsumexp", lg, back)))

        zero = O.zeros_like(g)
        return O.subtract(part(O.maximum(g, zero)), part(O.maximum(O.negative(g), zero)))


def _safe_log(pos, v):
    # log of the positive entries; 1 elsewhere keeps higher derivatives finite
    return O.log(O.where(pos, v, O.ones_like(v)))


def _neg_inf(like):
    return O.full((), float("-inf"), like.dtype)


def _signed_lse(prim, x, t, y):
    """The jvp of logcumsumexp: sum over i in S(j) of t_i exp(x_i - y_j)."""
    def part(tp):
        pos = O.greater(tp, 0)
        lt = O.where(pos, O.add(_safe_log(pos, tp), x), _neg_inf(x))
        return O.exp(O.subtract(prim._scan("logcumsumexp", lt), y))

    zero = O.zeros_like(t)
    r = O.subtract(part(O.maximum(t, zero)), part(O.maximum(O.negative(t), zero)))
    # outputs over nothing (the first of an exclusive scan) are constant
    return O.where(O.isneginf(y), O.zeros_like(r), r)


class ScanSelect(Primitive):
    """For cummax/cummin of x: with `scatter` False, out_j = v at the position that gave
    output j (the jvp); with `scatter` True, out_i = sum of v_j over the outputs j that
    position i gave (the vjp). Each is the other's transpose. Zero where an exclusive
    scan's output has no source."""

    __slots__ = ("op", "axis", "reverse", "inclusive", "dtype", "scatter")
    name = "ScanSelect"

    def __init__(self, op, axis, reverse, inclusive, dtype, scatter):
        self.op, self.axis, self.reverse, self.inclusive = op, axis, reverse, inclusive
        self.dtype, self.scatter = dtype, scatter

    def params(self):
        return (self.op, self.axis, self.reverse, self.inclusive, self.dtype, self.scatter)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, g = primals[0], cotangents[0]
        return [O.zeros_like(x) if i == 0 else _select(self, x, g, not self.scatter)
                for i in argnums]

    def jvp(self, primals, tangents, argnums):
        x = primals[0]
        out = None
        for i, t in zip(argnums, tangents):
            if i == 1:
                out = _select(self, x, t, self.scatter)
        return [out if out is not None else O.zeros_like(primals[1])]

    def vmap(self, inputs, axes):
        (x, ax), (v, av) = zip(inputs, axes)
        x, v = to_front(x, ax), to_front(v, av)
        n = (x if ax is not None else v).shape[0]
        if ax is None:
            x = O.broadcast_to(O.expand_dims(x, 0), (n,) + x.shape)
        if av is None:
            v = O.broadcast_to(O.expand_dims(v, 0), (n,) + v.shape)
        prim = Scan(self.op, self.axis + 1, self.reverse, self.inclusive, self.dtype)
        return [_select(prim, x, v, self.scatter)], [0]


def _select(p, x, v, scatter):
    """A ScanSelect node for the scan parameters of `p` (a Scan or ScanSelect)."""
    prim = ScanSelect(p.op, p.axis, p.reverse, p.inclusive, p.dtype, scatter)
    return node(x.shape, v.dtype, prim, (x, v), x._stream)
