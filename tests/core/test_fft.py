"""mx.fft beyond the op database: derivatives of every differentiable entry (against
upstream's vjp/jvp and against float32 differences, exact for these linear maps), argument
types and errors, streams, and the GPU path."""

import zlib

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import assert_close, assert_same, np_of, to_ember, to_mlx
from tests.opdb import OPS
from tests.opdb.fft import GRADS

_BY_NAME = {op.name: op for op in OPS}
_GRAD_OPS = [_BY_NAME[n] for n in GRADS]


def _listify(r):
    return list(r) if isinstance(r, (list, tuple)) else [r]


def _samples(op, salt):
    rng = np.random.default_rng(zlib.crc32((op.name + salt).encode()))
    return rng, [s for s in op.samples(rng, "float32")]


def _partial(op, mod, sample, conv):
    fixed = [conv(x) for x in sample]
    return lambda x: _listify(op.fn(mod, x, *fixed[1:]))


@pytest.mark.parametrize("op", [op for op in _GRAD_OPS if GRADS[op.name]], ids=repr)
def test_vjp_jvp_match_upstream(op):
    rng, samples = _samples(op, "grad")
    for sample in samples:
        x = np.asarray(sample[0])
        f_m, f_e = _partial(op, mlx, sample, to_mlx), _partial(op, mx, sample, to_ember)
        outs = f_m(mlx.array(x))
        cots = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]
        tan = rng.standard_normal(x.shape).astype(np.float32)
        if x.dtype.kind == "c":
            tan = (tan + 1j * rng.standard_normal(x.shape)).astype(np.complex64)
        _, vm = mlx.vjp(f_m, [mlx.array(x)], [mlx.array(c) for c in cots])
        _, ve = mx.vjp(f_e, [mx.array(x)], [mx.array(c) for c in cots])
        assert_same(ve, vm, rtol=1e-4, msg=f"{op.name} vjp")
        _, jm = mlx.jvp(f_m, [mlx.array(x)], [mlx.array(tan)])
        _, je = mx.jvp(f_e, [mx.array(x)], [mx.array(tan)])
        assert_same(je, jm, rtol=1e-4, msg=f"{op.name} jvp")


def _real_dot(a, b):
    return float(np.sum(np.real(np.conj(a) * b)))


@pytest.mark.parametrize("op", _GRAD_OPS, ids=repr)
def test_grads_match_differences(op):
    # the transforms are linear (over the reals), so a wide central difference is exact
    rng, samples = _samples(op, "fd")
    h = 0.5
    for sample in samples:
        x = np.asarray(sample[0])
        f = _partial(op, mx, sample, to_ember)
        tan = rng.standard_normal(x.shape).astype(x.dtype)
        outs, jv = mx.jvp(f, [mx.array(x)], [mx.array(tan)])
        plus, minus = f(mx.array(x + h * tan)), f(mx.array(x - h * tan))
        for j, p, m in zip(jv, plus, minus):
            fd = (np_of(p) - np_of(m)) / (2 * h)
            assert_close(np_of(j), fd, "fd", rtol=1e-4, msg=f"{op.name} jvp vs fd")
        cots = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]
        cots = [c + 1j * rng.standard_normal(c.shape) if o.dtype == mx.complex64 else c
                for c, o in zip(cots, outs)]
        cots = [c.astype(np.complex64) if c.dtype.kind == "c" else c for c in cots]
        _, vj = mx.vjp(f, [mx.array(x)], [mx.array(c) for c in cots])
        lhs = sum(_real_dot(c, np_of(j)) for c, j in zip(cots, jv))
        rhs = _real_dot(np_of(vj[0]), tan)
        assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs)), f"{op.name}: <c, Jt> != <J^T c, t>"


def test_grad_of_real_loss():
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)

    def loss(m):
        return lambda a: (m.sum(m.abs(m.fft.rfft2(a, norm="ortho")) ** 2) +
                          m.sum(m.real(m.fft.ifft(a, n=8)) * 2.0))
    assert_same(mx.grad(loss(mx))(mx.array(x)), mlx.grad(loss(mlx))(mlx.array(x)), rtol=1e-4)


def _raises_like(f):
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


@pytest.mark.parametrize("call", [
    lambda m: m.fft.fft(np.ones(4, np.float32)),
    lambda m: m.fft.fft([1.0, 2.0]),
    lambda m: m.fft.fft(1.0),
    lambda m: m.fft.fft(m.ones(4), n=2.0),
    lambda m: m.fft.fft(m.ones(4), axis=0.0),
    lambda m: m.fft.fftn(m.ones((2, 2)), axes=1),
    lambda m: m.fft.fft(m.ones(4), axis=1),
    lambda m: m.fft.fft(m.ones(4), axis=-2),
    lambda m: m.fft.fft(m.ones(4), n=0),
    lambda m: m.fft.fft(m.ones(4), n=-2),
    lambda m: m.fft.fftn(m.ones((2, 2)), s=(-1,), axes=(5,)),
    lambda m: m.fft.fftn(m.ones((2, 2)), s=(2,), axes=(0, 0)),
    lambda m: m.fft.fftn(m.ones((2, 2)), s=(-1, 2), axes=(0, 0)),
    lambda m: m.fft.fft(m.ones(4), axis=5, norm="x"),
    lambda m: m.fft.fftshift(m.ones(4), axes=1.0),
    lambda m: m.fft.fftshift(m.ones((2, 2)), axes=-3),
    lambda m: m.fft.fftfreq(4.0),
    lambda m: m.fft.rfftfreq(4, "x"),
    lambda m: m.fft.stft(np.ones(30, np.float32), n_fft=8),
    lambda m: m.fft.stft(m.ones(30), n_fft=8, window=np.ones(8, np.float32)),
    lambda m: m.fft.stft(m.ones(30), n_fft=8, center=1),
    lambda m: m.fft.stft(m.ones(30), n_fft=8, window=m.ones((2, 4))),
    lambda m: m.fft.stft(m.ones(30), n_fft=8, window=m.ones(10)),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), n_fft=8, window=m.ones((2, 4))),
    lambda m: m.fft.istft(m.ones((1, 4), m.complex64)),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), hop_length=-1),
])
def test_errors(call):
    _raises_like(call)


