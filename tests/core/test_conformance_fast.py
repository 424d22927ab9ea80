"""Parity with upstream MLX of mx.fast's rope, rms_norm and layer_norm on the CPU: the
order of rope's checks (the offset is made an array first, and checked before dims), its
NaN angles for a base whose log is not finite, its int32 offset, and the normalisations'
argument checks and dtypes. Every expectation is upstream's own result."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import check_like_upstream, on_cpu

_X = np.random.default_rng(0).standard_normal((2, 3, 5, 8)).astype(np.float32)
_W = np.random.default_rng(1).standard_normal(8).astype(np.float32)


def _rope(dims=8, x=_X, **kw):
    args = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
    args.update(kw)

    def call(m):
        k = {n: (v(m) if callable(v) else v) for n, v in args.items()}
        return m.fast.rope(m.array(x), dims, **k)
    return call


_OFFSETS = {"float": 1.5, "bool": True, "0d float": lambda m: m.array(3.0),
            "1d of 3": lambda m: m.array([1, 2, 3]), "2d": lambda m: m.array([[1, 2]]),
            "1d float": lambda m: m.array([1.0, 2.0]), "str": "a", "list": [1, 2],
            "complex": 1j, "empty": lambda m: m.array([], m.int32)}


@on_cpu
@pytest.mark.parametrize("dims", [3, 10, 0, -2])
@pytest.mark.parametrize("offset", list(_OFFSETS))
def test_rope_offset_checked_before_dims(dims, offset):
    check_like_upstream(_rope(dims, offset=_OFFSETS[offset]), whole=True)


@on_cpu
@pytest.mark.parametrize("case", [
    dict(dims=3, base=None), dict(dims=0, base=None), dict(x=_X[0, 0], offset="a"),
    dict(x=_X.astype(np.int32), offset="a"), dict(base=None, offset=1.5),
    dict(base=1.0, offset=1.5, freqs=lambda m: m.ones(4)),
    dict(base=None, offset=1.5, freqs=lambda m: m.ones(7)),
    dict(dims=3, base=None, freqs=lambda m: m.ones(7)),
    dict(dims=2**31), dict(dims=-2**40), dict(base=10**400), dict(scale=10**400),
])
def test_rope_check_order(case):
    case = dict(case)
    check_like_upstream(_rope(case.pop("dims", 8), case.pop("x", _X), **case), whole=True)


@on_cpu
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("base", [0.0, -1.0, float("inf"), float("nan"), 1.0, 1e40])
@pytest.mark.parametrize("dims", [4, 8])
def test_rope_degenerate_base(traditional, base, dims):
    check_like_upstream(_rope(dims, traditional=traditional, base=base, offset=2))


@on_cpu
@pytest.mark.parametrize("offset", [2**40, 2**32 + 5,
                                    lambda m: m.array([2**40, 3], m.int64)])
def test_rope_offset_wraps_to_int32(offset):
    check_like_upstream(_rope(offset=offset, x=_X[:, :, :2]))


@on_cpu
@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("traditional", [False, True])
def test_rope_values(dt, traditional):
    def call(m):
        x = m.array(_X).astype(getattr(m, dt))
        off = m.array([3, 11])
        return m.fast.rope(x, 6, traditional=traditional, base=500.0, scale=0.5, offset=off)
    check_like_upstream(call)


_PARAMS = {"None": None, "ok": lambda m: m.array(_W), "short": lambda m: m.ones((4,)),
           "2d": lambda m: m.ones((1, 8)), "0d": lambda m: m.array(2.0),
           "f16": lambda m: m.array(_W).astype(m.float16),
           "int": lambda m: m.array(np.arange(8)), "bool": lambda m: m.ones((8,), m.bool_),
           "list": [1.0] * 8, "str": "a"}


def _p(m, v):
    return v(m) if callable(v) else v


@on_cpu
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("p", list(_PARAMS))
def test_norm_params(dt, p):
    v, ok = _PARAMS[p], _PARAMS["f16"]

    def x(m):
        return m.array(_X).astype(getattr(m, dt))
    check_like_upstream(lambda m: m.fast.rms_norm(x(m), _p(m, v), 1e-5))
    check_like_upstream(lambda m: m.fast.layer_norm(x(m), _p(m, v), None, 1e-5))
    check_like_upstream(lambda m: m.fast.layer_norm(x(m), None, _p(m, v), 1e-5))
    check_like_upstream(lambda m: m.fast.layer_norm(x(m), _p(m, ok), _p(m, v), 1e-5))


@on_cpu
@pytest.mark.parametrize("eps", [0, 1, True, None, "a", np.float32(1e-3), float("nan"),
                                 10**400, [1e-5]])
def test_norm_eps(eps):
    check_like_upstream(lambda m: m.fast.rms_norm(m.array(_X), m.array(_W), eps))
    check_like_upstream(lambda m: m.fast.layer_norm(m.array(_X), None, m.array(_W), eps))


@on_cpu
@pytest.mark.parametrize("dt", ["int32", "uint8", "bool_"])
def test_norm_input_dtypes(dt):
    def x(m):
        return m.array((_X * 3).astype(np.int64)).astype(getattr(m, dt))
    check_like_upstream(lambda m: m.fast.rms_norm(x(m), None, 1e-5))
    check_like_upstream(lambda m: m.fast.rms_norm(x(m), m.array(_W), 1e-5))
    check_like_upstream(lambda m: m.fast.layer_norm(x(m), None, m.array(_W), 1e-5))


_R = np.random.default_rng(2)
_Q = _R.standard_normal((2, 4, 3, 8)).astype(np.float32)
_K = _R.standard_normal((2, 2, 5, 8)).astype(np.float32)
_V = _R.standard_normal((2, 2, 5, 8)).astype(np.float32)
_ADD = _R.standard_normal((2, 4, 3, 5)).astype(np.float32)
_BOOL = _R.random((3, 5)) > 0.5


def _sdpa(q=_Q, k=_K, v=_V, **kw):
    def call(m):
        args = {n: (x(m) if callable(x) else x) for n, x in kw.items()}
        args.setdefault("scale", 0.3)
        return m.fast.scaled_dot_product_attention(m.array(q), m.array(k), m.array(v), **args)
    return call


@on_cpu
@pytest.mark.parametrize("case", [
    dict(q=_Q[0]), dict(k=_K[0]), dict(v=_V[:, :1]), dict(k=_K[..., :4]), dict(v=_V[..., :4]),
    dict(v=_V[:, :, :4]), dict(k=_K[:1], v=_V[:1]), dict(k=np.repeat(_K[:, :1], 3, 1),
                                                         v=np.repeat(_V[:, :1], 3, 1)),
    dict(q=(_Q * 3).astype(np.int32)), dict(k=_K.astype(np.float16)),
    dict(mask="Causal"), dict(mask=""), dict(mask=lambda m: m.zeros((3, 4))),
    dict(mask=lambda m: m.zeros((1, 1, 1, 3, 5))), dict(mask=lambda m: m.zeros((3, 5), m.float64)),
    dict(mask=lambda m: m.zeros((3, 5), m.int32)), dict(mask=lambda m: m.zeros((2, 2, 3, 5))),
    dict(mask=1.0), dict(sinks=lambda m: m.zeros((2,))), dict(sinks=lambda m: m.zeros((1, 4))),
    dict(sinks=lambda m: m.zeros((4,), m.float64)), dict(scale="a"), dict(scale=None),
    dict(scale=10**400),
])
def test_sdpa_argument_checks(case):
    check_like_upstream(_sdpa(**case))


@on_cpu
@pytest.mark.parametrize("case", [
    dict(), dict(mask="causal"), dict(mask=lambda m: m.array(_BOOL)),
    dict(mask=lambda m: m.array(_ADD)), dict(mask=lambda m: m.zeros((3, 5), m.float16)),
    dict(sinks=lambda m: m.array([0.5, -1.0, 2.0, 0.0])), dict(scale=1), dict(scale=True),
    dict(q=_R.standard_normal((2, 4, 7, 8)).astype(np.float32), mask="causal"),
])
def test_sdpa_values(case):
    check_like_upstream(_sdpa(**case), rtol=1e-5)


@on_cpu
def test_metal_kernel_call_without_metal():
    def call(m):
        k = m.fast.metal_kernel(name="k", input_names=["a"], output_names=["o"], source="")
        return k(inputs=[m.ones(2)], output_shapes=[(2,)], output_dtypes=[m.float32],
                 grid=(1, 1, 1), threadgroup=(1, 1, 1))
    with pytest.raises(RuntimeError) as up:
        call(mlx)
    with pytest.raises(RuntimeError) as ours:
        call(mx)
    assert str(ours.value).startswith(str(up.value))
