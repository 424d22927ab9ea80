"""Parity with upstream MLX on inputs users hit but op tests rarely do: numpy operands
beside arrays, Python sequences as operands, out-of-range Python ints in logical ops,
complex infinities, the words of broadcast errors, non-array arguments refused by
upstream's bindings, and bools as axes. Every expectation is upstream's own result."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same


def _outcome(m, call):
    try:
        return call(m), None
    except Exception as e:  # noqa: BLE001 - the exception itself is compared
        return None, e


def check_parity(call, same_message=False):
    """`call(m)` gives the same result, or raises the same exception type, under both."""
    want, want_err = _outcome(mlx, call)
    got, got_err = _outcome(mx, call)
    if want_err is not None:
        assert got_err is not None, f"upstream raised {want_err!r}, Ember returned {got}"
        assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
        if same_message:
            assert str(got_err) == str(want_err)
        return
    assert got_err is None, f"Ember raised {got_err!r}, upstream returned {want}"
    assert_same(got, want)


# -- numpy operands of binary functions take the array operand's dtype --------------------

_NUMPY_OPERANDS = {
    "int8 + float ndarray": lambda m: m.add(m.array([1, 2], m.int8), np.array([1.7, -1.2])),
    "float ndarray + int32": lambda m: m.add(np.array([1.7, 2.0]), m.array([1, 2])),
    "uint8 + wrapping ndarray": lambda m: m.add(m.array([200, 1], m.uint8), np.array([300, -1])),
    "int8 + 0-d ndarray": lambda m: m.multiply(m.array([1, 2], m.int8), np.array(2.5)),
    "int32 + np.float16": lambda m: m.add(np.float16(1), m.array([2 ** 20], m.int32)),
    "bool + ndarray": lambda m: m.maximum(m.array([True, False]), np.array([3, 0])),
    "bfloat16 max ndarray": lambda m: m.maximum(m.array([1, 2], m.bfloat16),
                                                np.array([[3.3]], np.float64)),
    "float32 + complex ndarray": lambda m: m.add(m.array([1.0, 2.0]), np.array([1 + 1j, 2])),
    "int8 power ndarray": lambda m: m.power(m.array([1, 2], m.int8), np.array([2.5])),
    "int8 divide ndarray": lambda m: m.divide(m.array([1, 0], m.int8), np.array([0.5, 1])),
    "where ndarray beside int8": lambda m: m.where(m.array([True, False]), np.array([1.5, 2]),
                                                   m.array(3, m.int8)),
    "string ndarray": lambda m: m.add(m.array([1, 2], m.int8), np.array(["a"])),
    "clip by ndarray": lambda m: m.clip(m.array([1, 2], m.int8), np.array([1.5, 1.5]), None),
    "clip by np.float32": lambda m: m.clip(m.array([1, 2], m.int8), np.float32(1.5), None),
    # the upper bound takes a's dtype, not that of a clipped from below by a float
    "clip between float and ndarray": lambda m: m.clip(m.array([1, 2], m.int8), 1.5,
                                                       np.array(1.7)),
    "array_equal ndarray, int8": lambda m: m.array_equal(np.array([1.2, 0]),
                                                         m.array([1, 0], m.int8)),
    "array_equal uint8, wrapping ndarray": lambda m: m.array_equal(m.array([1, 2], m.uint8),
                                                                   np.array([1, 258])),
}
# the rule's edges, which held before it: a subclass of float (np.float64) is a weakly
# typed Python scalar, and two numpy operands keep their own dtypes
_NUMPY_EDGES = {
    "int8 + np.float64": lambda m: m.add(m.array([1], m.int8), np.float64(2.5)),
    "two ndarrays": lambda m: m.add(np.array([1, 2]), np.array([1.5])),
    "clip by np.float64": lambda m: m.clip(m.array([1, 2], m.int8), np.float64(1.5), None),
    "array_equal int8, float": lambda m: m.array_equal(m.array([1, 0], m.int8), 1.2),
}


@pytest.mark.parametrize("case", list(_NUMPY_OPERANDS))
def test_numpy_operand_takes_the_array_dtype(case):
    check_parity(_NUMPY_OPERANDS[case])


@pytest.mark.parametrize("case", list(_NUMPY_EDGES))
def test_numpy_operand_rule_edges(case):
    check_parity(_NUMPY_EDGES[case])


# -- Python sequences are not operands --------------------------------------------------

_SEQUENCES = {
    "exp(list)": lambda m: m.exp([1.0, 2.0]),
    "abs(list)": lambda m: m.abs([1, -2]),
    "isnan(tuple)": lambda m: m.isnan((1.0,)),
    "round(list)": lambda m: m.round([1.5]),
    "degrees(list)": lambda m: m.degrees([1.0]),
    "add(array, list)": lambda m: m.add(m.array([1, 2]), [1, 2]),
    "multiply(list, array)": lambda m: m.multiply([1.0], m.array([1.0])),
    "maximum(list, list)": lambda m: m.maximum([1], [2]),
    "left_shift(array, list)": lambda m: m.left_shift(m.array([1]), [1]),
    "right_shift(float array, list)": lambda m: m.right_shift(m.array([1.0]), [1]),
    "where(list, 1, 2)": lambda m: m.where([True, False], 1, 2),
    "where(cond, tuple, 2)": lambda m: m.where(m.array([True]), (1,), 2),
}


@pytest.mark.parametrize("case", list(_SEQUENCES))
def test_sequence_operands_are_refused(case):
    check_parity(_SEQUENCES[case], same_message=True)


# -- logical_and / logical_or: a Python int is only a truth value -----------------------

@pytest.mark.parametrize("op", ["logical_and", "logical_or"])
@pytest.mark.parametrize("dtype,value", [("uint8", -2), ("uint16", -1), ("int8", 1000),
                                         ("int8", 2 ** 33), ("uint32", -5), ("int8", 0)])
def test_logical_ops_take_any_python_int(op, dtype, value):
    def call(m, rev):
        a = m.array([0, 3], getattr(m, dtype))
        return getattr(m, op)(value, a) if rev else getattr(m, op)(a, value)
    for rev in (False, True):
        check_parity(lambda m: call(m, rev))


# -- isposinf / isneginf on complex64 ----------------------------------------------------

_INF = float("inf")
_COMPLEX = [complex(_INF, 0), complex(_INF, 1), complex(0, _INF), complex(-_INF, 0),
            complex(-_INF, -1), complex(float("nan"), 0), 1 + 2j]


@pytest.mark.parametrize("op", ["isposinf", "isneginf"])
def test_infinity_tests_on_complex(op):
    check_parity(lambda m: getattr(m, op)(m.array(_COMPLEX)))
    check_parity(lambda m: getattr(m, op)(m.array(_COMPLEX).reshape(1, 7)[:, ::2]))
    check_parity(lambda m: getattr(m, op)(1j))


# -- broadcast errors are upstream's words ----------------------------------------------

_BROADCASTS = {
    "add": lambda m: m.add(m.zeros((2, 3)), m.zeros((4,))),
    "operator <": lambda m: m.zeros((2, 3)) < m.zeros((4,)),
    "arctan2": lambda m: m.arctan2(m.zeros((2, 3)), m.zeros((4,))),
    "logical_and": lambda m: m.logical_and(m.zeros((2, 3)), m.zeros((4,))),
    "divmod": lambda m: m.divmod(m.zeros((2, 3)), m.zeros((4,))),
    "where cond": lambda m: m.where(m.zeros((4,)), m.zeros((2, 3)), 1),
    "where x": lambda m: m.where(m.zeros((2, 3)), m.zeros((4,)), 1),
    "clip": lambda m: m.clip(m.zeros((2, 3)), m.zeros((4,)), None),
    "isclose": lambda m: m.isclose(m.zeros((2, 3)), m.zeros((4,))),
    "allclose": lambda m: m.allclose(m.zeros((4,)), m.zeros((3,))),
}


@pytest.mark.parametrize("case", list(_BROADCASTS))
def test_broadcast_error_message(case):
    check_parity(_BROADCASTS[case], same_message=True)


# -- arguments upstream's bindings refuse ------------------------------------------------

_BINDINGS = {
    "trunc(float)": lambda m: m.trunc(2.5),
    "trunc(list)": lambda m: m.trunc([1.5]),
    "positive(int)": lambda m: m.positive(3),
    "positive(ndarray)": lambda m: m.positive(np.array([1.0])),
    "count_nonzero(int)": lambda m: m.count_nonzero(3),
    "count_nonzero(ndarray)": lambda m: m.count_nonzero(np.array([1, 0])),
    "to_fp8(float)": lambda m: m.to_fp8(2.5),
    "from_fp8(int)": lambda m: m.from_fp8(3),
    "quantize(list)": lambda m: m.quantize([[1.0] * 64]),
    "transpose(a, int)": lambda m: m.transpose(m.zeros((2,)), 0),
    "permute_dims(a, int)": lambda m: m.permute_dims(m.zeros((2, 3)), 1),
    "einsum_path(float)": lambda m: m.einsum_path(2.5),
}


@pytest.mark.parametrize("case", list(_BINDINGS))
def test_binding_arguments(case):
    check_parity(_BINDINGS[case])


# -- a bool is an int axis ------------------------------------------------------------

_A = lambda m: m.reshape(m.arange(24), (2, 3, 4))  # noqa: E731
_BOOL_AXES = {
    "swapaxes": lambda m: m.swapaxes(_A(m), True, 0),
    "moveaxis": lambda m: m.moveaxis(_A(m), True, 0),
    "expand_dims": lambda m: m.expand_dims(_A(m), True),
    "squeeze": lambda m: m.squeeze(m.zeros((2, 1)), True),
    "flatten": lambda m: m.flatten(_A(m), True),
    "unflatten": lambda m: m.unflatten(_A(m), True, (3, 1)),
    "stack": lambda m: m.stack([_A(m), _A(m)], axis=True),
    "concatenate": lambda m: m.concatenate([_A(m), _A(m)], axis=True),
    "split": lambda m: m.split(_A(m), 3, axis=True),
    "split indices": lambda m: m.split(_A(m), [True], axis=2),
    "transpose": lambda m: m.transpose(m.zeros((2, 3)), (True, False)),
    "repeat": lambda m: m.repeat(_A(m), True, axis=1),
    "tile": lambda m: m.tile(_A(m), (True, 2)),
    "roll": lambda m: m.roll(_A(m), True, axis=True),
    "flip": lambda m: m.flip(_A(m), True),
    "diagonal": lambda m: m.diagonal(_A(m), True),
}


@pytest.mark.parametrize("case", list(_BOOL_AXES))
def test_bool_axis(case):
    check_parity(_BOOL_AXES[case])


# -- logical_and / logical_or: a numpy operand is only a truth value too -----------------

_NUMPY_TRUTH = [np.float16(0.5), np.array([0.5, 0.0, 2.0]), np.array(0.25), np.complex64(1j),
                np.int64(256), np.uint8(0), np.array([True, False, True])]


@pytest.mark.parametrize("op", ["logical_and", "logical_or"])
@pytest.mark.parametrize("value", _NUMPY_TRUTH, ids=repr)
def test_logical_ops_take_numpy_truth(op, value):
    for dtype in ("uint8", "int32", "bool", "float16"):
        def call(m, rev):
            a = m.array([0, 2, 3], getattr(m, dtype))
            return getattr(m, op)(value, a) if rev else getattr(m, op)(a, value)
        for rev in (False, True):
            check_parity(lambda m: call(m, rev))


# -- a Python int outside int64 is refused, not wrapped ---------------------------------

_WIDE_INTS = {
    "add uint64": lambda m: m.add(m.array([1], m.uint64), 2 ** 64),
    "add int64 reversed": lambda m: m.subtract(2 ** 63, m.array([1], m.int64)),
    "multiply float32": lambda m: m.multiply(m.array([1.0]), -2 ** 63 - 1),
    "add bool": lambda m: m.add(m.array([True]), 2 ** 64),
    "add int8": lambda m: m.add(m.array([1], m.int8), 2 ** 64),
    "maximum int64 at the edge": lambda m: m.maximum(m.array([1], m.int64), 2 ** 63 - 1),
    "add uint64 at the edge": lambda m: m.add(m.array([1], m.uint64), -2 ** 63),
    "abs": lambda m: m.abs(2 ** 64),
    "exp": lambda m: m.exp(-2 ** 63 - 1),
    "logical_and": lambda m: m.logical_and(m.array([True]), 2 ** 64),
    "logical_or reversed": lambda m: m.logical_or(2 ** 63, m.array([True])),
    "where": lambda m: m.where(m.array([True]), 2 ** 64, m.array([1.0])),
    "array_equal int8": lambda m: m.array_equal(m.array([1, 2], m.int8), 2 ** 31),
    "array_equal uint8 reversed": lambda m: m.array_equal(-2, m.array([1, 2], m.uint8)),
    "array_equal bool wraps": lambda m: m.array_equal(m.array([True]), 2 ** 40),
}


@pytest.mark.parametrize("case", list(_WIDE_INTS))
def test_wide_python_ints(case):
    check_parity(_WIDE_INTS[case])


# -- softmax of an empty array ----------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "uint32", "complex64"])
@pytest.mark.parametrize("shape,axis", [((0, 3), None), ((0, 3), -1), ((2, 0), 0), ((0,), 0)])
def test_softmax_of_empty(dtype, shape, axis):
    check_parity(lambda m: m.softmax(m.zeros(shape, getattr(m, dtype)), axis=axis))


# -- reduction axes are all converted before any is checked ------------------------------

@pytest.mark.parametrize("op", ["sum", "max", "mean", "var", "logsumexp", "softmax"])
@pytest.mark.parametrize("axis", [True, (0, 1.0), "x", [-1], 0], ids=repr)
def test_reduction_axes_of_a_scalar(op, axis):
    check_parity(lambda m: getattr(m, op)(m.array(1.0), axis=axis))
    check_parity(lambda m: getattr(m, op)(m.ones((2, 3)), axis=(0, 3, 1.0)))


# -- keywords upstream's bindings take, and those they do not ----------------------------

_KEYWORDS = {
    "roll shift=": lambda m: m.roll(m.arange(6).reshape(2, 3), shift=1),
    "roll shift=, axis=": lambda m: m.roll(m.arange(6).reshape(2, 3), shift=(1, 2), axis=(0, 1)),
    "roll a=": lambda m: m.roll(a=m.arange(3), shift=1),
    "exp a=": lambda m: m.exp(a=m.ones(2)),
    "isnan a=": lambda m: m.isnan(a=m.ones(2)),
    "conj a=": lambda m: m.conj(a=m.ones(2)),
    "round a=": lambda m: m.round(a=m.ones(2)),
    "round decimals=": lambda m: m.round(m.array([1.25]), decimals=1),
    "degrees a=": lambda m: m.degrees(a=m.ones(2)),
    "positive a=": lambda m: m.positive(a=m.ones(2)),
}


@pytest.mark.parametrize("case", list(_KEYWORDS))
def test_keywords(case):
    check_parity(_KEYWORDS[case])


# -- divmod refuses complex operands by its own name, before broadcasting ----------------

@pytest.mark.parametrize("b", [lambda m: m.array([1, 2]), lambda m: np.array([1.0, 2.0]),
                               lambda m: m.array([[1 + 1j]]), lambda m: 2.0])
def test_divmod_complex(b):
    check_parity(lambda m: m.divmod(m.array([1 + 1j, 2, 3]), b(m)), same_message=True)


# -- shapes given as a bool, or not as a sequence -----------------------------------------

_SHAPES = {
    "zeros(True)": lambda m: m.zeros(True),
    "ones(False)": lambda m: m.ones(False, m.int8),
    "full(True, 2.5)": lambda m: m.full(True, 2.5),
    "broadcast_shapes(list, int)": lambda m: m.broadcast_shapes([2], 3),
    "broadcast_shapes(tuple, float)": lambda m: m.broadcast_shapes((2,), 3.0),
    "broadcast_shapes(tuple, list)": lambda m: m.broadcast_shapes((2, 1), [3]),
    "unflatten two -1": lambda m: m.unflatten(m.ones(6), 0, (-1, -1)),
    "unflatten bad size": lambda m: m.unflatten(m.ones((6, 2)), 0, (4, 2)),
}


@pytest.mark.parametrize("case", list(_SHAPES))
def test_shape_arguments(case):
    check_parity(_SHAPES[case], same_message=True)


# -- non-array operands of functions that take arrays only -------------------------------

_NON_ARRAYS = [3, 2.5, None, [1.0, 2.0], np.ones((2, 3), np.float32)]
_ARRAYS_ONLY = {
    "atleast_1d": lambda m, v: m.atleast_1d(v),
    "atleast_3d second": lambda m, v: m.atleast_3d(m.ones(2), v),
    "broadcast_arrays": lambda m, v: m.broadcast_arrays(v, m.ones(3)),
    "einsum": lambda m, v: m.einsum("ij,jk->ik", v, m.ones((3, 4))),
    "slice": lambda m, v: m.slice(v, m.array([1, 2]), (0, 1), (1, 1)),
    "slice_update": lambda m, v: m.slice_update(v, m.ones((1, 1)), m.array([1, 2]), (0, 1)),
    "put_along_axis": lambda m, v: m.put_along_axis(v, m.zeros((1, 1), m.int32),
                                                    m.ones((1, 1)), axis=0),
    "quantized_matmul": lambda m, v: m.quantized_matmul(v, *m.quantize(m.ones((4, 64))),
                                                        group_size=64, bits=4),
    "depends": lambda m, v: m.depends(v, m.ones(2)),
}


@pytest.mark.parametrize("case", list(_ARRAYS_ONLY))
@pytest.mark.parametrize("value", _NON_ARRAYS, ids=lambda v: type(v).__name__)
def test_arrays_only(case, value):
    check_parity(lambda m: _ARRAYS_ONLY[case](m, value))


@pytest.mark.parametrize("value", [[1.0, 2.0], (1, 2), 2.5, np.float32(2), np.ones(2)],
                         ids=repr)
def test_broadcast_to_operand(value):
    check_parity(lambda m: m.broadcast_to(value, (3, 2)), same_message=True)


# -- concatenate checks the axis against the first array before the others' ranks ---------

@pytest.mark.parametrize("shapes,axis", [(((), (1,)), 0), (((1,), ()), 0), (((2,), (2, 3)), 1),
                                         (((2, 3), (2,)), 1), (((2, 3), (2,)), 2),
                                         (((2, 3), (2,)), -3)])
def test_concatenate_check_order(shapes, axis):
    check_parity(lambda m: m.concatenate([m.ones(s) for s in shapes], axis=axis),
                 same_message=True)


@pytest.mark.parametrize("repeats,axis", [(-1, 2), (-1, 0), (-1, None), (2, -3), (0, 1)])
def test_repeat_check_order(repeats, axis):
    check_parity(lambda m: m.repeat(m.ones((2, 3)), repeats, axis=axis), same_message=True)


# -- numpy values for int, float and sequence-of-int parameters ---------------------------

_NUMPY_PARAMS = {
    "zeros(1-d int ndarray)": lambda m: m.zeros(np.array([2, 3])),
    "zeros(uint8 ndarray)": lambda m: m.zeros(np.array([2, 3], np.uint8)),
    "zeros(empty ndarray)": lambda m: m.zeros(np.array([], np.int64)),
    "full(ndarray shape)": lambda m: m.full(np.array([2]), 1.5),
    "zeros(float ndarray)": lambda m: m.zeros(np.array([2.0])),
    "zeros(0-d ndarray)": lambda m: m.zeros(np.array(3)),
    "zeros(2-d ndarray)": lambda m: m.zeros(np.array([[2]])),
    "tile by ndarray": lambda m: m.tile(m.ones((2, 3)), np.array([2, 1])),
    "roll by ndarray": lambda m: m.roll(m.ones((2, 3)), np.array([1, 2]), axis=(0, 1)),
    "expand_dims ndarray": lambda m: m.expand_dims(m.ones((2, 3)), np.array([0, 3])),
    "transpose ndarray": lambda m: m.transpose(m.ones((2, 3)), np.array([1, 0])),
    "pad pairs ndarray": lambda m: m.pad(m.ones((2, 3)), np.array([[1, 1], [0, 2]])),
    "pad pair ndarray": lambda m: m.pad(m.ones((2, 3)), np.array([1, 2])),
    "pad 0-d ndarray": lambda m: m.pad(m.ones((2, 3)), np.array(1)),
    "pad float ndarray": lambda m: m.pad(m.ones((2, 3)), np.array([1.0, 2.0])),
    "norm ord np.int32": lambda m: m.linalg.norm(m.ones((2, 3)), ord=np.int32(2)),
    "norm ord np.int64 vector": lambda m: m.linalg.norm(m.ones(3), ord=np.int64(1)),
    "norm ord np.float32 inf": lambda m: m.linalg.norm(m.ones((2, 3)), ord=np.float32(np.inf)),
    "norm ord np.bool_": lambda m: m.linalg.norm(m.ones(3), ord=np.bool_(True)),
    "norm ord 0-d array": lambda m: m.linalg.norm(m.ones((2, 3)), ord=m.array(2)),
    "norm ord 1-d ndarray": lambda m: m.linalg.norm(m.ones(3), ord=np.array([2])),
    "norm ord complex": lambda m: m.linalg.norm(m.ones(3), ord=2 + 0j),
    "hadamard scale np.float32": lambda m: m.hadamard_transform(m.ones((2, 4)),
                                                                scale=np.float32(0.5)),
    "hadamard scale np.int64": lambda m: m.hadamard_transform(m.ones((2, 4)), scale=np.int64(2)),
    "hadamard scale bool": lambda m: m.hadamard_transform(m.ones((2, 4)), scale=True),
    "hadamard scale 0-d array": lambda m: m.hadamard_transform(m.ones((2, 4)),
                                                               scale=m.array(0.5)),
    "hadamard scale 1-d ndarray": lambda m: m.hadamard_transform(m.ones((2, 4)),
                                                                 scale=np.array([0.5])),
    "hadamard scale str": lambda m: m.hadamard_transform(m.ones((2, 4)), scale="0.5"),
}


@pytest.mark.parametrize("case", list(_NUMPY_PARAMS))
def test_numpy_parameters(case):
    check_parity(_NUMPY_PARAMS[case])


_NUMPY_PARAMS_MORE = {
    "fftshift axes ndarray": lambda m: m.fft.fftshift(m.ones((2, 3)), axes=np.array([0])),
    "ifftshift axes 0-d ndarray": lambda m: m.fft.ifftshift(m.ones((2, 3)), axes=np.array(1)),
    "conv2d padding ndarray": lambda m: m.conv2d(m.ones((1, 8, 8, 2)), m.ones((2, 3, 3, 2)),
                                                 padding=np.array([1, 1])),
    "conv_general stride ndarray": lambda m: m.conv_general(
        m.ones((1, 8, 8, 2)), m.ones((2, 3, 3, 2)), stride=np.array([1, 2])),
    "tensordot axes np.int64": lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)),
                                                     axes=np.int64(1)),
    "tensordot axes bool": lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), axes=True),
    "tensordot axes ndarray": lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)),
                                                    axes=np.array([[1], [0]])),
}


@pytest.mark.parametrize("case", list(_NUMPY_PARAMS_MORE))
def test_numpy_parameters_more(case):
    check_parity(_NUMPY_PARAMS_MORE[case])


@pytest.mark.parametrize("dc", ["complex64", "float32", "float16"])
@pytest.mark.parametrize("da,db", [("int8", "int8"), ("uint8", "bool_"), ("int8", "bfloat16"),
                                   ("float16", "int8")])
def test_addmm_dtypes(dc, da, db):
    check_parity(lambda m: m.addmm(m.ones((2, 2), getattr(m, dc)), m.ones((2, 3), getattr(m, da)),
                                   m.ones((3, 2), getattr(m, db))), same_message=True)


# -- gather_mm without indices is a matmul ------------------------------------------------

@pytest.mark.parametrize("da,db", [("int32", "int32"), ("complex64", "float32"),
                                   ("bool_", "int8"), ("float16", "bfloat16")])
@pytest.mark.parametrize("indices", [None, "lhs"])
def test_gather_mm_dtypes(da, db, indices):
    def call(m):
        kw = {"lhs_indices": m.array([1, 0], m.uint32)} if indices else {}
        return m.gather_mm(m.ones((2, 1, 3), getattr(m, da)), m.ones((2, 3, 4), getattr(m, db)),
                           **kw)
    check_parity(call, same_message=True)


@pytest.mark.parametrize("da,db", [("bool_", "int8"), ("uint8", "int32"), ("int8", "int8")])
def test_matmul_refusal_names_the_inputs(da, db):
    check_parity(lambda m: m.matmul(m.ones((2, 3), getattr(m, da)), m.ones((3, 2), getattr(m, db))),
                 same_message=True)


_FLOAT_LIKE = [np.float32(2), np.int64(2), True, np.array(2.0), np.array([2.0]), "2", 2j, None]


@pytest.mark.parametrize("value", _FLOAT_LIKE, ids=repr)
def test_addmm_alpha_beta(value):
    def call(m, name):
        return m.addmm(m.ones((2, 2)), m.ones((2, 3)), m.ones((3, 2)), **{name: value})
    check_parity(lambda m: call(m, "alpha"))
    check_parity(lambda m: call(m, "beta"))


@pytest.mark.parametrize("shape", [np.array([2, 3]), np.array([3], np.uint8), np.array([2.0]),
                                   np.array(3), np.array([[2]]), np.array([True])], ids=repr)
def test_broadcast_shapes_of_ndarray(shape):
    check_parity(lambda m: m.broadcast_shapes(shape, (3,)))


@pytest.mark.parametrize("dtype", [None, "float16", 1], ids=repr)
def test_from_fp8_dtype_argument(dtype):
    check_parity(lambda m: m.from_fp8(m.ones((2,), m.uint8),
                                      dtype=getattr(m, dtype) if isinstance(dtype, str) else dtype))


@pytest.mark.parametrize("value", [[1.0, 2.0], (1, 2), 2.5, np.float32(2), np.ones(2)],
                         ids=repr)
def test_view_operand(value):
    check_parity(lambda m: m.view(value, m.int32), same_message=True)
