"""Parity with upstream MLX of the array's Python protocol where a sweep found Ember apart:
`a[idx] = v` (the update's shape for int indices, lone None/Ellipsis, scalar bools, value
conversion, the order of checks), `a.at[idx].op(v)`, positional arguments of the methods and
None as an operand, the NaN bit patterns of casts to 16-bit floats, casts of floats into
uint32/uint64, numpy conversion and the buffer protocol. Every expectation is upstream's own
result."""

import pickle

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


def _prefix(msg):
    """What Ember's message must start with: upstream's first line, up to the end of its
    first sentence when upstream's binding lists signatures after it."""
    # (some builds of upstream name their type `mlx.core.array` in Python's own messages)
    line = msg.split("\n")[0].replace("'mlx.core.array'", "'array'")
    cut = line.find("incompatible function arguments.")
    return line[:cut + len("incompatible function arguments.")] if cut >= 0 else line


def check_parity(call):
    """`call(m)` gives the same result under both, or raises the same exception type with
    a message that starts like upstream's."""
    want, want_err = _outcome(mlx, call)
    got, got_err = _outcome(mx, call)
    if want_err is not None:
        assert got_err is not None, f"upstream raised {want_err!r}, Ember returned {got}"
        assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
        if str(want_err) == "std::bad_cast":  # a C++ exception's name, not a message
            return
        assert str(got_err).startswith(_prefix(str(want_err))), \
            f"{str(got_err)!r} vs upstream {str(want_err)!r}"
        return
    assert got_err is None, f"Ember raised {got_err!r}, upstream returned {want}"
    assert_same(got, want)


def _set(shape, idx, value, dtype="int32"):
    """`a[idx] = value` on an arange of `shape`; idx and value may be functions of the
    module (for arrays)."""
    def call(m):
        a = m.arange(int(np.prod(shape))).reshape(shape).astype(getattr(m, dtype))
        i = idx(m) if callable(idx) else idx
        a[i] = value(m) if callable(value) else value
        return a
    return call


def _ones(*shape, dtype="int32"):
    return lambda m: m.ones(shape, getattr(m, dtype)) * 7


# -- a[idx] = v with ints and slices: upstream's update layout ---------------------------------

_S = slice(None)

SET_INT_UPDATES = {
    # a lone int: the update broadcasts to the indexed row with its axis kept as 1
    "lone int, update too big": _set((4, 5, 6), 0, _ones(2, 5, 6)),
    "lone int, 1-D": _set((4,), 0, _ones(6)),
    "lone np.int64": _set((4, 5, 6), np.int64(0), _ones(4, 1, 6)),
    # ints in a tuple: a 1 goes in at each int axis (from the end) that the update reaches
    "(1, 2) with (1, 6)": _set((4, 5, 6), (1, 2), _ones(1, 6)),
    "(1, 2) with (1, 1, 1, 1)": _set((4, 5, 6), (1, 2), _ones(1, 1, 1, 1)),
    "(1, 2) with (5, 1)": _set((4, 5, 6), (1, 2), _ones(5, 1)),
    "(1, 2, 3) with (1,)": _set((4, 5, 6), (1, 2, 3), _ones(1)),
    "(0, :) with (1, 1, 6)": _set((4, 5, 6), (0, _S), _ones(1, 1, 6)),
    "(0, :) with (1, 5, 6)": _set((4, 5, 6), (0, _S), _ones(1, 5, 6)),
    "(0,) with (1, 1, 1, 1, 1)": _set((4, 5, 6), (0,), _ones(1, 1, 1, 1, 1)),
    "(:, 0) with (1, 1, 6)": _set((4, 5, 6), (_S, 0), _ones(1, 1, 6)),
    "(:, 0) with (5, 6)": _set((4, 5, 6), (_S, 0), _ones(5, 6)),
    "(..., 0) with (6,)": _set((4, 5, 6), (..., 0), _ones(6)),
    "(..., 0) with (1, 1, 1, 1)": _set((4, 5, 6), (..., 0), _ones(1, 1, 1, 1)),
    "(0, ...) with (1, 5, 6)": _set((4, 5, 6), (0, ...), _ones(1, 5, 6)),
    "(1, ..., 2) with (5, 1)": _set((4, 5, 6), (1, ..., 2), _ones(5, 1)),
    "(0, ::2) with (1, 3, 6)": _set((4, 5, 6), (0, slice(None, None, 2)), _ones(1, 3, 6)),
    "(0, ::-1) with (1, 1, 6)": _set((4, 5, 6), (0, slice(None, None, -1)), _ones(1, 1, 6)),
    "(::-1, 0) with (4, 1, 6)": _set((4, 5, 6), (slice(None, None, -1), 0), _ones(4, 1, 6)),
    "huge step with (3, 5, 6)": _set((4, 5, 6), slice(None, None, 10 ** 9), _ones(3, 5, 6)),
    "0-d int array, update too big": _set((4, 5, 6), lambda m: m.array(0), _ones(2, 5, 6)),
    # an int out of range writes nothing, but the update is still checked
    "out of range int with (2, 5, 6)": _set((4, 5, 6), 4, _ones(2, 5, 6)),
    "out of range -5 with (3, 1)": _set((4,), -5, _ones(3, 1)),
    "out of range (4, :) with (1, 1, 6)": _set((4, 5, 6), (4, _S), _ones(1, 1, 6)),
    "out of range (:, 7) with (5, 6)": _set((4, 5, 6), (_S, 7), _ones(5, 6)),
    "out of range (:, 7, 1) with (6,)": _set((4, 5, 6), (_S, 7, 1), _ones(6)),
}


