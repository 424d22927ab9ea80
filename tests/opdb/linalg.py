"""Entries for the matrix products (matmul, addmm, inner, outer, tensordot, einsum) and
view."""

from tests.opdb import ALL_REAL, FLOATS, INTS, Op, add, rand

# integer inputs are rejected by the products upstream: parity checks the exception too
_PRODUCT_DTYPES = FLOATS + ("complex64", "int32", "bool")


def _singles(shapes, low=-2.0, high=2.0):
    def samples(rng, dt):
        return [tuple(rand(rng, s, dt, low, high) for s in group) for group in shapes]
    return samples


def _group(name, fn, valid, invalid=(), dtypes=FLOATS, **kw):
    """An entry over the valid shapes, and a forward-only one over shapes upstream rejects."""
    add(Op(name, fn, _singles(valid), dtypes=dtypes, **kw))
    if invalid:
        add(Op(name + "_errors", fn, _singles(invalid), dtypes=dtypes[:1], grad=False,
               vmap=False))


_MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
                  ((2, 3, 4), (4, 5)), ((5, 1, 2, 3), (4, 3, 2)), ((3,), (2, 3, 4)),
                  ((0, 3), (3, 4)), ((2, 0), (0, 3))]
_MATMUL_BAD = [((2, 3), (4, 5)), ((), (3,)), ((3,), ()), ((2, 2, 3), (3, 3, 2)), ((3,), (4,))]
_group("matmul", lambda m, a, b: m.matmul(a, b), _MATMUL_SHAPES, _MATMUL_BAD,
       dtypes=_PRODUCT_DTYPES)
add(Op("matmul_operator", lambda m, a, b: a @ b, _singles(_MATMUL_SHAPES[:6])))
add(Op("matmul_float64", lambda m, a, b: m.matmul(a.astype(m.float64), b.astype(m.float64)),
       _singles(_MATMUL_SHAPES), dtypes=("float32",)))
add(Op("matmul_mixed", lambda m, a, b: m.matmul(a.astype(m.float16), b.astype(m.bfloat16)),
       _singles(_MATMUL_SHAPES[:3]), dtypes=("float32",), rtol=1e-2, grad=False))
add(Op("matmul_ints", lambda m, a, b: m.matmul(a, b), _singles([((3, 4), (4, 5))]),
       dtypes=INTS + ("bool",), grad=False, vmap=False))

_ADDMM_SHAPES = [((4, 5), (4, 3), (3, 5)), ((5,), (4, 3), (3, 5)), ((), (4, 3), (3, 5)),
                 ((1,), (3,), (3, 5)), ((4,), (4, 3), (3,)), ((), (3,), (3,)),
                 ((2, 4, 5), (2, 4, 3), (3, 5)), ((4, 1), (2, 4, 3), (2, 3, 5)),
                 ((4, 5), (4, 0), (0, 5)), ((4, 1), (4, 2, 3), (3,))]
# (upstream's complex64 addmm lets (3,) + (2,1) through as (2,3); its real types raise)
_ADDMM_BAD = [((3,), (2, 1, 3), (3,)), ((1,), (3,), (3,)), ((1, 1, 1), (2, 3), (3, 4)),
              ((3, 4, 5), (4, 3), (3, 5)), ((6,), (4, 3), (3, 5)), ((5, 4), (5, 3), (3,)),
              ((3,), (), (3,)), ((4,), (4, 3), (2,))]
_group("addmm", lambda m, c, a, b: m.addmm(c, a, b), _ADDMM_SHAPES, _ADDMM_BAD,
       dtypes=_PRODUCT_DTYPES)
add(Op("addmm_ints", lambda m, c, a, b: m.addmm(c, a, b), _singles(_ADDMM_SHAPES[:1]),
       dtypes=INTS + ("bool",), grad=False, vmap=False))
# upstream's addmm jvp ignores alpha and beta: grads of the scaled forms are checked in
# tests/core/test_linalg.py (against finite differences and upstream's vjp)
_group("addmm_scaled", lambda m, c, a, b: m.addmm(c, a, b, 0.5, -2.0), _ADDMM_SHAPES,
       grad=False)
_group("addmm_kw", lambda m, c, a, b: m.addmm(c, a, b, alpha=3, beta=0.0), _ADDMM_SHAPES[:5],
       grad=False)
_group("addmm_alpha0", lambda m, c, a, b: m.addmm(c, a, b, alpha=0.0, beta=2.0),
       _ADDMM_SHAPES[:5], grad=False)
add(Op("addmm_mixed", lambda m, c, a, b: m.addmm(c.astype(m.float16), a, b),
       _singles(_ADDMM_SHAPES[:3]), dtypes=("float32", "int32"), grad=False))

_group("inner", lambda m, a, b: m.inner(a, b),
       [((4,), (4,)), ((2, 3), (5, 3)), ((2, 3, 4), (4,)), ((), (2, 3)), ((3,), ()),
        ((0, 3), (2, 3))],
       [((2, 3), (2, 4))], dtypes=_PRODUCT_DTYPES)
_group("outer", lambda m, a, b: m.outer(a, b),
       [((4,), (3,)), ((2, 3), (4,)), ((), (3,)), ((0,), (3,)), ((2, 2), (3, 1))],
       dtypes=FLOATS + INTS + ("bool", "complex64"))

_group("tensordot", lambda m, a, b: m.tensordot(a, b),
       [((2, 3, 4), (3, 4, 5)), ((3, 4), (3, 4)), ((2, 3), (2, 3))],
       [((4, 3), (3, 4)), ((3,), (3,))], dtypes=_PRODUCT_DTYPES)
