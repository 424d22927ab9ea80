"""Binary search in sorted sequences (searchsorted)."""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


class SearchSorted(Primitive):
    """Inputs (sorted_sequence, values): for each value the number of elements of the
    sequence that are less than it (`right`: less than or equal), NaNs ordered last.

    The public op searches one 1-D sequence. With `rows`, the sequence is (..., n) and the
    values (..., m) share its leading dims: row i of the values searches row i of the
    sequence (what `unique` uses, and what vmap over the sequence needs)."""

    __slots__ = ("right", "rows")
    name = "SearchSorted"

    def __init__(self, right, rows=False):
        self.right, self.rows = right, rows

    def params(self):
        return (self.right, self.rows)

    def vjp(self, primals, cotangents, argnums, outputs):
        return [O.zeros_like(primals[i]) for i in argnums]

    def jvp(self, primals, tangents, argnums):
        return [O.zeros(primals[1].shape, D.uint32)]

    def vmap(self, inputs, axes):
        seq, v = inputs
        if axes[0] is None:
            return [O.search._search(seq, v, self.right, self.rows)], [axes[1]]
        if not self.rows:
            raise ValueError("[searchsorted] Cannot vmap over the sorted sequence, only over "
                             "the values being searched for.")
        seq = to_front(seq, axes[0])
        if axes[1] is None:
            v = O.broadcast_to(v, seq.shape[:1] + v.shape)
        else:
            v = to_front(v, axes[1])
        return [O.search._search(seq, v, self.right, True)], [0]
