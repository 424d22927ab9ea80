"""Convolutions: conv1d/2d/3d, their transposes, conv_general and numpy-style convolve.

Layouts are MLX's, channels last: input (N, *spatial, C_in), weight
(C_out, *kernel, C_in / groups). Every op is one `Convolution` node (see
primitives/conv.py), preceded by a slice when the padding is negative.
"""

import operator

import numpy as np

from ember.core.array import array, node
from ember.core.ops._base import PROMOTE, binding_error, resolve
from ember.core.ops.elementwise import astype
from ember.core.ops.shape import reshape
from ember.core.primitives.conv import Convolution

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "conv_general", "convolve"]

_SEQ = (list, tuple)


def _fmt(xs):
    return "(" + ",".join(str(v) for v in xs) + ")"


def _signatures():
    head, tail = "input: array, weight: array, /, ", "*, stream: StreamOrDevice = None) -> array"
    sigs = {
        "conv_general": f"conv_general({head}stride: int | Sequence[int] = 1, padding: int | "
                        "Sequence[int] | tuple[Sequence[int], Sequence[int]] = 0, "
                        "kernel_dilation: int | Sequence[int] = 1, input_dilation: int | "
                        f"Sequence[int] = 1, groups: int = 1, flip: bool = False, {tail}",
        "convolve": f'convolve(a: array, v: array, /, mode: str = "full", {tail}',
    }
    for n in (1, 2, 3):
        t = "int" if n == 1 else f"int | tuple[{', '.join(['int'] * n)}]"
        args = f"stride: {t} = 1, padding: {t} = 0, dilation: {t} = 1, "
        sigs[f"conv{n}d"] = f"conv{n}d({head}{args}groups: int = 1, {tail}"
        sigs[f"conv_transpose{n}d"] = (f"conv_transpose{n}d({head}{args}output_padding: {t} = 0, "
                                       f"groups: int = 1, {tail}")
    return sigs


_SIGS = _signatures()


def _bad_args(op):
    return binding_error(op, _SIGS[op])


def _arrays(op, *xs):
    for x in xs:
        if not isinstance(x, array):
            raise _bad_args(op)


def _int(v, op):
    if type(v) is int:
        return v
    if isinstance(v, (float, complex, str, array)):
        raise _bad_args(op)
    try:
        return operator.index(v)
    except TypeError:
        raise _bad_args(op) from None


def _ints(v, n, op):
    """An int or a sequence of exactly n ints (n None: of any length), as a list."""
    if isinstance(v, np.ndarray) and v.ndim:
        v = v.tolist()  # (a sequence, as upstream's binding reads it)
    if isinstance(v, _SEQ):
        if n is not None and len(v) != n:
            raise _bad_args(op)
        return [_int(e, op) for e in v]
    return [_int(v, op)] if n is None else [_int(v, op)] * n


