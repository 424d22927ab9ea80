"""Quantization against upstream at the edges: special values (NaN, ±inf, huge, tiny,
constant groups) through every mode and input type, fp8 over every half-precision bit
pattern, sizes upstream's dequantize accepts beyond quantize's, gather_qmm without
indices, and the argument errors (type and whole message)."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import errors_alike, np_of

DTYPES = ("float32", "float16", "bfloat16")
FP_MODES = ("mxfp4", "mxfp8", "nvfp4")
SPECIAL = (0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-30, 6e4, -6e4, 1e-8, 448.0,
           449.0, 6.0, 0.25, 0.75, 2.5, 5.0)


def _data(kind, shape=(8, 256)):
    rng = np.random.default_rng(3)
    if kind == "special":
        w = rng.standard_normal(shape).reshape(-1)
        idx = rng.choice(w.size, 64, replace=False)
        w[idx] = rng.choice(SPECIAL, 64)
    elif kind == "constant":
        w = np.repeat(rng.standard_normal(shape[:-1] + (1,)), shape[-1], -1)
        w[..., : shape[-1] // 2] = 0.0
    else:
        w = rng.standard_normal(shape) * {"tiny": 1e-6, "huge": 3e4}[kind]
    return w.reshape(shape).astype(np.float32)


def _same(e, m):
    assert tuple(e.shape) == tuple(m.shape)
    assert str(e.dtype).split(".")[-1] == str(m.dtype).split(".")[-1]
    a, b = np_of(e), np_of(m)
    if a.dtype.kind == "f":
        # NaN matches NaN; zeros must agree in sign
        a, b = np.where(np.isnan(a), np.nan, a), np.where(np.isnan(b), np.nan, b)
        np.testing.assert_array_equal(np.signbit(a) | np.isnan(a), np.signbit(b) | np.isnan(b))
    np.testing.assert_array_equal(a, b)


def _both(f):
    e, m = f(mx), f(mlx)
    if not isinstance(m, (list, tuple)):
        e, m = [e], [m]
    assert len(e) == len(m)
    for a, b in zip(e, m):
        _same(a, b)


def _cast(m, w, dt):
    return m.array(w).astype(getattr(m, dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["special", "constant", "tiny", "huge"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("gs", [32, 128])
def test_affine_special_values(dt, kind, bits, gs):
    w = _data(kind)
    _both(lambda m: m.quantize(_cast(m, w, dt), gs, bits))
    _both(lambda m: m.dequantize(*m.quantize(_cast(m, w, dt), gs, bits), gs, bits))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["special", "constant", "tiny", "huge"])
@pytest.mark.parametrize("mode", FP_MODES)
def test_fp_special_values(dt, kind, mode):
    w = _data(kind)
    _both(lambda m: m.quantize(_cast(m, w, dt), mode=mode))
    for out in DTYPES:
        _both(lambda m: m.dequantize(*m.quantize(_cast(m, w, dt), mode=mode), mode=mode,
                                     dtype=getattr(m, out)))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "special", "constant"])
@pytest.mark.parametrize("g", [0.7, 37.3, 900.0])
def test_nvfp4_global_scale(dt, kind, g):
    w = _data(kind) if kind != "normal" else np.random.default_rng(4).standard_normal(
        (8, 256)).astype(np.float32) * 5

    def f(m):
        gs = m.array(np.float32(g))
        q = m.quantize(_cast(m, w, dt), mode="nvfp4", global_scale=gs)
        # (upstream returns float32 whatever dtype asks for)
        return [*q, m.dequantize(*q, mode="nvfp4", global_scale=gs),
                m.dequantize(*q, mode="nvfp4", global_scale=gs, dtype=m.bfloat16)]
    _both(f)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_to_fp8_every_half_value(dt):
    if dt == "float16":
        x = np.arange(65536, dtype=np.uint16).view(np.float16)
        _both(lambda m: m.to_fp8(m.array(x)))
    else:
        x = (np.arange(65536, dtype=np.uint32) << 16).view(np.float32)
        _both(lambda m: m.to_fp8(m.array(x).astype(m.bfloat16)))
    _both(lambda m: m.from_fp8(m.to_fp8(m.array(x).astype(getattr(m, dt))), getattr(m, dt)))


@pytest.mark.parametrize("dt", DTYPES)
def test_from_fp8_every_byte(dt):
    _both(lambda m: m.from_fp8(m.array(np.arange(256, dtype=np.uint8)), getattr(m, dt)))


@pytest.mark.parametrize("bits,gs", [(7, 32), (4, 16), (16, 8), (8, 256)])
def test_dequantize_sizes_quantize_refuses(bits, gs):
    rng = np.random.default_rng(bits)
    k = 256
    w = rng.integers(0, 2 ** 32, (4, k * bits // 32), dtype=np.uint64).astype(np.uint32)
    s = rng.standard_normal((4, k // gs)).astype(np.float32)
    b = rng.standard_normal((4, k // gs)).astype(np.float32)
    _both(lambda m: m.dequantize(m.array(w), m.array(s), m.array(b), gs, bits))


@pytest.mark.parametrize("mode", ["affine", *FP_MODES])
def test_gather_qmm_without_indices_is_quantized_matmul(mode):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 128)).astype(np.float32)
    for x in (rng.standard_normal((2, 3, 128)), rng.standard_normal(128)):
        x = x.astype(np.float32)
        e = mx.gather_qmm(mx.array(x), *mx.quantize(mx.array(w), mode=mode), mode=mode)
        m = mlx.gather_qmm(mlx.array(x), *mlx.quantize(mlx.array(w), mode=mode), mode=mode)
        assert e.shape == m.shape
        np.testing.assert_allclose(np_of(e), np_of(m), rtol=1e-5, atol=1e-4)


_errors_alike = errors_alike


W = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)


def _q(m, **kw):
    return m.quantize(m.array(W), **kw)


@pytest.mark.parametrize("case", [
    # dequantize only checks that the sizes are positive and fit the arrays
    lambda m: m.dequantize(*_q(m), 64, 0),
    lambda m: m.dequantize(*_q(m), 64, -1),
    lambda m: m.dequantize(*_q(m), -32),
    lambda m: m.dequantize(*_q(m), 64, 7),
    lambda m: m.dequantize(*_q(m), 16),
    lambda m: m.dequantize(*_q(m, mode="mxfp4"), None, 32, 0, mode="mxfp4"),
    lambda m: m.dequantize(_q(m)[0], _q(m)[1].astype(m.int32), _q(m)[2].astype(m.int32)),
    lambda m: m.dequantize(_q(m)[0], _q(m)[1][None], _q(m)[2][None]),
    lambda m: m.dequantize(*_q(m, mode="nvfp4"), mode="nvfp4", global_scale=m.array([1.0, 2.0])),
    lambda m: m.quantize(m.array(W), mode="nvfp4", global_scale=m.array([1.0, 2.0])),
    # the products check the shapes; the affine kernel the sizes
    lambda m: m.quantized_matmul(m.array(W), *_q(m), bits=7),
    lambda m: m.quantized_matmul(m.array(W), *_q(m), group_size=16),
    lambda m: m.quantized_matmul(m.array(W), *_q(m, mode="mxfp4"), group_size=64, mode="mxfp4"),
    lambda m: m.quantized_matmul(m.array(W), *_q(m, mode="nvfp4"), bits=8, mode="nvfp4"),
    lambda m: m.quantized_matmul(m.array(W), _q(m)[0], _q(m)[1].astype(m.int32),
                                 _q(m)[2].astype(m.int32)),
    lambda m: m.quantized_matmul(m.array(W), _q(m)[0], _q(m)[1], _q(m)[2][:16]),
    lambda m: m.quantized_matmul(m.array(W).astype(m.complex64), *_q(m)),
    lambda m: m.quantized_matmul(m.array(W).astype(m.float64), *_q(m)),
    lambda m: m.quantized_matmul(m.array(np.zeros((3, 2, 64), np.float32)),
                                 *m.quantize(m.array(np.zeros((2, 8, 64), np.float32)))),
    # without indices gather_qmm is quantized_matmul, errors included
    lambda m: m.gather_qmm(m.array(W[None]), *_q(m)[:2]),
    lambda m: m.gather_qmm(m.array(W[None]), *_q(m, mode="mxfp4"), m.zeros((32, 2)),
                           mode="mxfp4"),
    lambda m: m.gather_qmm(m.array(W[None]), *_q(m), mode="foo"),
    lambda m: m.gather_qmm(m.array(W[None, :, :32]), *_q(m)),
    lambda m: m.gather_qmm(m.array(W[None]), *_q(m, mode="nvfp4"), mode="nvfp4",
                           global_scale=m.array(1.0)),
    lambda m: m.gather_qmm(m.array(W[0]), *_q(m), rhs_indices=m.array([0])),
    lambda m: m.gather_qmm(m.array(W[None]), *_q(m), rhs_indices=m.array([0]),
                           global_scale=m.array(1.0)),
    lambda m: m.gather_qmm(m.array(W[None]), *m.quantize(m.array(np.stack([W, W])),
                                                         mode="nvfp4"),
                           rhs_indices=m.array([0]), mode="nvfp4", global_scale=m.array(1.0)),
    lambda m: m.gather_qmm(m.array(W[None]).astype(m.complex64), *_q(m),
                           rhs_indices=m.array([0])),
    lambda m: m.gather_qmm(m.array(W[None]), *m.quantize(m.array(np.stack([W, W]))),
                           lhs_indices=m.array([0, 0], m.uint32),
                           rhs_indices=m.array([0, 1, 1], m.uint32)),
    # qqmm's arguments (upstream's CPU evaluation itself is not implemented)
    lambda m: m.qqmm(m.array(W).astype(m.int32), m.array(W)),
    lambda m: m.qqmm(m.array(W), m.array(W).astype(m.float64)),
    lambda m: m.qqmm(m.array(W), _q(m, mode="nvfp4")[0]),
    lambda m: m.qqmm(m.array(W[:, :32]), m.array(W)),
    lambda m: m.qqmm(m.array(W[:, :32]), *_q(m, mode="nvfp4")),
    # (inputs above 2-D: upstream refuses them, Ember's qqmm and QQLinear take them)
])
def test_argument_errors_match(case):
    _errors_alike(case)


@pytest.mark.parametrize("sdt,bdt,out", [("float16", "float32", None),
                                         ("bfloat16", "float16", None),
                                         ("float16", "float16", "float32"),
                                         ("float32", "float32", "bfloat16"),
                                         ("float32", "float32", "float16")])
def test_dequantize_mixed_types(sdt, bdt, out):
    rng = np.random.default_rng(0)
    w = rng.integers(0, 2 ** 32, (8, 64), dtype=np.uint64).astype(np.uint32)
    s = rng.standard_normal((8, 4)).astype(np.float32)
    b = rng.standard_normal((8, 4)).astype(np.float32) * 100
    _both(lambda m: m.dequantize(m.array(w), _cast(m, s, sdt), _cast(m, b, bdt), 64, 8,
                                 dtype=None if out is None else getattr(m, out)))
