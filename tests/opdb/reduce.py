"""Entries for the reductions (sum ... softmax) and the scans (cumsum ... logcumsumexp).

Each op gets entries per argument variant: all axes, one negative axis with keepdims,
several axes, no axes; samples cover 0-d, empty and size-1 dims. Error cases live in
tests/core/test_reduce.py (the grad checks need valid samples).
"""

from tests.opdb import ALL_REAL, FLOATS, Op, add, rand

C64 = ("complex64",)

# (suffix, kwargs, shapes)
_VARIANTS = [
    ("", {}, [(3, 4), (), (1, 5), (2, 3, 4)]),
    ("_axis_neg1_keep", {"axis": -1, "keepdims": True}, [(3, 4), (2, 3, 4), (5,), (0, 3)]),
    ("_axis0", {"axis": 0}, [(3, 4), (4,), (2, 0)]),
    ("_axes_0_2", {"axis": (0, 2)}, [(2, 3, 4), (3, 1, 2), (2, 0, 3)]),
    ("_axes_neg", {"axis": [-1, -3], "keepdims": True}, [(2, 3, 4), (1, 2, 1)]),
    ("_axes_none", {"axis": []}, [(3, 4), ()]),
]


def _nonempty(variants, keep=None):
    """The variants without their empty samples (upstream fails in some of their grads),
    optionally only those whose suffix is in `keep`."""
    return [(sfx, kw, [sh for sh in shapes if 0 not in sh]) for sfx, kw, shapes in variants
            if keep is None or sfx in keep]


def _samples(shapes, low, high):
    def samples(rng, dt):
        return [(rand(rng, s, dt, low, high),) for s in shapes]
    return samples


def _entries(name, dtypes, grad=True, low=-2.0, high=2.0, variants=_VARIANTS, rtol=None,
             label=None, vmap=True, **fixed):
    # floats first: the vmap check runs in the first dtype, with its tolerance
    dtypes = tuple(sorted(dtypes, key=lambda d: d not in FLOATS))
    for suffix, kw, shapes in variants:
        kw = {**kw, **fixed}
        add(Op((label or name) + suffix, lambda m, x, _n=name, _k=kw: getattr(m, _n)(x, **_k),
               _samples(shapes, low, high), dtypes=dtypes, grad=grad, rtol=rtol, vmap=vmap))


_entries("sum", ALL_REAL + C64)
_entries("prod", ALL_REAL + C64, low=0.5, high=1.5, variants=_nonempty(_VARIANTS))
_entries("prod", ALL_REAL, low=0.5, high=1.5, grad=False, label="prod_fwd")
for _n in ("max", "min"):  # upstream's jvp fails on empty arrays
    _entries(_n, ALL_REAL + C64, variants=_nonempty(_VARIANTS))
    _entries(_n, ALL_REAL, grad=False, label=_n + "_fwd")
_entries("all", ALL_REAL + C64, grad=False)
_entries("any", ALL_REAL + C64, grad=False)
_entries("mean", ALL_REAL + C64)
_entries("var", ALL_REAL + C64)
# std has an infinite slope where the spread is 0: those samples are forward-only
_STD = [(s, k, [sh for sh in shapes if sh not in ((), (1, 2, 1))])
        for s, k, shapes in _VARIANTS if s != "_axes_none"]
_entries("std", ALL_REAL + C64, variants=_STD)
_entries("std", ALL_REAL, variants=[v for v in _VARIANTS if v[0] in ("", "_axes_none")],
         label="std_flat", grad=False)
_ddof = [(s, k, [sh for sh in shapes if sh != ()]) for s, k, shapes in _VARIANTS
         if s in ("", "_axis0", "_axes_0_2")]
_entries("var", ALL_REAL, variants=_ddof, label="var_ddof1", ddof=1)
_entries("std", FLOATS, variants=_ddof, label="std_ddof1", ddof=1)
_entries("var", FLOATS, variants=_ddof[:1], label="var_ddof_neg", ddof=-1)
# over several axes upstream shifts bool and unsigned inputs by their max in their own
# dtype (bool: xor, unsigned: wrapping to inf); Ember computes those in float32
_SIGNED = tuple(d for d in ALL_REAL if d != "bool" and not d.startswith("u"))
_entries("logsumexp", ALL_REAL + C64, variants=_nonempty(_VARIANTS, ("_axis_neg1_keep",)),
         low=-5.0, high=5.0)