@pytest.mark.parametrize("call", [
    lambda m: m.fft.fft(m.arange(6.0), None, -1, "ortho", m.cpu),
    lambda m: m.fft.rfftn(m.ones((2, 3, 4)), None, None, "forward", m.cpu),
    lambda m: m.fft.fft2(m.arange(12.0).reshape(3, 4), axes=None),
    lambda m: m.fft.fft2(m.arange(12.0).reshape(3, 4), axes=[]),
    lambda m: m.fft.fft(m.arange(6.0), n=True),
    lambda m: m.fft.fftfreq(True),
    lambda m: m.fft.fftfreq(5, 2),
    lambda m: m.fft.fftfreq(6, d=0.25, stream=m.cpu),
    lambda m: m.fft.fftshift(m.arange(12).reshape(3, 4), axes=[]),
    lambda m: m.fft.fftshift(m.arange(12).reshape(3, 4), axes=(0, 0, 1)),
    lambda m: m.fft.stft(m.arange(30.0), n_fft=8, win_length=0),
    lambda m: m.fft.stft(m.arange(30.0), n_fft=8, window=m.ones(8, m.int32)),
    lambda m: m.fft.stft(m.arange(30.0), n_fft=8, window=m.array([1j] * 6)),
    lambda m: m.fft.stft(m.arange(30.0).astype(m.complex64), n_fft=8, onesided=True),
    lambda m: m.fft.stft(m.ones((0, 20)), n_fft=8),
    lambda m: m.fft.stft(m.ones((2, 3, 20)), n_fft=8, hop_length=3),
    lambda m: m.fft.stft(m.sin(m.arange(64.0)).reshape(2, 32)),
    lambda m: m.fft.istft(m.fft.stft(m.arange(30.0), n_fft=8, hop_length=2),
                          n_fft=8, hop_length=2, window=m.zeros(8)),
    lambda m: m.fft.istft(m.fft.stft(m.arange(30.0), n_fft=8, hop_length=8, center=False),
                          n_fft=8, hop_length=8, center=False,
                          window=m.array([1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1])),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), n_fft=8, length=0),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), n_fft=8, length=-1),
    lambda m: m.fft.istft(m.ones((5, 1), m.complex64), n_fft=8),
    lambda m: m.fft.istft(m.ones((0, 5, 4), m.complex64), n_fft=8),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), n_fft=6),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), onesided=False),
    lambda m: m.fft.istft(m.ones((5, 4), m.complex64), n_fft=8, window=m.ones(8, m.int32)),
])
def test_argument_variants(call):
    assert_same(call(mx), call(mlx), rtol=1e-4)


def test_round_trip():
    x = np.random.default_rng(3).standard_normal((2, 50)).astype(np.float32)
    s = mx.fft.stft(mx.array(x), n_fft=16, hop_length=4, window=mx.hanning(16))
    y = mx.fft.istft(s, n_fft=16, hop_length=4, window=mx.hanning(16), length=50)
    np.testing.assert_allclose(np.array(y), x, atol=1e-5)
    z = mx.fft.irfftn(mx.fft.rfftn(mx.array(x)), s=x.shape, axes=(0, 1))
    np.testing.assert_allclose(np.array(z), x, atol=1e-5)


def test_vmap_in_axes():
    x = np.random.default_rng(4).standard_normal((5, 3, 4)).astype(np.float32)
    f = lambda m: m.vmap(lambda a: m.fft.rfft(a, n=6, axis=0), in_axes=1, out_axes=2)
    assert_same(f(mx)(mx.array(x)), f(mlx)(mlx.array(x)), rtol=1e-5)


@pytest.mark.gpu
def test_gpu_matches_cpu():
    if not mx.is_available(mx.gpu):
        pytest.skip("no CUDA device")
    x = mx.array(np.random.default_rng(5).standard_normal((3, 40)).astype(np.float32))
    for f in (lambda a, s: mx.fft.fft(a, stream=s), lambda a, s: mx.fft.irfft(a, n=9, stream=s),
              lambda a, s: mx.fft.rfft2(a, stream=s), lambda a, s: mx.fft.stft(a, n_fft=8,
                                                                               stream=s)):
        np.testing.assert_allclose(np.array(f(x, mx.gpu)), np.array(f(x, mx.cpu)), rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.parametrize("name", ["fft2", "ifft2", "rfft2", "irfft2", "fftn", "irfftn"])
def test_s_without_axes_names_the_op(name):
    f = lambda m: getattr(m.fft, name)(m.ones((3, 4)), s=(2, 2), axes=None)
    with pytest.raises(ValueError) as want:
        f(mlx)
    with pytest.raises(ValueError) as got:
        f(mx)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("call", [
    lambda m: m.fft.fft(m.ones(4), norm=None),
    lambda m: m.fft.irfftn(m.ones((2, 4)), norm=1),
    lambda m: m.fft.stft(m.ones(30), n_fft=8, norm=None),
])
def test_norm_must_be_a_str(call):
    _raises_like(call)
