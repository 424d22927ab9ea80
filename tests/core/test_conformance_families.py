"""Parity with upstream MLX for mx.fft, mx.linalg, mx.random and the sort, scan and stats
ops on the edges a conformance sweep found: the exact TypeError upstream's binding raises
for an argument it does not convert (and that it raises before any other check), the
order of upstream's checks, and a few results. Every expectation is upstream's own."""

import numpy as np
import pytest

from tests.helpers import check_like_upstream

_check = check_like_upstream

_X = np.arange(12, dtype=np.float32).reshape(3, 4) / 7


def _x(m):
    return m.array(_X)


# -- mx.fft ---------------------------------------------------------------------------

_FFT = {
    # a 0-d input is refused even when no axis is transformed, and (with s given) before
    # its axes are checked
    "fftn 0-d axes=[]": lambda m: m.fft.fftn(m.array(1.0), axes=[]),
    "rfft2 0-d axes=[]": lambda m: m.fft.rfft2(m.array(1.0), axes=[]),
    "irfftn 0-d axes=[]": lambda m: m.fft.irfftn(m.array(1.0), axes=[]),
    "fftn 0-d s and axis": lambda m: m.fft.fftn(m.array(1.0), s=[2], axes=[0]),
    # d converts like a Python float: bools, one-element arrays, numpy scalars
    "fftfreq d=True": lambda m: m.fft.fftfreq(4, True),
    "fftfreq d=array": lambda m: m.fft.fftfreq(4, m.array(2.0)),
    "rfftfreq d=1-element array": lambda m: m.fft.rfftfreq(5, m.array([0.5])),
    "rfftfreq d=np.float32": lambda m: m.fft.rfftfreq(5, np.float32(2)),
    # the binding's refusals
    "fftfreq d=2-element array": lambda m: m.fft.fftfreq(4, m.array([1.0, 2.0])),
    "fftfreq d=str": lambda m: m.fft.fftfreq(4, "2"),
    "fftfreq n=float": lambda m: m.fft.fftfreq(4.0),
    "fft list": lambda m: m.fft.fft([1.0, 2.0]),
    "ifft ndarray": lambda m: m.fft.ifft(np.ones(4, np.float32)),
    "rfft norm=int": lambda m: m.fft.rfft(_x(m), norm=1),
    "irfft n=str": lambda m: m.fft.irfft(_x(m), n="a"),
    "fft axis=None": lambda m: m.fft.fft(_x(m), axis=None),
    "fft2 s of floats": lambda m: m.fft.fft2(_x(m), s=(2.0, 2)),
    "ifftn axes=str": lambda m: m.fft.ifftn(_x(m), axes="ab"),
    "rfftn scalar": lambda m: m.fft.rfftn(1.0),
    "fftshift axes=str": lambda m: m.fft.fftshift(_x(m), axes="a"),
    "ifftshift list": lambda m: m.fft.ifftshift([1, 2, 3]),
    "stft center=int": lambda m: m.fft.stft(m.ones((16,)), n_fft=8, center=1),
    "stft pad_mode=int": lambda m: m.fft.stft(m.ones((16,)), n_fft=8, pad_mode=1),
    "stft onesided=int": lambda m: m.fft.stft(m.ones((16,)), n_fft=8, onesided=1),
    "istft center=None": lambda m: m.fft.istft(m.ones((5, 3)), center=None),
    "istft length=float": lambda m: m.fft.istft(m.ones((5, 3)), length=2.0),
}


@pytest.mark.parametrize("case", list(_FFT))
def test_fft(case):
    _check(_FFT[case])


# -- mx.linalg ------------------------------------------------------------------------

_SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]], np.float32)
_A3 = np.array([1.0, -2.0, 0.5], np.float32)
_B23 = np.array([[0.5, 1.5, -1.0], [2.0, 0.25, 3.0]], np.float32)
_B33 = np.arange(9, dtype=np.float32).reshape(3, 3) / 5 - 0.5


def _spd(m):
    return m.array(_SPD)


