"""Matrix products: matmul, addmm, inner, outer, tensordot, einsum; and `view`."""

import numpy as np

from ember.core import dtypes as D
from ember.core.array import array, fresh, node
from ember.core.device import _CURRENT
from ember.core.ops._base import (
    PROMOTE,
    as_array,
    as_operand,
    binding_error,
    broadcast_pair,
    float_like,
    resolve,
)
from ember.core.ops.elementwise import add, astype, binary_args, equal, multiply, where
from ember.core.ops.reduce import sum as _sum
from ember.core.ops.shape import broadcast_to, reshape, transpose
from ember.core.primitives.linalg import AddMM, Matmul, View

__all__ = ["matmul", "addmm", "inner", "outer", "tensordot", "einsum", "view"]

_MATMUL = Matmul()
_ADDMM = AddMM(1.0, 1.0)
_INEXACT = frozenset(d for d in D.ALL if d.kind in "fc")
_REAL_INEXACT = frozenset(d for d in _INEXACT if d.kind == "f")  # complex addmm: see there
_F64 = D.float64
_I32 = 1 << 31
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def _prod(xs):
    n = 1
    for d in xs:
        n *= d
    return n


_AB = "a: array, b: array, /, "
_TAIL = "*, stream: StreamOrDevice = None) -> array"
# upstream's signatures, quoted by its binding when an argument does not convert
_SIGS = {
    "matmul": _AB + _TAIL,
    "addmm": "c: array, " + _AB + "alpha: float = 1.0, beta: float = 1.0,  " + _TAIL,
    "inner": _AB + _TAIL,
    "outer": _AB + _TAIL,
    "tensordot": _AB + "axes: int | list[Sequence[int]] = 2, " + _TAIL,
    "einsum": "subscripts: str, *operands, stream: StreamOrDevice = None) -> array",
}


def _refuse(op):
    return binding_error(op, f"{op}({_SIGS[op]}")


def _arrays(op, *xs):
    for x in xs:
        if not isinstance(x, array):
            raise _refuse(op)


