"""mx.linalg: norms, factorizations and solvers, run on the array's device.

Upstream runs factorizations on the CPU only (it asks for stream=mx.cpu); Ember runs them
wherever the array's stream is, with torch.linalg's kernels.
"""

import math
import operator

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import array
from ember.core.ops._base import PROMOTE, binding_error, resolve
from ember.core.primitives import factorization as F

__all__ = ["cholesky", "cholesky_inv", "cross", "det", "eig", "eigh", "eigvals", "eigvalsh",
           "inv", "lu", "lu_factor", "norm", "pinv", "qr", "slogdet", "solve",
           "solve_triangular", "svd", "tri_inv"]

_REAL = (D.float32, D.float64)
_REAL_OR_COMPLEX = (D.float32, D.float64, D.complex64)


_S = "*, stream: StreamOrDevice = None) -> "
_MLX_S = ("*, stream: mlx.core.Stream | mlx.core.ThreadLocalStream | mlx.core.Device | "
          "mlx.core.DeviceType | None = None) -> mlx.core.array")
# upstream's signatures, quoted by its binding when an argument does not convert
_SIGS = {
    "norm": "norm(a: array, /, ord: None | int | float | str = None, axis: None | int | "
            "list[int] = None, keepdims: bool = False, " + _S + "array",
    "qr": "qr(a: array, " + _S + "tuple[array, array]",
    "svd": "svd(a: array, compute_uv: bool = True, " + _S + "tuple[array, array, array]",
    "inv": "inv(a: array, " + _S + "array",
    "pinv": "pinv(a: array, " + _S + "array",
    "cholesky": "cholesky(a: array, upper: bool = False, " + _S + "array",
    "cholesky_inv": "cholesky_inv(a: array, upper: bool = False, " + _S + "array",
    "tri_inv": "tri_inv(a: array, upper: bool = False, " + _S + "array",
    "solve": "solve(a: array, b: array, " + _S + "array",
    "solve_triangular": "solve_triangular(a: array, b: array, *, upper: bool = False, "
                        "stream: StreamOrDevice = None) -> array",
    "eig": "eig(a: array, " + _S + "tuple[array, array]",
    "eigh": "eigh(a: array, UPLO: str = 'L', " + _S + "tuple[array, array]",
    "eigvals": "eigvals(a: mlx.core.array, " + _MLX_S,
    "eigvalsh": "eigvalsh(a: mlx.core.array, UPLO: str = 'L', " + _MLX_S,
    "lu": "lu(a: array, " + _S + "tuple[array, array, array]",
    "lu_factor": "lu_factor(a: array, " + _S + "tuple[array, array]",
    "cross": "cross(a: array, b: array, axis: int = -1, " + _S + "array",
    "det": "det(a: array, " + _S + "array",
    "slogdet": "slogdet(a: array, " + _S + "tuple[array, array]",
}


def _refuse(op):
    return binding_error(op, _SIGS[op])


def _array(a, op):
    if not isinstance(a, array):
        raise _refuse(op)
    return a


def _matrix(a, stream, op, dtypes, square=None, dims_msg="Arrays must have"):
    """`a` checked for dtype, rank and (when `square` names the message) squareness."""
    _array(a, op)
    if dtypes is not None and a.dtype not in dtypes:
        names = " or ".join(d.name for d in dtypes) if len(dtypes) == 2 else \
            "float32, float64 or complex64"
        raise ValueError(f"[linalg::{op}] Arrays must have type {names}. Received array with "
                         f"type {a.dtype.name}.")
    if a.ndim < 2:
        raise ValueError(f"[linalg::{op}] {dims_msg} >= 2 dimensions. Received array with "
                         f"{a.ndim} dimensions.")
    if square is not None and a.shape[-1] != a.shape[-2]:
        raise ValueError(f"[linalg::{op}] {square}")
    s = resolve(stream)
    return O.as_array(a, s)


_SQUARE = "Only defined for square matrices."


def _bool(v, op):
    if not isinstance(v, bool):
        raise _refuse(op)
    return v


# -- inverses and factorizations -------------------------------------------------------

def inv(a, *, stream=None):
    a = _matrix(a, stream, "inv", _REAL, "Inverses are only defined for square matrices.")
    return F.Inverse()(a)[0]


