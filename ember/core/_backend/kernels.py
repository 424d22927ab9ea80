"""The kernel table: primitive class -> torch callable `kernel(prim, *tensors)`.

Kernels get tensors already in the output's storage dtype (ops insert casts), so most
are direct ATen calls.
"""

import math

import numpy as np
import torch

from ember.core._backend import TORCH
from ember.core._backend.memory import CACHE_MIN, cpu_empty, cpu_out
from ember.core.primitives import elementwise as E
from ember.core.primitives import misc as M

KERNELS = {}


def register(cls):
    def deco(fn):
        KERNELS[cls] = fn
        return fn
    return deco


# -- elementwise -------------------------------------------------------------------

def _any(mask):
    """Whether a fix-up for `mask` is needed: on CUDA always (asking would wait for the GPU
    and keep the kernel out of CUDA graphs), on the CPU only when some element needs it."""
    return mask.is_cuda or bool(mask.any())


def _finite(r):
    """Whether every element of float tensor r is finite, cheaper than isfinite().all() (a
    slow bool reduction on the CPU): a sum is not finite when an element is not; a
    half-type sum may overflow, so those take the min and max."""
    if r.itemsize >= 4:
        return math.isfinite(r.sum())
    return not r.numel() or all(math.isfinite(v) for v in torch.aminmax(r))


def _floor_divide(x, y):
    if x.dtype.is_floating_point:
        return torch.floor(torch.div(x, y))
    if x.dtype.is_complex:  # upstream divides complex numbers without flooring
        return _divide(x, y)
    if x.dtype is torch.bool:
        return x & y
    # integer division by zero gives 0 upstream instead of raising
    zero = y == 0
    if _any(zero):
        y = torch.where(zero, torch.ones_like(y), y)
        return torch.where(zero, torch.zeros_like(x), torch.floor_divide(x, y))
    return torch.floor_divide(x, y)


def _remainder(x, y):
    if x.dtype is torch.bool:
        return x & ~y
    if not x.dtype.is_floating_point:
        zero = y == 0
        if _any(zero):
            y = torch.where(zero, torch.ones_like(y), y)
            return torch.where(zero, x, torch.remainder(x, y))
        return torch.remainder(x, y)
    r = torch.remainder(x, y)
    # ATen's vectorized loop computes x - y * floor(x / y), which has no finite quotient
    # for a subnormal divisor or a huge x: those elements as upstream's fmod-based remainder
    if r.is_cuda or _finite(r):
        return r
    x, y = torch.broadcast_tensors(x, y)
    bad = ~torch.isfinite(r) & torch.isfinite(x) & torch.isfinite(y) & (y != 0)
    if bool(bad.any()):
        xs, ys = (t[bad].double().numpy() for t in (x, y))
        f = np.fmod(xs, ys)
        f = np.where((f != 0) & ((f < 0) != (ys < 0)), f + ys, f)
        r = r.clone()
        r[bad] = torch.from_numpy(f).to(r.dtype)
    return r


def _box(p, q):
    """Whether (p, q) has an infinite part, and the pair with each part as its direction
    where it does: +-1 for an infinity, +-0 for the rest."""
    inf = torch.isinf(p) | torch.isinf(q)
    return (inf, torch.where(inf, torch.copysign(torch.isinf(p).to(p.dtype), p), p),
            torch.where(inf, torch.copysign(torch.isinf(q).to(q.dtype), q), q))


def _zero_nan(p):
    return torch.where(torch.isnan(p), torch.copysign(torch.zeros_like(p), p), p)


def _dense_pair(x, y):
    """x and y laid out for ATen's vectorized CPU complex product, which rounds as
    upstream's (re = ac - bd, no fused multiply-add); its scalar loop, taken for strided
    or broadcast operands, rounds otherwise in the last bit."""
    if x.shape == y.shape and x.is_contiguous() and y.is_contiguous() or (
            y.dim() == 0 and x.is_contiguous()):
        return x, y
    shape = torch.broadcast_shapes(x.shape, y.shape)
    return x.expand(shape).contiguous(), y.expand(shape).contiguous()


