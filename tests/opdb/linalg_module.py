"""Entries for mx.linalg. Factorizations whose outputs are unique only up to signs
(eigh's and svd's vectors, eig's) are compared through sign-free functions of them.
Derivatives are checked here where upstream has them (det, slogdet, norm, cross, the
right-hand sides of the solvers); the others Ember adds are checked against finite
differences in tests/core/test_linalg_module.py."""

import numpy as np

from tests.opdb import FLOATS, INTS, Op, add, rand

_DTYPES = ("float32",) + FLOATS[1:] + ("int32", "bool", "complex64")


def _general(shapes, boost=3.0):
    """Well-conditioned square (or given) matrices: random plus boost * identity."""
    def samples(rng, dt):
        out = []
        for group in shapes:
            xs = []
            for s in group:
                x = rand(rng, s, dt)
                if dt in ("float32", "float16", "bfloat16", "complex64") and len(s) >= 2 \
                        and s[-1] == s[-2]:
                    x = (x + boost * np.eye(s[-1])).astype(x.dtype)
                xs.append(x)
            out.append(tuple(xs))
        return out
    return samples


def _spd(shapes):
    def samples(rng, dt):
        out = []
        for s in shapes:
            x = rand(rng, s, "float32")
            x = x @ np.swapaxes(x, -1, -2) + s[-1] * np.eye(s[-1])
            out.append((x.astype(np.float32) if dt != "complex64" else x.astype(np.complex64),))
        return out
    return samples


def _op(name, fn, samples, dtypes=("float32",), **kw):
    add(Op(name, fn, samples, dtypes=dtypes, **kw))


def _up_to_sign(m, f, out):
    return [m.abs(o) for o in out] if f == "svd" else out


_SQ = [((3, 3),), ((2, 4, 4),), ((1, 1),), ((0, 2, 2),)]
_BAD = [((3,),), ((3, 2),), ((),)]
_BAD_SAMPLES = _general(_BAD)
_F64 = lambda m, a: a.astype(m.float64)

for _name in ("inv", "tri_inv", "cholesky", "cholesky_inv", "det", "slogdet", "eigvals",
              "eigvalsh", "lu", "lu_factor", "qr", "pinv", "svd", "eig", "eigh"):
    # (singular vectors are compared up to sign, which is the device's choice)
    _op(_name + "_errors", lambda m, a, f=_name: _up_to_sign(m, f, getattr(m.linalg, f)(a)),
        _BAD_SAMPLES, dtypes=_DTYPES, grad=False, vmap=False)

