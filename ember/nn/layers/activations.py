"""Activation functions and their parameter-free (except PReLU) layer classes.

The functions are plain Python over Ember ops (few nodes each: they run on every forward
pass). They use the same ops as upstream so that dtypes (weak Python scalars, int inputs)
and gradients at the kinks come out the same.
"""

import functools
import math

import ember.core as mx
from ember.core.device import resolve
from ember.core.ops.elementwise import apply_unary
from ember.core.primitives import elementwise as _E
from ember.nn.layers.base import Module

__all__ = [
    "CELU", "ELU", "GELU", "GLU", "SELU", "HardShrink", "Hardswish", "HardTanh",
    "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "PReLU", "ReLU", "ReLU2", "ReLU6",
    "Sigmoid", "SiLU", "Softmax", "Softmin", "Softplus", "Softshrink", "Softsign", "Step",
    "Tanh",
    "celu", "elu", "gelu", "gelu_approx", "gelu_fast_approx", "glu", "hard_shrink",
    "hard_tanh", "hardswish", "leaky_relu", "log_sigmoid", "log_softmax", "mish", "prelu",
    "relu", "relu2", "relu6", "selu", "sigmoid", "silu", "softmax", "softmin", "softplus",
    "softshrink", "softsign", "step", "tanh",
]

_SQRT_2 = math.sqrt(2)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

# MLX compiles its activation functions (all but glu and tanh), and its compile refuses
# arguments that are not trees of arrays and constants before the function runs (a numpy
# array, a numpy scalar, a complex). The functions here check their arguments the same
# way (`_checked`), off a fast path for arrays and Python numbers.
_ARRAY = mx.array
_NUMBERS = frozenset((int, float))
_LEAVES = (mx.array, int, float, str, type(None))


def _bad_leaf(a):
    if isinstance(a, _LEAVES):
        return None
    if isinstance(a, (list, tuple, dict)):
        for v in (a.values() if isinstance(a, dict) else a):
            bad = _bad_leaf(v)
            if bad is not None:
                return bad
        return None
    return a


def _check_args(*args):
    for a in args:
        bad = _bad_leaf(a)
        if bad is not None:
            raise ValueError(
                "[compile] Function arguments must be trees of arrays or constants (floats, "
                f"ints, strings, or None), but received type {type(bad).__name__}.")


def _checked(fn):
    """`fn` refusing arguments as MLX's compile decorator on it does (arrays and Python
    numbers pass at once)."""
    @functools.wraps(fn)
    def checked(*args, **kwargs):
        for a in (*args, *kwargs.values()):
            if type(a) is not _ARRAY and type(a) not in _NUMBERS:
                _check_args(a)
        return fn(*args, **kwargs)
    return checked


# ---------------------------------------------------------------- functions

@_checked
def sigmoid(x):
    """1 / (1 + exp(-x)), element-wise."""
    return mx.sigmoid(x)


@_checked
def relu(x):
    """max(x, 0), element-wise."""
    return mx.maximum(x, 0)


@_checked
def relu2(x):
    """max(x, 0) ** 2, element-wise."""
    return mx.square(mx.maximum(x, 0))


@_checked
def relu6(x):
    """min(max(x, 0), 6), element-wise (6.0 is a float: int inputs give float32)."""
    return mx.minimum(mx.maximum(x, 0), 6.0)


def _one_pass(x, gpu_too=True):
    """The stream for a fused primitive over float32 `x` (torch's kernels give upstream's
    bits there, on the GPU too unless `gpu_too` is False), else None: other dtypes round
    each step as upstream's composite does."""
    if not (isinstance(x, mx.array) and x.dtype == mx.float32):
        return None
    s = resolve(None)
    return s if gpu_too or not s.is_gpu else None


@_checked
def leaky_relu(x, negative_slope=0.01):
    """max(negative_slope * x, x), element-wise."""
    s = _one_pass(x)
    if s and isinstance(negative_slope, (int, float)) and negative_slope <= 1:
        return apply_unary(_E.LeakyRelu(float(negative_slope)), x, s)
    return mx.maximum(negative_slope * x, x)


