"""Matrix products: matmul and friends."""

from ember.core.array import node
from ember.core.ops._base import broadcast_pair, resolve
from ember.core.ops.elementwise import binary_args
from ember.core.ops.shape import reshape
from ember.core.primitives.linalg import Matmul

_MATMUL = Matmul()


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def matmul(a, b, /, *, stream=None):
    s = resolve(stream)
    a, b, dt = binary_args(a, b, s, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("[matmul] Got 0 dimension input. Inputs must have at least one "
                         "dimension.")
    if dt.kind not in "fc":
        raise ValueError(f"[matmul] Only inexact types are supported but {a.dtype.name} and "
                         f"{b.dtype.name} were provided which results in {dt.name}, which is "
                         "not a floating point type.")
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = reshape(a, (1, a.shape[0]), stream=s)
    if vb:
        b = reshape(b, (b.shape[0], 1), stream=s)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"[matmul] Last dimension of first input with shape {_fmt(a.shape)} "
                         f"must match second to last dimension of second input with shape "
                         f"{_fmt(b.shape)}.")
    batch = broadcast_pair(a.shape[:-2], b.shape[:-2], "matmul")
    out = node(batch + (a.shape[-2], b.shape[-1]), dt, _MATMUL, (a, b), s)
    if va or vb:
        shape = batch + ((a.shape[-2],) if not va else ()) + ((b.shape[-1],) if not vb else ())
        out = reshape(out, shape, stream=s)
    return out
