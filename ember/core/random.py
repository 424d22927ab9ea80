"""mx.random: threefry-keyed random number generation (upstream's scheme, bit for bit).

Every sampler is a composition of ordinary ops over one primitive, `RandomBits`, so the
same key gives upstream's bits, and derivatives with respect to the distribution parameters
(loc, scale, low, high) come from those ops. On the host the first ops over the bits (and
bounds given as Python numbers) run in one node (`Uniform` and its kin): the same numbers,
fewer nodes at small sizes. Calls without `key=` take the next subkey of a per-thread
global state: (state, subkey) = split(state), split on Python ints while the state is
known there.
"""

import math
import threading
import time

import numpy as np
import torch

from ember.core import dtypes as D
from ember.core import ops as O
from ember.core._backend.kernels_random import split_words
from ember.core.array import array, const, leaf, node
from ember.core.ops._base import binding_error, broadcast_pair, index_arg, resolve, to_device
from ember.core.primitives.random import (
    Bernoulli,
    CovSqrt,
    Gumbel,
    Laplace,
    RandomBits,
    SearchSorted,
    StandardNormal,
    Uniform,
)

__all__ = ["seed", "key", "split", "uniform", "normal", "multivariate_normal", "randint",
           "bernoulli", "truncated_normal", "gumbel", "categorical", "laplace", "permutation"]

_F32 = D.float32
_U32 = D.uint32
_BITS_DTYPE = {4: D.uint32, 2: D.uint16, 1: D.uint8}
_SQRT2 = math.sqrt(2.0)
_U32_MAX = 4294967295.0                # float32(2^32 - 1) rounds to 2^32
_BERNOULLI_SCALE = 4294967808.0        # nextafter(float32(2^32 - 1), +inf)
_NEG_ONE_UP = -0.99999994039535522     # nextafter(-1, 0) in float32
_OPEN_RANGE = 2.0                      # float32(1 - nextafter(-1, 0)) rounds to 2
# the largest value below 1 in each floating dtype (all exact in float32)
_BELOW_ONE = {D.float32: 1.0 - 2.0 ** -24, D.float16: 1.0 - 2.0 ** -11,
              D.bfloat16: 1.0 - 2.0 ** -8}
_M64 = (1 << 64) - 1
_I32 = 1 << 31


def _fmt(shape):
    return "(" + ",".join(str(d) for d in shape) + ")"


_KEY_STREAM = "key: array | None = None, stream: StreamOrDevice = None) -> array"
_DT = "dtype: Dtype | None = float32, "
# upstream's signatures, quoted by its binding when an argument (a shape) fails to convert
_SIGS = {
    "uniform": "uniform(low: scalar | array = 0, high: scalar | array = 1, shape: "
               "Sequence[int] = [], " + _DT + _KEY_STREAM,
    "normal": "normal(shape: Sequence[int] = [], " + _DT + "loc: scalar | array | None = "
              "None, scale: scalar | array | None = None, " + _KEY_STREAM,
    "randint": "randint(low: scalar | array, high: scalar | array, shape: Sequence[int] = [], "
               "dtype: Dtype | None = int32, " + _KEY_STREAM,
    "bernoulli": "bernoulli(p: scalar | array = 0.5, shape: Sequence[int] | None = None, "
                 + _KEY_STREAM,
    "truncated_normal": "truncated_normal(lower: scalar | array, upper: scalar | array, "
                        "shape: Sequence[int] | None = None, " + _DT + _KEY_STREAM,
    "gumbel": "gumbel(shape: Sequence[int] = [], " + _DT + _KEY_STREAM,
    "laplace": "laplace(shape: Sequence[int] = [], " + _DT + "loc: float = 0.0, scale: float "
               "= 1.0, " + _KEY_STREAM,
    "categorical": "categorical(logits: array, axis: int = -1, shape: Sequence[int] | None = "
                   "None, num_samples: int | None = None, " + _KEY_STREAM,
    "multivariate_normal": "multivariate_normal(mean: array, cov: array, shape: Sequence[int] "
                           "= [], " + _DT + _KEY_STREAM,
    "split": "split(key: array, num: int = 2, stream: StreamOrDevice = None) -> array",
    "permutation": "permutation(x: int | array, axis: int = 0, " + _KEY_STREAM,
}


def _refuse(fn):
    return binding_error(fn, _SIGS[fn])


def _key_arg(k, fn):
    if k is not None and not isinstance(k, array):
        raise _refuse(fn)