@pytest.mark.parametrize("case", SET_INT_UPDATES)
def test_setitem_update_shape_for_int_indices(case):
    check_parity(SET_INT_UPDATES[case])


# -- a[idx] = v: lone None or Ellipsis, scalar bools, values ---------------------------------

SET_FORMS = {
    # a[None] = v and a[...] = v give a the update, in the update's dtype
    "... = 2.7 on int32": _set((2, 3), ..., 2.7),
    "None = 1j on uint8": _set((2, 3), None, 1j, "uint8"),
    "... = 7 on bool": _set((2, 3), ..., 7, "bool_"),
    "... = 2**40 on bool": _set((2, 3), ..., 2 ** 40, "bool_"),
    "None = int16 array on float32": _set((2, 3), None, lambda m: m.array([[1], [2]], m.int16),
                                          "float32"),
    "... = (1, 1, 3) float16 on int32": _set((2, 3), ..., _ones(1, 1, 3, dtype="float16")),
    "... = uint8 array on bfloat16": _set((2, 3), ..., lambda m: m.array([1, 2, 3], m.uint8),
                                          "bfloat16"),
    # a scalar bool is an all-or-nothing mask
    "True = 7": _set((2, 3), True, 7),
    "False = 7": _set((2, 3), False, 7, "float16"),
    "np.True_ = array": _set((2, 3), np.bool_(True), lambda m: m.array([1.5, 2, 3])),
    "True = (2, 2, 3)": _set((2, 3), True, _ones(2, 2, 3)),
    "True = (4,)": _set((2, 3), True, _ones(4)),
    "True = (1, 1, 1, 1) on 1-D": _set((4,), True, _ones(1, 1, 1, 1)),
    # Python ints: through int64, then into bool through int32; negatives wrap into uint64
    "bool[:] = 2**32": _set((2, 3), _S, 2 ** 32, "bool_"),
    "bool[0] = 2**40": _set((2, 3), 0, 2 ** 40, "bool_"),
    "bool[(0, 1)] = -2**63": _set((2, 3), (0, 1), -2 ** 63, "bool_"),
    "bool[True] = 2**32": _set((2, 3), True, 2 ** 32, "bool_"),
    "bool[:] = 2**63": _set((2, 3), _S, 2 ** 63, "bool_"),
    "uint64[:] = -1": _set((2, 3), _S, -1, "uint64"),
    "uint64[0] = -300": _set((2, 3), 0, -300, "uint64"),
    "uint64[(0, 1)] = -2**63": _set((2, 3), (0, 1), -2 ** 63, "uint64"),
    "float16[:] = 2**63": _set((2, 3), _S, 2 ** 63, "float16"),
    "bfloat16[0] = 2**64": _set((2, 3), 0, 2 ** 64, "bfloat16"),
    # None is refused by the binding
    "[0] = None": _set((4, 5, 6), 0, None),
    "[1:2] = None": _set((4,), slice(1, 2), None),
    "[[0, 1]] = None": _set((4,), [0, 1], None),
    "[...] = None": _set((4,), ..., None),
}