def _multiply(x, y):
    if x.is_complex() and not x.is_cuda:
        x, y = _dense_pair(x, y)
    r = torch.mul(x, y)
    if not r.is_complex() or r.is_cuda:
        return r
    # C99 Annex G's recovery, as upstream's complex product: one that comes out nan in
    # both parts but has an infinite factor (or overflowed) is an infinity
    both = torch.isnan(r.real) & torch.isnan(r.imag)
    if not bool(both.any()):
        return r
    x, y = torch.broadcast_tensors(x, y)
    a, b, c, d = x.real, x.imag, y.real, y.imag
    inf_x, a2, b2 = _box(a, b)
    inf_y, c2, d2 = _box(c, d)
    a2 = torch.where(inf_y & ~inf_x, _zero_nan(a), a2)
    b2 = torch.where(inf_y & ~inf_x, _zero_nan(b), b2)
    c2 = torch.where(inf_x & ~inf_y, _zero_nan(c), c2)
    d2 = torch.where(inf_x & ~inf_y, _zero_nan(d), d2)
    over = ~inf_x & ~inf_y & (torch.isinf(a * c) | torch.isinf(b * d) | torch.isinf(a * d)
                              | torch.isinf(b * c))
    a2, b2, c2, d2 = (torch.where(over, _zero_nan(p), q)
                      for p, q in ((a, a2), (b, b2), (c, c2), (d, d2)))
    fix = both & (inf_x | inf_y | over)
    re = math.inf * (a2 * c2 - b2 * d2)
    im = math.inf * (a2 * d2 + b2 * c2)
    return torch.where(fix, torch.complex(re, im), r)


def _complex_divide(x, y):
    # upstream divides complex64 numbers in double precision (the plain formula), with
    # C99 Annex G's recovery of infinities and zeros from a nan quotient
    x, y = torch.broadcast_tensors(x.to(torch.complex128), y.to(torch.complex128))
    a, b, c, d = x.real, x.imag, y.real, y.imag
    den = c * c + d * d
    re = (a * c + b * d) / den
    im = (b * c - a * d) / den
    both = torch.isnan(re) & torch.isnan(im)
    if bool(both.any()):
        inf_x = torch.isinf(a) | torch.isinf(b)
        inf_y = torch.isinf(c) | torch.isinf(d)
        fin_x = torch.isfinite(a) & torch.isfinite(b)
        fin_y = torch.isfinite(c) & torch.isfinite(d)
        by_zero = both & (den == 0) & ~(torch.isnan(a) & torch.isnan(b))
        big = both & ~by_zero & inf_x & fin_y
        small = both & ~by_zero & ~big & inf_y & fin_x
        s = torch.copysign(torch.full_like(c, math.inf), c)
        ua, ub = _box(a, b)[1:]
        uc, ud = _box(c, d)[1:]
        re = torch.where(by_zero, s * a, re)
        im = torch.where(by_zero, s * b, im)
        re = torch.where(big, math.inf * (ua * c + ub * d), re)
        im = torch.where(big, math.inf * (ub * c - ua * d), im)
        re = torch.where(small, 0.0 * (a * uc + b * ud), re)
        im = torch.where(small, 0.0 * (b * uc - a * ud), im)
    return torch.complex(re.float(), im.float())


_DEVICE_SCALARS = {}  # (value, dtype, device) -> that scalar as a 0-d tensor there