def _int_arg(v, fn):
    """An int as upstream's binding takes it (bools and __index__ objects too, no floats,
    nothing outside int32)."""
    v = index_arg(v, _refuse, fn)
    if not -_I32 <= v < _I32:
        raise _refuse(fn)
    return v


def _float_arg(v, fn):
    """A float as upstream's binding takes it: whatever float() takes but text and complex."""
    if isinstance(v, (str, bytes, complex)):
        raise _refuse(fn)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise _refuse(fn) from None


def _scalar_or_array(x, fn, optional=False):
    """A `scalar | array` argument's binding check: only None is refused there."""
    if x is None and not optional:
        raise _refuse(fn)


def _shape_arg(shape, fn):
    """A shape given as a sequence of ints (a bare int is rejected, as upstream)."""
    if isinstance(shape, tuple) and all(type(d) is int and -_I32 <= d < _I32 for d in shape):
        return shape
    # (a sequence: sets, mappings and iterators are refused like text)
    if isinstance(shape, (str, bytes, dict)) or not hasattr(type(shape), "__getitem__") or (
            isinstance(shape, array) and shape.ndim == 0):
        raise binding_error(fn, _SIGS[fn])
    out = []
    for d in shape:
        if isinstance(d, float) or not hasattr(d, "__index__"):
            raise binding_error(fn, _SIGS[fn])
        try:
            d = d.__index__()
        except TypeError:
            raise binding_error(fn, _SIGS[fn]) from None
        if not -_I32 <= d < _I32:
            raise OverflowError(f"Integer value {d} is outside the supported range "
                                f"[-2147483648, 2147483647].")
        out.append(int(d))
    return tuple(out)


def _as_param(x, s):
    """A `scalar | array` argument as an array: numbers and numeric arrays (numpy's too),
    not sequences, whose conversion upstream refuses."""
    if isinstance(x, array):
        return to_device(x, s) if x._stream.device is not s.device else x
    if not isinstance(x, (bool, int, float, complex, np.generic, np.ndarray)):
        raise ValueError(f"Invalid type {type(x).__name__} received in array initialization.")
    return O.as_array(x, s)


def _param(x, dtype, s):
    """x (Python scalar or array-like) as an array of `dtype` on stream s (a complex
    scalar keeps its real part, as upstream's cast does)."""
    if isinstance(x, (bool, int, float)):
        return const(x, dtype, s)
    if isinstance(x, complex) and dtype.kind != "c":
        return const(x.real, dtype, s)
    x = _as_param(x, s)
    return x if x._dtype is dtype else O.astype(x, dtype, s)


def _dtype_arg(dtype, default, fn):
    if dtype is None:
        return default
    if not isinstance(dtype, D.Dtype):
        raise _refuse(fn)
    return dtype


# -- keys and the global state --------------------------------------------------------

def _seed_int(v, fn):
    """A seed: an int in [0, 2^64) (pybind's uint64 rule, so the error is its TypeError)."""
    ok = not isinstance(v, float) and hasattr(v, "__index__") and not (
        isinstance(v, array) and v.ndim != 0)
    if ok:
        v = int(v.__index__())
        if 0 <= v <= _M64:
            return v
    ret = "None" if fn == "seed" else "mlx.core.array"
    raise binding_error(fn, f"{fn}(seed: int) -> {ret}")


def _key_words(v):
    return (v >> 32, v & 0xFFFFFFFF)


def key(seed):
    """Get a PRNG key from a seed.

    Args:
        seed (int): Seed for the PRNG.

    Returns:
        array: The PRNG key array.
    """
    return _key_array(_key_words(_seed_int(seed, "key")), resolve(None))


def _key_array(words, s):
    t = torch.from_numpy(np.array(words, np.int64))
    return leaf(t.to(s.tdevice) if s.is_gpu else t, _U32, s)


class _Local(threading.local):
    # The global key, as an array or, while it is known on the host, as two Python ints
    # (`words`): splitting those costs no node and no kernel. The array is then made on
    # demand (`state[0]`, compile's state inputs).
    key = None
    words = None


_local = _Local()


def _state_key():
    k = _local.key
    if k is None:
        k = _local.key = _key_array(_state_words(), resolve(None))
    return k