_group("tensordot_1", lambda m, a, b: m.tensordot(a, b, 1),
       [((2, 3), (3, 4)), ((2, 3, 4), (4, 5)), ((3,), (3,))], [((2, 3), (4, 5))])
_group("tensordot_0", lambda m, a, b: m.tensordot(a, b, 0),
       [((2, 3), (4,)), ((), (3,)), ((2,), ())], dtypes=_PRODUCT_DTYPES)
_group("tensordot_lists", lambda m, a, b: m.tensordot(a, b, [[1, 2], [1, 0]]),
       [((2, 3, 4), (4, 3, 5))], [((2, 3, 4), (3, 3, 5)), ((2, 3), (3, 2))],
       dtypes=_PRODUCT_DTYPES)
_group("tensordot_negative", lambda m, a, b: m.tensordot(a, b, ((-1, 0), (0, -1))),
       [((2, 3, 4), (4, 3, 2)), ((2, 4), (4, 2))])

# (subscripts, operand shapes): forward in every product dtype (integer contractions
# fail upstream, elementwise-only ones do not), grads and vmap in float32
_EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij,jk->", [(3, 4), (4, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("ij,jk->ijk", [(3, 4), (4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ba", [(3, 4)]),
    ("bA", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji->ij", [(3, 2, 3)]),
    ("i,i", [(4,), (4,)]),
    ("i,i->i", [(4,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("i,j->ji", [(3,), (4,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ij,kl->", [(2, 3), (2, 2)]),
    ("ij,i->j", [(3, 4), (3,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bjk->bki", [(2, 3, 4), (2, 4, 5)]),
    ("ijk,jkl->il", [(2, 3, 4), (3, 4, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,ij,ij->", [(2, 3), (2, 3), (2, 3)]),
    ("ab,bc,ca->", [(2, 3), (3, 4), (4, 2)]),
    ("i,ij,j->", [(3,), (3, 4), (4,)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(5, 2, 3), (4, 1, 3, 2)]),
    ("i...,i...->...", [(3, 2), (3, 1)]),
    ("ab...,b...->a...", [(2, 3, 4, 5), (3, 5)]),
    ("...ij->ij", [(2, 3, 4)]),
    ("...ij->...", [(2, 3, 4)]),
    ("i...j->j...i", [(2, 3, 4, 5)]),
    ("ij->...ij", [(3, 4)]),
    ("ab...", [(2, 3, 4, 5)]),
    ("...,...", [(3,), (3,)]),
    ("...,...->...", [(2, 1), (3,)]),
    ("i...i", [(3, 2, 3)]),
    ("ij,j->i", [(3, 4), (1,)]),
    ("ij,ij->i", [(3, 4), (1, 4)]),
    ("i,", [(3,), ()]),
    (",i", [(), (3,)]),
    ("->", [()]),
    ("", [()]),
    (" ij , jk -> ik ", [(3, 4), (4, 5)]),
]
# Contractions over an empty axis are checked against numpy (tests/core/test_linalg.py):
# upstream's CPU evaluation of reductions over empty axes can hang when repeated.
_EINSUM_BAD = [
    ("ij,jk->ik", [(3, 4), (3, 4)]),
    ("ijk,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk->ik", [(3, 4)]),
    ("i1,1k->ik", [(3, 4), (4, 5)]),
    ("ij,jk->ii", [(3, 4), (4, 5)]),
    ("ii->i", [(3, 4)]),
    ("a...b,...b->a...", [(2, 3, 4, 5), (3, 5)]),
    ("...i...,i", [(3,), (3,)]),
    ("..i", [(3, 2, 3)]),
    ("i->i->i", [(3,)]),
    ("i,i->i,i", [(3,), (3,)]),
    ("i", [(3, 2)]),
]
for _i, (_sub, _shapes) in enumerate(_EINSUM):
    add(Op(f"einsum_{_i}[{_sub.strip()}]", lambda m, *xs, _s=_sub: m.einsum(_s, *xs),
           _singles([_shapes]), dtypes=FLOATS + ("complex64", "int32", "int8", "bool")))
for _i, (_sub, _shapes) in enumerate(_EINSUM_BAD):
    add(Op(f"einsum_error_{_i}[{_sub}]", lambda m, *xs, _s=_sub: m.einsum(_s, *xs),
           _singles([_shapes]), dtypes=("float32",), grad=False, vmap=False))


# view: every source dtype as each target (sizes that do not divide raise, as upstream)
def _view_samples(shapes):
    def samples(rng, dt):
        return [(rand(rng, s, dt, -100.0, 100.0),) for s in shapes]
    return samples


for _t in ["bool_", "uint8", "int8", "int16", "uint16", "float16", "bfloat16", "int32",
           "uint32", "float32", "int64", "uint64", "float64", "complex64"]:
    _f = (lambda m, x, _t=_t: m.view(x, getattr(m, _t)))
    add(Op(f"view_{_t}", _f, _view_samples([(3, 8), (8,), (2, 0), (2, 16)]),
           dtypes=ALL_REAL + ("complex64",), grad=False))
    add(Op(f"view_{_t}_odd", _f, _view_samples([(), (4, 6), (3,)]),
           dtypes=ALL_REAL + ("complex64",), grad=False, vmap=False))
add(Op("view_method", lambda m, x: x.view(m.int32), _view_samples([(3, 8)]), dtypes=FLOATS,
       grad=False))
