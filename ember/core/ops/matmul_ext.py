"""Matrix products beyond matmul: gather_mm, segmented_mm, block_masked_mm, vecdot, kron,
einsum_path; and the Walsh-Hadamard transform."""

import math
import operator

from ember.core import dtypes as D
from ember.core.array import array, fresh, node
from ember.core.ops._base import (
    PROMOTE,
    as_array,
    binding_error,
    broadcast_pair,
    float_like,
    resolve,
)
from ember.core.primitives.matmul_ext import GatherMM, Hadamard, SegmentedMM

__all__ = ["gather_mm", "segmented_mm", "block_masked_mm", "vecdot", "kron", "einsum_path",
           "hadamard_transform"]

_I32 = 1 << 31
_GATHER = {False: GatherMM(False), True: GatherMM(True)}
_SEGMENTED = SegmentedMM()


def _O():
    import ember.core.ops as O
    return O


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _sig(name, args):
    return binding_error(name, f"{name}({args})")


def _real_float(op, a, b):
    dt = PROMOTE[a.dtype, b.dtype]
    if dt.kind != "f":
        raise ValueError(f"[{op}] Only real floating point types are supported but "
                         f"{a.dtype.name} and {b.dtype.name} were provided which results in "
                         f"{dt.name}, which is not a real floating point type.")
    return dt


def _as_matrices(op, a, b):
    """a and b at least 2-D (vectors as 1 x K and K x 1), and whether each was a vector."""
    O = _O()
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[{op}] Got 0 dimension input. Inputs must have at least one "
                         "dimension.")
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = O.reshape(a, (1, a.shape[0]))
    if vb:
        b = O.reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"[{op}] Last dimension of first input with shape {_fmt(a.shape)} "
                         f"must match second to last dimension of second input with shape "
                         f"{_fmt(b.shape)}.")
    return a, b, va, vb


def _squeeze(out, va, vb, s):
    if not (va or vb):
        return out
    shape = out.shape[:-2] + (() if va else out.shape[-2:-1]) + (() if vb else out.shape[-1:])
    return _O().reshape(out, shape, stream=s)


# -- gather_mm ----------------------------------------------------------------------

def _indices(op, idx, batch, s):
    O = _O()
    if idx is None:
        return O.reshape(O.arange(_prod(batch), dtype=D.uint32, stream=s), batch, stream=s)
    if not isinstance(idx, array):
        raise _sig(op, "a: array, b: array, /, lhs_indices: array | None = None, "
                   "rhs_indices: array | None = None, *, sorted_indices: bool = False, "
                   "stream: StreamOrDevice = None) -> array")
    if idx.dtype.kind not in "iu":
        raise ValueError(f"[{op}] Got indices with invalid dtype. Indices must be integral.")
    return O.astype(as_array(idx, s), D.uint32, s)


def gather_mm(a, b, /, lhs_indices=None, rhs_indices=None, *, sorted_indices=False,
              stream=None):
    O = _O()
    if not isinstance(a, array) or not isinstance(b, array) \
            or not isinstance(sorted_indices, bool):
        raise _sig("gather_mm", "a: array, b: array, /, lhs_indices: array | None = None, "
                   "rhs_indices: array | None = None, *, sorted_indices: bool = False, "
                   "stream: StreamOrDevice = None) -> array")
    s = resolve(stream)
    if lhs_indices is None and rhs_indices is None:
        return O.matmul(a, b, stream=s)  # as upstream: its checks and dtypes, complex too
    a, b = as_array(a, s), as_array(b, s)
    dt = _real_float("gather_mm", a, b)
    a, b, va, vb = _as_matrices("gather_mm", a, b)
    li = _indices("gather_mm", lhs_indices, a.shape[:-2], s)
    ri = _indices("gather_mm", rhs_indices, b.shape[:-2], s)
    shape = broadcast_pair(li.shape, ri.shape, "broadcast_shapes")
    if li.shape != shape:
        li = O.broadcast_to(li, shape, stream=s)
    if ri.shape != shape:
        ri = O.broadcast_to(ri, shape, stream=s)
    a, b = O.astype(a, dt, s), O.astype(b, dt, s)
    out = node(shape + (a.shape[-2], b.shape[-1]), dt, _GATHER[sorted_indices], (a, b, li, ri),
               s)
    return _squeeze(out, va, vb, s)


# -- segmented_mm -------------------------------------------------------------------