_op("inv", lambda m, a: m.linalg.inv(a), _general(_SQ[:3]), grad=False)
_op("inv_float64", lambda m, a: m.linalg.inv(_F64(m, a)), _general(_SQ[:2]), grad=False)
for _u in (False, True):
    _s = "_upper" if _u else ""
    _op("tri_inv" + _s, lambda m, a, u=_u: m.linalg.tri_inv(a, upper=u), _general(_SQ),
        grad=False)
    _op("cholesky" + _s, lambda m, a, u=_u: m.linalg.cholesky(a, upper=u),
        _spd([(3, 3), (2, 4, 4), (1, 1), (0, 2, 2)]), grad=False)
    _op("cholesky_inv" + _s,
        lambda m, a, u=_u: m.linalg.cholesky_inv(m.linalg.cholesky(a, upper=u), upper=u),
        _spd([(3, 3), (2, 4, 4), (1, 1)]), grad=False)
    _op("solve_triangular" + _s,
        lambda m, a, b, u=_u: m.linalg.solve_triangular(a, b, upper=u),
        _general([((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (3, 4)),
                  ((3, 3), (2, 3, 1)), ((2, 1, 3, 3), (4, 3, 1))]),
        grad_argnums=(1,))
_op("cholesky_float64", lambda m, a: m.linalg.cholesky(_F64(m, a)), _spd([(3, 3)]),
    grad=False)

# upstream takes a closed form up to 3 x 3 (differentiable, any float dtype) and an LU
# factorization above (float32/float64 only, float32 precision, no derivatives)
_SMALL = [((3, 3),), ((2, 2, 2),), ((1, 1),), ((0, 2, 2),)]
_LARGE = [((4, 4),), ((2, 5, 5),)]
_op("det", lambda m, a: m.linalg.det(a), _general(_SMALL), dtypes=FLOATS + ("int32", "bool"))
_op("det_large", lambda m, a: m.linalg.det(a), _general(_LARGE),
    dtypes=FLOATS + ("int32", "bool"), grad=False)
_op("det_float64", lambda m, a: m.linalg.det(_F64(m, a)), _general(_SMALL[:2]))
_op("det_float64_large", lambda m, a: m.linalg.det(_F64(m, a)), _general(_LARGE), rtol=1e-6,
    grad=False)
_op("det_singular", lambda m, a: m.linalg.det(a * 0), _general(_SQ[:2]), grad=False)
_op("slogdet", lambda m, a: m.linalg.slogdet(a), _general(_SMALL),
    dtypes=FLOATS + ("int32", "bool"), rtol=1e-2)
_op("slogdet_large", lambda m, a: m.linalg.slogdet(a), _general(_LARGE),
    dtypes=FLOATS + ("int32", "bool"), rtol=1e-2, grad=False)
_op("slogdet_negative", lambda m, a: m.linalg.slogdet(-a), _general(_SMALL[:2]))
_op("slogdet_singular", lambda m, a: m.linalg.slogdet(a * 0), _general(_SQ[:2]),
    grad=False)


def _abs_cols(m, v):
    return m.abs(v)


_op("eigh", lambda m, a: [m.linalg.eigh(a)[0], _abs_cols(m, m.linalg.eigh(a)[1])],
    _spd([(3, 3), (2, 4, 4), (1, 1), (0, 2, 2)]), dtypes=("float32", "complex64"),
    grad=False)
_op("eigh_upper", lambda m, a: [m.linalg.eigh(a, UPLO="U")[0],
                                _abs_cols(m, m.linalg.eigh(a, UPLO="U")[1])],
    _spd([(3, 3), (2, 4, 4)]), grad=False)
_op("eigvalsh", lambda m, a: m.linalg.eigvalsh(a), _spd([(3, 3), (2, 4, 4), (0, 2, 2)]),
    dtypes=("float32", "complex64"), grad=False)
_op("eigvalsh_upper", lambda m, a: m.linalg.eigvalsh(a, UPLO="U"), _spd([(3, 3)]),
    grad=False)
_op("eigvals", lambda m, a: m.linalg.eigvals(a), _general([((4, 4),), ((2, 3, 3),)], 0.0),
    dtypes=("float32", "complex64"), grad=False)
# eigenvectors are unique up to a unit factor per column: compare |v| and A v = w v
_op("eig", lambda m, a: [m.linalg.eig(a)[0], m.abs(m.linalg.eig(a)[1])],
    _general([((4, 4),), ((2, 3, 3),)], 0.0), grad=False)

_RECT = [((3, 3),), ((4, 2),), ((2, 5),), ((2, 3, 4),), ((0, 2, 3),)]
_op("svd_values", lambda m, a: m.linalg.svd(a, compute_uv=False), _general(_RECT),
    dtypes=("float32", "complex64"), grad=False)
_op("svd", lambda m, a: [m.abs(m.linalg.svd(a)[0]), m.linalg.svd(a)[1]],
    _general(_RECT[:2] + _RECT[3:]), grad=False)
_op("svd_reconstruct",
    lambda m, a: (lambda u, s, vt: (u[..., :, :s.shape[-1]] * s[..., None, :])
                  @ vt[..., :s.shape[-1], :])(*m.linalg.svd(a)),
    _general(_RECT), grad=False)
_op("qr", lambda m, a: m.linalg.qr(a), _general(_RECT[:4]), grad=False, vmap=False)
_op("lu", lambda m, a: m.linalg.lu(a), _general(_RECT[:4], 0.0), grad=False, vmap=False)
_op("lu_factor", lambda m, a: m.linalg.lu_factor(a), _general(_RECT[:4], 0.0), grad=False,
    vmap=False)
_op("pinv", lambda m, a: m.linalg.pinv(a), _general(_RECT), grad=False)

_op("solve", lambda m, a, b: m.linalg.solve(a, b),
    _general([((3, 3), (3,)), ((3, 3), (3, 2)), ((1, 1), (1, 4))]), grad_argnums=(1,))
_op("solve_errors", lambda m, a, b: m.linalg.solve(a, b),
    _general([((3, 3), (4,)), ((3, 3), (2, 3)), ((3, 2), (3,)), ((3,), (3,)),
              ((3, 3), ())]), dtypes=("float32", "float16", "int32", "complex64"),
    grad=False, vmap=False)
_op("solve_triangular_errors", lambda m, a, b: m.linalg.solve_triangular(a, b),
    _general([((3, 3), (4,)), ((3, 3), (2, 3)), ((3, 2), (3,)), ((3,), (3,)),
              ((3, 3), ())]), dtypes=("float32", "float16", "int32", "complex64"),
    grad=False, vmap=False)
_op("solve_mixed", lambda m, a, b: m.linalg.solve(_F64(m, a), b.astype(m.int32)),
    _general([((3, 3), (3,))]), grad=False)

_CROSS = [((3,), (3,)), ((2,), (3,)), ((2,), (2,)), ((4, 3), (3,)), ((2, 1, 3), (4, 3)),
          ((3, 2), (2,))]
_op("cross", lambda m, a, b: m.linalg.cross(a, b), _general(_CROSS),
    dtypes=FLOATS + INTS + ("bool", "complex64"))
_op("cross_axis0", lambda m, a, b: m.linalg.cross(a, b, axis=0),
    _general([((3, 4), (3, 4)), ((2, 5), (3, 1))]))
_op("cross_errors", lambda m, a, b: m.linalg.cross(a, b),
    _general([((4,), (4,)), ((3,), ()), ((3, 2), (2, 3))]), grad=False, vmap=False)

_VEC = [((5,),), ((3, 4),), ((2, 3, 4),)]
for _ord in (None, 0, 1, -1, 2, -2, 3, 0.5, np.inf, -np.inf):
    _op(f"norm_vector_{_ord}", lambda m, a, o=_ord: m.linalg.norm(a, o, axis=-1),
        _general(_VEC), dtypes=FLOATS + ("int32", "uint8", "bool", "complex64"),
        grad=_ord not in (0, -1, -2, -np.inf), rtol=None)
    _op(f"norm_vector_{_ord}_keepdims",
        lambda m, a, o=_ord: m.linalg.norm(a, o, axis=0, keepdims=True),
        _general(_VEC[1:]), grad=False)
for _ord in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
    _svd = _ord in ("nuc", 2, -2)
    _op(f"norm_matrix_{_ord}", lambda m, a, o=_ord: m.linalg.norm(a, o),
        _general([((3, 4),), ((4, 4),), ((1, 3),)]),
        dtypes=FLOATS + ("int32", "bool", "complex64"), grad=not _svd)
    _op(f"norm_matrix_{_ord}_axes",
        lambda m, a, o=_ord: m.linalg.norm(a, o, axis=(2, 0), keepdims=True),
        _general([((3, 2, 4),), ((2, 1, 2),)]), grad=not _svd)
_op("norm_default", lambda m, a: m.linalg.norm(a),
    _general([((5,),), ((3, 4),), ((2, 3, 4),), ((),)]),
    dtypes=FLOATS + ("int32", "bool", "complex64"))
_op("norm_empty", lambda m, a: m.linalg.norm(a), _general([((0,),), ((2, 0),)]), grad=False)
_op("norm_default_keepdims", lambda m, a: m.linalg.norm(a, keepdims=True),
    _general([((5,),), ((2, 3, 4),), ((),)]))
_op("norm_axes_errors", lambda m, a: m.linalg.norm(a, 2, axis=(0, 1, 2)),
    _general([((2, 3, 4),)]), grad=False, vmap=False)
for _sfx, _kw in {"fro_vec": dict(ord="fro", axis=0), "nuc_vec": dict(ord="nuc", axis=0),
                  "bad_str": dict(ord="foo"), "bad_ord": dict(ord=3), "ord0": dict(ord=0),
                  "too_many": dict(ord=2, axis=None), "dup": dict(axis=(0, 0)),
                  "oob": dict(axis=3), "oob_pair": dict(ord=1, axis=(0, 3))}.items():
    _op("norm_errors_" + _sfx, lambda m, a, kw=_kw: m.linalg.norm(a, **kw),
        _general([((2, 3, 4),)] if _sfx in ("too_many", "oob") else [((3, 4),)]),
        grad=False, vmap=False)
