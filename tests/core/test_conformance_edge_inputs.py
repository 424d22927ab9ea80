"""Parity with upstream MLX on edge-shaped inputs of ops: size-0 and 0-d arrays,
non-contiguous views (transposed, strided, reversed, broadcast, as_strided) and the
operands of the CPU fast paths. Every expectation is upstream's own result."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same, on_cpu

_RNG = np.random.default_rng(7)


def _complex(*shape):
    return (_RNG.standard_normal(shape) + 1j * _RNG.standard_normal(shape)).astype(np.complex64)


_X, _Y, _ROW = _complex(40, 50), _complex(40, 50), _complex(50)

# ATen's scalar loop (strided or broadcast operands) rounds complex products unlike its
# vectorized one and upstream
_COMPLEX_PRODUCTS = {
    "strided rows": lambda m: m.array(_X)[::2] * m.array(_Y)[::2],
    "strided columns": lambda m: m.array(_X)[:, ::3] * m.array(_Y)[:, ::3],
    "row broadcast": lambda m: m.array(_X) * m.array(_ROW),
    "broadcast view": lambda m: m.broadcast_to(m.array(_X)[:1], (40, 50)) * m.array(_Y),
    "mixed layouts": lambda m: m.array(_X) * m.array(_Y).T.T[:, ::-1],
    "as_strided": lambda m: m.as_strided(m.array(_X), (20, 50), (100, 1)) * m.array(_ROW),
    "square of a view": lambda m: m.square(m.array(_X)[:, ::2]),
    "scalar operand": lambda m: m.array(_ROW[0]) * m.array(_X).T,
}


@pytest.mark.parametrize("case", list(_COMPLEX_PRODUCTS))
@on_cpu
def test_complex_product_of_views_is_bit_exact(case):
    f = _COMPLEX_PRODUCTS[case]
    assert_same(f(mx), f(mlx), rtol=0)


def _outcome(m, call):
    try:
        return call(m), None
    except Exception as e:  # noqa: BLE001 - the exception itself is compared
        return None, e


# upstream checks the count of start indices before their type, and the axes last
_SLICE_ERRORS = {
    "0-d array": lambda m: m.slice(m.array(1.0), m.array([0]), (0,), (1,)),
    "0-d array, float start": lambda m: m.slice(m.array(1.0), m.array([0.0]), (0,), (1,)),
    "0-d update": lambda m: m.slice_update(m.array(1.0), m.array(2.0), m.array([0]), (0,)),
    "count before axis": lambda m: m.slice(m.zeros((3, 4)), m.array([0, 0]), (5,), (1, 1)),
    "count before dtype": lambda m: m.slice(m.zeros((3, 4)), m.array([0.0, 1.0]), (0,),
                                            (1, 1)),
    "count before repeat": lambda m: m.slice(m.zeros((3, 4)), m.array([0]), (0, 0), (1, 1)),
    "dtype before axis": lambda m: m.slice(m.zeros((3, 4)), m.array([0.0]), (5,), (1, 1)),
    "rank before dtype": lambda m: m.slice(m.zeros((3, 4)), m.array([[0.0]]), (0,), (1, 1)),
    "rank before axis": lambda m: m.slice_update(m.zeros((3, 4)), m.zeros((1, 1)),
                                                 m.array([[0]]), (5,)),
    "empty start on 0-d": lambda m: m.slice(m.array(1.0), m.array([], m.int32), (), ()),
}


@pytest.mark.parametrize("case", list(_SLICE_ERRORS))
def test_dynamic_slice_checks_in_upstream_order(case):
    want, want_err = _outcome(mlx, _SLICE_ERRORS[case])
    got, got_err = _outcome(mx, _SLICE_ERRORS[case])
    if want_err is None:
        assert got_err is None, repr(got_err)
        assert_same(got, want)
        return
    assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
    assert str(got_err) == str(want_err)


# -- a small sweep of edge-shaped inputs through ops of each family ------------------------

_VIEWS = {
    "empty": lambda m, x: m.zeros((0, 3), x.dtype).T,
    "0-d": lambda m, x: x[0, 0],
    "transposed": lambda m, x: x.T,
    "strided": lambda m, x: x[::2],
    "reversed": lambda m, x: x[:, ::-1],
    "broadcast": lambda m, x: m.broadcast_to(x[:1], x.shape),
    "as_strided": lambda m, x: m.as_strided(x, (4, 8), (4, 1)),
}
_OPS = {
    "multiply": lambda m, x: x * x[..., ::-1],
    "sort": lambda m, x: m.sort(x, axis=0) if x.ndim else m.sort(x),
    "argmax": lambda m, x: m.argmax(x, axis=-1) if x.ndim else m.argmax(x),
    "cummax": lambda m, x: m.cummax(x, axis=0) if x.ndim else x,
    "take_along_axis": lambda m, x: m.take_along_axis(
        x, m.argsort(x, axis=-1), axis=-1) if x.ndim else x,
    "concatenate": lambda m, x: m.concatenate([x, x[::-1]]) if x.ndim else x,
    "pad": lambda m, x: m.pad(x, 1),
    "searchsorted": lambda m, x: m.searchsorted(m.sort(m.reshape(x, (-1,))), x),
    "where": lambda m, x: m.where(m.real(x) > 0, x, m.conj(x)),
    "sum": lambda m, x: m.sum(x, axis=0) if x.ndim else m.sum(x),
}
_DTYPES = ["float32", "int32", "complex64", "bool_"]


def _base(m, dt):
    v = np.arange(48).reshape(8, 6) * 37 % 23 - 11
    if dt == "complex64":
        v = v + 1j * (v[::-1] % 5)
    return m.array(v.astype(np.dtype(dt.rstrip("_"))))


@pytest.mark.parametrize("dt", _DTYPES)
@pytest.mark.parametrize("view", list(_VIEWS))
@pytest.mark.parametrize("op", list(_OPS))
@on_cpu
def test_ops_on_edge_views(op, view, dt):
    if view == "as_strided":
        f = _VIEWS[view]
        make = lambda m: f(m, m.reshape(_base(m, dt), (-1,)))  # noqa: E731
    else:
        make = lambda m: _VIEWS[view](m, _base(m, dt))  # noqa: E731
    want, want_err = _outcome(mlx, lambda m: _OPS[op](m, make(m)))
    got, got_err = _outcome(mx, lambda m: _OPS[op](m, make(m)))
    if want_err is not None:
        assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
        return
    assert got_err is None, repr(got_err)
    assert_same(got, want, rtol=0 if dt != "float32" or op != "sum" else None)


@pytest.mark.parametrize("op", ["diagonal", "trace"])
@pytest.mark.parametrize("shape", [(3,), (3, 3)])
def test_diagonal_argument_types_checked_before_the_rank(op, shape):
    """A None axis is a TypeError, as upstream's binding raises it, before the op looks
    at the array's rank."""
    for m in (mlx, mx):
        with pytest.raises(TypeError):
            getattr(m, op)(m.zeros(shape), 0, None, 1)
        with pytest.raises(TypeError):
            getattr(m, op)(m.zeros(shape), 0.5, 0, 1)