def tri_inv(a, upper=False, *, stream=None):
    _bool(upper, "tri_inv")
    _array(a, "tri_inv")
    a = _matrix(a, stream, "inv", _REAL, "Inverses are only defined for square matrices.")
    return F.Inverse(True, upper)(a)[0]


def cholesky(a, upper=False, *, stream=None):
    _bool(upper, "cholesky")
    a = _matrix(a, stream, "cholesky", _REAL,
                "Cholesky decomposition is only defined for square matrices.")
    return F.Cholesky(upper)(a)[0]


def cholesky_inv(a, upper=False, *, stream=None):
    _bool(upper, "cholesky_inv")
    a = _matrix(a, stream, "cholesky_inv", _REAL,
                "Cholesky inverse is only defined for square matrices.")
    t = F.Inverse(True, upper)(a)[0]
    # A = L L^T gives A^-1 = L^-T L^-1; A = U^T U gives U^-1 U^-T
    tt = O.swapaxes(t, -1, -2)
    return O.matmul(t, tt) if upper else O.matmul(tt, t)


def _uplo(UPLO, op):  # noqa: N803 - upstream's name
    if not isinstance(UPLO, str):
        raise _refuse(op)
    # upstream reads the lower triangle only when UPLO starts with "L" (case matters),
    # the upper one for anything else
    return not UPLO.startswith("L")


def eigh(a, UPLO="L", *, stream=None):  # noqa: N803
    upper = _uplo(UPLO, "eigh")
    a = _matrix(a, stream, "eigh", _REAL_OR_COMPLEX, _SQUARE)
    return tuple(F.Eigh(upper, True)(a))


def eigvalsh(a, UPLO="L", *, stream=None):  # noqa: N803
    upper = _uplo(UPLO, "eigvalsh")
    a = _matrix(a, stream, "eigvalsh", _REAL_OR_COMPLEX, _SQUARE)
    return F.Eigh(upper, False)(a)[0]


def eig(a, *, stream=None):
    a = _matrix(a, stream, "eig", _REAL_OR_COMPLEX, _SQUARE)
    return tuple(F.Eig(True)(a))


def eigvals(a, *, stream=None):
    a = _matrix(a, stream, "eigvals", _REAL_OR_COMPLEX, _SQUARE)
    return F.Eig(False)(a)[0]


def svd(a, compute_uv=True, *, stream=None):
    _bool(compute_uv, "svd")
    a = _matrix(a, stream, "svd", _REAL_OR_COMPLEX, dims_msg="Input array must have")
    out = F.SVD(compute_uv)(a)
    return tuple(out) if compute_uv else out[0]


def qr(a, *, stream=None):
    a = _matrix(a, stream, "qr", _REAL)
    return tuple(F.QR()(a))


def lu(a, *, stream=None):
    a = _matrix(a, stream, "lu", _REAL)
    return tuple(F.LUFactor(True)(a))


def lu_factor(a, *, stream=None):
    a = _matrix(a, stream, "lu_factor", _REAL)
    return tuple(F.LUFactor(False)(a))


def pinv(a, *, stream=None):
    a = _matrix(a, stream, "pinv", _REAL)
    m, n = a.shape[-2:]
    k = min(m, n)
    if k == 0:
        return O.zeros(a.shape[:-2] + (n, m), a.dtype, stream=a._stream)
    u, sv, vt = F.SVD(True)(a)
    u, vt = u[..., :, :k], vt[..., :k, :]
    # singular values below max(m, n) * eps of the largest count as zero
    eps = 2.220446049250313e-16 if a.dtype is D.float64 else 1.1920928955078125e-07
    cut = O.multiply(O.max(sv, axis=-1, keepdims=True), max(m, n) * eps)
    keep = O.greater(sv, cut)
    inv_s = O.where(keep, O.reciprocal(O.where(keep, sv, O.ones_like(sv))), O.zeros_like(sv))
    v_scaled = O.multiply(O.swapaxes(vt, -1, -2), O.expand_dims(inv_s, -2))
    return O.matmul(v_scaled, O.swapaxes(u, -1, -2))