def _c_float(v):
    """v as upstream's binding passes a `float`: a C float (which only float64 products can
    tell from the Python number)."""
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def _matrix_args(a, b, op, s):
    """a and b as matrices (vectors made 1 x K and K x 1): (a, b, batch, squeeze flags)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[{op}] Got 0 dimension input. Inputs must have at least one "
                         "dimension.")
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = reshape(a, (1, a.shape[0]), stream=s)
    if vb:
        b = reshape(b, (b.shape[0], 1), stream=s)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"[{op}] Last dimension of first input with shape {_fmt(a.shape)} "
                         f"must match second to last dimension of second input with shape "
                         f"{_fmt(b.shape)}.")
    batch = broadcast_pair(a.shape[:-2], b.shape[:-2], "broadcast_shapes")
    return a, b, batch, va, vb


def _squeezed(batch, a, b, va, vb):
    return batch + (() if va else (a.shape[-2],)) + (() if vb else (b.shape[-1],))


def matmul(a, b, /, *, stream=None):
    if stream is None and type(a) is array and type(b) is array and _CURRENT:
        # the common case first: two matrices of one inexact dtype on the current stream
        dt, st = a._dtype, a._stream
        sa, sb = a._shape, b._shape
        if dt is b._dtype and dt in _INEXACT and st is b._stream and st is _CURRENT[-1] \
                and len(sa) == 2 and len(sb) == 2 and sa[1] == sb[0]:
            return node((sa[0], sb[1]), dt, _MATMUL, (a, b), st)
    _arrays("matmul", a, b)
    s = resolve(stream)
    da, db = a.dtype, b.dtype
    a, b, dt = binary_args(a, b, s, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("[matmul] Got 0 dimension input. Inputs must have at least one "
                         "dimension.")
    if dt.kind not in "fc":
        raise _not_inexact(da, db, dt)
    a, b, batch, va, vb = _matrix_args(a, b, "matmul", s)
    out = node(batch + (a.shape[-2], b.shape[-1]), dt, _MATMUL, (a, b), s)
    if va or vb:
        out = reshape(out, _squeezed(batch, a, b, va, vb), stream=s)
    return out


def _not_inexact(da, db, dt):
    return ValueError(f"[matmul] Only inexact types are supported but {da.name} and "
                      f"{db.name} were provided which results in {dt.name}, which is not a "
                      "floating point type.")


def addmm(c, a, b, /, alpha=1.0, beta=1.0, *, stream=None):
    if stream is None and type(a) is array and type(b) is array and type(c) is array \
            and _CURRENT and type(alpha) is float and type(beta) is float:
        # the linear-layer case first: (…, K) @ (K, N) + bias, one dtype, current stream
        dt, st = a._dtype, a._stream
        sa, sb, sc = a._shape, b._shape, c._shape
        if dt is b._dtype and dt is c._dtype and dt in _REAL_INEXACT and st is b._stream \
                and st is c._stream and st is _CURRENT[-1] and len(sb) == 2 and len(sa) >= 2 \
                and sa[-1] == sb[0]:
            out = sa[:-1] + sb[1:]
            if sc == sb[1:] or sc == out:
                if dt is _F64:
                    alpha, beta = _c_float(alpha), _c_float(beta)
                prim = _ADDMM if alpha == 1.0 and beta == 1.0 else AddMM(alpha, beta)
                return node(out, dt, prim, (c, a, b), st)
    _arrays("addmm", c, a, b)
    for v in (alpha, beta):
        if not float_like(v):
            raise _refuse("addmm")
    alpha, beta = _c_float(alpha), _c_float(beta)
    s = resolve(stream)
    c, a, b = as_array(c, s), as_array(a, s), as_array(b, s)
    dt = PROMOTE[PROMOTE[c.dtype, a.dtype], b.dtype]
    if dt.kind not in "fc":
        raise ValueError(f"[addmm] Only real floating point types are supported but "
                         f"{c.dtype.name}, {a.dtype.name} and {b.dtype.name} were provided "
                         f"which results in {dt.name}, which is not a real floating point "
                         "type.")
    if dt is D.complex64 and PROMOTE[a.dtype, b.dtype].kind not in "fc":
        # upstream takes a complex c apart: a @ b is a matmul of its own, and refused so
        raise _not_inexact(a.dtype, b.dtype, PROMOTE[a.dtype, b.dtype])
    if dt is D.complex64:
        # upstream takes a complex addmm apart, alpha * (a @ b) + beta * c: c need only
        # broadcast against the product, and a 1-D product may be a scalar
        _matrix_args(a, b, "addmm", s)
        prod = multiply(matmul(a, b, stream=s), alpha, stream=s)
        return add(prod, multiply(c, beta, stream=s), stream=s)
    a, b, batch, va, vb = _matrix_args(a, b, "addmm", s)
    final = _squeezed(batch, a, b, va, vb)
    if broadcast_pair(c.shape, final, "broadcast_shapes") != final:
        raise ValueError("[addmm] input c must broadcast to the output shape")
    c, a, b = astype(c, dt, s), astype(a, dt, s), astype(b, dt, s)
    full = batch + (a.shape[-2], b.shape[-1])
    if va or vb:
        # line c up with the product's matrix dims before the vector dims come back
        cs = (1,) * (len(final) - c.ndim) + c.shape
        if va and vb:
            cs = cs + (1, 1)
        elif va:
            cs = cs[:-1] + (1,) + cs[-1:]
        else:
            cs = cs + (1,)
        c = reshape(c, cs, stream=s)
    out = node(full, dt, AddMM(alpha, beta), (c, a, b), s)
    return reshape(out, final, stream=s) if va or vb else out


def inner(a, b, /, *, stream=None):
    _arrays("inner", a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b, stream=stream)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError("[inner] a and b must have the same last dimension.")
    return tensordot(a, b, [[-1], [-1]], stream=stream)


def outer(a, b, /, *, stream=None):
    _arrays("outer", a, b)
    s = resolve(stream)
    return multiply(reshape(a, (-1, 1), stream=s), reshape(b, (-1,), stream=s), stream=s)


def _tensordot_axes(axes, a, b):
    na, nb = a.ndim, b.ndim
    if not isinstance(axes, int) and hasattr(axes, "__index__") and \
            not getattr(axes, "ndim", 0):
        axes = axes.__index__()  # a numpy int
    if isinstance(axes, int):  # (a bool too)
        axes = int(axes)
        if not -_I32 <= axes < _I32:
            raise _refuse("tensordot")
        if axes < 0:
            raise ValueError("[tensordot] axis must be greater or equal to 0.")
        if axes > min(na, nb):
            raise ValueError("[tensordot] axis must be less than the number of dimensions of "
                             "a and b.")
        pair = [list(range(na - axes, na)), list(range(axes))]
    else:
        try:
            pair = [[int(i.__index__()) for i in ax] for ax in axes]
        except (TypeError, AttributeError):
            raise _refuse("tensordot") from None
        if any(not -_I32 <= i < _I32 for ax in pair for i in ax):
            raise _refuse("tensordot")
        if len(pair) != 2:
            raise ValueError("[tensordot] axes must be a list of two lists.")
        if len(pair[0]) != len(pair[1]):
            raise ValueError("[tensordot] axes must have the same size.")
    ax_a, ax_b = [], []
    for i, j in zip(*pair):
        for k, n in ((i, na), (j, nb)):
            if not -n <= k < n:
                raise IndexError(f"[tensordot] Axis {k} is out of bounds for array with {n} "
                                 "dimensions.")
        i, j = i % na, j % nb
        if a.shape[i] != b.shape[j]:
            raise ValueError("[tensordot] a and b must have the same shape on the contracted "
                             "axes.")
        ax_a.append(i)
        ax_b.append(j)
    if len(set(ax_a)) != len(ax_a) or len(set(ax_b)) != len(ax_b):
        raise ValueError("[tensordot] Repeated axes are not allowed.")
    return ax_a, ax_b


def tensordot(a, b, /, axes=2, *, stream=None):
    _arrays("tensordot", a, b)
    s = resolve(stream)
    ax_a, ax_b = _tensordot_axes(axes, a, b)
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    k = _prod(a.shape[i] for i in ax_a)
    fa = tuple(a.shape[i] for i in free_a)
    fb = tuple(b.shape[i] for i in free_b)
    a2 = reshape(transpose(a, free_a + ax_a, stream=s), (_prod(fa), k), stream=s)
    b2 = reshape(transpose(b, ax_b + free_b, stream=s), (k, _prod(fb)), stream=s)
    return reshape(matmul(a2, b2, stream=s), fa + fb, stream=s)


# -- einsum -------------------------------------------------------------------------

def _ellipsis_label(k):
    # labels for the (right-aligned, broadcast) ellipsis dims: outside the letters
    return chr(0x10000 + k)


def _split_subscript(sub):
    """(letters before the ellipsis, letters after, has ellipsis)."""
    n = sub.count("...")
    if n > 1:
        raise ValueError(f"[einsum] Only one ellipsis per subscript is allowed but found more "
                         f"in '{sub}'.")
    head, _, tail = sub.partition("...") if n else (sub, "", "")
    for ch in head + tail:
        if ch not in _LETTERS:
            raise ValueError(f"[einsum] Subscripts must be letters, but got '{ch}'.")
    return head, tail, bool(n)


def _parse(subscripts, operands, strict=True):
    """Labels of each operand (ellipsis dims expanded), the output labels, label sizes.
    Output labels no input has are refused, or dropped when not `strict` (upstream's
    einsum_path plans without them)."""
    spec = subscripts.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(operands):
        raise ValueError(f"[einsum] Number of operands, {len(operands)}, does not match "
                         f"number of input subscripts, {len(subs)}")
    parsed = [_split_subscript(sub) for sub in subs]
    n_ell = 0
    for i, ((head, tail, ell), x) in enumerate(zip(parsed, operands)):
        n = len(head) + len(tail)
        if ell and n > x.ndim:
            raise ValueError(f"[einsum] Operand {i} with shape {_fmt(x.shape)} has insufficient "
                             f"dimensions for subscript '{subs[i]}'. The ellipsis requires at "
                             f"least {n} dimensions but the operand has {x.ndim} dimensions.")
        if n != x.ndim and not ell:
            raise ValueError(f"[einsum] Invalid number of subscripts {n} for input {i} with "
                             f"{x.ndim} dimensions.")
        if ell:
            n_ell = max(n_ell, x.ndim - n)
    labels = []
    for (head, tail, ell), x in zip(parsed, operands):
        e = x.ndim - len(head) - len(tail)
        labels.append(list(head) + [_ellipsis_label(n_ell - e + j) for j in range(e)]
                      + list(tail))
    ell_labels = [_ellipsis_label(k) for k in range(n_ell)]
    if arrow:
        head, tail, ell = _split_subscript(rhs)
        out = list(head) + (ell_labels if ell else []) + list(tail)
        if len(set(out)) != len(out):
            raise ValueError("[einsum] Repeat indices not allowed in output.")
        seen = {c for ls in labels for c in ls}
        for c in out:
            if c not in seen and strict:
                raise ValueError(f"[einsum] Output subscript '{c}' does not appear in the "
                                 "inputs.")
        out = [c for c in out if c in seen]
    else:
        counts = {}
        for ls in labels:
            for c in ls:
                counts[c] = counts.get(c, 0) + 1
        out = ell_labels + sorted(c for c, k in counts.items() if k == 1 and c in _LETTERS)
    sizes = {}
    for i, (ls, x) in enumerate(zip(labels, operands)):
        own = {}
        for c, d in zip(ls, x.shape):
            if c in own and own[c] != d:
                raise ValueError(f"[einsum] Dimensions of repeated subscripts do not have the "
                                 f"same size ({own[c]} != {d}).")
            own[c] = d
        for j, (c, d) in enumerate(zip(ls, x.shape)):
            have = sizes.get(c, 1)
            if have != 1 and d != 1 and d != have:
                raise ValueError(f"[einsum] Cannot broadcast dimension {j} of input {i} with "
                                 f"shape {_fmt(x.shape)} to size {have}.")
            if d != 1:
                sizes[c] = d
            else:
                sizes.setdefault(c, 1)
    return labels, out, sizes


def _diagonal(x, ls, s):
    """x with every repeated label reduced to its diagonal (labels then unique)."""
    from ember.core.ops.creation import arange
    ls = list(ls)
    while len(set(ls)) != len(ls):
        c = next(c for c in ls if ls.count(c) > 1)
        p = ls.index(c)
        q = ls.index(c, p + 1)
        n = x.shape[p]
        r = arange(n, stream=s)
        ip = reshape(r, tuple(n if i == p else 1 for i in range(x.ndim)), stream=s)
        iq = reshape(r, tuple(n if i == q else 1 for i in range(x.ndim)), stream=s)
        dt = x.dtype
        x = _sum(where(equal(ip, iq, stream=s), x, 0, stream=s), axis=q, stream=s)
        if x.dtype is not dt:  # sum widened small integers: one term per slot, so narrow
            x = astype(x, dt, s)
        del ls[q]
    return x, ls


def _reduce_labels(x, ls, keep, s):
    axes = [i for i, c in enumerate(ls) if c not in keep]
    if not axes:
        return x, ls
    return _sum(x, axis=axes, stream=s), [c for c in ls if c in keep]


def _arrange(x, ls, order, s):
    """x transposed into `order` (a superset of its labels, missing ones size 1)."""
    mine = [c for c in order if c in ls]
    x = transpose(x, [ls.index(c) for c in mine], stream=s)
    shape = tuple(x.shape[mine.index(c)] if c in ls else 1 for c in order)
    return reshape(x, shape, stream=s)


def _contract(x, lx, y, ly, needed, sizes, s):
    """The product of two operands, summing their shared labels that are not `needed`."""
    shared = [c for c in lx if c in ly]
    summed = [c for c in shared if c not in needed]
    if not summed:
        order = lx + [c for c in ly if c not in lx]
        return multiply(_arrange(x, lx, order, s), _arrange(y, ly, order, s), stream=s), order
    batch = [c for c in shared if c in needed]
    left = [c for c in lx if c not in ly]
    right = [c for c in ly if c not in lx]
    # the summed dims are flattened together: both sides need their full size
    x = _arrange(x, lx, batch + left + summed, s)
    y = _arrange(y, ly, batch + summed + right, s)
    nb = len(batch)
    ks = tuple(sizes[c] for c in summed)
    if x.shape[nb + len(left):] != ks:
        x = broadcast_to(x, x.shape[:nb + len(left)] + ks, stream=s)
    if y.shape[nb:nb + len(summed)] != ks:
        y = broadcast_to(y, y.shape[:nb] + ks + y.shape[nb + len(summed):], stream=s)
    ldims = x.shape[nb:nb + len(left)]
    rdims = y.shape[nb + len(summed):]
    k = _prod(ks)
    x = reshape(x, x.shape[:nb] + (_prod(ldims), k), stream=s)
    y = reshape(y, y.shape[:nb] + (k, _prod(rdims)), stream=s)
    z = matmul(x, y, stream=s)
    return reshape(z, z.shape[:nb] + ldims + rdims, stream=s), batch + left + right


def einsum(subscripts, *operands, stream=None):
    if not isinstance(subscripts, str):
        raise _refuse("einsum")
    if not operands:
        raise ValueError("[einsum] At least one operand is required.")
    s = resolve(stream)
    for x in operands:
        if not isinstance(x, array):  # upstream casts each operand in C++, where this fails
            raise RuntimeError(f"[einsum] Expected an array operand, got {type(x).__name__}.")
    ops = [as_array(x, s) for x in operands]
    labels, out, sizes = _parse(subscripts, ops)
    terms = []
    for x, ls in zip(ops, labels):
        x, ls = _diagonal(x, ls, s)
        terms.append((x, ls))
    # labels used by a single operand and not in the output are summed away first
    outset = set(out)
    for i, (x, ls) in enumerate(terms):
        others = {c for j, (_, lo) in enumerate(terms) if j != i for c in lo}
        terms[i] = _reduce_labels(x, ls, outset | others, s)
    while len(terms) > 1:
        best = None
        for i in range(len(terms)):
            for j in range(i + 1, len(terms)):
                (x, lx), (y, ly) = terms[i], terms[j]
                rest = {c for k, (_, lo) in enumerate(terms) if k not in (i, j) for c in lo}
                needed = outset | rest
                kept = {c for c in lx + ly if c in needed}
                # greedy: pairs sharing labels first, then the one shrinking memory most
                cost = (not set(lx) & set(ly),
                        _prod(sizes[c] for c in kept) - _prod(x.shape) - _prod(y.shape))
                if best is None or cost < best[0]:
                    best = (cost, i, j, needed)
        _, i, j, needed = best
        (x, lx), (y, ly) = terms[i], terms[j]
        z = _contract(x, lx, y, ly, needed, sizes, s)
        terms = [t for k, t in enumerate(terms) if k not in (i, j)] + [z]
    x, ls = terms[0]
    x, ls = _reduce_labels(x, ls, outset, s)
    x = transpose(x, [ls.index(c) for c in out], stream=s)
    shape = tuple(sizes[c] for c in out)
    if x.shape != shape:
        x = broadcast_to(x, shape, stream=s)
    return x


# -- view ---------------------------------------------------------------------------

def view(a, dtype, stream=None):
    if not isinstance(dtype, D.Dtype):  # (refused by upstream's binding)
        raise binding_error("view", "view(a: scalar | array, dtype: Dtype, stream: "
                            "StreamOrDevice = None) -> array")
    s = resolve(stream)
    a = as_operand(a, s)
    src = a.dtype
    if src is dtype:
        return fresh(a)
    shape = a.shape
    if src.size != dtype.size:
        if a.ndim == 0:
            raise ValueError("[view] Changing the type of a scalar is only allowed for types "
                             "with the same size.")
        nbytes = shape[-1] * src.size
        if dtype.size > src.size and nbytes % dtype.size:
            raise ValueError("[view] When viewing as a larger dtype, the size in bytes of the "
                             "last axis must be a multiple of the requested type size.")
        shape = shape[:-1] + (nbytes // dtype.size,)
    return node(shape, dtype, View(src, dtype), (a,), s)
