"""Kernel of depends: the inputs pass through (arrays are immutable, so no copy)."""

from ember.core._backend.kernels import register
from ember.core.primitives.dependencies import Depends


@register(Depends)
def _depends(p, *xs):
    return xs[:p.n]
