"""Entries for sort, argsort, partition, argpartition and topk.

Upstream leaves the order inside a partition (and of topk's result) unspecified, and its
CPU order differs from its GPU one, so those entries sort the result before comparing;
the partition property itself is checked in tests/core/test_sort.py.
"""

import numpy as np

from tests.opdb import FLOATS, INTS, Op, add, rand

_DTYPES = FLOATS + INTS + ("bool", "complex64")


def _ties(rng, shape, dt):
    """Values with repeats (and NaNs for floats): stability and NaN order show."""
    if dt in ("bool", "complex64") or not dt.startswith(("float", "bfloat")):
        x = rand(rng, shape, dt)
        if dt == "complex64":  # equal real parts, so the imaginary part breaks the tie
            x = (np.round(x.real) + 1j * np.round(x.imag)).astype(np.complex64)
        return x
    x = rng.integers(-3, 3, size=shape).astype(np.float32)
    if x.size:
        flat = x.reshape(-1)
        flat[rng.integers(0, flat.size, size=max(1, flat.size // 5))] = np.nan
        flat[rng.integers(0, flat.size)] = -np.inf
    return x


def _samples(shapes, ties=True):
    def samples(rng, dt):
        out = [(rand(rng, s, dt),) for s in shapes]
        if ties:
            out += [(_ties(rng, s, dt),) for s in shapes if s]
        return out
    return samples


_SHAPES = [(3, 5), (7,), (2, 3, 4), (0, 3), (3, 0)]
_BAD = [()]  # the default axis -1 is out of bounds for 0-d arrays


def _entry(name, fn, shapes=_SHAPES, bad=_BAD, dtypes=_DTYPES, grad=True):
    # grads run on distinct random values (ties make finite differences meaningless)
    if shapes:
        add(Op(name, fn, _samples(shapes), dtypes=dtypes, grad=grad,
               fd_samples=_samples(shapes, ties=False)))
    if bad:
        add(Op(name + "_errors", fn, _samples(bad, ties=False), dtypes=dtypes[:1], grad=False,
               vmap=False))


_entry("sort", lambda m, x: m.sort(x))
_entry("sort_axis0", lambda m, x: m.sort(x, axis=0), bad=[()])
_entry("sort_axis_neg2", lambda m, x: m.sort(x, axis=-2), shapes=[(3, 5), (2, 3, 4), (0, 3)],
       bad=[(4,), ()])
_entry("sort_axis_none", lambda m, x: m.sort(x, axis=None), shapes=_SHAPES + [()], bad=[])
_entry("sort_axis_out_of_bounds", lambda m, x: m.sort(x, axis=2), shapes=[], bad=[(3, 5)])
_entry("argsort", lambda m, x: m.argsort(x), grad=False)
_entry("argsort_axis1", lambda m, x: m.argsort(x, axis=1), shapes=[(3, 5), (2, 3, 4)],
       bad=[(4,)], grad=False)
_entry("argsort_axis_none", lambda m, x: m.argsort(x, axis=None), shapes=_SHAPES + [()],
       bad=[], grad=False)


def _sorted_after(op, *args, axis=-1):
    def fn(m, x):
        y = getattr(m, op)(x, *args, axis=axis)
        return m.sort(y, axis=-1 if axis is None else axis)
    return fn


_entry("partition", _sorted_after("partition", 2), shapes=[(3, 5), (7,), (2, 3, 4)])
_entry("partition_kth0", _sorted_after("partition", 0), shapes=[(3, 5), (7,), (0, 3)])
_entry("partition_kth_neg", _sorted_after("partition", -1), shapes=[(3, 5), (7,)])
_entry("partition_axis0", _sorted_after("partition", 1, axis=0), shapes=[(3, 5), (2, 3, 4)])
_entry("partition_axis_none", _sorted_after("partition", 4, axis=None),
       shapes=[(3, 5), (7,), (2, 3, 4)], bad=[()])
_entry("partition_bad_kth", _sorted_after("partition", 5), shapes=[],
       bad=[(3, 5), (3, 4), (3, 0)])
_entry("partition_bad_kth_neg", _sorted_after("partition", -6), shapes=[], bad=[(3, 5)])
_entry("argpartition", _sorted_after("argpartition", 2), shapes=[(3, 5), (7,)], grad=False)
_entry("argpartition_axis_none", _sorted_after("argpartition", -3, axis=None),
       shapes=[(3, 5), (7,)], bad=[], grad=False)
_entry("argpartition_bad_kth", _sorted_after("argpartition", 7), shapes=[], bad=[(3, 5)],
       grad=False)

_entry("topk", _sorted_after("topk", 2), shapes=[(3, 5), (7,), (2, 3, 4), (0, 3)])
_entry("topk_all", _sorted_after("topk", 5), shapes=[(3, 5), (2, 5)])
_entry("topk_one", _sorted_after("topk", 1), shapes=[(3, 5), (7,)])
_entry("topk_zero", _sorted_after("topk", 0), shapes=[(3, 5), (3, 0), (0, 4)])
_entry("topk_axis0", _sorted_after("topk", 2, axis=0), shapes=[(3, 5), (2, 3, 4)])
_entry("topk_axis_none", _sorted_after("topk", 3, axis=None), shapes=[(3, 5), (7,)],
       bad=[()])
_entry("topk_bad_k", _sorted_after("topk", 6), shapes=[], bad=[(3, 5)])
_entry("topk_negative_k", _sorted_after("topk", -1), shapes=[], bad=[(3, 5)])