def _divide(x, y):
    # torch multiplies by the reciprocal of a divisor held on the host; a true division
    # (as upstream's, and as compiled kernels divide) needs the divisor on the device
    if y.device != x.device and y.dim() == 0 and (x.dtype.is_floating_point or x.is_complex()):
        v = y.item()
        if torch.cuda.is_current_stream_capturing():
            # made inside the graph (its memory is the graph's): never cached
            return torch.div(x, torch.full((), v, dtype=y.dtype, device=x.device))
        key = (repr(v), y.dtype, x.device)
        d = _DEVICE_SCALARS.get(key)
        if d is None:
            if len(_DEVICE_SCALARS) > 1024:
                _DEVICE_SCALARS.clear()
            d = _DEVICE_SCALARS[key] = y.to(x.device)
        y = d
    if x.is_complex() and not x.is_cuda:
        return _complex_divide(x, y)
    return torch.div(x, y)


def _power(x, y):
    if x.dtype is torch.bool:
        return x | ~y
    if not x.dtype.is_floating_point and not x.dtype.is_complex:
        neg = y < 0
        if _any(neg):  # upstream gives 0 for any negative integer exponent (even of 1, -1)
            r = torch.pow(x, torch.where(neg, torch.zeros_like(y), y))
            return torch.where(neg, torch.zeros_like(r), r)
    return torch.pow(x, y)


def _logaddexp(x, y):
    if x.dtype.is_complex:
        # as upstream: hi itself when hi is inf or lo is -inf (hi, lo in the lexicographic
        # order), else hi + log1p(exp(lo - hi)) where exp of a -inf real part is a (signed)
        # 0 whatever the imaginary part (torch's gives a nan)
        hi = BINARY_TORCH["maximum"](x, y)
        lo = BINARY_TORCH["minimum"](x, y)
        d = BINARY_TORCH["subtract"](lo, hi)
        r = BINARY_TORCH["add"](hi, torch.log1p(torch.exp(d)))
        t = torch.where(torch.isfinite(d.imag), d.imag, 0.0)
        tiny = torch.complex(torch.cos(t) * 0.0, torch.sin(t) * 0.0)  # exp(-inf + ti)
        r = torch.where(d.real == -math.inf, BINARY_TORCH["add"](hi, tiny), r)
        return torch.where((hi == math.inf) | (lo == -math.inf), hi, r)
    r = torch.logaddexp(x, y)
    # upstream gives the larger one when the other is -inf (so -0.0 stays); min-reductions
    # are cheap where a bool any() is not (a nan min takes this path too)
    if not r.is_cuda and r.numel() and not torch.minimum(x.min(), y.min()) > -math.inf:
        at_inf = torch.minimum(x, y) == -math.inf
        r = torch.where(at_inf & (r == 0), torch.maximum(x, y), r)
    return r


def _lexicographic(strict, cmp):
    # complex numbers order by real part, then imaginary part (as upstream)
    def k(x, y):
        if not x.dtype.is_complex:
            return cmp(x, y)
        xr, yr = x.real, y.real
        return strict(xr, yr) | ((xr == yr) & cmp(x.imag, y.imag))
    return k


def _complex_pick(cmp):
    # maximum/minimum of complex numbers: the lexicographically larger/smaller one
    def k(x, y):
        if not x.dtype.is_complex:
            if x.numel() < 64 and y.numel() < 64:
                # upstream: x when it is nan or wins, else y; torch's vector loop gives
                # y on a tie (0.0 against -0.0) too, but its scalar loop (short arrays,
                # the tail of long ones) gives x
                return torch.where(cmp(x, y) | torch.isnan(x), x, y)
            return (torch.maximum if cmp is torch.gt else torch.minimum)(x, y)
        # as upstream: x when it is nan or wins, else y (so y when the two are unordered)
        return torch.where(torch.isnan(x) | _lexicographic(cmp, cmp)(x, y), x, y)
    return k


def _complex_parts(fn):
    # torch adds and subtracts complex numbers as x + alpha * y, and 1 * (inf+1j) has a nan
    # imaginary part: upstream works on the real and imaginary parts apart
    def k(x, y):
        if x.dtype.is_complex:
            return torch.complex(fn(x.real, y.real), fn(x.imag, y.imag))
        return fn(x, y)
    return k


