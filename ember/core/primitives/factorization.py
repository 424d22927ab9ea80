"""Matrix factorizations and solvers over the last two axes (any leading batch axes).

Rules are for real inputs. Where a kernel reads one triangle only (Cholesky, Eigh, the
triangular inverse and solve), the vjp is the gradient of that reading, so it agrees with
finite differences taken over every entry.
"""

import ember.core.ops as O
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front


def _mT(x):
    return O.swapaxes(x, -1, -2)


def _tri(x, upper):
    return O.triu(x) if upper else O.tril(x)


def _diag_embed(d):
    """(..., n) -> (..., n, n) with d on the diagonal."""
    n = d.shape[-1]
    return O.multiply(O.expand_dims(d, -1), O.eye(n, dtype=d.dtype, stream=d._stream))


def _diag(x):
    return O.diagonal(x, 0, -2, -1)


def _fold_triangle(g, upper):
    """The cotangent of the entries of one triangle, given the cotangent `g` of the
    symmetric matrix built from it."""
    t = O.add(g, _mT(g))
    return O.subtract(_tri(t, upper), _diag_embed(_diag(g)))


def _symmetrize_from(x, upper):
    """The symmetric matrix that a kernel reading one triangle of x sees."""
    if upper:
        return O.add(O.triu(x), _mT(O.triu(x, 1)))
    return O.add(O.tril(x), _mT(O.tril(x, -1)))


def apply(prim, inputs, shapes, dtypes):
    from ember.core.array import node, nodes
    s = inputs[0]._stream
    if len(shapes) == 1:
        return [node(shapes[0], dtypes[0], prim, tuple(inputs), s)]
    return nodes(shapes, dtypes, prim, tuple(inputs), s)


class _Unary(Primitive):
    """A factorization of one (batched) matrix: vmap moves the batch axis in front."""

    __slots__ = ()

    def out_specs(self, x):
        raise NotImplementedError

    def __call__(self, x):
        shapes, dtypes = self.out_specs(x)
        return apply(self, [x], shapes, dtypes)

    def vmap(self, inputs, axes):
        outs = self(to_front(inputs[0], axes[0]))
        return outs, [0] * len(outs)


class Inverse(_Unary):
    """The inverse of a general (`tri` False) or triangular matrix."""

    __slots__ = ("tri", "upper")
    name = "Inverse"

    def __init__(self, tri=False, upper=False):
        self.tri, self.upper = tri, upper

    def params(self):
        return (self.tri, self.upper)

    def out_specs(self, x):
        return [x.shape], [x.dtype]

    def vjp(self, primals, cotangents, argnums, outputs):
        b = _mT(outputs[0])
        g = O.negative(O.matmul(O.matmul(b, cotangents[0]), b))
        return [_tri(g, self.upper) if self.tri else g]

    def jvp(self, primals, tangents, argnums):
        b = self(primals[0])[0]
        t = _tri(tangents[0], self.upper) if self.tri else tangents[0]
        return [O.negative(O.matmul(O.matmul(b, t), b))]


class Cholesky(_Unary):
    __slots__ = ("upper",)
    name = "Cholesky"

    def __init__(self, upper=False):
        self.upper = upper

    def params(self):
        return (self.upper,)

    def out_specs(self, x):
        return [x.shape], [x.dtype]

    @staticmethod
    def _phi(x):
        # the lower triangle with the diagonal halved
        return O.subtract(O.tril(x), O.multiply(_diag_embed(_diag(x)), 0.5))

    def vjp(self, primals, cotangents, argnums, outputs):
        l, g = outputs[0], cotangents[0]
        if self.upper:
            l, g = _mT(l), _mT(g)
        linv = Inverse(True, False)(l)[0]
        s = O.matmul(O.matmul(_mT(linv), self._phi(O.matmul(_mT(l), g))), linv)
        s = O.multiply(O.add(s, _mT(s)), 0.5)
        a = _fold_triangle(s, False)
        return [_mT(a) if self.upper else a]

    def jvp(self, primals, tangents, argnums):
        out = self(primals[0])[0]
        l = _mT(out) if self.upper else out
        linv = Inverse(True, False)(l)[0]
        da = _symmetrize_from(tangents[0], self.upper)
        dl = O.matmul(l, self._phi(O.matmul(O.matmul(linv, da), _mT(linv))))
        return [_mT(dl) if self.upper else dl]