@pytest.mark.parametrize("case", SET_FORMS)
def test_setitem_forms(case):
    check_parity(SET_FORMS[case])


# -- a[idx] = v: the order of upstream's checks ------------------------------------------------

def _mask(m):
    return m.array([True, False, True, False])


SET_CHECK_ORDER = {
    # float indices: reported by the scatter, once the update fits
    "[[]] = 7": _set((4, 5, 6), [], 7),
    "[[]] = (2,)": _set((4, 5, 6), [], _ones(2)),
    "[float array] = (3, 1)": _set((4,), lambda m: m.array([0.0, 1.0]), _ones(3, 1)),
    # a list that is no index is reported before the value
    "[[slice]] = 300 on uint8": _set((4,), [slice(None)], 300, "uint8"),
    "[[0, None]] = [1, 2]": _set((4,), [0, None], [1, 2]),
    # a mask beside other indices: checked as integer indices first
    "(:, mask) = (2,)": _set((4, 5, 6), lambda m: (slice(None), _mask(m)), _ones(2)),
    "(:, mask) = (3, 5, 6)": _set((4, 5, 6), lambda m: (slice(None), _mask(m)), _ones(3, 5, 6)),
    "(:, mask) = 7 on 1-D": _set((4,), lambda m: (slice(None), _mask(m)), 7),
    "(:, mask) = 300 on uint8": _set((4, 5, 6), lambda m: (slice(None), _mask(m)), 300, "uint8"),
    # a lone mask: the value is converted first, then the mask's rank checked
    "2-D mask on 1-D": _set((4,), lambda m: m.array([[True, False, True, False]] * 4), 7),
    "2-D mask on 1-D, bad value": _set((4,), lambda m: m.array([[True, False, True, False]]),
                                       -1, "uint8"),
}


@pytest.mark.parametrize("case", SET_CHECK_ORDER)
def test_setitem_check_order(case):
    check_parity(SET_CHECK_ORDER[case])


# -- a.at[idx].op(v) ------------------------------------------------------------------------------

def _at(shape, idx, op, value, dtype="int32"):
    def call(m):
        a = m.arange(int(np.prod(shape))).reshape(shape).astype(getattr(m, dtype))
        i = idx(m) if callable(idx) else idx
        return getattr(a.at[i], op)(value(m) if callable(value) else value)
    return call