def shift_count(x, y):
    """Upstream shifts as x86 does: by the count modulo 32 (64 for 64-bit types; narrower
    types are shifted as int32), never to 0 for a count of the width or more."""
    return y & (63 if x.dtype.itemsize == 8 else 31)


def _shift(fn):
    return lambda x, y: fn(x, shift_count(x, y))


def _bool_arith(fn, bool_fn):
    def k(x, y):
        if x.dtype is torch.bool:
            return bool_fn(x, y)
        return fn(x, y)
    return k


BINARY_TORCH = {
    "add": _complex_parts(torch.add),
    "subtract": _bool_arith(_complex_parts(torch.sub), torch.logical_xor),
    "multiply": _multiply,
    "divide": _divide,
    "floor_divide": _floor_divide,
    "remainder": _remainder,
    "power": _power,
    "maximum": _complex_pick(torch.gt),
    "minimum": _complex_pick(torch.lt),
    "arctan2": torch.atan2,
    "logaddexp": _logaddexp,
    "equal": torch.eq,
    "not_equal": torch.ne,
    "less": _lexicographic(torch.lt, torch.lt),
    "less_equal": _lexicographic(torch.lt, torch.le),
    "greater": _lexicographic(torch.gt, torch.gt),
    "greater_equal": _lexicographic(torch.gt, torch.ge),
    "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
    "bitwise_and": torch.bitwise_and,
    "bitwise_or": torch.bitwise_or,
    "bitwise_xor": torch.bitwise_xor,
    "left_shift": _shift(torch.bitwise_left_shift),
    "right_shift": _shift(torch.bitwise_right_shift),
}


def _sign(x):
    if x.dtype.is_complex:
        a = x.abs()
        if x.is_cuda:
            return torch.where(a == 0, torch.zeros_like(x), x / a)
        # a zero stays itself (its signs kept) as upstream
        return torch.where(a == 0, x, _complex_divide(x, a.to(x.dtype)))
    if x.dtype is torch.bool:
        return x.clone()
    return torch.sign(x)


def _same_if_int(fn):
    def k(x):
        if x.dtype.is_floating_point or x.dtype.is_complex:
            return fn(x)
        return x.clone()
    return k


def _complex_only(fn):
    def k(x):
        if x.dtype.is_complex:
            return fn(x)
        return x.clone() if fn is not torch.imag else torch.zeros_like(x)
    return k


def _square(x):
    if x.dtype is torch.bool:
        return x.clone()
    if x.is_complex():
        return _multiply(x, x)
    return torch.square(x)


def _complex_reciprocal(fn):
    # 1 / x as upstream's complex division gives it (the signs of zero parts, infinities)
    def k(x):
        if not x.is_complex() or x.is_cuda:
            return fn(x)
        d = torch.sqrt(x) if fn is torch.rsqrt else x
        return _complex_divide(torch.ones((), dtype=x.dtype), d)
    return k


def _abs(x):
    if x.dtype is torch.bool:
        return x.clone()
    if x.dtype is torch.float16 and not x.is_cuda:
        # ATen goes through float32, which quiets a signaling NaN; upstream keeps the bits
        return (x.view(torch.int16) & 0x7FFF).view(torch.float16)
    return torch.abs(x)


def _negative(x):
    if x.dtype is torch.float16 and not x.is_cuda:
        return (x.view(torch.int16) ^ -0x8000).view(torch.float16)
    if x.dtype.is_complex and not x.is_cuda:
        # torch's vectorized loop negates as 0 - x, which loses the sign of a zero part
        return torch.view_as_complex(torch.neg(torch.view_as_real(x)))
    return torch.neg(x)


