"""Kernel of CustomTransforms: the function's outputs (its last inputs) pass through."""

from ember.core._backend.kernels import register
from ember.core.primitives.custom import CustomTransforms


@register(CustomTransforms)
def _custom(p, *xs):
    return xs[p.n_in:]