_LINALG = {
    # cross broadcasts the whole (right-aligned) shapes, then takes the product along axis
    "cross (3,) x (3,3) axis=0": lambda m: m.linalg.cross(m.array(_A3), m.array(_B33), axis=0),
    "cross (3,) x (2,3) axis=0": lambda m: m.linalg.cross(m.array(_A3), m.array(_B23), axis=0),
    "cross (2,3) x (3,) axis=0": lambda m: m.linalg.cross(m.array(_B23), m.array(_A3), axis=0),
    # the first input's axis size is checked before the second input's axis
    "cross size before axis": lambda m: m.linalg.cross(m.ones((4, 3)), m.ones((3,)), axis=-2),
    # the binding's refusals
    "inv list": lambda m: m.linalg.inv(_SPD.tolist()),
    "tri_inv ndarray": lambda m: m.linalg.tri_inv(_SPD),
    "cholesky upper=int": lambda m: m.linalg.cholesky(_spd(m), upper=1),
    "cholesky_inv upper=None": lambda m: m.linalg.cholesky_inv(_spd(m), upper=None),
    "svd compute_uv=str": lambda m: m.linalg.svd(_spd(m), compute_uv="a"),
    "eigh UPLO=int": lambda m: m.linalg.eigh(_spd(m), UPLO=1),
    "eigvalsh UPLO=None": lambda m: m.linalg.eigvalsh(_spd(m), UPLO=None),
    "eigvals list": lambda m: m.linalg.eigvals(_SPD.tolist()),
    "qr ndarray": lambda m: m.linalg.qr(_SPD),
    "lu_factor list": lambda m: m.linalg.lu_factor(_SPD.tolist()),
    "slogdet scalar": lambda m: m.linalg.slogdet(1.0),
    "solve list b": lambda m: m.linalg.solve(_spd(m), [1.0, 2.0, 3.0]),
    "solve_triangular upper=float": lambda m: m.linalg.solve_triangular(
        _spd(m), m.ones((3,)), upper=1.0),
    "cross axis=float": lambda m: m.linalg.cross(m.array(_A3), m.array(_A3), axis=1.0),
    "cross list": lambda m: m.linalg.cross(_A3.tolist(), m.array(_A3)),
    "norm axis=float": lambda m: m.linalg.norm(_spd(m), axis=1.0),
    "norm axis=str": lambda m: m.linalg.norm(_spd(m), axis="a"),
    "norm ord=list": lambda m: m.linalg.norm(_spd(m), ord=[1]),
    "norm keepdims=int": lambda m: m.linalg.norm(_spd(m), keepdims=1),
}


@pytest.mark.parametrize("case", list(_LINALG))
def test_linalg(case):
    _check(_LINALG[case])


# -- mx.random ------------------------------------------------------------------------

def _k(m):
    return m.random.key(7)


_RANDOM = {
    # a complex scalar parameter of a real distribution keeps its real part
    "uniform high complex": lambda m: m.random.uniform(0, 2 + 1j, [3], key=_k(m)),
    "uniform low complex": lambda m: m.random.uniform(-1 + 3j, 1.0, [2, 3], key=_k(m)),
    "normal loc complex": lambda m: m.random.normal([3], loc=1 + 1j, key=_k(m)),
    "normal scale complex": lambda m: m.random.normal([3], scale=2 - 1j, key=_k(m)),
    "truncated_normal complex bound": lambda m: m.random.truncated_normal(
        -1, 1 + 1j, [4], key=_k(m)),
    # the mean keeps its dtype
    "multivariate_normal float64 mean": lambda m: m.random.multivariate_normal(
        m.zeros(2, m.float64), m.eye(2), key=_k(m)),
    # shape and num_samples together are refused before the axis is checked
    "categorical both before axis": lambda m: m.random.categorical(
        m.zeros((2, 3)), axis=-3, shape=[2], num_samples=2, key=_k(m)),
    # a sequence where `scalar | array` is expected fails converting, after the binding
    "uniform low list": lambda m: m.random.uniform([0.0, 1.0], 2.0, key=_k(m)),
    "randint low tuple": lambda m: m.random.randint((0, 1), 5, key=_k(m)),
    "bernoulli p list": lambda m: m.random.bernoulli([0.3, 0.9], key=_k(m)),
    "truncated_normal list": lambda m: m.random.truncated_normal([0, 1], 5, key=_k(m)),
    # the binding's refusals
    "uniform low None": lambda m: m.random.uniform(None, key=_k(m)),
    "bernoulli p None": lambda m: m.random.bernoulli(None, key=_k(m)),
    "uniform key=list": lambda m: m.random.uniform(shape=[2], key=[0, 7]),
    "normal key=int": lambda m: m.random.normal([2], key=7),
    "gumbel key=int": lambda m: m.random.gumbel([2], key=7),
    "randint key=list": lambda m: m.random.randint(0, 5, [2], key=[0, 7]),
    "truncated_normal key=int": lambda m: m.random.truncated_normal(-1, 1, [2], key=7),
    "categorical key=int": lambda m: m.random.categorical(m.zeros(3), key=7),
    "permutation key=list": lambda m: m.random.permutation(4, key=[0, 7]),
    "multivariate_normal key=int": lambda m: m.random.multivariate_normal(
        m.zeros(2), m.eye(2), key=7),
    "uniform dtype=int": lambda m: m.random.uniform(shape=[2], dtype=1, key=_k(m)),
    "laplace dtype=int": lambda m: m.random.laplace([2], dtype=1, key=_k(m)),
    "laplace loc array": lambda m: m.random.laplace([2], loc=m.array([1.0, 2.0]), key=_k(m)),
    "laplace scale complex": lambda m: m.random.laplace([2], scale=1j, key=_k(m)),
    "split num=float": lambda m: m.random.split(_k(m), 2.0),
    "split num=None": lambda m: m.random.split(_k(m), None),
    "categorical axis=float": lambda m: m.random.categorical(m.zeros((2, 3)), axis=1.0,
                                                             key=_k(m)),
    "categorical axis=float with both": lambda m: m.random.categorical(
        m.zeros((2, 3)), axis=1.0, shape=[2], num_samples=2, key=_k(m)),
    "categorical axis=None": lambda m: m.random.categorical(m.zeros(3), axis=None, key=_k(m)),
    "categorical num_samples=float": lambda m: m.random.categorical(
        m.zeros(3), num_samples=2.0, key=_k(m)),
    "permutation axis=float": lambda m: m.random.permutation(m.arange(4), axis=1.0,
                                                             key=_k(m)),
    "permutation axis=None": lambda m: m.random.permutation(m.arange(4), axis=None,
                                                            key=_k(m)),
    "multivariate_normal list mean": lambda m: m.random.multivariate_normal(
        [0.0, 0.0], m.eye(2), key=_k(m)),
    "multivariate_normal list cov": lambda m: m.random.multivariate_normal(
        m.zeros(2), [[1.0, 0.0], [0.0, 1.0]], key=_k(m)),
}