def _sigmoid(x):
    r = torch.sigmoid(x)
    if x.dtype is torch.float16 and not x.is_cuda and x.numel() and not x.min() > -11.09:
        # upstream's float16 sigmoid is 1 / (1 + exp(-x)) with exp(-x) overflowing to inf
        # (0 from x = -11.09 down), not a subnormal
        r.masked_fill_(x <= -11.09, 0.0)
    return r


def _sin(x):
    r = torch.sin(x)
    if not x.is_cuda and x.is_floating_point():
        r.add_(0.0)  # upstream's sin(-0.0) is 0.0
    return r


_WIDE_EXPONENT = (torch.float32, torch.bfloat16, torch.float64)


def _hyperbolic(fn):
    # ATen's vectorized sinh and cosh overflow through exp(|x|) a little before the result
    # does (|x| > 88.72 for float32, bfloat16 too); upstream's do not
    def k(x):
        r = fn(x)
        if x.is_cuda or x.dtype not in _WIDE_EXPONENT or _finite(r):
            return r
        xf = x.float() if x.dtype is torch.bfloat16 else x  # (rounded once)
        h = torch.exp(xf.abs() * 0.5)
        big = h * (h * 0.5)
        if fn is torch.sinh:
            big = torch.copysign(big, xf)
        return torch.where(torch.isinf(r) & torch.isfinite(x), big.to(x.dtype), r)
    return k


EXACT_SQRT = (torch.float32, torch.float64)


def exact_sqrt(xs, outs):
    """Square roots of CPU tensors `xs` (of EXACT_SQRT dtypes) into `outs` by numpy, whose
    hardware square root is correctly rounded as upstream's is (ATen's vectorised one is a
    last bit off in about a fifth of float32 values) and gives x86's negative nan below 0,
    as upstream's."""
    with np.errstate(invalid="ignore"):
        for x, o in zip(xs, outs):
            np.sqrt(x.numpy(), out=o.numpy())
    return outs


def _sqrt(x, out=None):
    if x.dtype in EXACT_SQRT and x.device.type == "cpu":
        if out is None:
            out = torch.empty(x.shape, dtype=x.dtype)
        return exact_sqrt((x,), (out,))[0]
    return torch.sqrt(x, out=out) if out is not None else torch.sqrt(x)


UNARY_TORCH = {
    "abs": _abs, "negative": _negative, "sign": _sign, "square": _square,
    "floor": _same_if_int(torch.floor), "ceil": _same_if_int(torch.ceil),
    "trunc": _same_if_int(torch.trunc), "exp": torch.exp, "expm1": torch.expm1,
    "log": torch.log, "log2": torch.log2, "log10": torch.log10, "log1p": torch.log1p,
    "sqrt": _sqrt, "rsqrt": _complex_reciprocal(torch.rsqrt),
    "reciprocal": _complex_reciprocal(torch.reciprocal),
    "sin": _sin, "cos": torch.cos, "tan": torch.tan, "arcsin": torch.asin,
    "arccos": torch.acos, "arctan": torch.atan, "sinh": _hyperbolic(torch.sinh),
    "cosh": _hyperbolic(torch.cosh), "tanh": torch.tanh, "arcsinh": torch.asinh,
    "arccosh": torch.acosh, "arctanh": torch.atanh, "sigmoid": _sigmoid, "erf": torch.erf,
    "erfinv": torch.erfinv, "conjugate": _complex_only(torch.conj_physical),
    "real": _complex_only(torch.real), "imag": _complex_only(torch.imag),
    "logical_not": torch.logical_not, "bitwise_invert": torch.bitwise_not,
    "isnan": torch.isnan, "isinf": torch.isinf, "isposinf": torch.isposinf,
    "isneginf": torch.isneginf, "isfinite": torch.isfinite,
}