def _det_input(a, stream, op):
    _array(a, op)
    if a.dtype is D.complex64:  # (checked before the rank, as upstream)
        raise ValueError(f"[linalg::{op}] Complex inputs are not supported.")
    if a.ndim < 2:
        raise ValueError(f"[linalg::{op}] Arrays must have >= 2 dimensions. Received array "
                         f"with {a.ndim} dimensions.")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"[linalg::{op}] {_SQUARE}")
    s = resolve(stream)
    a = O.as_array(a, s)
    return a if a.dtype.kind == "f" else O.astype(a, D.float32, stream=s)


def _check_lu_dtype(a):
    # upstream factorizes matrices above 3 x 3, which takes float32 and float64 only
    if a.shape[-1] > 3 and a.dtype not in _REAL:
        raise ValueError(f"[linalg::lu_factor] Arrays must have type float32 or float64. "
                         f"Received array with type {a.dtype.name}.")
    return a


def det(a, *, stream=None):
    return F.Det()(_check_lu_dtype(_det_input(a, stream, "det")))[0]


def slogdet(a, *, stream=None):
    return tuple(F.SlogDet()(_check_lu_dtype(_det_input(a, stream, "slogdet"))))


# -- solvers ---------------------------------------------------------------------------

def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def _solve(a, b, stream, op, prim, square_dtype_op):
    _array(a, op)
    _array(b, op)
    if a.ndim < 2:
        raise ValueError(f"[linalg::{op}] First input must have >= 2 dimensions. Received "
                         f"array with {a.ndim} dimensions.")
    if b.ndim < 1:
        raise ValueError(f"[linalg::{op}] Second input must have >= 1 dimensions. Received "
                         f"array with {b.ndim} dimensions.")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"[linalg::{op}] First input must be a square matrix. Received array "
                         f"with shape {_fmt(a.shape)}.")
    vec = b.ndim == 1
    rows = b.shape[0] if vec else b.shape[-2]
    if a.shape[-1] != rows:
        raise ValueError(f"[linalg::{op}] Last dimension of first input with shape "
                         f"{_fmt(a.shape)} must match second to last dimension of second input "
                         f"with shape {_fmt(b.shape)}.")
    dt = PROMOTE[a.dtype, b.dtype]
    if dt not in _REAL:
        raise ValueError(f"[linalg::{op}] Input arrays must promote to float32 or float64.  "
                         f"Received arrays with type {a.dtype.name} and {b.dtype.name}.")
    if a.dtype not in _REAL:
        raise ValueError(f"[linalg::{square_dtype_op}] Arrays must have type float32 or "
                         f"float64. Received array with type {a.dtype.name}.")
    s = resolve(stream)
    a = O.astype(O.as_array(a, s), dt, stream=s)
    b = O.astype(O.as_array(b, s), dt, stream=s)
    if vec:
        b = O.expand_dims(b, -1, stream=s)
    try:
        batch = O.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        if op != "solve":
            raise
        # upstream's solve broadcasts the right-hand side against the pivots, and says so
        raise ValueError(f"[broadcast_shapes] Shapes {_fmt(b.shape[:-2] + b.shape[-1:])} and "
                         f"{_fmt(a.shape[:-2] + (1,))} cannot be broadcast.") from None
    a = O.broadcast_to(a, batch + a.shape[-2:], stream=s)
    b = O.broadcast_to(b, batch + b.shape[-2:], stream=s)
    x = prim(a, b)[0]
    return O.squeeze(x, -1, stream=s) if vec else x


def solve(a, b, *, stream=None):
    return _solve(a, b, stream, "solve", F.Solve(), "lu")


def solve_triangular(a, b, *, upper=False, stream=None):
    _bool(upper, "solve_triangular")
    return _solve(a, b, stream, "solve_triangular", F.SolveTriangular(upper), "inv")


# -- cross product ---------------------------------------------------------------------