@_checked
def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`."""
    # Shifting by the (constant) max first keeps the small normaliser: logsumexp of
    # large logits would round it away before the subtraction.
    x = x - mx.stop_gradient(mx.max(x, axis=axis, keepdims=True))
    return x - mx.logsumexp(x, axis=axis, keepdims=True)


@_checked
def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return mx.where(x > 0, x, alpha * (mx.exp(x) - 1))


@_checked
def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`."""
    return mx.softmax(x, axis=axis)


@_checked
def softplus(x):
    """log(1 + exp(x)), element-wise."""
    return mx.logaddexp(x, 0)


@_checked
def softsign(x):
    """x / (1 + |x|), element-wise."""
    return mx.divide(x, 1 + mx.abs(x))


@_checked
def softshrink(x, lambd: float = 0.5):
    """x moved towards 0 by `lambd`, and 0 where |x| <= lambd."""
    return mx.where(mx.abs(x) > lambd, x - mx.sign(x) * lambd, 0)


@_checked
def celu(x, alpha=1.0):
    """max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1), element-wise."""
    return mx.maximum(x, 0.0) + alpha * (mx.exp(mx.minimum(x, 0.0) / alpha) - 1)


@_checked
def silu(x):
    """x * sigmoid(x) (Swish), element-wise."""
    return x * mx.sigmoid(x)


@_checked
def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), element-wise."""
    return -mx.logaddexp(-x, 0)


@_checked
def gelu(x):
    """x * Phi(x) with Phi the standard normal CDF (exact, via erf)."""
    return x * (1 + mx.erf(x / _SQRT_2)) / 2