# Large CPU outputs go to the buffer cache (memory.cpu_empty: no page faults on reuse),
# through the plain torch function where the op's kernel is that function for real
# inputs: these, with whether the result is bool
_OUT_BINARY = {
    "add": (torch.add, False), "subtract": (torch.sub, False), "multiply": (torch.mul, False),
    "maximum": (torch.maximum, False), "minimum": (torch.minimum, False),
    "arctan2": (torch.atan2, False), "equal": (torch.eq, True), "not_equal": (torch.ne, True),
    "less": (torch.lt, True), "less_equal": (torch.le, True), "greater": (torch.gt, True),
    "greater_equal": (torch.ge, True),
}
_LARGE = CACHE_MIN // 16  # elements of an input from which the output's size is checked


# numpy's CPU predicates, comparisons and boolean reductions run several times faster than
# ATen's on one thread (2048 x 2048 float32 on a 2-core VM: isnan 0.36 against 2.7 ms,
# isinf 0.28 against 5.4, x > 0 0.54 against 2.3; any of a bool over an axis 0.07
# against 0.8): taken for large float32/float64 (bool) inputs while torch's pool is small,
# as numpy runs on one thread. The results are the same booleans.
NP_MIN = 1 << 14
_NP_FLOATS = (torch.float32, torch.float64)
_NP_UNARY = {"isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
             "isposinf": np.isposinf, "isneginf": np.isneginf}
_NP_COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
               "less_equal": np.less_equal, "greater": np.greater,
               "greater_equal": np.greater_equal}


def numpy_fits(x, dtypes=_NP_FLOATS):
    """Whether x is a large CPU tensor of `dtypes` for numpy's one-thread kernels."""
    return (x.dtype in dtypes and x.device.type == "cpu" and x.numel() >= NP_MIN
            and not x.requires_grad and torch.get_num_threads() <= 4)


def _np_unary(op, fn):
    npf = _NP_UNARY.get(op)
    if npf is None:
        return fn

    def k(x):
        if numpy_fits(x):
            return torch.from_numpy(npf(x.numpy()))
        return fn(x)
    return k


def _unary_kernel(fn):
    return lambda p, x: fn(x)


def _binary_kernel(fn):
    return lambda p, x, y: fn(x, y)


def _cached_unary(fn):
    if fn not in (torch.exp, torch.expm1, torch.log, torch.log2, torch.log10, torch.log1p,
                  _sqrt, torch.cos, torch.tan, torch.tanh, torch.erf):
        return fn

    def k(x):
        if x.numel() >= _LARGE and x.is_floating_point():
            return fn(x, out=cpu_out(x.shape, x.dtype, x.device))
        return fn(x)
    return k


def _cached_binary(op, fn):
    plain = _OUT_BINARY.get(op)
    if plain is not None:
        fn = _out_cached(fn, *plain)
    npf = _NP_COMPARE.get(op)
    if npf is None:
        return fn

    def k(x, y):
        if x.dtype is y.dtype and (numpy_fits(x) or numpy_fits(y)) \
                and y.device.type == "cpu" and not y.requires_grad:
            return torch.from_numpy(np.asarray(npf(x.numpy(), y.numpy())))
        return fn(x, y)
    return k


def _out_cached(fn, fn_out, cmp):
    def k(x, y):
        if ((x.numel() >= _LARGE or y.numel() >= _LARGE) and x.device.type == "cpu"
                and not (x.is_complex() or y.is_complex() or x.dtype is torch.bool)):
            shape = torch.broadcast_shapes(x.shape, y.shape)
            out = cpu_out(shape, torch.bool if cmp else torch.result_type(x, y), x.device)
            if out is not None:
                return fn_out(x, y, out=out)
        return fn(x, y)
    return k


