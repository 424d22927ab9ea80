"""The array's Python protocol against upstream, dtype by dtype: conversions, operators with
Python and numpy operands on either side, in-place operators, the method forms of ops
(positional and keyword, and the errors for bad arguments) and `array.at` updates.

Results must agree on type, dtype, shape and bits (NaN payloads aside: those are the
kernels' business); errors on type and on the start of the message."""

import copy
import operator
import pickle
import struct
import weakref

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_same

DTYPES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64", "complex64"]


@pytest.fixture(autouse=True)
def _cpu():
    with mx.stream(mx.cpu):  # upstream's CPU bits
        yield


def _values(dt, shape):
    v = (np.arange(int(np.prod(shape))) % 7 - 3).astype(np.float64).reshape(shape)
    if dt == "bool_":
        return v > 0
    if dt[0] == "u":
        return np.abs(v) * 3
    if dt == "complex64":
        return (v * 0.5 + 1j * v[::-1]).astype(np.complex64)
    return v * 0.75 if dt[0] in "fb" else v


def _make(m, dt, shape=(3,)):
    v = _values(dt, shape)
    if v.size == 0:  # (upstream's arrays made from empty numpy arrays misreduce)
        return m.zeros(shape, getattr(m, dt))
    return m.array(v.astype(np.complex64 if dt == "complex64" else
                            np.bool_ if dt == "bool_" else np.float32)).astype(getattr(m, dt))


def _bits(a, m):
    h = np.array(a.view(m.uint16) if a.dtype == m.bfloat16 else
                 a.astype(m.uint8) if a.dtype == m.bool_ else a)
    if a.dtype in (m.float16, m.bfloat16, m.float32, m.float64, m.complex64):
        nan = np.isnan(np.array(a.astype(m.complex64 if a.dtype == m.complex64 else m.float64)))
        if nan.any():  # every NaN alike, the other values by their bits
            return nan.tobytes() + np.where(nan, 0, h).astype(h.dtype).tobytes()
    return h.tobytes()


def _canon(v, m):
    if isinstance(v, m.array):
        return ("array", str(v.dtype).split(".")[-1], tuple(v.shape), _bits(v, m))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_canon(x, m) for x in v))
    if isinstance(v, float):
        return ("float", "nan" if v != v else struct.pack("<d", v))
    if isinstance(v, complex):
        return ("complex", _canon(v.real, m), _canon(v.imag, m))
    if isinstance(v, np.ndarray):
        return ("ndarray", str(v.dtype), v.shape, v.tobytes())
    if isinstance(v, m.Dtype):
        return ("Dtype", str(v).split(".")[-1])
    if isinstance(v, memoryview):
        return ("memoryview", v.format, v.shape, v.readonly, v.tobytes())
    if isinstance(v, (bool, int, str, bytes, type(None))):
        return (type(v).__name__, v)
    return ("object", type(v).__name__)


def _outcome(m, fn):
    try:
        r = fn(m)
        if isinstance(r, m.array):
            m.eval(r)
        return ("ok", _canon(r, m))
    except Exception as err:  # noqa: BLE001 - compared below
        msg = str(err).split("\n")[0]
        cut = msg.find("incompatible function arguments.")
        return ("error", type(err).__name__, msg[:cut + 32] if cut >= 0 else msg)


def _differences(cases):
    """The cases (name, fn of the module) where Ember and upstream disagree."""
    out = []
    for name, fn in cases:
        want, got = _outcome(mlx, fn), _outcome(mx, fn)
        if want[0] == got[0] == "error":
            # upstream's C++ conversions fail with messages of their own (std::bad_cast)
            same = want[1] == got[1] and (got[2].startswith(want[2]) or
                                          want[2].startswith(("std::", "nanobind::")))
        else:
            same = want == got
        if not same:
            out.append(f"{name}:\n  ember {str(got)[:200]}\n  mlx   {str(want)[:200]}")
    return out


def _check(cases):
    diffs = _differences(cases)
    assert not diffs, "\n".join(diffs[:10])


# -- conversions and the number protocol ---------------------------------------------------------