def _eig_gaps(w):
    """F[i, j] = 1 / (w[j] - w[i]) off the diagonal, 0 on it."""
    d = O.subtract(O.expand_dims(w, -2), O.expand_dims(w, -1))
    eye = O.eye(w.shape[-1], dtype=w.dtype, stream=w._stream)
    return O.where(O.equal(eye, 1), O.zeros_like(d), O.reciprocal(O.add(d, eye)))


class Eigh(_Unary):
    __slots__ = ("upper", "vectors")
    name = "Eigh"

    def __init__(self, upper, vectors):
        self.upper, self.vectors = upper, vectors

    def params(self):
        return (self.upper, self.vectors)

    def out_specs(self, x):
        from ember.core import dtypes as D
        wdt = D.float32 if x.dtype is D.complex64 else x.dtype
        if not self.vectors:
            return [x.shape[:-1]], [wdt]
        return [x.shape[:-1], x.shape], [wdt, x.dtype]

    def _full(self, x):
        return Eigh(self.upper, True)(x)

    def vjp(self, primals, cotangents, argnums, outputs):
        w, v = outputs if self.vectors else self._full(primals[0])
        inner = _diag_embed(cotangents[0])
        if self.vectors:
            inner = O.add(inner, O.multiply(_eig_gaps(w), O.matmul(_mT(v), cotangents[1])))
        g = O.matmul(O.matmul(v, inner), _mT(v))
        return [_fold_triangle(g, self.upper)]

    def jvp(self, primals, tangents, argnums):
        w, v = self._full(primals[0])
        m = O.matmul(O.matmul(_mT(v), _symmetrize_from(tangents[0], self.upper)), v)
        dw = _diag(m)
        if not self.vectors:
            return [dw]
        return [dw, O.matmul(v, O.multiply(_eig_gaps(w), m))]


class Eig(_Unary):
    __slots__ = ("vectors",)
    name = "Eig"

    def __init__(self, vectors):
        self.vectors = vectors

    def params(self):
        return (self.vectors,)

    def out_specs(self, x):
        from ember.core import dtypes as D
        if not self.vectors:
            return [x.shape[:-1]], [D.complex64]
        return [x.shape[:-1], x.shape], [D.complex64, D.complex64]


class SVD(_Unary):
    """Full SVD (U, S, Vt) or the singular values only. Only the singular values are
    differentiable."""

    __slots__ = ("uv",)
    name = "SVD"

    def __init__(self, uv):
        self.uv = uv

    def params(self):
        return (self.uv,)

    def out_specs(self, x):
        from ember.core import dtypes as D
        m, n = x.shape[-2:]
        b = x.shape[:-2]
        sdt = D.float32 if x.dtype is D.complex64 else x.dtype
        if not self.uv:
            return [b + (min(m, n),)], [sdt]
        return [b + (m, m), b + (min(m, n),), b + (n, n)], [x.dtype, sdt, x.dtype]

    def _reduced_uv(self, x):
        u, _, vt = SVD(True)(x)
        k = min(x.shape[-2:])
        return u[..., :, :k], vt[..., :k, :]

    def vjp(self, primals, cotangents, argnums, outputs):
        if self.uv:
            return super().vjp(primals, cotangents, argnums, outputs)  # (as upstream)
        u, vt = self._reduced_uv(primals[0])
        return [O.matmul(O.multiply(u, O.expand_dims(cotangents[0], -2)), vt)]

    def jvp(self, primals, tangents, argnums):
        if self.uv:
            return super().jvp(primals, tangents, argnums)
        u, vt = self._reduced_uv(primals[0])
        return [_diag(O.matmul(O.matmul(_mT(u), tangents[0]), _mT(vt)))]