# inputs outside the domain, and the sign of the nan that upstream's CPU kernels make of
# them: in float16, float32 and float64 x86's default nan (negative) but in log10, arcsin
# and arccos (positive); in bfloat16 always a positive one (its conversion from float makes
# every nan that). torch's signs vary with the op, the dtype, the value and the length.
# Short arrays only (printed ones, mostly): the check would cost a quarter of the op on
# long ones. float32 is checked only where torch's signs differ from upstream's.
_DOMAIN = {"sqrt": (lambda x: x < 0, True), "rsqrt": (lambda x: x < 0, True),
           "log": (lambda x: x < 0, True), "log2": (lambda x: x < 0, True),
           "log10": (lambda x: x < 0, False), "log1p": (lambda x: x < -1, True),
           "arcsin": (lambda x: x.abs() > 1, False), "arccos": (lambda x: x.abs() > 1, False),
           "arccosh": (lambda x: x < 1, True), "arctanh": (lambda x: x.abs() > 1, True)}
_FLOAT32_DOMAIN = {"log", "log2", "arcsin", "arccos", "arctanh"}
_SIGNED_NAN_MAX = 4096
_NAN_BITS = {torch.float16: (0x7E00, 0xFE00, torch.int16),
             torch.bfloat16: (0x7FC0, 0x7FC0, torch.int16),
             torch.float32: (0x7FC00000, 0xFFC00000, torch.int32),
             torch.float64: (0x7FF8000000000000, 0xFFF8000000000000, torch.int64)}


def _nan(dtype, negative):
    pos, neg, bits = _NAN_BITS[dtype]
    v = neg if negative else pos
    width = torch.iinfo(bits).bits
    if v >= 1 << (width - 1):
        v -= 1 << width
    return torch.tensor(v, dtype=bits).view(dtype)


def _signed_nan(op, fn):
    if op not in _DOMAIN:
        return fn
    bad, negative = _DOMAIN[op]
    nans = {dt: _nan(dt, negative) for dt in _NAN_BITS
            if dt is not torch.float32 or op in _FLOAT32_DOMAIN}

    def k(x):
        y = fn(x)
        nan = nans.get(y.dtype)
        if nan is not None and x.numel() < _SIGNED_NAN_MAX and not x.is_cuda:
            m = bad(x)
            if bool(m.any()):
                y = torch.where(m, nan, y)
        return y
    return k


for _op, _cls in E.UNARY.items():
    if _op in UNARY_TORCH:
        KERNELS[_cls] = _unary_kernel(
            _signed_nan(_op, _np_unary(_op, _cached_unary(UNARY_TORCH[_op]))))
for _op, _cls in E.BINARY.items():
    KERNELS[_cls] = _binary_kernel(_cached_binary(_op, BINARY_TORCH[_op]))


@register(E.Round)
def _round(p, x):
    if x.dtype.is_complex:
        return torch.complex(torch.round(x.real, decimals=p.decimals),
                             torch.round(x.imag, decimals=p.decimals))
    return torch.round(x, decimals=p.decimals)


@register(E.UNARY["wrap"])
def _wrap(p, x):
    return x & (0xFFFF if x.dtype is torch.int32 else 0xFFFFFFFF)


KERNELS[E.LeakyRelu] = lambda p, x: torch.nn.functional.leaky_relu(x, p.slope)
KERNELS[E.HardSwish] = lambda p, x: torch.nn.functional.hardswish(x)


_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_SELECT_MIN = 1 << 14


@register(E.Select)
def _select(p, c, x, y):
    if (c.device.type == "cpu" and c.numel() >= _SELECT_MIN and x.dtype == y.dtype
            and c.dtype is torch.bool and x.dtype.itemsize in _INT_OF_SIZE):
        return _bit_select(c, x, y)
    return torch.where(c, x, y)