CONVERSIONS = {
    "item": lambda a: a.item(), "tolist": lambda a: a.tolist(), "int": int, "float": float,
    "bool": bool, "complex": complex, "index": operator.index, "len": len,
    "hashable": lambda a: type(hash(a)).__name__, "list": list, "iter": lambda a: next(iter(a)),
    "in": lambda a: 1 in a, "bytes": bytes, "np.array": np.array,
    "np.asarray f64": lambda a: np.asarray(a, np.float64),
    "np.asarray dtype=i8": lambda a: np.asarray(a, dtype=np.int8),
    "np.array copy": lambda a: np.array(a, copy=True), "__array__": lambda a: a.__array__(),
    "__array__ f64": lambda a: a.__array__(np.float64),
    "__array__ copy": lambda a: a.__array__(copy=False), "memoryview": memoryview,
    "memoryview format": lambda a: (memoryview(a).format, memoryview(a).itemsize),
    "bytearray": bytearray, "dlpack device": lambda a: a.__dlpack_device__(),
    "np.from_dlpack": np.from_dlpack, "repr": repr, "str": str, "format": lambda a: f"{a}",
    "format .2f": lambda a: f"{a:.2f}", "format >12": lambda a: f"{a:>12}",
    "format e": lambda a: f"{a:e}", "neg": operator.neg, "pos": operator.pos, "abs": abs,
    "invert": operator.invert, "round": round, "copy": copy.copy, "deepcopy": copy.deepcopy,
    "pickle": lambda a: pickle.loads(pickle.dumps(a)), "getstate": lambda a: a.__getstate__(),
    "== None": lambda a: a == None, "!= None": lambda a: a != None,  # noqa: E711
    "== str": lambda a: a == "a", "!= str": lambda a: a != "a", "== list": lambda a: a == [1, 0, 1],
    "== tuple": lambda a: a == (1,), "== object": lambda a: a == object(),
    "< None": lambda a: a < None,
}


@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 0, 3), (2, 3)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conversions_match_upstream(dtype, shape):
    if dtype == "float64":  # (upstream's pickle brings float64 back as float32)
        skip = {"pickle"}
    else:
        skip = set()
    _check([(f"{name} {dtype}{shape}", lambda m, f=f: f(_make(m, dtype, shape)))
            for name, f in CONVERSIONS.items() if name not in skip])


def test_float64_pickle_keeps_its_dtype():
    # upstream's round trip gives float32 (its setstate reads the data as numpy input):
    # keeping the dtype and the bits is the point of pickling, so Ember does
    a = mx.array([0.1, 1 / 3], mx.float64)
    b = pickle.loads(pickle.dumps(a))
    assert b.dtype == mx.float64 and np.array(b).tobytes() == np.array(a).tobytes()


# -- operators ---------------------------------------------------------------------------------

OPERANDS = [True, 2, -3, 0, 2**40, 2**63, -2**70, 2.5, -0.0, 1 + 2j, np.float32(2),
            np.float64(2.5), np.int8(2), np.int64(-2), np.uint8(2), np.uint64(2), np.bool_(True),
            np.float16(2), np.complex64(1j), np.array(2), np.array(2.5), np.array([1.5, 2, 3]),
            np.array([1, 2, 3], np.int16), np.array([[1], [2]], np.uint8), None, "a", [1, 2, 3],
            (1, 2, 3)]
BINARY = ["+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<<", ">>", "==", "!=", "<", "<=",
          ">", ">=", "@"]