def segmented_mm(a, b, /, segments, *, stream=None):
    O = _O()
    if not all(isinstance(x, array) for x in (a, b, segments)):
        raise _sig("segmented_mm", "a: array, b: array, /, segments: array, *, stream: "
                   "StreamOrDevice = None) -> array")
    s = resolve(stream)
    a, b, seg = as_array(a, s), as_array(b, s), as_array(segments, s)
    dt = _real_float("segmented_mm", a, b)
    if seg.ndim == 0 or seg.shape[-1] != 2:
        raise ValueError(f"[segmented_mm] The segments should have shape (..., 2) but "
                         f"{_fmt(seg.shape)} was provided.")
    if seg.dtype.kind not in "iu":
        raise ValueError("[segmented_mm] Got segments with invalid dtype. Segments must be "
                         "integral.")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("[segmented_mm] Batched matmul not supported")
    if a.shape[1] != b.shape[0]:  # (upstream reads past b here)
        raise ValueError(f"[segmented_mm] Last dimension of first input with shape "
                         f"{_fmt(a.shape)} must match first dimension of second input with "
                         f"shape {_fmt(b.shape)}.")
    a, b = O.astype(a, dt, s), O.astype(b, dt, s)
    seg = O.astype(seg, D.int32, s)
    return node(seg.shape[:-1] + (a.shape[0], b.shape[1]), dt, _SEGMENTED, (a, b, seg), s)


# -- block_masked_mm ----------------------------------------------------------------