AT_CASES = {
    "add(None)": _at((4, 5, 6), 0, "add", None),
    "maximum(None) with a mask": _at((4,), _mask, "maximum", None),
    "out of range int, update too big": _at((4, 5, 6), 4, "add", _ones(2, 5, 6)),
    "out of range int, 1-D": _at((4,), 4, "multiply", _ones(6)),
    "(1, 2) with (1, 6)": _at((4, 5, 6), (1, 2), "add", _ones(1, 6)),
    "(1, -1, 2) with (1, 1, 1, 1)": _at((4, 5, 6), (1, -1, 2), "minimum", _ones(1, 1, 1, 1)),
    "(..., 1) with (1, 1, 1, 1)": _at((4, 5, 6), (..., 1), "subtract", _ones(1, 1, 1, 1)),
    "(1, ...) with (1, 1, 1, 1) on 1-D": _at((4,), (1, ...), "add", _ones(1, 1, 1, 1)),
    "None with a numpy int64 update": _at((4, 5, 6), None, "add", np.arange(6)),
    "... with a numpy int64 update": _at((4, 5, 6), ..., "minimum", np.arange(6)),
    # index errors come before the update is negated
    "bool subtract, too many indices": _at((4,), (1, 2), "subtract", True, "bool_"),
    "bool subtract, 32-bit slice": _at((4,), slice(2 ** 40, None), "subtract", True, "bool_"),
    "bool subtract, two ellipses": _at((4,), (..., ...), "subtract", True, "bool_"),
    "bool subtract, True index": _at((4,), True, "subtract", True, "bool_"),
    "bool subtract, unbroadcastable indices": _at((4, 5, 6), ([0, 1], [0, 1, 2]), "subtract",
                                                  True, "bool_"),
    # ... but the negation comes before the dtype of float indices is checked
    "bool subtract, float indices": _at((4,), [], "subtract", True, "bool_"),
    "float indices, update too big": _at((4, 5, 6), [], "add", _ones(2, 5, 6)),
    # numpy arrays are not indices of at[]; masks are checked as integer indices
    "numpy bool index": _at((4, 5, 6), np.array([True, False, True, False]), "add", 2),
    "0-d mask, update too big": _at((4, 5, 6), lambda m: m.array(True), "add",
                                    _ones(2, 5, 6)),
    "mask, update does not broadcast": _at((4, 6), _mask, "add", _ones(5, 6)),
    "2-D mask, update does not broadcast": _at(
        (4, 5, 6), lambda m: m.array([[True, False, True, False, True]] * 4), "divide",
        _ones(2, 5, 6)),
    "(:, mask), update does not broadcast": _at((4, 5, 6), lambda m: (slice(None), _mask(m)),
                                                "add", _ones(5, 6)),
}


@pytest.mark.parametrize("case", AT_CASES)
def test_at(case):
    check_parity(AT_CASES[case])


# -- methods: positional arguments, names; None as an operand -------------------------------

def _meth(name, *args, dtype="float32", **kwargs):
    def call(m):
        a = (m.arange(24).reshape(2, 3, 4) - 5).astype(getattr(m, dtype))
        rest = [m.cpu if x == "cpu" else x for x in args]
        return getattr(a, name)(*rest, **kwargs)
    return call


METHOD_CASES = {
    "abs(None)": _meth("abs", None),
    "exp(stream)": _meth("exp", "cpu"),
    "square(stream)": _meth("square", "cpu"),
    "sum(axis, keepdims, stream)": _meth("sum", 0, True, "cpu"),
    "max(axis, keepdims, stream)": _meth("max", 0, True, "cpu"),
    "logsumexp(axis, keepdims, stream)": _meth("logsumexp", 0, True, "cpu"),
    "all(axis, keepdims, stream)": _meth("all", 0, True, "cpu", dtype="bool_"),
    "cumsum(axis, reverse)": _meth("cumsum", 0, True),
    "cummax(axis, reverse)": _meth("cummax", -1, True),
    "logcumsumexp(axis, reverse)": _meth("logcumsumexp", 0, True),
    "round(decimals, stream)": _meth("round", 1, "cpu"),
    "view(dtype, stream)": lambda m: m.arange(4).view(m.int8, m.cpu),
    "split(n, axis, stream)": _meth("split", 2, 1, "cpu"),
    "squeeze(axis, stream)": lambda m: m.zeros((1, 3)).squeeze(0, m.cpu),
    "has maximum": lambda m: hasattr(m.array([1]), "maximum"),
    "has minimum": lambda m: hasattr(m.array([1]), "minimum"),
    "has expm1": lambda m: hasattr(m.array([1]), "expm1"),
    "has conjugate": lambda m: hasattr(m.array([1]), "conjugate"),
    "== None": lambda m: m.array([1, 2]) == None,  # noqa: E711 - the comparison is the case
    "!= None": lambda m: m.array([1, 2]) != None,  # noqa: E711
    "< None": lambda m: m.array([1, 2]) < None,
    "+ None": lambda m: m.array([1, 2]) + None,
    "None - a": lambda m: None - m.array([1, 2]),
    "& None": lambda m: m.array([1, 2]) & None,
}