def _binary_cases(dtype, op):
    for v in OPERANDS:
        for left in (True, False):
            expr = f"a {op} v" if left else f"v {op} a"

            def fn(m, expr=expr, v=v):
                r = eval(expr, {"a": _make(m, dtype), "v": v})  # noqa: S307 - the operator
                return type(r).__name__, r
            yield f"{expr} with v={v!r}", fn


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("dtype", DTYPES)
def test_operators_with_scalars_and_numpy_match_upstream(dtype, op):
    _check(list(_binary_cases(dtype, op)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_operators_between_dtypes_match_upstream(dtype):
    cases = []
    for op in BINARY:
        for other in DTYPES:
            def fn(m, op=op, other=other):
                env = {"a": _make(m, dtype, (2, 3)),
                       "b": _make(m, other, (3, 2) if op == "@" else (3,))}
                return eval(f"a {op} b", env)  # noqa: S307 - the operator
            cases.append((f"{dtype} {op} {other}", fn))
    _check(cases)


DUNDERS = [
    "a ** -1", "a ** -2", "a ** m.array(-1)", "2 ** -a", "pow(a, 2)", "pow(a, 2, 3)",
    "a.__pow__(2, None)", "a.__rpow__(2)", "[1, 2, 3] @ a", "np.ones(3) @ a",
    "a.__matmul__(np.ones(3))", "divmod(a, 2)", "a.__radd__(np.array([1, 2, 3]))",
    "a.__rsub__(2)", "a.__rtruediv__(2)", "a.__rfloordiv__(2)", "a.__rmod__(2)",
    "a.__rdiv__(3)", "a.__div__(3)", "a.__add__(None)", "a.__add__('a')", "a.__eq__(None)",
    "a.__lt__('a')", "a.__and__(np.array([1, 2, 3]))", "a.__lshift__(np.int64(1))",
    "np.add(a, 1)", "np.float64(2) + a", "np.int8(2) * a", "np.array(2) - a",
    "np.array([1, 2, 3]) / a", "np.array([1.5]) < a", "np.bool_(True) & a", "a | 2**64",
    "a ^ -2**63", "a << 2**63",
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_operator_dunders_match_upstream(dtype):
    _check([(f"{dtype}: {e}", lambda m, e=e: (lambda r: (type(r).__name__, r))(
        eval(e, {"a": _make(m, dtype), "m": m, "np": np}))) for e in DUNDERS])  # noqa: S307


INPLACE = ["+=", "-=", "*=", "/=", "//=", "%=", "**=", "&=", "|=", "^=", "<<=", ">>=", "@="]
INPLACE_OPERANDS = [1, -1, 2.5, 1j, True, np.float64(2), np.int8(1), np.array([1, 2, 3]),
                    np.array([1.5, 2, 3], np.float32), "a", None, [1, 2, 3], 2**64,
                    "int8", "float32", "bool_"]


@pytest.mark.parametrize("op", INPLACE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_operators_keep_identity_and_match_upstream(dtype, op):
    cases = []
    for v in INPLACE_OPERANDS:
        def fn(m, v=v):
            a = _make(m, dtype, (3, 3) if op == "@=" else (3,))
            m.eval(a)
            w = _make(m, v, a.shape) if isinstance(v, str) and v != "a" else v
            env = {"a": a, "v": w, "old": m.array(a), "alias": weakref.ref(a)}
            # (with more references to `a`, Ember would look for lazy readers of it across
            # the whole heap, which is slow in a test process)
            del a
            exec(f"a {op} v", env)  # noqa: S102 - the operator
            return env["a"] is env["alias"](), env["a"], env["old"]
        cases.append((f"{dtype} {op} {v!r}", fn))
    _check(cases)


# -- the methods -------------------------------------------------------------------------------

# exact results (transcendental and mean-like ones are compared with tolerances below)
EXACT_CALLS = {
    "all": ["()", "(0)", "(1, True)", "(axis=(0, 2), keepdims=True)", "([0, 1])", "(3)",
            "(0, True, m.cpu)", "(0, True, 1)", "(foo=1)"],
    "any": ["()", "(1, True)", "(axis=-1)", "((0,))"],
    "sum": ["()", "(0)", "(1, True)", "(axis=(0, 2), keepdims=True)", "(axis=[])", "(3)",
            "(keepdims=True)", "(0.5)", "(stream=m.cpu)", "(0, True, m.cpu)", "(axis=0, foo=1)"],
    "prod": ["()", "(1)", "(axis=(0, 2), keepdims=True)"],
    "max": ["()", "(1)", "(axis=(0, 2), keepdims=True)"],
    "min": ["()", "(1)", "(axis=-1, keepdims=True)"],
    "argmax": ["()", "(1)", "(axis=1, keepdims=True)", "((0, 1))"],
    "argmin": ["()", "(-1)", "(axis=1, keepdims=True)"],
    "cumsum": ["()", "(1)", "(axis=1, reverse=True)", "(0, inclusive=False)", "(1, True)",
               "(dtype=m.float32)", "(axis=-1, reverse=True, inclusive=False, stream=m.cpu)"],
    "cumprod": ["()", "(1)", "(axis=1, reverse=True)", "(0, inclusive=False)", "(0, True)"],
    "cummax": ["()", "(1)", "(axis=1, reverse=True)", "(0, inclusive=False)"],
    "cummin": ["()", "(1)", "(axis=1, reverse=True)", "(0, inclusive=False)"],
    "astype": ["(m.int8)", "(dtype=m.float16)", "(m.bfloat16)", "(m.uint8)", "(m.bool_)",
               "(m.complex64)", "(m.float64)", "(m.uint64)", "(m.float32, m.cpu)",
               "(m.float32, stream=m.cpu)", "()", "(m.float32, m.cpu, 1)", "(type=m.int8)"],
    "view": ["(m.int8)", "(dtype=m.uint16)", "(m.float32)", "(m.complex64)", "(m.int64)",
             "()", "(m.int8, m.cpu)"],
    "flatten": ["()", "(1)", "(0, 1)", "(start_axis=1, end_axis=-1)", "(end_axis=1)", "(2, 1)",
                "(5)", "(0, 1, m.cpu)"],
    "squeeze": ["()", "(axis=1)", "((1,))", "(0)", "(0, m.cpu)"],
    "moveaxis": ["(0, 2)", "(source=0, destination=-1)", "(0)", "(5, 0)", "(0, 1, 2)"],
    "swapaxes": ["(0, 2)", "(axis1=0, axis2=-1)", "(0)", "(5, 0)", "(0, 1, m.cpu)"],
    "split": ["(2, 2)", "(indices_or_sections=2, axis=2)", "(2)", "([1], 1)", "((1, 2), 1)",
              "(3, 1)", "(4)", "([], 1)", "()", "(2, 0, m.cpu)"],
    "diagonal": ["()", "(1)", "(0, 1, 2)", "(offset=1, axis1=2, axis2=0)", "(0, 0, 0)",
                 "(0, 1, 2, m.cpu)", "(0, 1, 2, m.cpu, 1)"],
    "round": ["()", "(1)", "(decimals=2)", "(-1)", "(1, m.cpu)"],
    "abs": ["()", "(m.cpu)"], "conj": ["()"], "square": ["()"],
    "item": ["()"], "tolist": ["()"],
}
CLOSE_CALLS = {
    "mean": ["()", "(1)", "(axis=(0, 2), keepdims=True)", "(1, True, m.cpu)"],
    "var": ["()", "(1)", "(1, True, 1)", "(axis=0, ddof=1)", "(correction=1)", "(0, ddof=5)",
            "(0, True, 1)"],
    "std": ["()", "(1)", "(1, True, 1)", "(axis=0, ddof=1)", "(correction=1)"],
    "logsumexp": ["()", "(1)", "(axis=(0, 2), keepdims=True)", "(0, True, m.cpu)"],
    "logcumsumexp": ["()", "(1)", "(axis=1, reverse=True)", "(0, inclusive=False)",
                     "(0, True)"],
    "exp": ["()"], "log": ["()"], "log2": ["()"], "log10": ["()"], "log1p": ["()"],
    "sqrt": ["()"], "rsqrt": ["()"], "reciprocal": ["()"], "sin": ["()"], "cos": ["()"],
}


def _call(m, dtype, shape, name, args):
    return eval(f"a.{name}{args}", {"a": _make(m, dtype, shape), "m": m})  # noqa: S307


@pytest.mark.parametrize("shape", [(2, 3, 2), (1, 3, 1), (), (6,)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_methods_match_upstream(dtype, shape):
    _check([(f"{dtype}{shape}.{name}{args}", lambda m, n=name, a=args: _call(m, dtype, shape, n, a))
            for name, calls in EXACT_CALLS.items() for args in calls])


@pytest.mark.parametrize("dtype", ["bool_", "int32", "uint8", "float16", "bfloat16", "float32",
                                   "float64", "complex64"])
@pytest.mark.parametrize("name", sorted(CLOSE_CALLS))
def test_float_methods_match_upstream(dtype, name):
    shape = (2, 3, 2)
    for args in CLOSE_CALLS[name]:
        try:
            want = _call(mlx, dtype, shape, name, args)
            mlx.eval(want)
        except Exception as err:  # noqa: BLE001 - the same error is expected
            with pytest.raises(type(err)) as got:
                _call(mx, dtype, shape, name, args)
            assert str(got.value).startswith(str(err)[:str(err).find(".") + 1]), args
            continue
        # (upstream's CPU float64 transcendentals are only as accurate as float32's)
        assert_same(_call(mx, dtype, shape, name, args), want, msg=f"{name}{args}",
                    tol_dtype="float32" if dtype == "float64" else None)


def test_method_argument_errors_name_the_method():
    a = mx.zeros((2, 3))
    for call, name in [(lambda: a.swapaxes(0), "swapaxes"), (lambda: a.astype(), "astype"),
                       (lambda: a.cumsum(dtype=mx.float32), "cumsum"),
                       (lambda: a.sum(0, True, mx.cpu), "sum"),
                       (lambda: a.mean(foo=1), "mean")]:
        with pytest.raises(TypeError, match=rf"^{name}\(\): incompatible function arguments\."):
            call()
    # a dtype that is not one is refused by upstream's binding, as a non-array is
    for call in [lambda m: m.zeros((2, 3)).view(int),
                 lambda m: m.zeros((2, 3)).view(np.float32),
                 lambda m: m.view(m.zeros((2, 3)), "float32")]:
        with pytest.raises(TypeError) as want:
            call(mlx)
        with pytest.raises(TypeError, match=r"^view\(\): incompatible function arguments\.") \
                as got:
            call(mx)
        assert str(got.value).split(".")[0] == str(want.value).split(".")[0]


# -- array.at ----------------------------------------------------------------------------------

AT_INDICES = ["0", "[0, 0, 1]", "[1, 1]", "(0, 1)", "(..., 0)", "m.array([0, 0, 0])", "1:",
              "::-1", "[[0], [0]]", "(m.array([0, 0]), m.array([1, 1]))", "5", "'a'"]
AT_VALUES = ["1", "2.5", "-1", "m.array([1, 2, 3])", "1j", "True", "np.float64(2)", "[1, 2, 3]",
             "None", "m.array(0.5, m.float16)", "m.ones((3, 3))"]
# differences in the scatter kernels (ember/core/ops/index.py), not in the array protocol:
# uint64 minimum/maximum of whole rows compare as int64; float16 division by a repeated
# index rounds the product of the reciprocals in another order
@pytest.mark.parametrize("method", ["add", "subtract", "multiply", "divide", "minimum",
                                    "maximum"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_at_updates_match_upstream(dtype, method):
    cases = []
    for idx in AT_INDICES:
        for v in AT_VALUES:
            def fn(m, idx=idx, v=v):
                a = _make(m, dtype, (2, 3))
                r = eval(f"a.at[{idx}].{method}({v})", {"a": a, "m": m, "np": np})  # noqa: S307
                return r, a  # (the array itself is left alone)
            cases.append((f"{dtype} a.at[{idx}].{method}({v})", fn))
    diffs = _differences(cases)
    assert not diffs, "\n".join(diffs[:10])


def test_at_protocol_matches_upstream():
    _check([(e, lambda m, e=e: eval(e, {"a": _make(m, "int32", (2, 3)), "m": m}))  # noqa: S307
            for e in ["type(a.at).__name__", "type(a.at[0]).__name__", "a.at[0].add(value=1)",
                      "a.at[0].set(1)", "a.at[0, 0, 0].add(1)", "a.at[0].add(1) is a",
                      "a.at[0.5].add(1)", "a.at[None].add(1)", "a.at[[]].add(1)",
                      "a.at[0].add(1).at[0].add(1)"]])