def _c_rem(a, b):
    """a % b with C's sign rule (the remainder takes the sign of a)."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _spread(v, nd, default):
    if len(v) > 1:
        return list(v)
    return [v[0] if v else default] * nd


def _check_channels(x, w, groups, nd):
    if x.dtype.kind != "f":
        raise ValueError(f"[conv] Invalid input array with type {x.dtype.name}. Convolution "
                         "currently only supports floating point types")
    if w.ndim != nd + 2:
        raise ValueError(f"[conv] Invalid weight array with {w.ndim} dimensions for {nd}D "
                         f"convolution. Expected an array with {nd + 2} dimensions following "
                         "the format [C_out, ..., C_in].")
    c, o = x.shape[-1], w.shape[0]
    if groups == 0 or _c_rem(c, groups):
        raise ValueError("[conv] The input channels must be divisible by the number of "
                         f"groups. Got input with shape {_fmt(x.shape)} and {groups} groups.")
    if groups > 1 and o % groups:
        raise ValueError("[conv] If groups > 1, the output channels must be divisible by "
                         f"the number of groups. Got {o} output channels and {groups} groups.")
    if c != groups * w.shape[-1]:
        if groups == 1:
            raise ValueError("[conv] Expect the input channels in the input and weight array "
                             f"to match but got shapes - input: {_fmt(x.shape)} and weight: "
                             f"{_fmt(w.shape)}")
        raise ValueError(f"Given groups={groups} and weights of shape {_fmt(w.shape)}, "
                         f"expected to have {groups * w.shape[-1]} input channels but got {c} "
                         "input channels instead.")


def _check_params(nd, stride, lo, hi, kdil, idil):
    for name, v in (("strides", stride), ("padding", None), ("kernel dilation", kdil),
                    ("input dilation", idil)):
        if v is None:
            if len(lo) != nd or len(hi) != nd:
                raise ValueError(f"[conv] Invalid padding {_fmt(lo)} | {_fmt(hi)} for {nd}D "
                                 "convolution.")
        elif len(v) != nd:
            raise ValueError(f"[conv] Invalid {name} {_fmt(v)} for {nd}D convolution.")


# (shapes, dtypes, parameters) -> (primitive, output shape, dtype) of valid convolutions
# without negative padding: repeated calls (a model's layers) skip the checks
_MEMO = {}


def _conv(x, w, stride, lo, hi, kdil, idil, groups, flip, s):
    key = (x._shape, x._dtype, w._shape, w._dtype, tuple(stride), tuple(lo), tuple(hi),
           tuple(kdil), tuple(idil), groups, flip)
    hit = _MEMO.get(key)
    if hit is not None:
        prim, out, dt = hit
        if x._dtype is not dt:
            x = astype(x, dt, s)
        if w._dtype is not dt:
            w = astype(w, dt, s)
        return node(out, dt, prim, (x, w), s)
    y, sliced = _checked_conv(x, w, list(stride), list(lo), list(hi), list(kdil), list(idil),
                              groups, flip, s)
    if not sliced:
        if len(_MEMO) > 4096:
            _MEMO.clear()
        _MEMO[key] = (y._prim, y._shape, y._dtype)
    return y


def _checked_conv(x, w, stride, lo, hi, kdil, idil, groups, flip, s):
    """The general convolution on parameter lists (a list of <= 1 entries applies to every
    spatial dim); the checks and their order follow upstream."""
    if groups != 1 and x.ndim not in (3, 4):
        raise ValueError("[conv] Can only handle groups != 1 in 1D or 2D convolutions.")
    nd = x.ndim - 2
    if not 1 <= nd <= 3:
        raise ValueError("[conv] Only works for inputs with 1-3 spatial dimensions. The inputs "
                         "must be in the format [N, ..., C_in]")
    _check_channels(x, w, groups, nd)
    dt = PROMOTE[x.dtype, w.dtype]
    if x.dtype is not dt:
        x = astype(x, dt, s)
    if w.dtype is not dt:
        w = astype(w, dt, s)
    stride, kdil, idil = _spread(stride, nd, 1), _spread(kdil, nd, 1), _spread(idil, nd, 1)
    lo, hi = _spread(lo, nd, 0), _spread(hi, nd, 0)
    _check_params(nd, stride, lo, hi, kdil, idil)
    sliced = min(lo) < 0 or min(hi) < 0
    if sliced:
        # negative padding crops the (undilated) input, as upstream does
        key = [slice(None)] * x.ndim
        for i in range(nd):
            a, b = max(-lo[i], 0), x.shape[i + 1] + min(hi[i], 0)
            key[i + 1] = slice(a, max(a, b))
            lo[i], hi[i] = max(lo[i], 0), max(hi[i], 0)
        x = x[tuple(key)]
    out = [x.shape[0]]
    for i in range(nd):
        if kdil[i] <= 0:
            raise ValueError("[conv] Kernel dilation sizes must be positive. Got kernel "
                             f"dilation {_fmt(kdil)}.")
        if idil[i] <= 0:
            raise ValueError("[conv] Input dilation sizes must be positive. Got input "
                             f"dilation {_fmt(idil)}.")
        if stride[i] <= 0:
            raise ValueError(f"[conv] Stride sizes must be positive. Got strides {_fmt(stride)}.")
        span = (x.shape[i + 1] - 1) * idil[i] + 1 + lo[i] + hi[i] - \
            ((w.shape[i + 1] - 1) * kdil[i] + 1)
        # C's truncating division: a window overhanging the end by less than a stride
        # still gives one output, over implicit zeros
        n = (-(-span // stride[i]) if span < 0 else span // stride[i]) + 1
        if n <= 0:
            raise ValueError("[conv] Spatial dimensions of input after padding cannot be "
                             f"smaller than weight spatial dimensions. Got error at axis {i + 1} "
                             f"for input with shape {_fmt(x.shape)}, padding low {_fmt(lo)}, "
                             f"padding high {_fmt(hi)}, and weight of shape {_fmt(w.shape)}.")
        if span < 0:
            hi[i] -= span
        out.append(n)
    out.append(w.shape[0])
    prim = Convolution(tuple(stride), tuple(lo), tuple(hi), tuple(kdil), tuple(idil), groups,
                       flip)
    return node(tuple(out), dt, prim, (x, w), s), sliced


def conv1d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *,  # noqa: A002
           stream=None):
    op = "conv1d"
    _arrays(op, input, weight)
    stride, padding, dilation = _int(stride, op), _int(padding, op), _int(dilation, op)
    return _conv(input, weight, [stride], [padding], [padding], [dilation], [1],
                 _int(groups, op), False, resolve(stream))


def _convnd(op, n, input, weight, stride, padding, dilation, groups, stream):
    _arrays(op, input, weight)
    padding = _ints(padding, n, op)
    return _conv(input, weight, _ints(stride, n, op), padding, padding,
                 _ints(dilation, n, op), [1] * n, _int(groups, op), False, resolve(stream))


def conv2d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *,  # noqa: A002
           stream=None):
    return _convnd("conv2d", 2, input, weight, stride, padding, dilation, groups, stream)


def conv3d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *,  # noqa: A002
           stream=None):
    return _convnd("conv3d", 3, input, weight, stride, padding, dilation, groups, stream)


def _conv_transpose(op, n, x, w, stride, padding, dilation, output_padding, groups, stream):
    _arrays(op, x, w)
    stride, padding = _ints(stride, n, op), _ints(padding, n, op)
    dilation, output_padding = _ints(dilation, n, op), _ints(output_padding, n, op)
    groups = _int(groups, op)
    if x.ndim <= n or w.ndim <= n:
        # upstream reads the n spatial sizes of both before any check (its small vector's
        # own error)
        raise IndexError("SmallVector out of range.")
    lo, hi = [], []
    for i in range(n):
        k = w.shape[i + 1]
        span = (k - 1) * dilation[i]
        lo.append(span - padding[i])
        hi.append(span - padding[i] + output_padding[i])
    # a transposed convolution is the convolution of the stride-dilated input with the
    # flipped kernel
    return _conv(x, w, [1] * n, lo, hi, dilation, stride, groups, True, resolve(stream))


def conv_transpose1d(input, weight, /, stride=1, padding=0, dilation=1,  # noqa: A002
                     output_padding=0, groups=1, *, stream=None):
    op = "conv_transpose1d"
    args = [_int(v, op) for v in (stride, padding, dilation, output_padding)]
    return _conv_transpose(op, 1, input, weight, *args, groups, stream)


def conv_transpose2d(input, weight, /, stride=1, padding=0, dilation=1,  # noqa: A002
                     output_padding=0, groups=1, *, stream=None):
    return _conv_transpose("conv_transpose2d", 2, input, weight, stride, padding, dilation,
                           output_padding, groups, stream)


def conv_transpose3d(input, weight, /, stride=1, padding=0, dilation=1,  # noqa: A002
                     output_padding=0, groups=1, *, stream=None):
    return _conv_transpose("conv_transpose3d", 3, input, weight, stride, padding, dilation,
                           output_padding, groups, stream)


def _padding(padding, op):
    if isinstance(padding, _SEQ) and len(padding) == 2 \
            and all(isinstance(p, _SEQ) for p in padding):
        return _ints(padding[0], None, op), _ints(padding[1], None, op)
    p = _ints(padding, None, op)
    return p, list(p)


def conv_general(input, weight, /, stride=1, padding=0, kernel_dilation=1,  # noqa: A002
                 input_dilation=1, groups=1, flip=False, *, stream=None):
    op = "conv_general"
    _arrays(op, input, weight)
    if type(flip) is not bool:
        raise _bad_args(op)
    lo, hi = _padding(padding, op)
    return _conv(input, weight, _ints(stride, None, op), lo, hi,
                 _ints(kernel_dilation, None, op), _ints(input_dilation, None, op),
                 _int(groups, op), flip, resolve(stream))


def convolve(a, v, /, mode="full", *, stream=None):
    _arrays("convolve", a, v)
    if not isinstance(mode, str):
        raise _bad_args("convolve")
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError("[convolve] Inputs must be 1D.")
    if a.size == 0 or v.size == 0:
        raise ValueError("[convolve] Inputs cannot be empty.")
    s = resolve(stream)
    x, w = (v, a) if a.size < v.size else (a, v)
    k = w.size
    if mode == "full":
        lo = hi = k - 1
    elif mode == "same":
        hi = (k - 1) // 2
        lo = k - 1 - hi
    elif mode == "valid":
        lo = hi = 0
    else:
        raise ValueError("[convolve] Invalid mode.")
    y = _conv(reshape(x, (1, -1, 1), stream=s), reshape(w, (1, -1, 1), stream=s), [1], [lo],
              [hi], [1], [1], 1, True, s)
    return reshape(y, (-1,), stream=s)