def cross(a, b, axis=-1, *, stream=None):
    _array(a, "cross")
    _array(b, "cross")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise _refuse("cross") from None
    for x in (a, b):  # (one input's axis, then its size, then the other's)
        if not -x.ndim <= axis < x.ndim:
            raise IndexError(f"[linalg::cross] Axis {axis} is out of bounds for array with "
                             f"{x.ndim} dimensions.")
        if x.shape[axis] not in (2, 3):
            raise ValueError("[linalg::cross] The specified axis must have size 2 or 3.")
    s = resolve(stream)
    dt = PROMOTE[a.dtype, b.dtype]
    # as upstream: the shapes broadcast (right-aligned) as if both had 3 along `axis`, each
    # input keeps its own size there, and a 2-vector's missing third component counts as
    # zero (it is left out of the products, not padded with zeros)
    padded = []
    for x in (a, b):
        shape = list(x.shape)
        shape[axis] = 3
        padded.append(tuple(shape))
    out = O.broadcast_shapes(*padded)
    ax = axis % len(out)

    def parts(x):
        x = O.astype(O.as_array(x, s), dt, stream=s)
        n = x.shape[axis]
        x = O.broadcast_to(x, out[:ax] + (n,) + out[ax + 1:], stream=s)
        # (basic indexing, not take: take refuses arrays with no elements)
        lead = (slice(None),) * ax
        return [x[lead + (i,)] for i in range(n)] + [None] * (3 - n)

    a0, a1, a2 = parts(a)
    b0, b1, b2 = parts(b)
    mul = O.multiply

    def term(p, q, r, t):
        # p * q - r * t without the products of a missing component
        left = None if p is None or q is None else mul(p, q, stream=s)
        right = None if r is None or t is None else mul(r, t, stream=s)
        if right is None:
            return left
        if left is None:
            return O.negative(right, stream=s)
        return O.subtract(left, right, stream=s)

    comp_shape = out[:ax] + out[ax + 1:]
    cs = [O.zeros(comp_shape, dt, stream=s) if c is None else c
          for c in (term(a1, b2, a2, b1), term(a2, b0, a0, b2), term(a0, b1, a1, b0))]
    return O.stack(cs, axis=ax, stream=s)


# -- norms -----------------------------------------------------------------------------

def _norm_axes(a, axis):
    """None, an int, or a sequence of ints as upstream's binding takes them: lists, tuples,
    ranges, 1-D integer arrays (numpy's too); not sets, mappings or iterators."""
    if axis is None:
        return None
    try:
        if hasattr(axis, "__index__") and not getattr(axis, "ndim", 0):
            return (operator.index(axis),)
        if isinstance(axis, (str, bytes, dict)) or not hasattr(type(axis), "__getitem__"):
            raise TypeError
        return tuple(operator.index(ax) for ax in list(axis))
    except TypeError:
        raise _refuse("norm") from None


def _check_reduce(ndim, axes):
    """The checks (and messages) of upstream's reductions, which the norms run on."""
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise IndexError(f"Invalid axis {ax} for array with {ndim} dimensions.")
    if len({ax % ndim for ax in axes}) != len(axes):
        raise ValueError("Duplicate axes detected in reduction.")


def _out_cast(x, a, s):
    """The result in the input's inexact dtype (float32 for integer and bool inputs)."""
    dt = a.dtype if a.dtype.kind in "fc" else D.float32
    return O.astype(x, dt, stream=s)


def _l2_norm(a, axes, keepdims, s):
    _check_reduce(a.ndim, axes)
    x = O.abs(a, stream=s) if a.dtype is D.complex64 else a
    return O.sqrt(O.sum(O.multiply(x, x, stream=s), axis=axes, keepdims=keepdims, stream=s),
                  stream=s)


def _vector_norm(a, ord, axes, keepdims, s):
    if ord == 2:
        return _l2_norm(a, axes, keepdims, s)
    _check_reduce(a.ndim, axes)
    kw = dict(axis=axes, keepdims=keepdims, stream=s)
    if ord == math.inf:
        return _out_cast(O.max(O.abs(a, stream=s), **kw), a, s)
    if ord == -math.inf:
        return _out_cast(O.min(O.abs(a, stream=s), **kw), a, s)
    if ord == 0:
        return _out_cast(O.sum(O.not_equal(a, 0, stream=s), **kw), a, s)
    if ord == 1:
        return _out_cast(O.sum(O.abs(a, stream=s), **kw), a, s)
    x = O.abs(a, stream=s)
    if x.dtype.kind not in "f" or a.dtype is D.complex64:
        # (complex inputs take the powers in complex, as upstream: 0 ** -p is inf+nanj)
        x = O.astype(x, a.dtype if a.dtype is D.complex64 else D.float32, stream=s)
    r = O.power(O.sum(O.power(x, float(ord), stream=s), **kw), 1.0 / ord, stream=s)
    return _out_cast(r, a, s)