class QR(_Unary):
    name = "QRF"  # (upstream's name for it)

    def out_specs(self, x):
        m, n = x.shape[-2:]
        k, b = min(m, n), x.shape[:-2]
        return [b + (m, k), b + (k, n)], [x.dtype, x.dtype]


class LUFactor(_Unary):
    """`pivots` False: (LU, LAPACK pivots as 0-based uint32); True: (row permutation as
    uint32, L, U)."""

    __slots__ = ("unpack",)
    name = "LUF"

    def __init__(self, unpack):
        self.unpack = unpack

    def params(self):
        return (self.unpack,)

    def out_specs(self, x):
        from ember.core import dtypes as D
        m, n = x.shape[-2:]
        k, b = min(m, n), x.shape[:-2]
        if not self.unpack:
            return [x.shape, b + (k,)], [x.dtype, D.uint32]
        return [b + (m,), b + (m, k), b + (k, n)], [D.uint32, x.dtype, x.dtype]


class Det(_Unary):
    name = "Det"

    def out_specs(self, x):
        return [x.shape[:-2]], [x.dtype]

    def vjp(self, primals, cotangents, argnums, outputs):
        a = primals[0]
        scale = O.multiply(cotangents[0], outputs[0])
        inv_t = _mT(Inverse()(a)[0])
        return [O.multiply(O.expand_dims(scale, (-2, -1)), inv_t)]

    def jvp(self, primals, tangents, argnums):
        a = primals[0]
        tr = O.sum(O.multiply(_mT(Inverse()(a)[0]), tangents[0]), axis=(-2, -1))
        return [O.multiply(self(a)[0], tr)]


class SlogDet(_Unary):
    name = "SlogDet"

    def out_specs(self, x):
        return [x.shape[:-2]] * 2, [x.dtype] * 2

    def vjp(self, primals, cotangents, argnums, outputs):
        inv_t = _mT(Inverse()(primals[0])[0])
        return [O.multiply(O.expand_dims(cotangents[1], (-2, -1)), inv_t)]

    def jvp(self, primals, tangents, argnums):
        a = primals[0]
        sign = self(a)[0]
        tr = O.sum(O.multiply(_mT(Inverse()(a)[0]), tangents[0]), axis=(-2, -1))
        return [O.zeros_like(sign), tr]


class _Solver(Primitive):
    """x with a @ x = b for a (..., n, n) and b (..., n, k) of the same batch shape."""

    __slots__ = ()

    def __call__(self, a, b):
        return apply(self, [a, b], [b.shape], [b.dtype])

    def _solve_t(self, a, g):
        raise NotImplementedError

    def _mask(self, x):
        return x

    def vjp(self, primals, cotangents, argnums, outputs):
        a, _ = primals
        gb = self._solve_t(a, cotangents[0])
        res = []
        for i in argnums:
            if i == 1:
                res.append(gb)
            else:
                res.append(self._mask(O.negative(O.matmul(gb, _mT(outputs[0])))))
        return res

    def jvp(self, primals, tangents, argnums):
        a, b = primals
        x = self(a, b)[0]
        rhs = None
        for i, t in zip(argnums, tangents):
            term = t if i == 1 else O.negative(O.matmul(self._mask(t), x))
            rhs = term if rhs is None else O.add(rhs, term)
        return [self(a, rhs)[0]]

    def vmap(self, inputs, axes):
        size = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        xs = []
        for x, ax in zip(inputs, axes):
            if ax is None:
                x = O.broadcast_to(O.expand_dims(x, 0), (size,) + x.shape)
            xs.append(to_front(x, ax))
        return self(*xs), [0]


class Solve(_Solver):
    name = "Solve"

    def _solve_t(self, a, g):
        return Solve()(_mT(a), g)[0]


class SolveTriangular(_Solver):
    __slots__ = ("upper",)
    name = "SolveTriangular"

    def __init__(self, upper):
        self.upper = upper

    def params(self):
        return (self.upper,)

    def _solve_t(self, a, g):
        return SolveTriangular(not self.upper)(_mT(a), g)[0]

    def _mask(self, x):
        return _tri(x, self.upper)