# -- edge inputs of single ops: empty and 0-d arrays, NaNs and signed zeros ------------------

_CA, _CB, _CC = _complex(2, 3), _complex(3, 5), _complex(4, 1, 1)
_C3, _C7, _CK1, _CK2 = _complex(3), _complex(7), _complex(3, 4, 1), _complex(1, 1, 5)
_NAN_CX = np.array([0j, 1 + 2j, complex(-0.0, -0.0), complex(np.nan, 1), complex(1, np.nan),
                    complex(np.inf, 0), -1.5 - 0.5j, 1 + 1j], np.complex64)
_SIGNED = np.array([[-0.0], [1.0], [-1.0], [np.inf]], np.float32)
_PERM = np.random.default_rng(3).permutation(30).reshape(3, 10).astype(np.float32)

_EDGE_CASES = {
    # upstream's complex addmm is alpha * (a @ b) + beta * c: c need only broadcast
    "addmm complex c broadcast up": lambda m: m.addmm(m.array(_CC), m.array(_CA), m.array(_CB)),
    "addmm complex vectors": lambda m: m.addmm(m.array(_C3), m.array(_C3), m.array(_C3)),
    "addmm complex scaled": lambda m: m.addmm(m.array(_CB[0]), m.array(_CA), m.array(_CB),
                                              0.5, -2.0),
    "addmm complex empty": lambda m: m.addmm(*(m.zeros((0,), m.complex64),) * 3),
    "addmm complex bad c": lambda m: m.addmm(m.array(_C7), m.array(_CA), m.array(_CB)),
    "addmm complex 0-d": lambda m: m.addmm(m.array(_C3), m.array(1.0), m.array(_C3)),
    # an int index is a slice [i, i + 1): -n .. -2 count from the back, -1 is out of range
    "take int from empty": lambda m: m.take(m.zeros((2, 0)), 0, axis=0),
    "take int from empty, flat": lambda m: m.take(m.zeros((0, 3)), 1, axis=1),
    "take int -2": lambda m: m.take(m.reshape(m.arange(6), (2, 3)), -2, axis=0),
    "take int -5 flat": lambda m: m.take(m.reshape(m.arange(6), (2, 3)), -5),
    "take int -1": lambda m: m.take(m.arange(3), -1),
    "take int past the end": lambda m: m.take(m.zeros((2, 3)), 7, axis=1),
    "take int past int32": lambda m: m.take(m.arange(3), 2**31),
    "take numpy int": lambda m: m.take(m.arange(3), np.int64(1)),
    "slice_update of empty": lambda m: m.slice_update(m.zeros((0, 3)), m.ones((1,)),
                                                      m.array([0]), (0,)),
    "slice_update of empty, bad update": lambda m: m.slice_update(
        m.zeros((0, 3)), m.ones((2, 5)), m.array([0]), (0,)),
    "softmax of empty, bad axis": lambda m: m.softmax(m.zeros((0,), m.int32), axis=1),
    "softmax of empty, repeated axes": lambda m: m.softmax(m.zeros((0, 2)), axis=(0, 0)),
    "searchsorted complex NaNs": lambda m: m.searchsorted(m.sort(m.array(_NAN_CX)),
                                                          m.array(_NAN_CX)),
    "searchsorted complex NaNs right": lambda m: m.searchsorted(
        m.sort(m.array(_NAN_CX[:6])), m.array(_NAN_CX), side="right"),
    # a one-term product sums onto +0.0 and multiplies complex infinities componentwise
    "matmul k=1 signed zeros": lambda m: m.matmul(m.array(_SIGNED),
                                                  m.array([[0.0, -0.0, 2.0]])),
    "matmul k=1 complex": lambda m: m.matmul(m.array(_SIGNED).astype(m.complex64),
                                             m.array([[1 + 2j, -0.0 + 0j]], m.complex64)),
    "matmul k=1 batched": lambda m: m.matmul(m.array(_CK1), m.array(_CK2)),
    "tensordot axes=0": lambda m: m.tensordot(m.array(_SIGNED[:, 0]), m.array(_SIGNED[:, 0]), 0),
    "topk all elements": lambda m: m.topk(m.array(_PERM), 10),
    "topk all elements, axis 0": lambda m: m.topk(m.array(_PERM), 3, axis=0),
    "topk all elements, flat": lambda m: m.topk(m.array(_PERM), 30, axis=None),
    "hadamard of one complex, scaled": lambda m: m.hadamard_transform(m.array(1 + 2j), 0.5),
    "hadamard of one int, scaled": lambda m: m.hadamard_transform(m.array([[3], [-1]]), 2.0),
    "hadamard of one int": lambda m: m.hadamard_transform(m.array(3)),
    "gather_mm empty inner dim": lambda m: m.gather_mm(m.zeros((1, 2, 0)), m.ones((2, 0, 3)),
                                                       None, m.array([1])),
    "gather_mm empty rows": lambda m: m.gather_mm(m.zeros((1, 0, 2)), m.ones((2, 2, 3)), None,
                                                  m.array([1])),
    # a Python int beside a bool dtype is C-cast to int32 (wrapping), as upstream does
    "full bool, int past int32": lambda m: m.full((2,), 2**40 + 7, m.bool_),
    "full_like bool, int wrapping to 0": lambda m: m.full_like(m.array([True]), 2**40),
    "full_like to bool, int wrapping to 0": lambda m: m.full_like(m.array([3]), -2**63,
                                                                  dtype=m.bool_),
    "clip bool, int past int32": lambda m: m.clip(m.array([True, False]), 0, 2**31),
    "clip bool, int past int64": lambda m: m.clip(m.array([True]), -2**70, 1),
    "linspace int endpoint": lambda m: m.linspace(0, 1, 3, 1),
    "argmax 0-d keepdims": lambda m: m.argmax(m.array(1.0), keepdims=True),
    "argmin 0-d keepdims": lambda m: m.argmin(m.array(1), axis=None, keepdims=True),
}


@pytest.mark.parametrize("case", list(_EDGE_CASES))
@on_cpu
def test_edge_inputs_match_upstream(case):
    want, want_err = _outcome(mlx, _EDGE_CASES[case])
    got, got_err = _outcome(mx, _EDGE_CASES[case])
    if want_err is not None:
        assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
        if str(want_err).startswith("["):  # (not the bindings' or the C++ library's own)
            assert str(got_err) == str(want_err)
        return
    assert got_err is None, repr(got_err)
    assert_same(got, want, rtol=0)
    if want.dtype in (mlx.float32, mlx.complex64):  # signed zeros too
        w, g = (np.atleast_1d(np.array(r)).view(np.int32) for r in (want, got))
        np.testing.assert_array_equal(g, w)