@pytest.mark.parametrize("case", METHOD_CASES)
def test_methods(case):
    check_parity(METHOD_CASES[case])


def test_method_signatures_show_the_positional_arguments():
    import inspect
    P = inspect.Parameter
    sig = inspect.signature(mx.array.cumsum)
    assert sig.parameters["axis"].kind is P.POSITIONAL_OR_KEYWORD
    assert sig.parameters["reverse"].kind is P.KEYWORD_ONLY
    assert inspect.signature(mx.array.astype).parameters["stream"].kind is \
        P.POSITIONAL_OR_KEYWORD
    assert inspect.signature(mx.array.sum).parameters["stream"].kind is P.KEYWORD_ONLY


# -- casts: NaN bit patterns, floats into wide unsigned types ------------------------------------

def _bits(dtype):
    """The bits of NaNs of several payloads and signs, cast to `dtype` (enough of them for
    the vectorized casts), as unsigned integers."""
    def call(m):
        raw = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFF812345, 0x3F800000],
                       np.uint32)
        x = m.array(np.tile(raw, 8)).view(m.float32)
        x = x if dtype == "float32" else x.astype(getattr(m, dtype))
        out = {}
        for dst in ("float16", "bfloat16"):
            if dst != dtype:
                out[dst] = x.astype(getattr(m, dst)).view(m.uint16)
        return out["float16"] if "float16" in out else None, out.get("bfloat16")
    return call


CASTS = {
    **{f"NaNs from {dt}": _bits(dt) for dt in ("float32", "float64", "float16", "bfloat16")},
    "0-d NaN to bfloat16": lambda m: m.array(float("nan")).astype(m.bfloat16).view(m.uint16),
    "NaN list as bfloat16": lambda m: m.array([float("nan"), -float("nan")] * 20,
                                              m.bfloat16).view(m.uint16),
    "NaN ndarray as bfloat16": lambda m: m.array(np.full(40, np.nan, np.float32),
                                                 m.bfloat16).view(m.uint16),
    "NaN ndarray as float16": lambda m: m.array(np.full(40, -np.nan, np.float64),
                                                m.float16).view(m.uint16),
    **{f"{src} to {dst}": (lambda m, src=src, dst=dst: m.array(
        np.array([float("nan"), float("inf"), -float("inf"), -1.5, 3e9, 5e9, -5e9, 1e19, 2e19,
                  -1e19, 1e30, 7.5] * 4, np.float32)).astype(getattr(m, src))
        .astype(getattr(m, dst)))
       for src in ("float32", "float64", "float16", "bfloat16") for dst in ("uint32", "uint64")},
    "list as uint64": lambda m: m.array([float("nan"), float("inf"), 1e19, 2e19, -1.5] * 4,
                                        m.uint64),
    "scalars as uint64": lambda m: [m.array(v, m.uint64) for v in
                                    (float("nan"), float("inf"), 1e19, 2e19, -1.5, -1e19)],
    "scalars as uint32": lambda m: [m.array(v, m.uint32) for v in
                                    (float("nan"), float("inf"), 5e9, -5e9, -1.5)],
}


@pytest.mark.parametrize("case", CASTS)
def test_casts(case):
    with mx.stream(mx.cpu):  # (the NaN patterns and wrapping are those of upstream's CPU)
        check_parity(CASTS[case])


# -- numpy, the buffer protocol, hash, unary plus ------------------------------------------

def _view(a):
    m = memoryview(a)
    return m.format, m.itemsize, m.ndim, m.shape, m.strides, m.readonly, m.nbytes, m.tobytes()


_DTYPES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
           "float16", "float32", "float64", "bfloat16", "complex64"]

