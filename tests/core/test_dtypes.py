"""Dtypes against upstream: the full promotion table, casting, categories, finfo/iinfo."""

import copy
import pickle

import mlx.core as mlx
import pytest

import ember.core as mx

NAMES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
         "float16", "float32", "float64", "bfloat16", "complex64"]
CATEGORIES = ["complexfloating", "floating", "inexact", "signedinteger", "unsignedinteger",
              "integer", "number", "generic"]
KINDS = ["bool", "signed integer", "unsigned integer", "integral", "real floating",
         "complex floating", "numeric"]


def _name(d):
    return str(d).split(".")[-1]


@pytest.mark.parametrize("a", NAMES)
def test_promotion_row(a):
    for b in NAMES:
        want = mlx.result_type(getattr(mlx, a), getattr(mlx, b))
        assert _name(mx.result_type(getattr(mx, a), getattr(mx, b))) == _name(want), (a, b)
        # and through arrays, the way ops promote
        x = mx.zeros((1,), getattr(mx, a))
        y = mx.zeros((1,), getattr(mx, b))
        assert _name(mx.result_type(x, y)) == _name(want), (a, b)
        assert _name((x + y).dtype) == _name(want), (a, b)


@pytest.mark.parametrize("a", NAMES)
def test_can_cast_row(a):
    for b in NAMES:
        want = mlx.can_cast(getattr(mlx, a), getattr(mlx, b))
        assert mx.can_cast(getattr(mx, a), getattr(mx, b)) == want, (a, b)
        assert mx.can_cast(mx.zeros((1,), getattr(mx, a)), getattr(mx, b)) == want, (a, b)


@pytest.mark.parametrize("a", NAMES + CATEGORIES)
def test_issubdtype_row(a):
    for b in NAMES + CATEGORIES:
        want = mlx.issubdtype(getattr(mlx, a), getattr(mlx, b))
        assert mx.issubdtype(getattr(mx, a), getattr(mx, b)) == want, (a, b)


@pytest.mark.parametrize("a", NAMES)
def test_isdtype_row(a):
    for k in KINDS + NAMES:
        kind_m = getattr(mlx, k) if k in NAMES else k
        kind_e = getattr(mx, k) if k in NAMES else k
        assert mx.isdtype(getattr(mx, a), kind_e) == mlx.isdtype(getattr(mlx, a), kind_m), k
    assert mx.isdtype(getattr(mx, a), tuple(KINDS[:3])) == mlx.isdtype(getattr(mlx, a),
                                                                       tuple(KINDS[:3]))


def test_result_type_of_many():
    for names in [("int8", "uint8", "float16"), ("bool_",), ("uint64", "int8"),
                  ("bfloat16", "float16", "int64"), ("complex64", "float64")]:
        want = mlx.result_type(*[getattr(mlx, n) for n in names])
        assert _name(mx.result_type(*[getattr(mx, n) for n in names])) == _name(want)


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "bfloat16", "complex64"])
def test_finfo(name):
    f, g = mx.finfo(getattr(mx, name)), mlx.finfo(getattr(mlx, name))
    for attr in ("min", "max", "eps", "bits", "smallest_normal"):
        assert getattr(f, attr) == getattr(g, attr), attr
    assert _name(f.dtype) == _name(g.dtype)
    assert repr(f) == repr(g)


@pytest.mark.parametrize("name", ["uint8", "uint16", "uint32", "uint64", "int8", "int16",
                                  "int32", "int64"])
def test_iinfo(name):
    f, g = mx.iinfo(getattr(mx, name)), mlx.iinfo(getattr(mlx, name))
    assert (f.min, f.max, _name(f.dtype)) == (g.min, g.max, _name(g.dtype))
    assert repr(f) == repr(g)


ERRORS = [
    "m.finfo(m.int32)", "m.finfo(m.bool_)", "m.finfo(m.floating)", "m.finfo('float32')",
    "m.iinfo(m.float32)", "m.iinfo(m.bool_)", "m.iinfo(m.integer)", "m.result_type()",
    "m.result_type(1, m.float16)", "m.result_type('int8')", "m.can_cast(1, m.float32)",
    "m.can_cast(m.int8, 'int32')", "m.can_cast(m.int8, m.integer)",
    "m.issubdtype(m.int8, 'int8')", "m.issubdtype(m.int8, 1)", "m.isdtype(m.int8, 'foo')",
    "m.isdtype(m.int8, 1)", "m.isdtype(m.int8, [m.int8])", "m.isdtype(m.int8, m.integer)",
    "m.isdtype('int8', 'integral')", "m.isdtype(m.int8, (1,))", "m.Dtype(1)",
    "m.int8 < m.int16",
]
VALUES = [
    "m.isdtype(m.int8, ())", "m.isdtype(m.int8, (m.int8, 'foo'))",
    "m.isdtype(m.int8, (m.int8, 1))", "m.int8 == 'int8'", "m.int8 == 1",
    "m.int8 == m.integer", "m.int8 != m.int16", "m.int8 == m.int8", "repr(m.bfloat16)",
    "str(m.bool_)", "repr(m.integer)", "str(m.floating)", "m.integer.name", "m.integer.value",
    "[str(c) for c in m.DtypeCategory]", "str(m.DtypeCategory(5))",
    "str(m.DtypeCategory['integer'])", "m.integer == m.integer", "m.integer == 5",
    "[getattr(m, n).size for n in NAMES]", "hash(m.int8) == hash(m.int8)",
]


def _run(m, expr):
    return eval(expr, {"m": m, "NAMES": NAMES})  # noqa: S307


@pytest.mark.parametrize("expr", ERRORS)
def test_errors_match_upstream(expr):
    with pytest.raises(Exception) as want:
        _run(mlx, expr)
    with pytest.raises(want.type):
        _run(mx, expr)


@pytest.mark.parametrize("expr", VALUES)
def test_values_match_upstream(expr):
    assert _run(mx, expr) == _run(mlx, expr)


def test_dtype_objects_are_singletons_and_pickle():
    for n in NAMES:
        d = getattr(mx, n)
        assert pickle.loads(pickle.dumps(d)) is d
        assert copy.deepcopy(d) is d
    assert mx.bool_ is mx.array(True).dtype


@pytest.mark.parametrize("kind", [None, "bool", "signed integer", "unsigned integer", "integral",
                                  "real floating", "complex floating", "numeric",
                                  ("bool", "real floating"), "foo"])
def test_array_namespace_info_dtypes(kind):
    want_info, got_info = mlx.__array_namespace_info__(), mx.__array_namespace_info__()
    try:
        want = want_info.dtypes(kind=kind)
    except Exception as err:
        with pytest.raises(type(err)):
            got_info.dtypes(kind=kind)
        return
    got = got_info.dtypes(kind=kind)
    assert list(got) == list(want)
    assert [_name(d) for d in got.values()] == [_name(d) for d in want.values()]


def test_array_namespace_info():
    want_info, got_info = mlx.__array_namespace_info__(), mx.__array_namespace_info__()
    assert got_info.capabilities() == want_info.capabilities()
    assert {k: _name(v) for k, v in got_info.default_dtypes().items()} == \
        {k: _name(v) for k, v in want_info.default_dtypes().items()}
    assert got_info.default_device() == mx.default_device()
    assert mx.default_device() in got_info.devices()
    with pytest.raises(TypeError):
        got_info.default_dtypes(device=mx.cpu)
    with pytest.raises(TypeError):
        want_info.default_dtypes(device=mlx.cpu)