def _bit_select(c, x, y):
    """where(c, x, y) on the bits: y ^ ((x ^ y) & -c). ATen's CPU where branches on each
    element, which a random condition makes 3-4x slower (16 ms at 4M floats, where
    upstream's select takes under 1); the bits are the same (nan payloads, zero signs)."""
    it = _INT_OF_SIZE[x.dtype.itemsize]
    shape = torch.broadcast_shapes(c.shape, x.shape, y.shape)
    if x.dim() == 0 and y.dim() == 0 and x.item() == 1 and y.item() == 0:
        return cpu_empty(shape, x.dtype).copy_(c)  # (where(c, 1, 0): c cast)
    m = cpu_empty(shape, it)
    m.copy_(c)
    m.neg_()
    xi, yi = x.view(it), y.view(it)
    if y.dim() == 0 and not yi.item():  # (where(c, x, 0): x's bits under the mask)
        return m.bitwise_and_(xi).view(x.dtype)
    d = cpu_empty(shape, it)
    torch.bitwise_xor(xi.expand(shape), yi, out=d)  # (c may be what is widest)
    return d.bitwise_and_(m).bitwise_xor_(yi).view(x.dtype)


# -- misc ---------------------------------------------------------------------------

@register(M.AsType)
def _astype(p, x):
    td = TORCH[p.dtype]
    if x.is_complex() and not td.is_complex:
        # to bool a complex number is true when either part is nonzero, as upstream
        x = x != 0 if td is torch.bool else x.real
    if p.dtype.kind == "u" and p.dtype.size >= 4 and x.is_floating_point() and not x.is_cuda \
            and (p.dtype.size == 8 or x.dtype is not torch.float16):
        return float_to_unsigned(x, p.dtype.size)
    y = x.to(td)
    if td is torch.int32 and p.dtype.kind == "u" or td is torch.int64 and p.dtype.size == 4:
        y = y & (0xFFFF if p.dtype.size == 2 else 0xFFFFFFFF)
    elif td in _HALF_NAN:
        y = half_nans(x, y)
    return y


# upstream's CPU casts give every NaN one bit pattern: 0x7FC0 as bfloat16, 0x7D00 (with the
# sign kept) as float16; ATen's give 0xFFFF and 0x7E00 from its vectorized float32 casts
_HALF_NAN = {torch.bfloat16: (0x7FC0, 0x7FC0), torch.float16: (0x7D00, 0xFD00 - 0x10000)}


def half_nans(x, y):
    """`y`, the float16 or bfloat16 cast of `x`, with upstream's NaNs."""
    if x.is_cuda or not x.is_floating_point() or x.dtype is y.dtype:
        return y
    if not torch.isnan(x.sum()):  # (a fast pass: a sum is NaN when an item is, or inf - inf)
        return y
    pos, neg = _HALF_NAN[y.dtype]
    bits = torch.where(torch.signbit(x), neg, pos).to(torch.int16).view(y.dtype)
    return torch.where(torch.isnan(x), bits, y)


def float_to_unsigned(x, size):
    """Float tensor `x` as storage for a uint32 (size 4) or uint64, cast as upstream's CPU
    casts: from 2**(n-1) up through x - 2**(n-1) with the top bit put back, below it as a signed
    cast; out of range (NaN too), each gives x86's "integer indefinite" 0x80..0. (float16
    goes to uint32 through int64, as the other integer casts do.)"""
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    it = torch.int32 if size == 4 else torch.int64
    half = 2.0 ** (8 * size - 1)
    r = x.to(it)
    top = x.max() if x.numel() else None
    if top is not None and not top < half:  # (the max is NaN when an item is)
        r = torch.where(x >= half, (x - half).to(it) ^ torch.iinfo(it).min, r)
    return r.to(torch.int64) & 0xFFFFFFFF if size == 4 else r


@register(M.Copy)
def _copy(p, x):
    # host-to-device copies may be queued; device-to-host ones must have landed before a
    # CPU kernel of the same evaluation reads them
    return x.to(p.tdevice, non_blocking=p.tdevice.type == "cuda")


KERNELS[M.Identity] = lambda p, x: x
KERNELS[M.StopGradient] = lambda p, x: x


def _load_families():
    # each op family registers its kernels in a module of its own: kernels_<family>.py
    import importlib
    import pkgutil

    import ember.core._backend as pkg
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("kernels_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")


_load_families()