BUFFERS = {
    **{f"memoryview {dt}": (lambda m, dt=dt: _view(
        (m.arange(6).reshape(2, 3) - 2).astype(getattr(m, dt)))) for dt in _DTYPES},
    **{f"np.array {dt}": (lambda m, dt=dt: np.array(m.array([1, 0, 3], getattr(m, dt)))
                          .tolist()) for dt in _DTYPES},
    "memoryview 0-d": lambda m: _view(m.array(1.5)),
    "memoryview empty": lambda m: _view(m.zeros((2, 0))),
    "memoryview broadcast": lambda m: _view(m.broadcast_to(m.array([1, 2]), (3, 2))),
    "memoryview tolist": lambda m: memoryview(m.array([[1, 2]], m.int64)).tolist(),
    "memoryview obj value": lambda m: memoryview(m.array([1, 2])).obj.tolist(),
    "bytearray": lambda m: bytearray(m.array([1, 2], m.uint16)),
    "np.asarray bfloat16": lambda m: np.asarray(m.array([1, 2], m.bfloat16)),
    "np.array bfloat16 as float32": lambda m: np.array(m.array([1, 2], m.bfloat16), np.float32),
    "__array__ bfloat16": lambda m: m.array([1, 2], m.bfloat16).__array__(),
    "__array__ ignores dtype": lambda m: m.array([1, 2]).__array__(np.float64).dtype.name,
    "np.array int64 type": lambda m: np.array(m.array([1], m.int64)).dtype.char,
    "hash is not id": lambda m: (lambda a: hash(a) == id(a))(m.array(1)),
    "+a is a new object": lambda m: (lambda a: +a is a)(m.array([1.0])),
    "pow with modulus": lambda m: pow(m.array([2]), 3, 5),
    "0-d bfloat16 pickled": lambda m: pickle.loads(pickle.dumps(m.array(-2.25, m.bfloat16))),
    "0-d bfloat16 state": lambda m: (lambda s: (s[0].shape, s[0].tolist(), s[1]))(
        m.array(-2.25, m.bfloat16).__getstate__()),
    "bytes of a transposed bfloat16": lambda m: bytes(m.array([[1, 2]], m.bfloat16).T),
    "array(dtype=str)": lambda m: m.array([1, 2], "int8"),
    "astype(str)": lambda m: m.array([1.5]).astype("float32"),
    "astype(numpy type)": lambda m: m.astype(m.array([1.5]), np.float32),
    "^= 2.5": lambda m: m.array([1]).__ixor__(2.5),
    "^= on float16": lambda m: m.array([1], m.float16).__ixor__(1),
    "^ 2.5": lambda m: m.array([1]) ^ 2.5,
    "&= 2.5": lambda m: m.array([1]).__iand__(2.5),
    "<<= 2.5": lambda m: m.array([1]).__ilshift__(2.5),
    "@ 2": lambda m: m.array([1]) @ 2,
    "2 @ a": lambda m: 2 @ m.array([1]),
    "@= 2": lambda m: m.array([1]).__imatmul__(2),
    "[[1]] @ a": lambda m: [[1]] @ m.array([1]),
}


@pytest.mark.parametrize("case", BUFFERS)
def test_buffers_and_numpy(case):
    with mx.stream(mx.cpu):
        check_parity(BUFFERS[case])


def test_buffer_shares_memory_and_outlives_the_array():
    before = mx.default_device()
    mx.set_default_device(mx.cpu)  # (a GPU array's buffer is a host copy)
    try:
        a = mx.array([1.0, 2.0])
    finally:
        mx.set_default_device(before)
    np.asarray(a)[0] = 9  # as upstream's: numpy reads the array's own memory
    assert a.tolist() == [9.0, 2.0]
    v = memoryview(a)
    a += 1  # a new value for `a`; the view keeps the memory it was given
    del a
    assert v.tolist() == [9.0, 2.0]


def test_plus_keeps_the_value_across_inplace_updates():
    a = mx.array([1, 2])
    b = +a
    a += 1
    assert b.tolist() == [1, 2] and a.tolist() == [2, 3]