@pytest.mark.parametrize("case", list(_RANDOM))
def test_random(case):
    _check(_RANDOM[case])


# -- sort, scans, stats ---------------------------------------------------------------

_OPS = {
    "sort list": lambda m: m.sort([3, 1, 2]),
    "argsort axis=float": lambda m: m.argsort(_x(m), axis=1.0),
    "partition kth=None": lambda m: m.partition(_x(m), None),
    "argpartition list": lambda m: m.argpartition([3, 1, 2], 1),
    # a kth or k the binding refuses is refused before the axis is checked
    "partition kth=float, bad axis": lambda m: m.partition(_x(m), 1.0, axis=3),
    "argpartition 0-d kth=float": lambda m: m.argpartition(m.array(1.0), 1.0),
    "topk k=float, bad axis": lambda m: m.topk(_x(m), 1.0, axis=3),
    "cumsum axis=float": lambda m: m.cumsum(_x(m), axis=1.0),
    "cumprod axis=tuple": lambda m: m.cumprod(_x(m), axis=(0,)),
    "cummax reverse=int": lambda m: m.cummax(_x(m), reverse=1),
    "cummin inclusive=None": lambda m: m.cummin(_x(m), inclusive=None),
    "logcumsumexp axis=float": lambda m: m.logcumsumexp(_x(m), axis=1.0),
    "cumsum dtype=int": lambda m: m.cumsum(_x(m), dtype=1),
    "median keepdims=int": lambda m: m.median(_x(m), keepdims=1),
    "median axis=float": lambda m: m.median(_x(m), axis=1.0),
    "median axis=str": lambda m: m.median(_x(m), axis="a"),
    "count_nonzero axis=float": lambda m: m.count_nonzero(_x(m), axis=1.0),
    "count_nonzero keepdims=int": lambda m: m.count_nonzero(_x(m), keepdims=1),
    "diff n=True": lambda m: m.diff(_x(m), n=True),
    "diff axis=True": lambda m: m.diff(_x(m), axis=True),
    "diff n=True, bad axis": lambda m: m.diff(_x(m), n=True, axis=3),
    "unique fill list": lambda m: m.unique(m.array([1, 2]), 3, fill_value=[1]),
    "unique fill str before size": lambda m: m.unique(m.array([1, 2]), -1, fill_value="a"),
}


@pytest.mark.parametrize("case", list(_OPS))
def test_sort_scan_stats(case):
    _check(_OPS[case])