def _state_words():
    """The global key as two ints, or None while it is a lazy array (a compiled function's
    output, or its placeholder while tracing)."""
    w = _local.words
    if w is None:
        k = _local.key
        if k is None:  # each thread starts from the clock (milliseconds), as upstream
            w = _local.words = _key_words(time.time_ns() // 1_000_000)
        elif k._data is not None and not k._stream.is_gpu and k._shape == (2,):
            w = _local.words = tuple(k._data.tolist())
    return w


def _set_state(k):
    """Replace this thread's global key (for transforms that carry the state, e.g. compile)."""
    _local.key = k
    _local.words = None


def seed(seed):
    """Seed the global PRNG.

    Args:
        seed (int): Seed for the global PRNG.
    """
    _local.words = _key_words(_seed_int(seed, "seed"))
    _local.key = None


class _RandomState:
    """The global PRNG state: a one-element sequence holding this thread's key, so that
    transforms can list it among their inputs and outputs."""

    __slots__ = ()

    def __len__(self):
        return 1

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("__getitem__(): incompatible function arguments. The following "
                            "argument types are supported:\n    1. __getitem__(self, index: "
                            "int) -> object")
        if index not in (0, -1):
            raise IndexError("random state index out of range")
        return _state_key()

    def __iter__(self):
        yield _state_key()


state = _RandomState()


def _next_key(s):
    w = _state_words()
    if w is None:
        st = _local.key
        if st._stream.device is not s.device:
            st = to_device(st, s)
        pair = _bits_node(st, (2, 2), 4, s)
        _local.key = pair[0]
        return pair[1]
    _local.words, sub = split_words(*w)
    _local.key = None
    return _key_array(sub, s)


def _taken(k, s):
    """`k`, or the next global key: upstream takes that before checking the arguments, so
    a refused call still advances the state."""
    return _next_key(s) if k is None else k


def _key(k, s):
    """The key to draw with: `k` checked, or the next subkey of the global state."""
    if k is None:
        return _next_key(s)
    if k._dtype is not _U32:
        raise ValueError(f"[bits] Expected key type uint32 but received {k._dtype.name}.")
    if k._shape != (2,):
        raise ValueError(f"[bits] Expected key shape (2) but received {_fmt(k._shape)}.")
    if k._stream.device is not s.device:
        k = to_device(k, s)
    return k


def _bits_node(keys, shape, width, s):
    return node(keys._shape[:-1] + shape, _BITS_DTYPE[width], RandomBits(shape, width),
                (keys,), s)


def _key_for_bits(shape, k, s):
    for d in shape:
        if d < 0:
            raise ValueError("[bits] Negative dimensions not allowed.")
    return _key(k, s)


def _bits(shape, width, k, s):
    return _bits_node(_key_for_bits(shape, k, s), shape, width, s)


def _normal_of_bits(bits, s):
    """float32 N(0, 1) samples from uint32 words: what `StandardNormal` computes."""
    u = O.divide(O.astype(bits, _F32, s), const(_U32_MAX, _F32, s), s)
    u = O.minimum(u, const(_BELOW_ONE[_F32], _F32, s), s)
    u = O.add(const(_NEG_ONE_UP, _F32, s), O.multiply(const(_OPEN_RANGE, _F32, s), u, s), s)
    return O.multiply(const(_SQRT2, _F32, s), O.erfinv(u, s), s)


def _unit_node(keys, prim, s):
    """The samples of host primitive `prim` (Uniform and its kin, Bernoulli) from keys."""
    return node(keys._shape[:-1] + prim.shape, prim.dtype, prim, (keys,), s)


def _searchsorted(seq, values, right):
    return node(values._shape, D.int64, SearchSorted(right), (seq, values), values._stream)


def _cov_sqrt(cov):
    return node(cov._shape, cov._dtype, CovSqrt(), (cov,), cov._stream)


def split(key, num=2, stream=None):
    """Split a PRNG key into sub keys.

    Args:
        key (array): Input key to split.
        num (int, optional): Number of sub keys. Default: ``2``.

    Returns:
        array: The array of sub keys with ``num`` as its first dimension.
    """
    if not isinstance(key, array):
        raise _refuse("split")
    num = _int_arg(num, "split")
    s = resolve(stream)
    return _bits((num, 2), 4, key, s)


# -- uniform and the distributions built on it ------------------------------------------

def _check_uniform_dtype(dtype):
    if dtype.kind != "f":
        raise ValueError("[uniform] Can only generate uniform numbers with real floating "
                         "point type.")


def _unit(k, shape, dtype, s):
    """Uniform samples in [0, 1) of `dtype` from the bits of key k."""
    below = _BELOW_ONE.get(dtype)
    if below is None:
        raise RuntimeError("[uniform] Unsupported type.")
    if not s.is_gpu:
        return _unit_node(_key_for_bits(shape, k, s), Uniform(shape, dtype), s)
    u = O.astype(_bits(shape, 4, k, s), _F32, s)
    u = O.divide(u, const(_U32_MAX, _F32, s), s)
    u = O.minimum(u, const(below, _F32, s), s)
    return O.astype(u, dtype, s)


def _host_range(lo, hi, s):
    """(float32 lo, float32 hi - lo) of bounds given as Python numbers, for samples made
    on the host; None otherwise (or for bounds so large that lo + (hi - lo) · u could
    overflow: those take the ops)."""
    if s.is_gpu:
        return None
    for v in (lo, hi):
        t = type(v)
        if not (t is int and -_I32 <= v < _I32 or t is float and abs(v) < 2.0 ** 100):
            return None
    lo32 = np.float32(lo)
    return float(lo32), float(np.float32(hi) - lo32)


def _scaled_unit(k, shape, lo, span, s):
    """float32 lo + span · u, u uniform in [0, 1), on the host in one node."""
    return _unit_node(_key_for_bits(shape, k, s), Uniform(shape, _F32, lo, span), s)


def _uniform(lo, hi, shape, dtype, k, s, rng=None):
    if rng is None:
        rng = O.subtract(hi, lo, s)
    out = broadcast_pair(shape, rng._shape, "broadcast_shapes")
    if out != shape:
        raise ValueError(f"[uniform] Cannot generate random values of shape {_fmt(shape)} "
                         f"from broadcasted shape {_fmt(out)}.")
    u = _unit(k, shape, dtype, s)
    return O.add(lo, O.multiply(rng, u, s), s)


def uniform(low=0, high=1, shape=[], dtype=D.float32, key=None, stream=None):  # noqa: B006
    """Generate uniformly distributed random numbers.

    The values are sampled uniformly in the half-open interval ``[low, high)``.
    The lower and upper bound can be scalars or arrays and must be
    broadcastable to ``shape``.

    Args:
        low (scalar or array, optional): Lower bound of the distribution. Default: ``0``.
        high (scalar or array, optional): Upper bound of the distribution. Default: ``1``.
        shape (list(int), optional): Shape of the output. Default:``()``.
        dtype (Dtype, optional): Type of the output. Default: ``float32``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The output array random values.
    """
    shape = _shape_arg(shape, "uniform")
    dtype = _dtype_arg(dtype, _F32, "uniform")
    _scalar_or_array(low, "uniform")
    _scalar_or_array(high, "uniform")
    _key_arg(key, "uniform")
    s = resolve(stream)
    key = _taken(key, s)
    _check_uniform_dtype(dtype)
    if type(low) in (int, float) and type(high) in (int, float) and low == 0 and high == 1:
        return _unit(key, shape, dtype, s)  # (0 + 1 · u is u, bit for bit)
    r = _host_range(low, high, s) if dtype is _F32 else None
    if r is not None:
        return _scaled_unit(key, shape, *r, s)
    lo = _param(low, dtype, s)
    hi = _param(high, dtype, s)
    return _uniform(lo, hi, shape, dtype, key, s)


def _open_unit(shape, k, s):
    """Uniform float32 samples in (-1, 1)."""
    if not s.is_gpu:
        return _scaled_unit(k, shape, _NEG_ONE_UP, _OPEN_RANGE, s)
    return _uniform(const(_NEG_ONE_UP, _F32, s), None, shape, _F32, k, s,
                    const(_OPEN_RANGE, _F32, s))


def _erfinv_unit(shape, k, s):
    """erfinv of uniform samples in (-1, 1), float32."""
    return O.erfinv(_open_unit(shape, k, s), s)


def normal(shape=[], dtype=D.float32, loc=None, scale=None, key=None,  # noqa: B006
           stream=None):
    """Generate normally distributed random numbers.

    If ``loc`` and ``scale`` are not provided the "standard" normal distribution is used.
    That means $x \\sim \\mathcal{N}(0, 1)$ for real numbers and
    $\\text{Re}(x),\\text{Im}(x) \\sim \\mathcal{N}(0, \\frac{1}{2})$ for complex numbers.

    Args:
        shape (list(int), optional): Shape of the output. Default: ``()``.
        dtype (Dtype, optional): Type of the output. Default: ``float32``.
        loc (scalar or array, optional): Mean of the distribution. Default: ``None``.
        scale (scalar or array, optional): Standard deviation of the distribution.
          Default: ``None``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The output array of random values.
    """
    shape = _shape_arg(shape, "normal")
    dtype = _dtype_arg(dtype, _F32, "normal")
    _key_arg(key, "normal")
    s = resolve(stream)
    key = _taken(key, s)
    if dtype.kind not in "fc":
        raise ValueError("[normal] Only floating point and complex64 types are supported.")
    if dtype.kind == "c":
        # real and imaginary parts are consecutive draws, each N(0, 1/2): sqrt(2) cancels
        draw = shape[:-1] + (2 * shape[-1],) if shape else (2,)
        x = O.reshape(_erfinv_unit(draw, key, s), shape + (2,) if shape else (1, 2), stream=s)
        x = O.reshape(O.view(x, D.complex64, stream=s), shape, stream=s)
    elif dtype is _F32:
        # one fused primitive: the composite below, with the same numbers
        x = node(shape, _F32, StandardNormal(shape), (_key_for_bits(shape, key, s),),
                 s)
    else:
        x = O.astype(_erfinv_unit(shape, key, s), dtype, s)
        x = O.multiply(const(_SQRT2, dtype, s), x, s)
    if scale is not None:
        sc = _param(scale, dtype, s)
        broadcast_pair(sc._shape, x._shape, "broadcast_shapes")
        x = O.multiply(sc, x, s)
    if loc is not None:
        lc = _param(loc, dtype, s)
        broadcast_pair(lc._shape, x._shape, "broadcast_shapes")
        x = O.add(lc, x, s)
    return x


def randint(low, high, shape=[], dtype=D.int32, key=None, stream=None):  # noqa: B006
    """Generate random integers from the given interval.

    The values are sampled with equal probability from the integers in half-open interval
    ``[low, high)``. The lower and upper bound can be scalars or arrays and must be
    broadcastable to ``shape``. The samples are drawn from a ``float32`` uniform and clamped
    to ``[low, high - 1]``.

    Args:
        low (scalar or array): Lower bound of the interval.
        high (scalar or array): Upper bound of the interval.
        shape (list(int), optional): Shape of the output. Default: ``()``.
        dtype (Dtype, optional): Type of the output. Default: ``int32``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The array of random integers.
    """
    shape = _shape_arg(shape, "randint")
    dtype = _dtype_arg(dtype, D.int32, "randint")
    _scalar_or_array(low, "randint")
    _scalar_or_array(high, "randint")
    _key_arg(key, "randint")
    s = resolve(stream)
    key = _taken(key, s)
    if dtype.kind not in "uib":
        raise ValueError("[randint] randint only accepts integer dtypes and bool.")
    r = _host_range(low, high, s) if type(low) is int and type(high) is int else None
    if r is not None:  # the float32 bounds, high - 1 (wrapped as in int32) and low as consts
        x = O.astype(O.floor(_scaled_unit(key, shape, *r, s), s), dtype, s)
        hi = const((high - 1 + _I32) % (2 * _I32) - _I32, dtype, s)
        return O.maximum(O.minimum(x, hi, s), const(low, dtype, s), s)
    low = _as_param(low, s)
    high = _as_param(high, s)
    x = _uniform(O.astype(low, _F32, s), O.astype(high, _F32, s), shape, _F32, key, s)
    x = O.astype(O.floor(x, s), dtype, s)
    # the clamp is in the output dtype, the bounds cast (and wrapped) to it
    lo = O.astype(low, dtype, s)
    hi = O.astype(O.subtract(high, 1, s), dtype, s)
    return O.maximum(O.minimum(x, hi, s), lo, s)


def bernoulli(p=0.5, shape=None, key=None, stream=None):
    """Generate Bernoulli random values.

    The values are sampled from the bernoulli distribution with parameter ``p``. The
    parameter ``p`` can be a :obj:`float` or :obj:`array` and must be broadcastable to
    ``shape``.

    Args:
        p (float or array, optional): Parameter of the Bernoulli distribution.
          Default: ``0.5``.
        shape (list(int), optional): Shape of the output. Default: ``p.shape``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The array of random integers.
    """
    _scalar_or_array(p, "bernoulli")
    if shape is not None:
        shape = _shape_arg(shape, "bernoulli")
    _key_arg(key, "bernoulli")
    s = resolve(stream)
    key = _taken(key, s)
    pf = p if isinstance(p, float) else None
    if pf is not None:
        p = const(p, _F32, s)
    elif not isinstance(p, (bool, int)):
        p = _as_param(p, s)
    if not isinstance(p, array) or p._dtype.kind != "f":
        raise ValueError("[bernoulli] bernoulli probability `p` must be a float type.")
    if shape is None:
        shape = p._shape
    else:
        if broadcast_pair(shape, p._shape, "broadcast_shapes") != shape:
            raise ValueError("[bernoulli] shape of `p` is incompatible with argument `shape`.")
    if pf is not None and abs(pf) < 2.0 ** 64 and not s.is_gpu:
        threshold = float(np.float32(pf) * np.float32(_BERNOULLI_SCALE))
        return _unit_node(_key_for_bits(shape, key, s), Bernoulli(shape, threshold), s)
    bits = _bits(shape, 4, key, s)
    return O.less(bits, O.multiply(p, const(_BERNOULLI_SCALE, _F32, s), s), s)


def truncated_normal(lower, upper, shape=None, dtype=D.float32, key=None, stream=None):
    """Generate values from a truncated normal distribution.

    The values are sampled from the truncated normal distribution on the domain
    ``(lower, upper)``. The bounds ``lower`` and ``upper`` can be scalars or arrays and must
    be broadcastable to ``shape``.

    Args:
        lower (scalar or array): Lower bound of the domain.
        upper (scalar or array): Upper bound of the domain.
        shape (list(int), optional): The shape of the output. Default:``()``.
        dtype (Dtype, optional): The data type of the output. Default: ``float32``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The output array of random values.
    """
    dtype = _dtype_arg(dtype, _F32, "truncated_normal")
    _scalar_or_array(lower, "truncated_normal")
    _scalar_or_array(upper, "truncated_normal")
    _key_arg(key, "truncated_normal")
    if shape is not None:
        shape = _shape_arg(shape, "truncated_normal")
    s = resolve(stream)
    key = _taken(key, s)
    if dtype.kind != "f":
        raise ValueError("[trunc_normal] trunc_normal only accepts floating point dtypes.")
    lo = _param(lower, dtype, s)
    hi = _param(upper, dtype, s)
    if shape is None:
        shape = broadcast_pair(lo._shape, hi._shape, "broadcast_shapes")
    sqrt2 = const(_SQRT2, dtype, s)
    if dtype is _F32 and _host_range(lower, upper, s) is not None:
        u = _scaled_unit(key, shape, *_erf_range(lower, upper, lo, hi, sqrt2, s), s)
    else:
        a = O.erf(O.divide(lo, sqrt2, s), s)
        u = _uniform(a, O.erf(O.divide(hi, sqrt2, s), s), shape, dtype, key, s)
    x = O.multiply(sqrt2, O.erfinv(u, s), s)
    return O.maximum(O.minimum(x, hi, s), lo, s)


_ERF_RANGES = {}


def _erf_range(lower, upper, lo, hi, sqrt2, s):
    """a = erf(lo / √2) and erf(hi / √2) - a in float32, as Python floats, for bounds given
    as Python numbers (computed once by the ops `truncated_normal` would run)."""
    k = (repr(lower), repr(upper))
    r = _ERF_RANGES.get(k)
    if r is None:
        a = O.erf(O.divide(lo, sqrt2, s), s)
        span = O.subtract(O.erf(O.divide(hi, sqrt2, s), s), a, s)
        if len(_ERF_RANGES) > 256:
            _ERF_RANGES.clear()
        r = _ERF_RANGES[k] = (a.item(), span.item())
    return r


def gumbel(shape=[], dtype=D.float32, key=None, stream=None):  # noqa: B006
    """Sample from the standard Gumbel distribution.

    The values are sampled from a standard Gumbel distribution which CDF ``exp(-exp(-x))``.

    Args:
        shape (list(int)): The shape of the output.
        dtype (Dtype, optional): The data type of the output. Default: ``float32``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The :class:`array` with shape ``shape`` and distributed according to the
        Gumbel distribution.
    """
    shape = _shape_arg(shape, "gumbel")
    dtype = _dtype_arg(dtype, _F32, "gumbel")
    _key_arg(key, "gumbel")
    s = resolve(stream)
    k = _taken(key, s)
    _check_uniform_dtype(dtype)
    if not s.is_gpu and dtype in _BELOW_ONE:
        return _unit_node(_key_for_bits(shape, k, s), Gumbel(shape, dtype), s)
    u = _unit(k, shape, dtype, s)
    return O.negative(O.log(O.negative(O.log(u, s), s), s), s)


def laplace(shape=[], dtype=D.float32, loc=0.0, scale=1.0, key=None,  # noqa: B006
            stream=None):
    """Sample numbers from a Laplace distribution.

    Args:
        shape (list(int), optional): Shape of the output. Default: ``()``.
        dtype (Dtype, optional): Type of the output. Default: ``float32``.
        loc (float, optional): Mean of the distribution. Default: ``0.0``.
        scale (float, optional): The scale "b" of the Laplace distribution. Default:``1.0``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The output array of random values.
    """
    shape = _shape_arg(shape, "laplace")
    dtype = _dtype_arg(dtype, _F32, "laplace")
    # (upstream's binding takes loc and scale as C floats: float32)
    with np.errstate(over="ignore"):
        loc, scale = (float(np.float32(_float_arg(v, "laplace"))) for v in (loc, scale))
    _key_arg(key, "laplace")
    s = resolve(stream)
    key = _taken(key, s)
    if dtype.kind != "f":
        raise ValueError("[laplace] Only real floating point types are supported.")
    if s.is_gpu or dtype is D.float64:
        # (upstream takes the logarithm in the output dtype when that is wider)
        u = _open_unit(shape, key, s)
        if dtype is D.float64:
            u = O.astype(u, dtype, s)
        x = O.multiply(O.sign(u, s), O.log1p(O.negative(O.abs(u, s), s), s), s)
    else:
        x = _unit_node(_key_for_bits(shape, key, s),
                       Laplace(shape, _F32, _NEG_ONE_UP, _OPEN_RANGE), s)
    x = O.astype(x, dtype, s)
    x = O.multiply(x, const(scale, dtype, s), s)
    return O.add(const(loc, dtype, s), x, s)


# -- sampling indices -----------------------------------------------------------------

def categorical(logits, axis=-1, shape=None, num_samples=None, key=None, stream=None):
    """Sample from a categorical distribution.

    The values are sampled from the categorical distribution specified by the unnormalized
    values in ``logits``. Note, at most one of ``shape`` or ``num_samples`` can be
    specified. If both are ``None``, the output has the same shape as ``logits`` with the
    ``axis`` dimension removed.

    Args:
        logits (array): The *unnormalized* categorical distribution(s).
        axis (int, optional): The axis which specifies the distribution. Default: ``-1``.
        shape (list(int), optional): The shape of the output. This must be broadcast
          compatible with ``logits.shape`` with the ``axis`` dimension removed.
          Default: ``None``
        num_samples (int, optional): The number of samples to draw from each of the
          categorical distributions in ``logits``. The output will have ``num_samples`` in
          the last dimension. Default: ``None``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The ``shape``-sized output array with type ``uint32``.
    """
    if not isinstance(logits, array):
        raise _refuse("categorical")
    axis = _int_arg(axis, "categorical")
    if shape is not None:
        shape = _shape_arg(shape, "categorical")
    if num_samples is not None:
        num_samples = _int_arg(num_samples, "categorical")
    _key_arg(key, "categorical")
    s = resolve(stream)
    key = _taken(key, s)
    if shape is not None and num_samples is not None:
        raise ValueError("[categorical] At most one of shape or num_samples can be specified.")
    if logits._stream.device is not s.device:
        logits = to_device(logits, s)
    nd = logits.ndim
    if not -nd <= axis < nd:
        raise IndexError(f"[categorical] Invalid axis {axis} for logits with {nd} dimensions.")
    ax = axis % nd
    batch = logits._shape[:ax] + logits._shape[ax + 1:]
    if shape is None and num_samples is None:
        return O.argmax(O.add(logits, gumbel(logits._shape, key=key, stream=s), s), ax, stream=s)
    if num_samples is not None:
        shape = batch + (num_samples,)
    else:
        if broadcast_pair(shape, batch, "broadcast_shapes") != shape:
            raise ValueError(f"[categorical] Requested shape {_fmt(shape)} is not broadcast "
                             f"compatible with reduced logits shape{_fmt(batch)}.")
    if shape and math.prod(batch) == 1:  # samples of one distribution: inverse CDF
        if not logits._shape[ax]:
            raise ValueError("[argmax] Cannot argmax reduce zero size array.")
        return _inverse_cdf(O.reshape(logits, (-1,), stream=s), shape, key, s)
    # Gumbel-max: one noise draw per (sample, category)
    if num_samples is not None:  # samples last, after the categories
        g = gumbel(logits._shape + (num_samples,), key=key, stream=s)
        return O.argmax(O.add(O.expand_dims(logits, -1, stream=s), g, s), ax, stream=s)
    offset = ax + len(shape) - len(batch)  # the category axis, logits aligned to the right
    g = gumbel(shape[:offset] + (logits._shape[ax],) + shape[offset:], key=key, stream=s)
    return O.argmax(O.add(logits, g, s), offset, stream=s)


def _inverse_cdf(logits, shape, k, s):
    """Samples of one 1-D distribution by inverse CDF (uniform over the maxima when the
    largest logit is infinite)."""
    x = O.astype(logits, _F32, s)
    m = O.max(x, 0, True, stream=s)
    w = O.where(O.isinf(m, s), O.astype(O.equal(x, m, s), _F32, s),
                O.exp(O.subtract(x, m, s), s), s)
    cdf = O.cumsum(w, 0, inclusive=False, stream=s)
    total = O.sum(w, stream=s)
    u = O.multiply(_unit(_key(k, s), shape, _F32, s), total, s)
    idx = O.subtract(_searchsorted(cdf, u, True), const(1, D.int64, s), s)
    return O.astype(idx, _U32, s)


def permutation(x, axis=0, key=None, stream=None):
    """Generate a random permutation or permute the entries of an array.

    Args:
        x (int or array, optional): If an integer is provided a random permtuation of
          ``mx.arange(x)`` is returned. Otherwise the entries of ``x`` along the given axis
          are randomly permuted.
        axis (int, optional): The axis to permute along. Default: ``0``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The generated random permutation or randomly permuted input array.
    """
    if not isinstance(x, array):
        if not isinstance(x, int):  # (an `int | array` union takes no __index__ objects)
            raise _refuse("permutation")
        x = int(x)
    axis = _int_arg(axis, "permutation")
    _key_arg(key, "permutation")
    s = resolve(stream)
    key = _taken(key, s)
    if not isinstance(x, array) and not -_I32 <= x < _I32:
        raise RuntimeError(f"[permutation] {x} does not fit in an int32.")
    if isinstance(x, array):
        nd = x.ndim
        if not -nd <= axis < nd:
            raise IndexError(f"[permutation] Axis {axis} is out of bounds for array with {nd} "
                             "dimensions.")
        perm = O.argsort(_bits((x._shape[axis],), 4, key, s), stream=s)
        return O.take(x, perm, axis, stream=s)
    return O.argsort(_bits((x,), 4, key, s), stream=s)


def multivariate_normal(mean, cov, shape=[], dtype=D.float32, key=None,  # noqa: B006
                        stream=None):
    """Generate jointly-normal random samples given a mean and covariance.

    The matrix ``cov`` must be positive semi-definite. The behavior is undefined if it is
    not. The only supported ``dtype`` is ``float32``.

    Args:
        mean (array): array of shape ``(..., n)``, the mean of the distribution.
        cov (array): array  of shape ``(..., n, n)``, the covariance matrix of the
          distribution. The batch shape ``...`` must be broadcast-compatible with that of
          ``mean``.
        shape (list(int), optional): The output shape must be broadcast-compatible with
          ``mean.shape[:-1]`` and ``cov.shape[:-2]``. If empty, the result shape is
          determined by broadcasting the batch shapes of ``mean`` and ``cov``.
          Default: ``[]``.
        dtype (Dtype, optional): The output type. Default: ``float32``.
        key (array, optional): A PRNG key. Default: ``None``.

    Returns:
        array: The output array of random values.
    """
    if not isinstance(mean, array) or not isinstance(cov, array):
        raise _refuse("multivariate_normal")
    shape = _shape_arg(shape, "multivariate_normal")
    dtype = _dtype_arg(dtype, _F32, "multivariate_normal")
    _key_arg(key, "multivariate_normal")
    s = resolve(stream)
    key = _taken(key, s)
    if dtype is not _F32:
        raise ValueError("[multivariate_normal] dtype must be float32.")
    mean = O.as_array(mean, s)
    cov = O.as_array(cov, s)
    if mean.ndim < 1:
        raise ValueError("[multivariate_normal] mean must have at least one dimension.")
    if cov.ndim < 2:
        raise ValueError("[multivariate_normal] cov must have at least two dimensions.")
    n = cov._shape[-1]
    if cov._shape[-2] != n:
        raise ValueError("[multivariate_normal] last two dimensions of cov must be equal.")
    if mean._shape[-1] != n:
        raise ValueError("[multivariate_normal] mean and cov must have compatible shapes.")
    out = broadcast_pair(mean._shape[:-1], cov._shape[:-2], "broadcast_shapes")
    if shape:
        out = broadcast_pair(out, shape, "broadcast_shapes")
    # (the mean keeps its dtype: a float64 mean gives float64 samples, as upstream)
    std = _cov_sqrt(O.astype(cov, _F32, s))
    x = normal(out + (n,), _F32, key=key, stream=s)
    x = O.squeeze(O.matmul(O.expand_dims(x, -2, stream=s), std, stream=s), -2, stream=s)
    return O.add(mean, x, s)
