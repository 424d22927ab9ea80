"""Entries for the unary and binary elementwise families."""

import numpy as np

from tests.opdb import ALL_REAL, FLOATS, INTS, Op, add, rand


def _unary_samples(low=-2.0, high=2.0):
    def samples(rng, dt):
        return [(rand(rng, s, dt, low, high),) for s in [(3, 4), (), (0,), (2, 1, 3)]]
    return samples


def _binary_samples(low=-2.0, high=2.0):
    def samples(rng, dt):
        shapes = [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((), (5,)), ((0, 3), (1, 3))]
        return [(rand(rng, a, dt, low, high), rand(rng, b, dt, low, high)) for a, b in shapes]
    return samples


def _u(name, dtypes=FLOATS, low=-2.0, high=2.0, grad=True):
    add(Op(name, lambda m, x, _n=name: getattr(m, _n)(x), _unary_samples(low, high),
           dtypes=dtypes, grad=grad))


def _b(name, dtypes=FLOATS, low=-2.0, high=2.0, grad=True):
    add(Op(name, lambda m, x, y, _n=name: getattr(m, _n)(x, y), _binary_samples(low, high),
           dtypes=dtypes, grad=grad))


for _n in ["abs", "negative", "square", "sin", "cos", "tanh", "sigmoid", "exp", "erf",
           "arctan", "sinh", "expm1", "sign"]:
    _u(_n, dtypes=FLOATS + INTS if _n in ("abs", "square", "sign") else FLOATS,
       grad=_n != "sign")
for _n in ["log", "sqrt", "rsqrt", "log1p", "log2", "log10", "reciprocal"]:
    _u(_n, low=0.5, high=3.0)
for _n in ["arcsin", "arccos", "arctanh", "erfinv"]:
    _u(_n, low=-0.8, high=0.8)
_u("tan", low=-1.0, high=1.0)
_u("cosh")
_u("arcsinh")
_u("arccosh", low=1.2, high=3.0)
for _n in ["floor", "ceil", "trunc", "round"]:
    _u(_n, grad=False)
for _n in ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not"]:
    _u(_n, dtypes=ALL_REAL, grad=False)

for _n in ["add", "subtract", "multiply", "maximum", "minimum"]:
    _b(_n, dtypes=FLOATS + INTS)
_b("divide", low=0.5, high=3.0)
_b("power", low=0.5, high=2.0)
_b("arctan2")
_b("logaddexp")
_b("remainder", dtypes=("float32",) + INTS[:3], low=0.5, high=5.0, grad=False)
_b("floor_divide", dtypes=("float32",) + INTS[:3], low=0.5, high=5.0, grad=False)
for _n in ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
           "logical_and", "logical_or"]:
    _b(_n, dtypes=ALL_REAL, grad=False)
for _n in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
    _b(_n, dtypes=("bool",) + INTS, grad=False)

add(Op("where", lambda m, c, x, y: m.where(c > 0, x, y),
       lambda rng, dt: [(rand(rng, (3, 4), "float32"), rand(rng, (3, 4), dt),
                         rand(rng, (4,), dt))], grad_argnums=(1, 2)))
add(Op("scalar_weak_typing", lambda m, x: (x * 2.5 + 1) - 3 * x,
       _unary_samples(), dtypes=FLOATS + INTS))
_ = np