def _blocks(n, bs):
    return -(-n // bs)


def _expand_mask(mask, bs, rows, cols, batch, dt, s, axes=()):
    """A block mask (..., ceil(rows/bs), ceil(cols/bs)) as an elementwise (..., rows, cols)
    mask: bool stays bool (a select), any other dtype scales in `dt`. `axes` are inserted
    first, where a vector operand lacks its matrix dimension (as upstream, which so
    refuses masks shaped for the product of the matrices)."""
    O = _O()
    rb, cb = _blocks(rows, bs), _blocks(cols, bs)
    for ax in axes:
        mask = O.expand_dims(mask, ax, stream=s)
    full = batch + (rb, cb)
    mb = mask.shape[:-2]
    if broadcast_pair(mask.shape, full, "broadcast_shapes") != full:
        raise ValueError(f"Cannot broadcast array of shape {_fmt(mask.shape)} into shape "
                         f"{_fmt(full)}.")
    mask = O.broadcast_to(mask, mb + (rb, cb), stream=s)
    if mask.dtype is not D.bool_:
        mask = O.astype(mask, dt, s)
    m = O.reshape(mask, mb + (rb, 1, cb, 1), stream=s)
    m = O.broadcast_to(m, mb + (rb, bs, cb, bs), stream=s)
    m = O.reshape(m, mb + (rb * bs, cb * bs), stream=s)
    if rb * bs != rows or cb * bs != cols:
        m = m[..., :rows, :cols]
    return m


def _apply_mask(x, m, s):
    O = _O()
    if m.dtype is D.bool_:
        return O.where(m, x, O.zeros((), x.dtype, stream=s), stream=s)
    return O.multiply(x, m, stream=s)


def block_masked_mm(a, b, /, block_size=64, mask_out=None, mask_lhs=None, mask_rhs=None, *,
                    stream=None):
    O = _O()
    masks = (mask_out, mask_lhs, mask_rhs)
    if not isinstance(a, array) or not isinstance(b, array) \
            or isinstance(block_size, float) or not hasattr(block_size, "__index__") \
            or any(m is not None and not isinstance(m, array) for m in masks) \
            or not -_I32 <= operator.index(block_size) < _I32:
        raise _sig("block_masked_mm", "a: array, b: array, /, block_size: int = 64, mask_out: "
                   "array | None = None, mask_lhs: array | None = None, mask_rhs: array | "
                   "None = None, *, stream: StreamOrDevice = None) -> array")
    bs = operator.index(block_size)
    s = resolve(stream)
    a, b = as_array(a, s), as_array(b, s)
    if all(m is None for m in masks):
        return O.matmul(a, b, stream=s)
    if bs not in (32, 64):
        raise ValueError(f"[block_masked_mm] Only block_sizes 32, 64 are supported.Got block "
                         f"size {bs}.")
    dt = PROMOTE[a.dtype, b.dtype]
    if dt.kind != "f":
        raise ValueError(f"[block_masked_mm] Only real floating point types are supported but "
                         f"{a.dtype.name} and {b.dtype.name} were provided which results in "
                         f"{dt.name}, which is not a real floating point type.")
    a, b, va, vb = _as_matrices("block_masked_mm", a, b)
    a, b = O.astype(a, dt, s), O.astype(b, dt, s)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = broadcast_pair(a.shape[:-2], b.shape[:-2], "broadcast_shapes")
    row, col = (-2,) if va else (), (-1,) if vb else ()
    if mask_lhs is not None:
        mask = _expand_mask(as_array(mask_lhs, s), bs, m, k, batch, dt, s, row)
        a = _apply_mask(a, mask, s)
    if mask_rhs is not None:
        mask = _expand_mask(as_array(mask_rhs, s), bs, k, n, batch, dt, s, col)
        b = _apply_mask(b, mask, s)
    out = O.matmul(a, b, stream=s)
    if mask_out is not None:
        mask = _expand_mask(as_array(mask_out, s), bs, m, n, batch, dt, s, col + row)
        out = _apply_mask(out, mask, s)
    return _squeeze(out, va, vb, s)


# -- vecdot, kron -------------------------------------------------------------------

def vecdot(a, b, /, *, axis=-1, stream=None):
    O = _O()
    if not isinstance(a, array) or not isinstance(b, array) \
            or isinstance(axis, float) or not hasattr(axis, "__index__") \
            or not -_I32 <= operator.index(axis) < _I32:
        raise _sig("vecdot", "a: array, b: array, /, *, axis: int = -1, stream: "
                   "StreamOrDevice = None) -> array")
    axis = operator.index(axis)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("[vecdot] inputs must be at least 1D.")
    if not -a.ndim <= axis < a.ndim:
        raise IndexError("[vecdot] axis is out of bounds.")
    ax = axis % a.ndim
    if not -b.ndim <= axis < b.ndim or axis % b.ndim != ax:
        raise ValueError("[vecdot] axis is out of bounds.")
    if a.shape[ax] != b.shape[ax]:
        raise ValueError("[vecdot] a and b must have the same size along axis.")
    s = resolve(stream)
    a, b = as_array(a, s), as_array(b, s)
    if a.dtype.kind == "c":
        a = O.conjugate(a, stream=s)
    prod = O.multiply(a, b, stream=s)
    return O.sum(prod, ax + prod.ndim - max(a.ndim, b.ndim), stream=s)


def kron(a, b, *, stream=None):
    O = _O()
    if not isinstance(a, array) or not isinstance(b, array):
        raise _sig("kron", "a: array, b: array, *, stream: StreamOrDevice = None) -> array")
    if a.size == 0 or b.size == 0:
        raise ValueError("[kron] Input arrays cannot be empty.")
    s = resolve(stream)
    a, b = as_array(a, s), as_array(b, s)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    # interleave: a's dims at even positions, b's at odd, then merge each pair
    ea = O.reshape(a, tuple(d for x in sa for d in (x, 1)), stream=s)
    eb = O.reshape(b, tuple(d for x in sb for d in (1, x)), stream=s)
    out = O.multiply(ea, eb, stream=s)
    return O.reshape(out, tuple(x * y for x, y in zip(sa, sb)), stream=s)


# -- hadamard_transform -------------------------------------------------------------

_HADAMARD_M = (28, 20, 12)


def _hadamard_m(n):
    for m in _HADAMARD_M:
        if n % m == 0 and (n // m) & (n // m - 1) == 0:
            return m
    if n & (n - 1) == 0:
        return 1
    raise ValueError("[hadamard] Only supports n = m*2^k where m in (1, 12, 20, 28).")


def _hadamard(x, scale, transpose=False):
    """The transform of float `x` along its last axis (used by the primitive's rules)."""
    m = _hadamard_m(x.shape[-1])
    return node(x.shape, x.dtype, Hadamard(m, scale, transpose), (x,), x._stream)


def hadamard_transform(a, scale=None, stream=None):
    O = _O()
    if not isinstance(a, array) or scale is not None and not float_like(scale):
        raise _sig("hadamard_transform", "a: array, scale: float | None = None, stream: "
                   "StreamOrDevice = None) -> array")
    s = resolve(stream)
    a = as_array(a, s)
    scale = None if scale is None else float(scale)
    if a.size == 0:
        raise ValueError("[hadamard_transform] Does not support empty arrays.")
    n = a.shape[-1] if a.shape else 1
    if n == 1:  # upstream returns the input as it is, or scaled (complex kept complex)
        return fresh(a) if scale is None or scale == 1 else O.multiply(a, scale, stream=s)
    if a.dtype.kind != "f":
        a = O.astype(a, D.float32, s)
    shape = a.shape
    if not shape:
        a = O.reshape(a, (1,), stream=s)
    scale = 1.0 / math.sqrt(n) if scale is None else scale
    m = _hadamard_m(n)
    out = node(a.shape, a.dtype, Hadamard(m, scale), (a,), s)
    return out if shape else O.reshape(out, (), stream=s)


# -- einsum_path --------------------------------------------------------------------

def _flops(labels, sizes, inner, terms):
    n = _prod(sizes[c] for c in labels)
    return n * (max(1, terms - 1) + (1 if inner else 0))


def _contract_pair(terms, i, j, out, sizes):
    """(remaining terms, flops, labels involved) of contracting terms i and j."""
    x, y = terms[i], terms[j]
    rest = [t for k, t in enumerate(terms) if k != i and k != j]
    keep = set(out).union(*rest) if rest else set(out)
    union = tuple(dict.fromkeys(x + y))
    result = tuple(c for c in union if c in keep)
    return rest + [result], _flops(union, sizes, len(result) < len(union), 2), len(union)


def _candidate(terms, i, j, out, sizes, spent, naive, limit):
    rest, c, _ = _contract_pair(terms, i, j, out, sizes)
    result = rest[-1]
    if spent + c > naive or _prod(sizes[x] for x in result) > limit:
        return None
    freed = _prod(sizes[x] for x in terms[i]) + _prod(sizes[x] for x in terms[j]) \
        - _prod(sizes[x] for x in result)
    return [(-freed, c), (i, j), result]


def _greedy_path(terms, out, sizes, naive):
    """The pair that frees the most memory first (ties: fewest flops, then first found).
    Candidates are kept across steps with their first scores (only pairs with the new
    term are scored after the first step), and outer products are scored only when no
    pair shares a label."""
    # no intermediate may be larger than the largest operand or the output
    limit = max(_prod(sizes[x] for x in t) for t in terms + [tuple(out)])
    path, spent = [], 0
    fresh = [(i, j) for i in range(len(terms)) for j in range(i + 1, len(terms))]
    known = []
    while len(terms) > 1:
        for i, j in fresh:
            if set(terms[i]) & set(terms[j]):
                cand = _candidate(terms, i, j, out, sizes, spent, naive, limit)
                if cand is not None:
                    known.append(cand)
        if not known:
            for i, j in fresh:
                cand = _candidate(terms, i, j, out, sizes, spent, naive, limit)
                if cand is not None:
                    known.append(cand)
            if not known:  # nothing fits under the naive cost: everything at once
                path.append(tuple(range(len(terms))))
                break
        best = min(known, key=lambda k: k[0])
        bx, by = best[1]
        moved = []
        for key, (x, y), result in known:
            if x in (bx, by) or y in (bx, by):
                continue
            moved.append([key, (x - (x > bx) - (x > by), y - (y > bx) - (y > by)), result])
        known = moved
        terms = [t for k, t in enumerate(terms) if k != bx and k != by] + [best[2]]
        path.append((bx, by))
        spent += best[0][1]
        new = len(terms) - 1
        fresh = [(i, new) for i in range(new)]
    return path


def _path_cost(terms, path, out, sizes):
    cost = scaling = 0
    for step in path:
        if len(step) != 2:
            union = set().union(*terms)
            return cost + _flops(union, sizes, bool(union - out), len(terms)), \
                max(scaling, len(union))
        terms, c, width = _contract_pair(terms, step[0], step[1], out, sizes)
        cost += c
        scaling = max(scaling, width)
    return cost, scaling


def einsum_path(subscripts, *operands):
    from ember.core.ops.linalg import _parse
    if not isinstance(subscripts, str):
        raise binding_error("einsum_path", "einsum_path(subscripts: str, *operands)")
    if not operands:
        raise ValueError("[einsum_path] At least one operand is required.")
    if not all(isinstance(x, array) for x in operands):
        raise RuntimeError("[einsum_path] Expected a string and arrays.")
    try:
        labels, out, sizes = _parse(subscripts, list(operands), strict=False)
    except ValueError as e:
        raise ValueError(str(e).replace("[einsum]", "[einsum_path]", 1)) from None
    out = list(out)
    everything = {c for ls in labels for c in ls}
    naive_inner = bool(everything - set(out))
    naive = _flops(everything, sizes, naive_inner, len(labels))
    terms = [tuple(dict.fromkeys(ls)) for ls in labels]
    if len(terms) == 1:
        path, cost, scaling = [(0,)], naive, len(everything)
    else:
        path = _greedy_path(terms, set(out), sizes, naive)
        cost, scaling = _path_cost(terms, path, set(out), sizes)
    info = (f"  Complete contraction:  {subscripts}\n"
            f"         Naive scaling:  {len(everything)}\n"
            f"     Optimized scaling:  {scaling}\n"
            f"      Naive FLOP count:  {naive}\n"
            f"  Optimized FLOP count:  {cost}\n")
    return path, info