_entries("logsumexp", _SIGNED + C64, variants=_nonempty(_VARIANTS), label="logsumexp_signed",
         low=-5.0, high=5.0)
_entries("logsumexp", _SIGNED, variants=_VARIANTS, label="logsumexp_fwd", grad=False,
         vmap=False)

def _arg_samples(shapes):
    def samples(rng, dt):
        return [(rand(rng, s, dt),) for s in shapes]
    return samples


for _n in ("argmax", "argmin"):
    add(Op(_n, lambda m, x, _n=_n: getattr(m, _n)(x), _arg_samples([(3, 4), (), (2, 3, 4)]),
           dtypes=ALL_REAL + C64, grad=False))
    add(Op(_n + "_keep", lambda m, x, _n=_n: getattr(m, _n)(x, keepdims=True),
           _arg_samples([(3, 4), (5,), (1, 1)]), dtypes=ALL_REAL, grad=False))
    add(Op(_n + "_axis_neg1", lambda m, x, _n=_n: getattr(m, _n)(x, axis=-1),
           _arg_samples([(3, 4), (2, 3, 4)]), dtypes=ALL_REAL + C64, grad=False))
    add(Op(_n + "_axis1_keep", lambda m, x, _n=_n: getattr(m, _n)(x, axis=1, keepdims=True),
           _arg_samples([(3, 4), (2, 3, 4)]), dtypes=ALL_REAL, grad=False))


_SOFTMAX = [
    ("", {}, [(3, 4), (), (5,)]),
    ("_axis_neg1", {"axis": -1}, [(3, 4), (2, 3, 4), (0, 3), (1,)]),
    ("_axis0", {"axis": 0}, [(3, 4), (2, 0)]),
    ("_axes_0_2", {"axis": [0, 2]}, [(2, 3, 4)]),
    ("_axes_none", {"axis": []}, [(3, 4)]),
]
# off the last axis upstream casts back to integer dtypes (nan for unsigned: see above)
_entries("softmax", ALL_REAL + C64, variants=_SOFTMAX[1:2], low=-5.0, high=5.0)
_entries("softmax", _SIGNED + ("bool",) + C64, variants=_SOFTMAX, label="softmax_signed",
         low=-5.0, high=5.0)
_entries("softmax", FLOATS, variants=_SOFTMAX, label="softmax_precise", low=-5.0, high=5.0,
         precise=True)


# -- scans ------------------------------------------------------------------------------

_SCANS = [
    ("", {}, [(3, 4), (), (5,)]),
    ("_axis1", {"axis": 1}, [(3, 4), (2, 3, 4), (2, 0)]),
    ("_axis_neg1_rev", {"axis": -1, "reverse": True}, [(3, 4), (5,), (2, 1)]),
    ("_axis0_excl", {"axis": 0, "inclusive": False}, [(3, 4), (5,), (0, 2)]),
    ("_rev_excl", {"axis": -2, "reverse": True, "inclusive": False}, [(3, 4), (2, 3, 4)]),
]

_entries("cumsum", ALL_REAL + C64, variants=_SCANS)
# upstream has no jvp for cumprod/cummax/cummin: tests/core/test_reduce.py checks them
_entries("cumprod", ALL_REAL + C64, variants=_SCANS, grad=False, low=0.5, high=1.5)
_entries("cummax", ALL_REAL + C64, variants=_SCANS, grad=False)
_entries("cummin", ALL_REAL + C64, variants=_SCANS, grad=False)
# an exclusive logcumsumexp starts at -inf, where differences are nan: test_reduce.py
_INCL = [v for v in _SCANS if "inclusive" not in v[1]]
_entries("logcumsumexp", ALL_REAL + C64, variants=_INCL, low=-5.0, high=5.0)
_entries("logcumsumexp", ALL_REAL + C64, variants=[v for v in _SCANS if v not in _INCL],
         low=-5.0, high=5.0, grad=False)

add(Op("cumsum_dtype", lambda m, x: m.cumsum(x, axis=1, dtype=m.float32),
       _samples([(3, 4)], -2.0, 2.0), dtypes=ALL_REAL, grad=False))
add(Op("cumprod_dtype", lambda m, x: m.cumprod(x, axis=0, dtype=m.int32),
       _samples([(3, 4)], 0.5, 1.5), dtypes=ALL_REAL, grad=False))