def _singular_values(a, axes, s):
    """The singular values of the matrices over `axes` (rows, columns), moved last as
    upstream does (its moveaxis checks the axes)."""
    r, c = (ax + a.ndim if ax < 0 else ax for ax in axes)
    if r > c:
        x = O.moveaxis(O.moveaxis(a, r, -1, stream=s), c, -1, stream=s)
    else:
        x = O.moveaxis(O.moveaxis(a, c, -1, stream=s), r, -2, stream=s)
    return svd(x, compute_uv=False, stream=s), r, c


def _keep_matrix_dims(out, r, c, keepdims, s):
    return O.expand_dims(out, sorted((r, c)), stream=s) if keepdims else out


def _matrix_norm(a, ord, axes, keepdims, s):
    if isinstance(ord, str):
        if ord in ("f", "fro"):
            return _l2_norm(a, axes, keepdims, s)
        if ord != "nuc":
            raise ValueError(f"[linalg::norm] Invalid ord value '{ord}' for matrix norm.")
        sv, r, c = _singular_values(a, axes, s)
        return _keep_matrix_dims(O.sum(sv, axis=-1, stream=s), r, c, keepdims, s)
    r, c = (ax + a.ndim if ax < 0 else ax for ax in axes)
    if ord in (1, -1, math.inf, -math.inf):
        # sum over one axis, then max/min over the other, renumbered when the first
        # reduction dropped an axis before it (the same rule as upstream, duplicates too)
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        if not keepdims and outer > inner and outer > 0:
            outer -= 1
        _check_reduce(a.ndim, (inner,))
        sums = O.sum(O.abs(a, stream=s), axis=inner, keepdims=keepdims, stream=s)
        _check_reduce(sums.ndim, (outer,))
        red = O.max if ord > 0 else O.min
        return _out_cast(red(sums, axis=outer, keepdims=keepdims, stream=s), a, s)
    if ord not in (2, -2):
        raise ValueError(f"[linalg::norm] Invalid ord {ord:g} for matrix norm.")
    # the singular values: 2 is the largest, -2 the smallest
    sv, r, c = _singular_values(a, axes, s)
    out = (O.max if ord == 2 else O.min)(sv, axis=-1, stream=s)
    return _out_cast(_keep_matrix_dims(out, r, c, keepdims, s), a, s)


def _number(v, op):
    """A numpy scalar or 0-d array given for an int or float parameter, as upstream's
    binding converts it (through __index__, else __float__)."""
    if getattr(v, "ndim", 0) or isinstance(v, complex):
        raise _refuse(op)
    if hasattr(v, "__index__"):
        try:
            return operator.index(v)
        except TypeError:
            pass
    if hasattr(v, "__float__"):
        return float(v)
    raise _refuse(op)


def norm(a, /, ord=None, axis=None, keepdims=False, *, stream=None):
    _array(a, "norm")
    s = resolve(stream)
    a = O.as_array(a, s)
    axes = _norm_axes(a, axis)
    if ord is not None and not isinstance(ord, (str, int, float)):
        ord = _number(ord, "norm")  # noqa: A001
    if not isinstance(keepdims, bool):
        raise _refuse("norm")
    if ord is None:
        # the 2-norm of the flattened array, or over up to two given axes (none: |a|)
        if axes is None:
            out = _l2_norm(O.reshape(a, (-1,), stream=s), (0,), False, s)
            return O.reshape(out, (1,) * a.ndim, stream=s) if keepdims else out
        if len(axes) > 2:
            raise ValueError("[linalg::norm] Received too many axes for norm.")
        return _l2_norm(a, axes, keepdims, s)
    if axes is None:
        axes = tuple(range(a.ndim))
    if isinstance(ord, str):
        # (string norms are checked for two axes before anything else)
        if len(axes) != 2:
            raise ValueError(f"[linalg::norm] Norm '{ord}' only supported for matrices, but "
                             f"received {len(axes)} axis/axes.")
        return _matrix_norm(a, ord, axes, keepdims, s)
    if len(axes) == 1:
        return _vector_norm(a, ord, axes, keepdims, s)
    if len(axes) == 2:
        return _matrix_norm(a, ord, axes, keepdims, s)
    raise ValueError("[linalg::norm] Received too many axes for norm.")