@_checked
def gelu_approx(x):
    """The tanh approximation of gelu (max abs error < 5e-4 on [-6, 6])."""
    return 0.5 * x * (1 + mx.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


@_checked
def gelu_fast_approx(x):
    """x * sigmoid(1.702 x): a cheaper approximation of gelu (max abs error < 0.015)."""
    return x * mx.sigmoid(1.702 * x)


def glu(x, axis: int = -1):
    """a * sigmoid(b) where a, b are the two halves of x along `axis`."""
    a, b = mx.split(x, 2, axis=axis)
    return a * mx.sigmoid(b)


@_checked
def step(x, threshold: float = 0.0):
    """1 where x >= threshold, else 0 (int32 like upstream)."""
    return mx.where(x >= threshold, 1, 0)


@_checked
def selu(x):
    """1.0507 * elu(x, 1.67326)."""
    return elu(x, 1.67326) * 1.0507


@_checked
def prelu(x, alpha):
    """max(0, x) + alpha * min(0, x), with `alpha` an array (broadcast against x)."""
    return mx.maximum(0, x) + alpha * mx.minimum(0, x)


@_checked
def mish(x):
    """x * tanh(softplus(x)), element-wise."""
    return x * mx.tanh(mx.logaddexp(x, 0))


@_checked
def hardswish(x):
    """x * min(max(x + 3, 0), 6) / 6, element-wise."""
    s = _one_pass(x, gpu_too=False)  # (torch's CUDA kernel rounds differently)
    if s:
        return apply_unary(_E.HardSwish(), x, s)
    return x * mx.minimum(mx.maximum(x + 3, 0), 6) / 6


@_checked
def hard_tanh(x, min_val=-1.0, max_val=1.0):
    """x clipped to [min_val, max_val]."""
    return mx.minimum(mx.maximum(x, min_val), max_val)


@_checked
def hard_shrink(x, lambd=0.5):
    """x where |x| > lambd, else 0."""
    return mx.where(mx.abs(x) > lambd, x, 0)


@_checked
def softmin(x, axis=-1):
    """softmax(-x) along `axis`."""
    return mx.softmax(-x, axis=axis)


def tanh(x):
    """The hyperbolic tangent, element-wise."""
    return mx.tanh(x)


# ---------------------------------------------------------------- layers
# Attribute names follow upstream (e.g. `_alpha`, `lambd`), so code reading them works.

def _make_activation_module(fn):
    """Class decorator for the parameterless layers: calling the layer applies `fn`.
    Named as upstream's, so that a bad call's TypeError reads the same."""
    def decorator(cls):
        cls.__call__ = lambda _, x: fn(x)
        return cls
    return decorator


class GLU(Module):
    """Gated linear unit along `axis`; see `glu`."""

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def __call__(self, x):
        return glu(x, self.axis)


@_make_activation_module(sigmoid)
class Sigmoid(Module):
    """See `sigmoid`."""


@_make_activation_module(mish)
class Mish(Module):
    """See `mish`."""


@_make_activation_module(relu)
class ReLU(Module):
    """See `relu`."""


@_make_activation_module(relu2)
class ReLU2(Module):
    """See `relu2`."""


@_make_activation_module(relu6)
class ReLU6(Module):
    """See `relu6`."""


class LeakyReLU(Module):
    """See `leaky_relu`."""

    def __init__(self, negative_slope=1e-2):
        super().__init__()
        self._negative_slope = negative_slope

    def __call__(self, x):
        return leaky_relu(x, self._negative_slope)


class ELU(Module):
    """See `elu`."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self._alpha = alpha

    def __call__(self, x):
        return elu(x, self._alpha)


@_make_activation_module(softmax)
class Softmax(Module):
    """Softmax over the last axis; see `softmax`."""


@_make_activation_module(softplus)
class Softplus(Module):
    """See `softplus`."""


@_make_activation_module(softsign)
class Softsign(Module):
    """See `softsign`."""


class Softshrink(Module):
    """See `softshrink`."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def __call__(self, x):
        return softshrink(x, self.lambd)


class CELU(Module):
    """See `celu`."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self._alpha = alpha

    def __call__(self, x):
        return celu(x, self._alpha)


@_make_activation_module(silu)
class SiLU(Module):
    """See `silu`."""


@_make_activation_module(log_softmax)
class LogSoftmax(Module):
    """Log-softmax over the last axis; see `log_softmax`."""


@_make_activation_module(log_sigmoid)
class LogSigmoid(Module):
    """See `log_sigmoid`."""


class PReLU(Module):
    """Parametric ReLU with `num_parameters` learnable slopes (`weight`), all starting
    at `init`; see `prelu`."""

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.weight = mx.full([num_parameters], init)

    def __call__(self, x):
        return prelu(x, self.weight)


class GELU(Module):
    """GELU, exact (`approx="none"`), tanh-approximated ("precise", alias "tanh") or
    sigmoid-approximated ("fast"); see `gelu`, `gelu_approx`, `gelu_fast_approx`."""

    def __init__(self, approx="none"):
        super().__init__()
        self._approx = approx
        allowed = ["none", "precise", "tanh", "fast"]
        if approx not in allowed:
            raise ValueError(
                f"The approximation should be in {allowed} but '{approx}' was given")
        # picked once here rather than on every call
        self._fn = (gelu if approx == "none" else
                    gelu_fast_approx if approx == "fast" else gelu_approx)

    def __call__(self, x):
        return self._fn(x)


@_make_activation_module(mx.tanh)
class Tanh(Module):
    """See `tanh`."""


@_make_activation_module(hardswish)
class Hardswish(Module):
    """See `hardswish`."""


class Step(Module):
    """1 where x >= `threshold`, else 0; see `step`."""

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = threshold

    def __call__(self, x):
        return step(x, self.threshold)


@_make_activation_module(selu)
class SELU(Module):
    """See `selu`."""


@_make_activation_module(hard_tanh)
class HardTanh(Module):
    """Clip to [-1, 1]; see `hard_tanh`."""


class HardShrink(Module):
    """See `hard_shrink`."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def __call__(self, x):
        return hard_shrink(x, self.lambd)


@_make_activation_module(softmin)
class Softmin(Module):
    """Softmin over the last axis; see `softmin`."""
